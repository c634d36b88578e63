"""Connections: one sized SQLAlchemy pool per process, the embedded default, health."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from pgvector.psycopg import register_vector
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from rag_engine.config import StoreConfig
from rag_engine.errors import DatabaseUnavailable, DuplicateKey, EmbeddingDimensionMismatch, SchemaNotReady
from rag_engine.store.embedded import EmbeddedPostgres, release_server, to_sqlalchemy_url

if TYPE_CHECKING:
    from sqlalchemy.pool import ConnectionPoolEntry

log = logging.getLogger(__name__)

__all__ = ["Database", "DatabaseUnavailable", "DuplicateKey", "EmbeddingDimensionMismatch", "SchemaNotReady"]

_UNIQUE_VIOLATION = "23505"  # SQLSTATE


class Database:
    """A process-wide connection pool (pre-ping, statement timeout, no session state).

    No setting is made at session level, so the engine also works behind a
    transaction-pooling PgBouncer: per-query settings use ``SET LOCAL``.
    """

    def __init__(self, url: str, config: StoreConfig, embedded: EmbeddedPostgres | None = None) -> None:
        self.url = url
        self.config = config
        self.embedded = embedded
        self.engine: Engine = create_engine(
            url,
            pool_size=config.db_pool_size,
            max_overflow=config.db_max_overflow,
            pool_pre_ping=True,
            pool_timeout=config.db_connect_timeout_s,
            connect_args={
                "connect_timeout": max(1, int(config.db_connect_timeout_s)),
                # 0 sends none, leaving the role's default (PgBouncer rejects unknown `options`)
                **({"options": f"-c statement_timeout={config.db_statement_timeout_ms}"}
                   if config.db_statement_timeout_ms > 0 else {}),
                # server-side prepared statements are session state: off behind an old PgBouncer
                **({} if config.db_prepared_statements else {"prepare_threshold": None}),
            },
        )
        event.listen(self.engine, "connect", _register_vector)
        # a connection opened before `CREATE EXTENSION vector` (e.g. by the migration) registers later
        event.listen(self.engine, "checkout", _register_vector)

    @classmethod
    def from_config(cls, config: StoreConfig) -> Database:
        if config.database_url is not None:
            return cls(to_sqlalchemy_url(config.database_url.get_secret_value()), config)
        embedded = EmbeddedPostgres(embedded_pgdata(config))
        return cls(embedded.url, config, embedded=embedded)

    @property
    def is_embedded(self) -> bool:
        return self.embedded is not None

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A connection inside a transaction; commits on success."""
        with _unavailable_on_connection_loss(), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        with _unavailable_on_connection_loss(), self.engine.connect() as conn:
            yield conn

    def ping(self) -> bool:
        try:
            with self.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except (DatabaseUnavailable, DBAPIError):
            return False

    def dispose(self) -> None:
        self.engine.dispose()

    def close(self) -> bool:
        """Dispose the pool and let go of the embedded server (stopped when no other process
        uses it). True when an embedded server was stopped."""
        self.dispose()
        return self.embedded.release() if self.embedded is not None else False


def embedded_pgdata(config: StoreConfig) -> Path:
    """Where the embedded server keeps its data (used when ``database_url`` is unset)."""
    return Path(config.data_dir) / "pgdata"


def stop_unused_embedded(config: StoreConfig) -> bool:
    """After an interrupted start-up: stop the embedded server unless another process uses it."""
    return config.database_url is None and release_server(embedded_pgdata(config))


def _register_vector(dbapi_conn: psycopg.Connection[Any], record: ConnectionPoolEntry, *_proxy: object) -> None:
    if record.info.get("vector_registered"):
        return
    try:
        register_vector(dbapi_conn)
        record.info["vector_registered"] = True
    except psycopg.Error:  # the extension may not exist yet (before migrations)
        log.debug("pgvector type not registered on this connection")
    finally:
        dbapi_conn.rollback()  # end the look-up's implicit transaction: hand over an idle connection


@contextmanager
def _unavailable_on_connection_loss() -> Iterator[None]:
    """Driver errors the callers act on become ``rag_engine.errors`` (so the bot core needs no
    driver): a lost or refused connection, or a pool with no connection free in time, is
    ``DatabaseUnavailable``; a unique violation is ``DuplicateKey``; other errors pass through."""
    try:
        yield
    except PoolTimeout as exc:
        raise DatabaseUnavailable("database busy: no pooled connection free in time") from exc
    except IntegrityError as exc:
        diag = getattr(exc.orig, "diag", None)
        if getattr(exc.orig, "sqlstate", None) == _UNIQUE_VIOLATION:
            raise DuplicateKey(getattr(diag, "constraint_name", None)) from exc
        raise
    except DBAPIError as exc:
        if exc.connection_invalidated or (isinstance(exc, OperationalError) and _is_connection_error(exc)):
            raise DatabaseUnavailable(_public_reason(exc)) from exc
        raise


def _is_connection_error(exc: OperationalError) -> bool:
    return getattr(exc, "connection_invalidated", False) or "connect" in str(exc.orig).lower() or (
        "server closed" in str(exc.orig).lower()
        or "terminating connection" in str(exc.orig).lower()
        or "no such file" in str(exc.orig).lower()
    )


def _public_reason(exc: DBAPIError) -> str:
    # the driver message may contain the URL (and with it a password): keep it out
    return f"database unreachable ({type(exc.orig).__name__})"
