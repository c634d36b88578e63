"""What the training set is built from: rated interactions, approved corrections, curated examples.

Which rows become examples (and why others do not) is decided in
``rag_engine.training.dataset``; these queries only gather the candidates and
the collections' ``allow_training`` flags. The curated import writes here too, and the bootstrap
(``rag_engine.training.bootstrap``) reads the chunks of training-allowed collections here.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, select, true
from sqlalchemy.dialects.postgresql import insert

from rag_engine.store import schema as t
from rag_engine.store.database import Database
from rag_engine.store.rows import AnyRow


class TrainingExampleRepo:
    """Candidate rows for the training set over one ``Database``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def collection_training_flags(self) -> dict[int, bool]:
        """Every collection's id and whether it allows training."""
        c = t.collections.c
        with self._db.connect() as conn:
            return {row.id: row.allow_training for row in conn.execute(select(c.id, c.allow_training))}

    def collection_ids(self) -> dict[str, int]:
        """Collection name -> id, for curated lines that name their collection."""
        c = t.collections.c
        with self._db.connect() as conn:
            return {row.name: row.id for row in conn.execute(select(c.name, c.id))}

    def rated_interactions(self) -> tuple[Sequence[AnyRow], list[tuple[str, int]]]:
        """Interactions with a vote or an approved correction, and the count of unapproved corrections.

        Each row is the interaction's columns plus ``score`` (sum of the votes on the logged answer, or None)
        and ``stale_votes`` (votes last cast before an answer-first reply's refinement replaced the text
        they were given on: they say nothing of the logged answer), and of its
        approved corrections the latest admin one, else the latest: ``correction`` (text or None),
        ``is_admin`` and ``corrected_at``. The counts are (status, n) for statuses other than approved.
        """
        i, f, c = t.interactions.c, t.feedback.c, t.corrections.c
        voted = t.interactions.alias("voted")
        on_shown_text = voted.c.refined_at.is_(None) | (f.updated_at >= voted.c.refined_at)
        votes = (
            select(f.interaction_id, func.sum(f.vote).filter(on_shown_text).label("score"),
                   func.count().filter(~on_shown_text).label("stale_votes"))
            .join_from(t.feedback, voted, voted.c.id == f.interaction_id)
            .group_by(f.interaction_id)
            .subquery()
        )
        latest = (
            select(c.text, c.is_admin, c.created_at)
            .where(c.interaction_id == i.id, c.status == "approved")
            .order_by(c.is_admin.desc(), c.created_at.desc(), c.id.desc())
            .limit(1)
            .lateral()
        )
        query = (
            select(t.interactions, votes.c.score, votes.c.stale_votes, latest.c.text.label("correction"),
                   latest.c.is_admin, latest.c.created_at.label("corrected_at"))
            .outerjoin(votes, votes.c.interaction_id == i.id)
            .outerjoin(latest, true())
            .where((votes.c.interaction_id.is_not(None)) | (latest.c.text.is_not(None)))
            .order_by(i.id)
        )
        unapproved = select(c.status, func.count()).where(c.status != "approved").group_by(c.status)
        with self._db.connect() as conn:
            rows = conn.execute(query).all()
            counts = [(str(status), int(n)) for status, n in conn.execute(unapproved).all()]
        return rows, counts

    def trainable_chunks(self, collection_ids: Sequence[int] | None = None) -> Sequence[AnyRow]:
        """Chunks of collections that allow training (of ``collection_ids`` only, when given), for
        bootstrapping pairs from the documents; a collection that does not allow training is never read.

        Rows: ``chunk_id, document_id, collection_id, title, source_uri, ordinal, heading_path, text``,
        ordered by collection, document source and chunk position (deterministic).
        """
        c, d, col = t.chunks.c, t.documents.c, t.collections.c
        query = (
            select(c.id.label("chunk_id"), c.document_id, c.collection_id, d.title, d.source_uri, c.ordinal,
                   c.heading_path, c.text)
            .join(t.documents, d.id == c.document_id)
            .join(t.collections, col.id == c.collection_id)
            .where(col.allow_training.is_(True))
            .order_by(c.collection_id, d.source_uri, c.ordinal, c.id)
        )
        if collection_ids is not None:
            query = query.where(c.collection_id.in_(list(collection_ids)))
        with self._db.connect() as conn:
            return conn.execute(query).all()

    def curated(self) -> Sequence[AnyRow]:
        """Every curated example, in import order."""
        with self._db.connect() as conn:
            return conn.execute(select(t.curated_examples).order_by(t.curated_examples.c.id)).all()

    def add_curated(self, rows: Sequence[dict[str, object]]) -> tuple[int, int]:
        """Insert curated examples in one transaction; (added, duplicates by ``content_hash``)."""
        added = duplicates = 0
        with self._db.begin() as conn:
            for row in rows:
                inserted = conn.execute(
                    insert(t.curated_examples).values(**row)
                    .on_conflict_do_nothing(index_elements=["content_hash"])
                    .returning(t.curated_examples.c.id)
                ).first()
                if inserted is None:
                    duplicates += 1
                else:
                    added += 1
        return added, duplicates

    def remove_curated(self, source: str, *, keep_hash: str | None = None) -> int:
        """Delete the curated examples from ``source`` (an accepted chat answer withdrawn or edited), but the
        one whose ``content_hash`` is ``keep_hash``; how many."""
        e = t.curated_examples.c
        query = delete(t.curated_examples).where(e.source == source)
        if keep_hash is not None:
            query = query.where(e.content_hash != keep_hash)
        with self._db.begin() as conn:
            return int(conn.execute(query).rowcount or 0)
