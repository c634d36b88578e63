"""Shared CLI plumbing: settings, the console, and turning known failures into messages."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import typer
from rich.console import Console

from app.configs import engine_config, store_config
from app.settings import Settings
from rag_engine.collections import CollectionNotFound, EmbedderMismatch
from rag_engine.store.database import (
    DatabaseUnavailable,
    EmbeddingDimensionMismatch,
    SchemaNotReady,
    stop_unused_embedded,
)
from rag_engine.store.migrate import PgvectorMissing

if TYPE_CHECKING:
    from rag_engine.engine import RagEngine  # lazy: pulls the parsers and yaml; keeps `ragbot --help` fast

console = Console()
err_console = Console(stderr=True)
P = ParamSpec("P")
R = TypeVar("R")


def settings() -> Settings:
    return Settings()


def friendly_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Known operational failures print one clear line and exit 1, not a traceback."""
    known = (DatabaseUnavailable, SchemaNotReady, EmbeddingDimensionMismatch, PgvectorMissing,
             CollectionNotFound, EmbedderMismatch, ValueError)

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except known as exc:
            err_console.print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(1) from None

    return wrapper


def stopped_while_starting(s: Settings) -> typer.Exit:
    """SIGTERM or Ctrl-C during start-up: stop the embedded database if it was left half-started
    (and no other process uses it); the process then exits 0."""
    stopped = stop_unused_embedded(store_config(s))
    err_console.print("stopped while starting" + ("; embedded PostgreSQL stopped" if stopped else ""))
    return typer.Exit(0)


def open_engine(s: Settings | None = None, **kwargs: Any) -> RagEngine:
    from rag_engine.engine import RagEngine  # lazy: pulls the parsers and yaml; keeps `ragbot --help` fast

    s = s or settings()
    with console.status("Opening the database and loading the embedder…", spinner="dots"):
        return RagEngine(engine_config(s), **kwargs)


def setup_logging(s: Settings, level: str | None = None) -> None:
    """The bots' log setup (structured lines, credentials masked); ``level`` overrides the setting."""
    from app.logging_setup import configure_logging  # lazy: structlog only for commands that log

    configure_logging(s if level is None else s.model_copy(update={"log_level": level}))
