"""Collection rows: named document sets with visibility, training permission and the
embedder their vectors were made with. The rules about them live in ``rag_engine.collections``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import func, or_, select
from sqlalchemy.dialects.postgresql import insert

from rag_engine.store import schema as t
from rag_engine.store.database import Database

Visibility = Literal["public", "private"]


class CollectionNotFound(LookupError):
    pass


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


def _to_collection(row: Any, documents: int = 0, chunks: int = 0) -> Collection:
    return Collection(row.id, row.name, row.visibility, row.allow_training, row.embedding_model,
                      row.embedding_backend, documents, chunks)


class CollectionRepo:
    """``collections``: each method is one transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, name: str) -> Collection | None:
        with self.db.connect() as conn:
            row = conn.execute(select(t.collections).where(t.collections.c.name == name)).first()
        return _to_collection(row) if row else None

    def insert(self, name: str, *, visibility: Visibility, allow_training: bool) -> Collection | None:
        """The new collection, or None when ``name`` is taken."""
        with self.db.begin() as conn:
            row = conn.execute(
                insert(t.collections).values(name=name, visibility=visibility, allow_training=allow_training)
                .on_conflict_do_nothing(index_elements=[t.collections.c.name])
                .returning(*t.collections.c)
            ).first()
        return _to_collection(row) if row else None

    def names(self) -> list[str]:
        with self.db.connect() as conn:
            return list(conn.execute(select(t.collections.c.name).order_by(t.collections.c.name)).scalars())

    def ids(self) -> list[int]:
        """Every collection's id (the scope of operator tools that search everything)."""
        with self.db.connect() as conn:
            return list(conn.execute(select(t.collections.c.id).order_by(t.collections.c.id)).scalars())

    def set_embedder_if_unset(self, collection_id: int, model: str, backend: str) -> bool:
        """Record the embedder of a collection that has none yet; False when one was recorded first."""
        c = t.collections.c
        with self.db.begin() as conn:
            return bool(conn.execute(
                t.collections.update().where(c.id == collection_id, c.embedding_model.is_(None))
                .values(embedding_model=model, embedding_backend=backend)
            ).rowcount)

    def list_all(self) -> list[Collection]:
        """Every collection by name, with its document and chunk counts."""
        docs = (
            select(t.documents.c.collection_id, func.count().label("n"))
            .group_by(t.documents.c.collection_id)
            .subquery()
        )
        chs = select(t.chunks.c.collection_id, func.count().label("n")).group_by(t.chunks.c.collection_id).subquery()
        with self.db.connect() as conn:
            rows = conn.execute(
                select(t.collections, func.coalesce(docs.c.n, 0).label("ndocs"),
                       func.coalesce(chs.c.n, 0).label("nchunks"))
                .outerjoin(docs, docs.c.collection_id == t.collections.c.id)
                .outerjoin(chs, chs.c.collection_id == t.collections.c.id)
                .order_by(t.collections.c.name)
            ).all()
        return [_to_collection(r, r.ndocs, r.nchunks) for r in rows]

    def resolve(self, names_or_ids: Sequence[str | int]) -> list[Collection]:
        """Collections by name or id, in the order given, in one query; an unknown one raises
        ``CollectionNotFound``."""
        ids = [item for item in names_or_ids if isinstance(item, int)]
        names = [item for item in names_or_ids if not isinstance(item, int)]
        c = t.collections.c
        with self.db.connect() as conn:
            rows = conn.execute(select(t.collections).where(or_(c.id.in_(ids), c.name.in_(names)))).all()
        by_id = {row.id: _to_collection(row) for row in rows}
        by_name = {found.name: found for found in by_id.values()}
        resolved: list[Collection] = []
        for item in names_or_ids:
            hit = by_id.get(item) if isinstance(item, int) else by_name.get(item)
            if hit is None:
                raise CollectionNotFound(f"no collection named {item!r}")
            resolved.append(hit)
        return resolved

    def update(self, name: str, *, visibility: Visibility | None = None,
               allow_training: bool | None = None) -> Collection:
        values: dict[str, object] = {}
        if visibility is not None:
            values["visibility"] = visibility
        if allow_training is not None:
            values["allow_training"] = allow_training
        with self.db.begin() as conn:
            if values:
                conn.execute(t.collections.update().where(t.collections.c.name == name).values(**values))
            row = conn.execute(select(t.collections).where(t.collections.c.name == name)).first()
        if row is None:
            raise CollectionNotFound(f"no collection named {name!r}")
        return _to_collection(row)
