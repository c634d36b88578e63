"""Structured logs: JSON lines off a TTY, readable lines on one, secrets redacted.

Both structlog loggers and plain ``logging`` loggers (the engine, libraries)
go through one handler on the root logger, so every line gets the same
fields: timestamp, level, logger, event, and ``interaction_id`` while inside
:func:`bind_interaction`.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import IO, Any

import structlog

from app.settings import Settings
from rag_engine.redact import MASK, Redactor

_HANDLER_MARK = "_ragbot_handler"
_SENSITIVE_KEY = re.compile(r"pass(word)?|secret|token|authorization|api_?key|cookie", re.IGNORECASE)
_NOISY_LOGGERS = ("httpx", "httpcore", "urllib3", "websockets", "aiohttp.access")  # a line per request


class _RedactingFormatter(structlog.stdlib.ProcessorFormatter):
    """Redacts the finished line, so tracebacks and odd values are covered too."""

    def __init__(self, redactor: Redactor, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        return self.redactor(super().format(record))


def _mask_sensitive_keys(_logger: Any, _name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """``log.info("x", token=...)``: values under secret-looking keys never print."""
    return {key: _masked(key, value) for key, value in event_dict.items()}


def _masked(key: str, value: Any) -> Any:
    if key != "event" and _SENSITIVE_KEY.search(key) and value not in (None, ""):
        return MASK
    if isinstance(value, Mapping):
        return {k: _masked(str(k), v) for k, v in value.items()}
    return value


def configure_logging(settings: Settings, *, stream: IO[str] | None = None) -> None:
    """Send every log record to ``stream`` (default stderr) as JSON lines or readable text.

    JSON when ``settings.log_json`` is true, or when it is unset and ``stream``
    is not a TTY. Safe to call again (the previous ragbot handler is replaced).
    """
    stream = stream if stream is not None else sys.stderr
    level = _level(settings.log_level)
    as_json = settings.log_json if settings.log_json is not None else not _isatty(stream)

    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        _mask_sensitive_keys,
    ]
    renderer: Any = (structlog.processors.JSONRenderer(default=str) if as_json
                     else structlog.dev.ConsoleRenderer(colors=_isatty(stream),
                                                        exception_formatter=structlog.dev.plain_traceback))
    formatter = _RedactingFormatter(
        Redactor.for_config(settings),
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_MARK, True)

    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level)
    for name in _NOISY_LOGGERS:  # per-request chatter (and URLs) only when debugging
        logging.getLogger(name).setLevel(level if level <= logging.DEBUG else max(level, logging.WARNING))
    logging.captureWarnings(True)

    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, *shared,
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


@contextmanager
def bind_interaction(interaction_id: int | str | None) -> Iterator[None]:
    """Add ``interaction_id`` to every log line written inside the block.

    It lives in a ``contextvars`` variable: asyncio tasks created inside the
    block inherit it, and so do threads started via ``asyncio.to_thread`` or
    ``contextvars.copy_context().run`` (a bare ``threading.Thread`` does not).
    ``None`` binds nothing, so callers need no branch before the id exists.
    """
    if interaction_id is None:
        yield
        return
    with structlog.contextvars.bound_contextvars(interaction_id=interaction_id):
        yield


def _level(name: str) -> int:
    levels = logging.getLevelNamesMapping()
    level = levels.get(str(name).strip().upper())
    if not isinstance(level, int):
        choices = ", ".join(n for n in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"))
        raise ValueError(f"RAGBOT_LOG_LEVEL must be one of {choices} (got {name!r})")
    return level


def _isatty(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or file-like without isatty
        return False
