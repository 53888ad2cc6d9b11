"""tests/prefect_server.py: a server whose port was taken before it bound is started on another one."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator

import httpx
import pytest

from tests import prefect_server
from tests.prefect_server import PortInUse, running, serving


def _http_server(port: int) -> list[str]:
    # prints "Serving HTTP on …" once bound; "[Errno 98] Address already in use" and exits when taken
    return [sys.executable, "-u", "-m", "http.server", "--bind", "127.0.0.1", str(port)]


def _url(port: int) -> str:
    return f"http://127.0.0.1:{port}/"


@pytest.fixture
def taken() -> Iterator[int]:
    """A localhost port another process holds (bound and listening)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def test_a_server_whose_port_is_taken_says_so(taken: int) -> None:
    with (
        pytest.raises(PortInUse, match=r"(?i)address already in use"),
        running(_http_server(taken), dict(os.environ), "Serving HTTP on", timeout=60, health_url=_url(taken)),
    ):
        pass


def test_serving_starts_again_on_a_new_port_when_the_first_was_taken(
    taken: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = prefect_server.free_port
    ports = iter([taken])  # the race lost: the first port found free is bound by then
    monkeypatch.setattr(prefect_server, "free_port", lambda: next(ports, None) or real())
    env = dict(os.environ)
    with serving(_http_server, env, "Serving HTTP on", health=_url, timeout=60) as (port, log):
        assert port != taken
        assert httpx.get(_url(port), timeout=5).status_code == 200
        assert any("Serving HTTP on" in line for line in log)


def test_serving_gives_up_after_its_attempts(taken: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prefect_server, "free_port", lambda: taken)
    server = serving(_http_server, dict(os.environ), "Serving HTTP on", health=_url, timeout=60, attempts=2)
    with pytest.raises(PortInUse), server:
        pass
