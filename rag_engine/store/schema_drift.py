"""Does a database match ``schema.metadata``? Alembic's autogenerate comparison plus what it cannot see.

Alembic compares tables, columns (type, nullability, server default), primary, unique and foreign
keys and index columns/expressions. It does not compare CHECK constraints, generated-column
expressions, an index's method, operator classes, storage parameters or partial-index predicate,
a primary key's INCLUDE columns, nor (by our choice, see ``compare_type``) the vector dimension:
``schema_drift`` checks those itself against the reflected database. ``migrations/env.py`` uses the same options, so
``alembic revision --autogenerate`` sees the schema the way the drift test does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from pgvector.sqlalchemy import Vector
from sqlalchemy import CheckConstraint, Column, Connection, Index, MetaData, Table, inspect, select, text
from sqlalchemy.engine.interfaces import ReflectedIndex
from sqlalchemy.engine.reflection import Inspector
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.sql.schema import SchemaItem
from sqlalchemy.types import TypeEngine

from rag_engine.store import schema as t

# Alembic's own bookkeeping table is not part of the application schema.
IGNORED_TABLES = frozenset({"alembic_version"})

Diff = tuple[Any, ...]


def include_object(
    obj: SchemaItem, name: str | None, type_: str, reflected: bool, compare_to: SchemaItem | None
) -> bool:
    """Everything but Alembic's version table is compared."""
    return not (type_ == "table" and name in IGNORED_TABLES)


def compare_type(
    context: MigrationContext,
    inspected_column: Column[Any],
    metadata_column: Column[Any],
    inspected_type: TypeEngine[Any],
    metadata_type: TypeEngine[Any],
) -> bool | None:
    """A vector column matches any ``vector(n)``: the dimension is chosen per database at migration time
    (``ragbot db upgrade`` from the configured embedder), so ``schema_drift`` checks it against
    ``ragbot_meta.embedding_dim`` instead. Every other type: Alembic's default comparison (None)."""
    if isinstance(metadata_type, Vector):
        return not isinstance(inspected_type, Vector)
    return None


# the options ``MigrationContext.configure(conn, opts=...)`` takes, here and in migrations/env.py
COMPARE_OPTS: Mapping[str, Any] = {
    "include_object": include_object,
    "compare_type": compare_type,
    "compare_server_default": True,
}


def schema_drift(conn: Connection, metadata: MetaData = t.metadata) -> list[Diff]:
    """Every difference between the database behind ``conn`` and ``metadata``; empty when they match.

    Alembic's diff entries come first (``("add_column", ...)`` etc.), then this module's own:
    ``("check", table, name, in_db, in_metadata)``, ``("computed", table, column, in_db, in_metadata)``,
    ``("index_option", table, index, option, in_db, in_metadata)``,
    ``("primary_key_include", table, in_db, in_metadata)`` and
    ``("vector_dim", table, column, in_db, recorded)``; a missing side is None.
    """
    diffs: list[Diff] = list(compare_metadata(MigrationContext.configure(conn, opts=dict(COMPARE_OPTS)), metadata))
    inspector = inspect(conn)
    existing = set(inspector.get_table_names())
    for table in metadata.sorted_tables:
        if table.name in existing:
            diffs += _check_constraints(inspector, table.name, table.constraints)
            diffs += _computed_columns(inspector, table.name, table.columns)
            diffs += _index_options(inspector, table.name, table.indexes)
            diffs += _primary_key_include(conn, table)
    diffs += _vector_dims(conn, inspector, metadata, existing)
    return diffs


def _check_constraints(inspector: Inspector, table: str, constraints: Any) -> list[Diff]:
    in_db = {str(ck["name"]): _normalize(ck["sqltext"]) for ck in inspector.get_check_constraints(table)}
    in_meta = {
        str(ck.name): _normalize(_sql(ck.sqltext)) for ck in constraints if isinstance(ck, CheckConstraint)
    }
    return [
        ("check", table, name, in_db.get(name), in_meta.get(name))
        for name in sorted(in_db.keys() | in_meta.keys())
        if in_db.get(name) != in_meta.get(name)
    ]


def _computed_columns(inspector: Inspector, table: str, columns: Any) -> list[Diff]:
    in_db = {c["name"]: c.get("computed") for c in inspector.get_columns(table)}
    diffs: list[Diff] = []
    for column in columns:
        reflected = in_db.get(column.name)
        db_expr = _normalize(reflected["sqltext"]) if reflected else None
        meta_expr = _normalize(_sql(column.computed.sqltext)) if column.computed is not None else None
        if column.name in in_db and db_expr != meta_expr:
            diffs.append(("computed", table, column.name, db_expr, meta_expr))
    return diffs


