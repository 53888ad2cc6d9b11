"""Settings of the HTTP API: where the warehouse and models are, who may call, and the limits."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

ENV_KEYS = "SALESBI_API_KEYS"
ENV_KEYS_SECRET = "SALESBI_API_KEYS_SECRET"
ENV_MODELS_DIR = "SALESBI_MODELS_DIR"
ENV_WAREHOUSE_URL = "SALESBI_WAREHOUSE_URL"
ENV_CORS = "SALESBI_API_CORS_ORIGINS"
ENV_REQUIRE_KEY = "SALESBI_API_REQUIRE_KEY"
DEFAULT_MODELS_DIR = Path("out") / "models"


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


class ApiSettings(BaseModel):
    """Everything :func:`salesbi.api.create_app` needs; safe defaults (keys required, CORS off)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    warehouse_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the warehouse; default $SALESBI_WAREHOUSE_URL, else sqlite var/",
        repr=False,
    )
    models_dir: Path = Field(default=DEFAULT_MODELS_DIR, description="model store folder (<out>/models)")
    api_keys: tuple[str, ...] = Field(default=(), description="accepted X-API-Key values", repr=False)
    api_keys_secret: str | None = Field(
        default=None,
        description="name of a Prefect Secret block holding comma-separated keys (read at startup)",
    )
    require_api_key: bool = Field(default=True, description="False only for a trusted local network")
    cors_origins: tuple[str, ...] = Field(default=(), description="allowed browser origins; empty = no CORS")
    max_request_bytes: int = Field(
        default=4_000_000,
        ge=1_000,
        description=(
            "larger bodies get 413; the default fits a history one line over the schema's 10,000 "
            "(plain-text ids at their 64-character limit), so an over-long history gets its 422"
        ),
    )
    max_batch_size: int = Field(default=500, ge=1, le=10_000, description="customers per batch request")
    horizon_days: int | None = Field(
        default=None, ge=7, le=730, description="horizon a request without one assumes; default: the model's"
    )

    @field_validator("api_keys", "cors_origins", mode="before")
    @classmethod
    def _split_text(cls, value: object) -> object:
        if isinstance(value, str):
            return _split(value)
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> ApiSettings:
        """Return settings read from ``SALESBI_*`` environment variables, then ``overrides`` on top."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {
            "warehouse_url": env.get(ENV_WAREHOUSE_URL) or None,
            "models_dir": Path(env.get(ENV_MODELS_DIR) or DEFAULT_MODELS_DIR),
            "api_keys": _split(env.get(ENV_KEYS)),
            "api_keys_secret": env.get(ENV_KEYS_SECRET) or None,
            "cors_origins": _split(env.get(ENV_CORS)),
            "require_api_key": (env.get(ENV_REQUIRE_KEY, "1").strip().lower() not in ("0", "false", "no")),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(values)
