"""A real Prefect server and worker as subprocesses, for end-to-end tests.

Readiness is detected from the processes' own output (no sleeping); every
process is terminated by the context manager, whatever happens. A server is
started on a port found free (:func:`free_port`); another process (an xdist
worker, another test's server) may bind it first, so :func:`serving` starts it
again on a new port when it exits saying the address is in use.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    """Return a TCP port on localhost that nothing listens on right now (it may be taken before use:
    start servers with :func:`serving`)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


#: the scheduler's loops, shortened from 60 s / 5 s so that a test sees scheduled runs within seconds
SCHEDULER_LOOP_SECONDS = "2"


def prefect_env(home: Path, api_url: str | None = None, *, scheduler: bool = True) -> dict[str, str]:
    """Return an environment isolating Prefect state under ``home`` (SQLite backend, no telemetry).

    With ``scheduler`` the server's scheduler service runs, looping every few seconds.
    """
    env = dict(os.environ)
    env.update(
        {
            "PREFECT_HOME": str(home),
            "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_UI_ENABLED": "false",
            "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "true" if scheduler else "false",
            "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": SCHEDULER_LOOP_SECONDS,
            "PREFECT_SERVER_SERVICES_SCHEDULER_RECENT_DEPLOYMENTS_LOOP_SECONDS": SCHEDULER_LOOP_SECONDS,
            "PREFECT_LOGGING_LEVEL": "INFO",
            "SALESBI_HOME": str(PROJECT_ROOT),
            "PYTHONUNBUFFERED": "1",
        }
    )
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


class PortInUse(RuntimeError):
    """The server exited because its port was taken (another process bound it first)."""


#: what uvicorn (Prefect's server too) and Python's servers print when the port is taken
IN_USE = ("address already in use", "only one usage of each socket address")


def _failed(proc: subprocess.Popen[str], what: str, log: list[str]) -> RuntimeError:
    """Return the error for a process that is not ready: PortInUse when its output says so."""
    proc.kill()
    proc.wait()
    text = "".join(log)
    kind = PortInUse if any(s in text.lower() for s in IN_USE) else RuntimeError
    return kind(f"{what}:\n{''.join(log[-60:])}")


def _wait_for_line(proc: subprocess.Popen[str], needle: str, timeout: float, log: list[str]) -> None:
    """Block until ``needle`` appears in the process output; raise with the output if it dies or times out."""
    found = threading.Event()
    ended = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.append(line)
            if needle in line:
                found.set()
        ended.set()
        found.set()  # wake the waiter: the output ended (the process exits)

    threading.Thread(target=pump, daemon=True).start()
    if not found.wait(timeout) or (ended.is_set() and not any(needle in line for line in log)):
        raise _failed(proc, f"process did not print {needle!r} in {timeout}s", log)


def _wait_healthy(proc: subprocess.Popen[str], url: str, timeout: float, log: list[str]) -> None:
    """Block until ``url`` answers 200; between probes wait on the process itself (so a crash shows)."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        try:
            proc.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            continue
        break  # the process exited
    raise _failed(proc, f"{url} did not answer 200 within {timeout}s", log)


@contextmanager
def running(
    cmd: list[str], env: dict[str, str], ready: str, timeout: float = 120, health_url: str | None = None
) -> Iterator[list[str]]:
    """Start ``cmd``, wait until it prints ``ready`` (and ``health_url`` answers), yield its output lines.

    The process is stopped on exit, whatever happens.
    """
    log: list[str] = []
    proc = subprocess.Popen(
        cmd,
        env=env,
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        _wait_for_line(proc, ready, timeout, log)
        if health_url:
            _wait_healthy(proc, health_url, timeout, log)
        yield log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


#: ports tried before a server start gives up (each taken port is a race lost, not a fault)
PORT_ATTEMPTS = 5


@contextmanager
def serving(
    command: Callable[[int], list[str]],
    env: dict[str, str],
    ready: str,
    health: Callable[[int], str] | None = None,
    timeout: float = 120,
    attempts: int = PORT_ATTEMPTS,
) -> Iterator[tuple[int, list[str]]]:
    """Start the server ``command(port)`` on a free localhost port, as :func:`running` does; yield the
    port and its output lines.

    When the server exits because the port was taken between :func:`free_port` and its bind
    (:class:`PortInUse`), it is started again on another free port, up to ``attempts`` times.
    """
    for attempt in range(1, attempts + 1):
        port = free_port()
        server = ExitStack()
        try:
            log = server.enter_context(
                running(command(port), env, ready, timeout, health(port) if health else None)
            )
        except PortInUse:
            if attempt == attempts:
                raise
            continue
        with server:
            yield port, log
        return
    raise AssertionError("attempts must be at least 1")


@contextmanager
def prefect_server(home: Path, *, scheduler: bool = True) -> Iterator[tuple[str, list[str]]]:
    """Run ``prefect server start`` on a free localhost port; yield its API URL and its output lines."""

    def command(port: int) -> list[str]:
        return [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]

    def health(port: int) -> str:
        return f"http://127.0.0.1:{port}/api/health"

    env = prefect_env(home, scheduler=scheduler)
    # the banner comes before uvicorn listens; the health endpoint says when the API is up
    with serving(command, env, ready="PREFECT_API_URL", health=health, timeout=180) as (port, log):
        yield f"http://127.0.0.1:{port}/api", log


def poll(what: str, probe: Callable[[], T | None], timeout: float, every: float = 1.0) -> T:
    """Call ``probe`` until it returns something other than None; return that, or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()  # never set: wait() is a pause between probes, not a guess of duration
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not seen within {timeout:.0f}s")
        pause.wait(every)


def prefect_cli(args: list[str], env: dict[str, str], timeout: float = 300) -> str:
    """Run a ``prefect`` CLI command to completion; return its output or raise with it."""
    done = subprocess.run(
        [str(BIN / "prefect"), "--no-prompt", *args],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"prefect {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
    return done.stdout + done.stderr
