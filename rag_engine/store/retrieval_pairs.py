"""What retrieval training pairs are resolved against: chunks by id, a document's chunks, stored vectors.

Which feedback becomes a pair is decided in ``rag_engine.training.retrieval_pairs``
(the candidates themselves come from ``TrainingExampleRepo``, the generator's
training set queries); these queries only look chunks up.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlalchemy import or_, select

from rag_engine.store import schema as t
from rag_engine.store.database import Database
from rag_engine.store.rows import AnyRow


class RetrievalPairRepo:
    """Chunk look-ups for retrieval training over one ``Database``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def chunks(self, chunk_ids: Sequence[int]) -> Sequence[AnyRow]:
        """The chunks still in the index among ``chunk_ids``: ``chunk_id, document_id, collection_id,
        source_uri, heading_path, text``."""
        if not chunk_ids:
            return []
        c, d = t.chunks.c, t.documents.c
        query = (select(c.id.label("chunk_id"), c.document_id, c.collection_id, d.source_uri, c.heading_path, c.text)
                 .join(t.documents, d.id == c.document_id).where(c.id.in_(list(chunk_ids))).order_by(c.id))
        with self._db.connect() as conn:
            return conn.execute(query).all()

    def document_chunks(self, source: str, collection_ids: Sequence[int]) -> Sequence[AnyRow]:
        """Chunks of the documents of ``collection_ids`` whose ``source_uri`` is ``source`` or ends with
        ``/source`` (a curated line names its page relative to the ingested folder), in document order."""
        if not collection_ids or not source.strip():
            return []
        c, d = t.chunks.c, t.documents.c
        suffix = "/" + source.strip().lstrip("/")
        query = (select(c.id.label("chunk_id"), c.document_id, c.collection_id, d.source_uri, c.heading_path, c.text)
                 .join(t.documents, d.id == c.document_id)
                 .where(c.collection_id.in_(list(collection_ids)),
                        or_(d.source_uri == source.strip(), d.source_uri.endswith(suffix, autoescape=True)))
                 .order_by(d.source_uri, c.ordinal))
        with self._db.connect() as conn:
            return conn.execute(query).all()

    def embeddings(self, chunk_ids: Sequence[int]) -> dict[int, np.ndarray]:
        """Stored vectors of ``chunk_ids`` (chunks without one are left out)."""
        if not chunk_ids:
            return {}
        c = t.chunks.c
        with self._db.connect() as conn:
            rows = conn.execute(select(c.id, c.embedding).where(c.id.in_(list(chunk_ids)), c.embedding.is_not(None)))
            return {int(r.id): np.asarray(r.embedding, dtype=np.float32) for r in rows}
