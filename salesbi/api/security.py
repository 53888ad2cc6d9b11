"""API keys: where they come from (settings, environment, a Prefect Secret block) and how they are checked."""

from __future__ import annotations

import hmac
import logging

from salesbi.api.settings import ApiSettings
from salesbi.errors import ConfigurationError

log = logging.getLogger(__name__)

API_KEY_HEADER = "X-API-Key"
MIN_KEY_LENGTH = 16


def _secret_keys(block_name: str) -> tuple[str, ...]:
    """Return the comma-separated keys stored in the Prefect Secret block ``block_name``."""
    try:
        from prefect.blocks.system import Secret  # imported only here: the library never needs Prefect
    except ImportError as exc:
        raise ConfigurationError(
            f"api_keys_secret={block_name!r} needs Prefect, which is not installed ({exc})",
            hint="install prefect or give the keys in SALESBI_API_KEYS",
        ) from exc
    value = Secret.load(block_name).get()  # type: ignore[union-attr]
    text = value if isinstance(value, str) else ",".join(str(v) for v in value)
    return tuple(part.strip() for part in text.split(",") if part.strip())


def resolve_keys(settings: ApiSettings) -> tuple[str, ...]:
    """Return every accepted key: ``settings.api_keys`` plus the Secret block's keys.

    Raises ConfigurationError when keys are required but none is configured, or a key is shorter
    than 16 characters (easy to guess).
    """
    keys = list(settings.api_keys)
    if settings.api_keys_secret:
        keys.extend(_secret_keys(settings.api_keys_secret))
    short = [k for k in keys if len(k) < MIN_KEY_LENGTH]
    if short:
        raise ConfigurationError(
            f"{len(short)} API key(s) are shorter than {MIN_KEY_LENGTH} characters",
            hint="use long random keys, e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`",
        )
    if settings.require_api_key and not keys:
        raise ConfigurationError(
            "the API requires a key but none is configured",
            hint="set SALESBI_API_KEYS=key1,key2 (or a Prefect Secret block via SALESBI_API_KEYS_SECRET); "
            "only on a trusted network, SALESBI_API_REQUIRE_KEY=0",
        )
    if not settings.require_api_key:
        log.warning("API keys are not required: anyone who can reach the port can call the API")
    return tuple(keys)


def key_matches(provided: str, keys: tuple[str, ...]) -> bool:
    """Return True when ``provided`` equals one of ``keys``; every key is compared in constant time."""
    given = provided.encode("utf-8")
    found = False
    for key in keys:
        # no early exit: the time taken does not tell which key (or how much of one) matched
        found |= hmac.compare_digest(given, key.encode("utf-8"))
    return found
