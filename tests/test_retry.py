"""Database tasks retry on transient errors only; bad data never retries."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from salesbi.errors import StructuralError, ValidationFailed
from tasks.retry import is_transient


def _operational(message: str = "server closed the connection unexpectedly") -> sa.exc.OperationalError:
    return sa.exc.OperationalError("SELECT 1", {}, Exception(message))


def test_transient_errors_are_recognised() -> None:
    assert is_transient(_operational())
    assert is_transient(ConnectionResetError("reset by peer"))
    assert is_transient(TimeoutError("timed out"))
    lost = sa.exc.DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True)
    assert is_transient(lost)


def test_bad_data_and_bugs_are_not_transient() -> None:
    assert not is_transient(None)
    assert not is_transient(ValidationFailed("orders shrank by 80%"))
    assert not is_transient(StructuralError("missing file orders.csv"))
    assert not is_transient(sa.exc.IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed")))
    assert not is_transient(ValueError("a bug"))
    assert not is_transient(sa.exc.ProgrammingError("SELECT", {}, Exception("no such table")))


@pytest.mark.integration
@pytest.mark.prefect
def test_prefect_retries_a_transient_failure_but_not_bad_data(prefect_api: None) -> None:
    from prefect import flow, task

    from tasks.stages import DB

    calls = {"transient": 0, "bad": 0}

    @task(**{**DB, "retry_delay_seconds": 0})
    def flaky() -> str:
        calls["transient"] += 1
        if calls["transient"] == 1:
            raise _operational()
        return "ok"

    @task(**{**DB, "retry_delay_seconds": 0})
    def bad_data() -> None:
        calls["bad"] += 1
        raise ValidationFailed("orders: zero rows")

    @flow
    def both() -> str:
        result = flaky()
        state = bad_data(return_state=True)
        assert state.is_failed()
        return str(result)

    assert both() == "ok"
    assert calls == {"transient": 2, "bad": 1}
