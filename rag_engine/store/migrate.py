"""Running and checking Alembic migrations from code."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

import migrations
from rag_engine.store.database import Database, EmbeddingDimensionMismatch, SchemaNotReady

MIGRATIONS_DIR = Path(migrations.__file__).parent


def alembic_config(db: Database, embedding_dim: int) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["url"] = db.url
    cfg.attributes["embedding_dim"] = embedding_dim
    return cfg


def head_revision() -> str:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    if head is None:  # the package always ships its migrations; none found means a broken install
        raise RuntimeError(f"no Alembic revisions in {MIGRATIONS_DIR}")
    return head


def current_revision(db: Database) -> str | None:
    with db.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(db: Database, embedding_dim: int, revision: str = "head") -> None:
    with db.begin() as conn:
        cfg = alembic_config(db, embedding_dim)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def downgrade(db: Database, revision: str = "base") -> None:
    with db.begin() as conn:
        cfg = alembic_config(db, 0)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def database_embedding_dim(db: Database) -> int | None:
    with db.connect() as conn:
        row = conn.execute(text("SELECT value FROM ragbot_meta WHERE key = 'embedding_dim'")).first()
    return int(row[0]) if row else None


def ensure_schema(db: Database, embedding_dim: int, *, auto_upgrade: bool | None = None) -> None:
    """Bring the schema to head (embedded default) or refuse (external, un-migrated).

    Then check that the configured embedder fits the database's vector column.
    """
    auto = db.is_embedded if auto_upgrade is None else auto_upgrade
    check_pgvector(db)
    current, head = current_revision(db), head_revision()
    if current != head:
        if not auto:
            raise SchemaNotReady(
                f"the database schema is at {current or 'nothing'}, the code needs {head}: "
                "run `ragbot db upgrade` first"
            )
        upgrade(db, embedding_dim)
    stored = database_embedding_dim(db)
    if stored is not None and stored != embedding_dim:
        raise EmbeddingDimensionMismatch(
            f"the configured embedding model makes {embedding_dim}-dimensional vectors, but this database "
            f"stores {stored}-dimensional ones. Use the model the database was built with, or point "
            "RAGBOT_DATABASE_URL / RAGBOT_DATA_DIR at a new database and re-ingest."
        )


class PgvectorMissing(RuntimeError):
    """The server has no pgvector extension available."""


def check_pgvector(db: Database) -> None:
    with db.connect() as conn:
        available = conn.execute(text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")).first()
    if available is None:
        raise PgvectorMissing(
            "this PostgreSQL server has no pgvector extension: install pgvector "
            "(e.g. the pgvector/pgvector image) or unset RAGBOT_DATABASE_URL to use the embedded default"
        )
