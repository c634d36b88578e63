"""The audit trail of admin actions (who, what, when, result).

Every admin command, allowed or refused, leaves one row. Arguments and results
are stored bounded in size and with credential-shaped strings redacted, so the
trail itself never becomes a place secrets leak to.
"""

from __future__ import annotations

from typing import Any

from bot.sanitize import redact_secrets, strip_control
from bot.types import Actor
from rag_engine.engine import Store

MAX_RESULT_CHARS = 2000
MAX_ARG_CHARS = 500
MAX_ARG_ITEMS = 50


def _clean(value: Any, secrets: tuple[str, ...], depth: int = 0) -> Any:
    """JSON-safe, size-bounded, redacted copy of an argument value."""
    if depth > 4:
        return "…"
    if isinstance(value, dict):
        return {str(k)[:100]: _clean(v, secrets, depth + 1) for k, v in list(value.items())[:MAX_ARG_ITEMS]}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_clean(v, secrets, depth + 1) for v in list(value)[:MAX_ARG_ITEMS]]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return redact_secrets(strip_control(str(value)), secrets)[:MAX_ARG_CHARS]


def write_audit(store: Store, actor: Actor, action: str, args: dict[str, Any] | None, *, ok: bool,
                result: str) -> None:
    """One audit row, cleaned here; read it back with ``store.audit.recent``."""
    secrets = store.db.config.secrets
    store.audit.write(platform=actor.platform, actor=actor.user_key, action=str(action)[:100],
                      args=_clean(dict(args or {}), secrets), ok=ok,
                      result=redact_secrets(strip_control(result or ""), secrets)[:MAX_RESULT_CHARS])
