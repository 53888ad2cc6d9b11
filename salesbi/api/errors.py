"""Error responses: one JSON shape for every error, and never a stack trace."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from salesbi.api.schemas import ErrorBody

log = logging.getLogger(__name__)

CODES = {
    400: "bad_request",
    401: "missing_api_key",
    403: "invalid_api_key",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    422: "invalid_request",
    503: "unavailable",
}


class ApiError(Exception):
    """An error answered with ``status`` and a message that says what to do."""

    def __init__(self, status: int, message: str, *, fields: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.fields = fields or []


def error_response(
    status: int,
    message: str,
    fields: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """Return the JSON error response (``ErrorBody``)."""
    body = ErrorBody(error=CODES.get(status, "error"), message=message, fields=fields or [])
    return JSONResponse(status_code=status, content=body.model_dump(), headers=headers)


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """Return a pydantic error location as ``history[0].order_date`` (the leading 'body' dropped)."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        where = parts.pop(0)
        if where != "body" and parts:
            return f"{where}.{parts[0]}"
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def _validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    fields = [
        {"field": field_path(e.get("loc", ())), "message": str(e.get("msg", "")), "type": e.get("type")}
        for e in exc.errors()
    ]
    names = ", ".join(dict.fromkeys(f["field"] for f in fields))
    return error_response(422, f"invalid request: check {names}", fields)


def _http(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return error_response(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))


def _api(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, exc.fields)


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # logged with its traceback on the server; the caller only learns that it failed
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal error; the server log has the details")


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into an ``ErrorBody`` JSON response."""
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(ApiError, _api)
    app.add_exception_handler(Exception, _unexpected)
