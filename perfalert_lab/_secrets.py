"""Redaction of secrets (webhook URLs, tokens) for every output.

A setting written as an ``${ENV_VAR}`` reference is not a secret and is shown as is;
any other URL keeps its scheme and host and loses its path and query; token-like
settings are replaced entirely.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

ENV_REF = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")
SECRET_KEYS = frozenset({"url", "token", "password", "secret", "api_key", "apikey", "key", "auth", "authorization"})
MASK = "***"


def is_env_ref(value: object) -> bool:
    """True for a ``${ENV_VAR}`` reference."""
    return isinstance(value, str) and bool(ENV_REF.match(value.strip()))


def redact_value(key: str, value: Any) -> Any:
    """The value of setting ``key`` as it may appear in an output."""
    if not isinstance(value, str) or is_env_ref(value):
        return value
    if key.lower() == "url" or "://" in value:
        try:
            parts = urlsplit(value)
        except ValueError:
            return MASK
        if parts.scheme and parts.hostname:
            return f"{parts.scheme}://{parts.hostname}/{MASK}"
        return MASK
    if key.lower() in SECRET_KEYS:
        return MASK
    return value


def redact_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """A copy of channel settings with every secret masked."""
    return {k: redact_value(k, v) for k, v in settings.items()}


def literal_secrets(settings: dict[str, Any]) -> list[str]:
    """Names of settings that hold a literal secret (not an ``${ENV_VAR}`` reference)."""
    return [k for k, v in settings.items() if isinstance(v, str) and redact_value(k, v) != v]
