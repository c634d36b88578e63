"""Credentials of a source, read when a sync runs: from an environment variable or a file.

A source's stored configuration only names where its secret is (``token_env`` /
``token_file``), so the ``sources`` table never holds one in clear.
"""

from __future__ import annotations

import os
from pathlib import Path

from rag_engine.connectors.base import ConnectorError

SECRET_KEYS = frozenset({"token", "password", "secret", "api_key", "apikey", "access_token"})


def read_secret(env: str | None, file: str | None) -> str | None:
    """The secret named by ``env`` (a variable name) or ``file`` (a path), or None when neither is set."""
    if env:
        value = os.environ.get(env)
        if not value:
            raise ConnectorError(f"environment variable {env} (the source's token_env) is not set")
        return value.strip()
    if file:
        try:
            return Path(file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConnectorError(f"cannot read the source's token_file {file}: {exc.strerror}") from None
    return None


def refuse_clear_secrets(config: dict[str, object]) -> None:
    """A configuration that holds a credential itself is refused: name a variable or file instead."""
    found = sorted(k for k in config if k.lower() in SECRET_KEYS)
    if found:
        raise ValueError(f"source configuration may not hold secrets ({', '.join(found)}): "
                         "use token_env (an environment variable) or token_file (a file) instead")
