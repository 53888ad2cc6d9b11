"""Which failures are worth retrying: transient database errors, never bad data."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from salesbi.errors import SalesBIError

DB_RETRY_DELAYS = [2, 10, 30]


def is_transient(exc: BaseException | None) -> bool:
    """Return True for errors a retry can cure: lost connections, timeouts, deadlocks, lock waits."""
    if exc is None or isinstance(exc, SalesBIError):
        return False
    if isinstance(exc, sa.exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        return isinstance(exc, sa.exc.OperationalError) and not isinstance(exc, sa.exc.IntegrityError)
    return isinstance(exc, (ConnectionError, TimeoutError))


def retry_on_transient(_task: Any, _task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry only when the failure was a transient database error."""
    exc = state.result(raise_on_failure=False)
    return is_transient(exc if isinstance(exc, BaseException) else None)
