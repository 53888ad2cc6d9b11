"""At most one writing run per output folder: an exclusive lock file holding the owner's pid and host.

The file ``<out>/.salesbi-run.lock`` is created with ``O_CREAT | O_EXCL`` (atomic
on every platform and on network shares), so two runs cannot both hold it. A
lock left by a process that is gone (killed, machine restarted) is taken over;
one held by a live process makes the second run wait up to ``timeout`` seconds,
then fail with a message naming the holder.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from salesbi.errors import SalesBIError
from salesbi.runlog import process_gone, this_process

LOCK_NAME = ".salesbi-run.lock"
POLL_SECONDS = 0.5


class RunLocked(SalesBIError):
    """Another run holds the output folder's lock."""


def _holder(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _try_create(path: Path, owner: dict[str, Any]) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(owner, f)
    return True


@contextmanager
def run_lock(out_dir: Path, run_id: str, *, timeout: float = 0) -> Iterator[Path]:
    """Hold the output folder's run lock for the block; yield the lock file's path.

    Waits up to ``timeout`` seconds for a live holder; raises :class:`RunLocked`
    after that, and SalesBIError when the folder cannot be written at all.
    """
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SalesBIError(
            f"cannot create the output folder ({exc.strerror})", file=out_dir, hint="choose another --out"
        ) from None
    path = out_dir / LOCK_NAME
    owner = {**this_process(), "run_id": run_id}
    deadline = time.monotonic() + timeout
    while True:
        try:
            if _try_create(path, owner):
                break
        except OSError as exc:
            raise SalesBIError(
                f"cannot write in the output folder ({exc.strerror})",
                file=out_dir,
                hint="make it writable for this user, or choose another --out",
            ) from None
        holder = _holder(path)
        if holder and process_gone(holder):
            path.unlink(missing_ok=True)  # its owner died: take over
            continue
        if time.monotonic() >= deadline:
            who = (
                f"run {holder.get('run_id')} (pid {holder.get('pid')} on {holder.get('host')})"
                if holder
                else "another run"
            )
            raise RunLocked(
                f"{who} is writing to this output folder",
                file=path,
                hint=(
                    "wait for it to finish and start again (or pass a longer lock timeout); if no such "
                    f"run exists any more, delete {path}"
                ),
            )
        time.sleep(POLL_SECONDS)
    try:
        yield path
    finally:
        if _holder(path).get("run_id") == run_id:
            path.unlink(missing_ok=True)
