"""HTTP API over the stored models and the ``rpt`` tables (FastAPI): ``create_app`` and ``serve``."""

from salesbi.api.app import create_app, serve
from salesbi.api.settings import ApiSettings

__all__ = ["ApiSettings", "create_app", "serve"]
