"""Document writes: one document and its chunks replaced whole, in one transaction.

Ingestion decides what to write (parsing, chunking, embedding, content hashes); this
module only writes it, so that a failure never leaves half a document.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select

from rag_engine.store import schema as t
from rag_engine.store.database import Database


@dataclass(frozen=True, slots=True)
class DocumentOrigin:
    """Where a synced document came from: its source, its id there, its web address (or None)."""

    source_id: int
    external_id: str
    url: str | None


class DocumentRepo:
    """``documents`` and their ``chunks``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def content_hashes(self, collection_id: int) -> dict[str, str]:
        """``source_uri -> content_hash`` of the collection's documents (unchanged ones are skipped)."""
        d = t.documents.c
        with self.db.connect() as conn:
            rows = conn.execute(select(d.source_uri, d.content_hash).where(d.collection_id == collection_id)).all()
        return {row.source_uri: row.content_hash for row in rows}

    def replace(self, collection_id: int, source_uri: str, *, title: str, content_hash: str,
                metadata: Mapping[str, Any], chunks: Sequence[Mapping[str, Any]],
                origin: DocumentOrigin | None = None) -> int:
        """Insert or rewrite the document ``source_uri`` with exactly ``chunks``; returns its id.

        Each chunk is a row of ``chunks`` without ``document_id``. The document row is locked
        first, so two ingestions of the same file serialize instead of mixing chunks.
        ``origin`` (a synced document) fills ``source_id``, ``external_id`` and ``url``.
        """
        d = t.documents.c
        values: dict[str, Any] = {"title": title, "content_hash": content_hash, "metadata": dict(metadata)}
        if origin is not None:
            values.update(source_id=origin.source_id, external_id=origin.external_id, url=origin.url)
        with self.db.begin() as conn:
            if origin is not None:  # a synced item that moved collection (a page newly restricted) leaves the old
                conn.execute(delete(t.documents).where(d.source_id == origin.source_id,
                                                       d.external_id == origin.external_id,
                                                       d.collection_id != collection_id))
            existing = conn.execute(
                select(d.id).where(d.collection_id == collection_id, d.source_uri == source_uri).with_for_update()
            ).scalar()
            if existing is None:
                doc_id: int = conn.execute(
                    t.documents.insert().values(collection_id=collection_id, source_uri=source_uri, **values)
                    .returning(d.id)
                ).scalar_one()
            else:
                doc_id = existing
                conn.execute(delete(t.chunks).where(t.chunks.c.document_id == doc_id))
                conn.execute(t.documents.update().where(d.id == doc_id).values(updated_at=func.now(), **values))
            if chunks:
                conn.execute(t.chunks.insert(), [{**row, "document_id": doc_id} for row in chunks])
        return doc_id

    def prune(self, collection_id: int, should_delete: Callable[[str], bool]) -> int:
        """Delete the collection's documents whose ``source_uri`` ``should_delete``; returns how many."""
        d = t.documents.c
        with self.db.begin() as conn:
            docs = conn.execute(select(d.id, d.source_uri).where(d.collection_id == collection_id)).all()
            doomed = [row.id for row in docs if should_delete(row.source_uri)]
            if doomed:
                conn.execute(delete(t.documents).where(d.id.in_(doomed)))
        return len(doomed)
