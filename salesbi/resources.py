"""Where the project's data folders are: the checkout's, or the copies an installed wheel carries."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def project_dir(name: str) -> Path:
    """Return the folder ``name`` (``profiles``, ``expectations``) to read from.

    In a checkout (and an editable install) that is ``<repo>/<name>``; a wheel built with
    ``pip install .`` carries the same files as ``salesbi/bundled/<name>``.
    """
    checkout = PACKAGE.parent / name
    if checkout.is_dir():
        return checkout
    bundled = PACKAGE / "bundled" / name
    return bundled if bundled.is_dir() else checkout
