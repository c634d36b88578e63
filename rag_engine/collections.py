"""Collections: named document sets with visibility, training permission and the
embedder their vectors were made with."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Connection, func, select

from rag_engine.store import schema as t

Visibility = Literal["public", "private"]
MAX_NAMES_SHOWN = 50  # collections named in a "no such collection" message


class CollectionNotFound(LookupError):
    pass


class EmbedderMismatch(RuntimeError):
    """A collection's vectors were made by another model or backend than the configured one."""


@dataclass(frozen=True, slots=True)
class Collection:
    id: int
    name: str
    visibility: Visibility
    allow_training: bool
    embedding_model: str | None
    embedding_backend: str | None
    documents: int = 0
    chunks: int = 0


def _row_to_collection(row, documents: int = 0, chunks: int = 0) -> Collection:
    return Collection(row.id, row.name, row.visibility, row.allow_training, row.embedding_model,
                      row.embedding_backend, documents, chunks)


def get(conn: Connection, name: str) -> Collection | None:
    row = conn.execute(select(t.collections).where(t.collections.c.name == name)).first()
    return _row_to_collection(row) if row else None


def create(
    conn: Connection, name: str, *, visibility: Visibility = "public", allow_training: bool | None = None
) -> Collection:
    """Create a collection (training defaults: on for public, off for private)."""
    name = name.strip()
    if not name or len(name) > 100:
        raise ValueError("collection name must be 1-100 characters")
    if visibility not in ("public", "private"):
        raise ValueError("visibility must be public or private")
    if get(conn, name) is not None:
        raise ValueError(f"collection {name!r} already exists")
    allow = (visibility == "public") if allow_training is None else allow_training
    row = conn.execute(
        t.collections.insert()
        .values(name=name, visibility=visibility, allow_training=allow)
        .returning(*t.collections.c)
    ).one()
    return _row_to_collection(row)


def get_or_create(conn: Connection, name: str, *, visibility: Visibility = "public") -> Collection:
    return get(conn, name) or create(conn, name, visibility=visibility)


def require(conn: Connection, name: str) -> Collection:
    """The collection ``name``; an unknown name raises ``CollectionNotFound`` naming the existing ones."""
    found = get(conn, name)
    if found is None:
        names = conn.execute(select(t.collections.c.name).order_by(t.collections.c.name)).scalars().all()
        shown = ", ".join(names[:MAX_NAMES_SHOWN]) + (f" and {len(names) - MAX_NAMES_SHOWN} more"
                                                       if len(names) > MAX_NAMES_SHOWN else "")
        raise CollectionNotFound(f"there is no collection named {name!r}; existing collections: {shown or 'none'}")
    return found


def bind_embedder(conn: Connection, collection: Collection, model: str, backend: str) -> None:
    """Record the embedder on first use; refuse a different one later."""
    if collection.embedding_model is None:
        conn.execute(
            t.collections.update()
            .where(t.collections.c.id == collection.id)
            .values(embedding_model=model, embedding_backend=backend)
        )
        return
    check_embedder(collection, model, backend)


def check_embedder(collection: Collection, model: str, backend: str) -> None:
    if collection.embedding_model is None:
        return
    if (collection.embedding_model, collection.embedding_backend) != (model, backend):
        raise EmbedderMismatch(
            f"collection {collection.name!r} was embedded with {collection.embedding_model} "
            f"({collection.embedding_backend}), but the configured embedder is {model} ({backend}); "
            "queries and documents must use the same one: change RAGBOT_EMBEDDING_MODEL / "
            "RAGBOT_EMBEDDING_BACKEND back, or re-ingest into a new collection"
        )


def list_all(conn: Connection) -> list[Collection]:
    docs = (
        select(t.documents.c.collection_id, func.count().label("n"))
        .group_by(t.documents.c.collection_id)
        .subquery()
    )
    chs = select(t.chunks.c.collection_id, func.count().label("n")).group_by(t.chunks.c.collection_id).subquery()
    rows = conn.execute(
        select(t.collections, func.coalesce(docs.c.n, 0).label("ndocs"), func.coalesce(chs.c.n, 0).label("nchunks"))
        .outerjoin(docs, docs.c.collection_id == t.collections.c.id)
        .outerjoin(chs, chs.c.collection_id == t.collections.c.id)
        .order_by(t.collections.c.name)
    ).all()
    return [_row_to_collection(r, r.ndocs, r.nchunks) for r in rows]


def resolve(conn: Connection, names_or_ids: Sequence[str | int]) -> list[Collection]:
    """Collections by name or id; unknown ones raise ``CollectionNotFound``."""
    found: list[Collection] = []
    for item in names_or_ids:
        col = t.collections.c.id if isinstance(item, int) else t.collections.c.name
        row = conn.execute(select(t.collections).where(col == item)).first()
        if row is None:
            raise CollectionNotFound(f"no collection named {item!r}")
        found.append(_row_to_collection(row))
    return found


def update(conn: Connection, name: str, *, visibility: Visibility | None = None,
           allow_training: bool | None = None) -> Collection:
    values: dict[str, object] = {}
    if visibility is not None:
        values["visibility"] = visibility
    if allow_training is not None:
        values["allow_training"] = allow_training
    if values:
        conn.execute(t.collections.update().where(t.collections.c.name == name).values(**values))
    result = get(conn, name)
    if result is None:
        raise CollectionNotFound(f"no collection named {name!r}")
    return result