def _index_options(inspector: Inspector, table: str, indexes: set[Index]) -> list[Diff]:
    """Method, operator classes, storage parameters and predicate of each index both sides name."""
    reflected = {ix["name"]: ix for ix in inspector.get_indexes(table)}
    diffs: list[Diff] = []
    for index in sorted(indexes, key=lambda ix: str(ix.name)):
        found = reflected.get(str(index.name))
        if found is None:
            continue  # a missing or extra index is already in Alembic's diff
        for option, (in_db, in_meta) in _options(found, index).items():
            if in_db != in_meta:
                diffs.append(("index_option", table, index.name, option, in_db, in_meta))
    return diffs


# the non-key (INCLUDE) columns of a table's primary key index, in order
_PK_INCLUDE_SQL = text(
    "SELECT a.attname FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, pos) "
    "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
    "WHERE i.indrelid = to_regclass(:table) AND i.indisprimary AND k.pos > i.indnkeyatts ORDER BY k.pos"
)


def _primary_key_include(conn: Connection, table: Table) -> list[Diff]:
    """A covering primary key's INCLUDE columns (Alembic compares only the key columns)."""
    in_db = list(conn.execute(_PK_INCLUDE_SQL, {"table": table.name}).scalars())
    in_meta = [str(c) for c in table.primary_key.dialect_options["postgresql"]["include"] or []]
    return [] if in_db == in_meta else [("primary_key_include", table.name, in_db, in_meta)]


def _options(reflected: ReflectedIndex, index: Index) -> dict[str, tuple[Any, Any]]:
    db_opts: Mapping[str, Any] = reflected.get("dialect_options", {})
    meta_opts = index.dialect_options["postgresql"]
    db_where, meta_where = db_opts.get("postgresql_where"), meta_opts["where"]
    return {
        "using": (db_opts.get("postgresql_using", "btree"), meta_opts["using"] or "btree"),
        "ops": (db_opts.get("postgresql_ops", {}), dict(meta_opts["ops"] or {})),
        "with": (
            {k: str(v) for k, v in db_opts.get("postgresql_with", {}).items()},
            {k: str(v) for k, v in (meta_opts["with"] or {}).items()},
        ),
        "where": (
            _normalize(db_where) if db_where is not None else None,
            _normalize(_sql(meta_where)) if meta_where is not None else None,
        ),
    }


def _vector_dims(conn: Connection, inspector: Inspector, metadata: MetaData, existing: set[str]) -> list[Diff]:
    """Each vector column has the dimension this database was migrated with."""
    if t.meta.name not in existing:
        return []
    recorded = conn.execute(select(t.meta.c.value).where(t.meta.c.key == "embedding_dim")).scalar()
    diffs: list[Diff] = []
    for table in metadata.sorted_tables:
        if table.name not in existing:
            continue
        reflected = {c["name"]: c["type"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            in_db = reflected.get(column.name)
            if isinstance(column.type, Vector) and isinstance(in_db, Vector):
                dim = in_db.dim
                if recorded is None or dim != int(recorded):
                    diffs.append(("vector_dim", table.name, column.name, dim, recorded))
    return diffs


def _sql(expression: ClauseElement | str) -> str:
    return expression if isinstance(expression, str) else str(expression)


# PostgreSQL stores `x IN (a, b)` as `x = ANY (ARRAY[a, b])`, and adds casts, quotes and parentheses
_CAST = re.compile(r"::\s*(?:\"[^\"]+\"|\w+)(?:\s+(?:varying|precision))?(?:\[\])*", re.I)
_IN_LIST = re.compile(r"(\w+)\s+in\s*\(([^()]*)\)", re.I)


def _normalize(sql: str) -> str:
    """A spelling-insensitive form of a SQL expression, good for equality between two spellings.

    It drops every parenthesis, so two expressions that differ only in grouping compare equal: an
    accepted blind spot (the schema's expressions are flat), not a way to compare arbitrary SQL."""
    sql = _CAST.sub("", sql)
    sql = _IN_LIST.sub(r"\1 = any (array[\2])", sql)
    return re.sub(r"[\s()\"']", "", sql.lower())
