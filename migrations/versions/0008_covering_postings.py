"""Covering postings: BM25's exact rescoring reads the postings key index only.

The capped BM25 query (``rag_engine.store.chunks.BM25_SQL``) rescores its 1,000 best candidates
exactly: per candidate and query term it probes ``chunk_terms`` by ``(chunk_id, term)`` for the
term frequencies and reads the chunk's ``token_count`` from ``chunks``. At 1M chunks, with the
pages not in memory, that was about three random page reads per candidate (key leaf, posting heap
page, chunk heap page): 4,600 reads and 110 ms of a first-touch query, against 12 ms for the capped
posting scans themselves. Here the key carries what the rescoring reads:

- ``chunk_terms.doc_len``: the chunk's ``token_count``, written by the insert trigger (chunks are
  replaced, never edited, so it cannot go stale), so the rescoring no longer joins ``chunks``;
- the primary key becomes ``(chunk_id, term) INCLUDE (tf_body, tf_context, doc_len)``, so each probe
  is an index-only scan, and a candidate's probes (all its terms) fall on one leaf page.

Scores are unchanged; the key index grows by 8 bytes a posting. The upgrade rewrites every posting
(about 80 per chunk) and rebuilds the key: minutes per million chunks, once.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

INSERT_TRIGGER = """
CREATE OR REPLACE FUNCTION chunks_lexical_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO lexical_collections AS lc (collection_id, chunk_count, token_total)
    SELECT collection_id, count(*), sum(token_count) FROM new_chunks GROUP BY collection_id ORDER BY collection_id
    ON CONFLICT (collection_id) DO UPDATE
        SET chunk_count = lc.chunk_count + EXCLUDED.chunk_count, token_total = lc.token_total + EXCLUDED.token_total;
    WITH added AS (
        INSERT INTO chunk_terms (chunk_id, collection_id, term, tf_body, tf_context, impact, doc_len)
        SELECT n.id, n.collection_id, p.term, p.tf_body, p.tf_context, p.impact, n.token_count
        FROM new_chunks AS n CROSS JOIN LATERAL chunk_postings(n.tsv, n.token_count) AS p
        RETURNING collection_id, term
    )
    INSERT INTO lexical_terms AS lt (collection_id, term, df)
    SELECT collection_id, term, count(*) FROM added GROUP BY collection_id, term ORDER BY collection_id, term
    ON CONFLICT (collection_id, term) DO UPDATE SET df = lt.df + EXCLUDED.df;
    RETURN NULL;
END
$$
"""

# migration 0006's insert trigger function, restored by the downgrade
OLD_INSERT_TRIGGER = INSERT_TRIGGER.replace(", impact, doc_len)", ", impact)").replace(
    ", p.impact, n.token_count", ", p.impact")


def upgrade() -> None:
    op.execute("ALTER TABLE chunk_terms ADD COLUMN doc_len integer")
    op.execute("UPDATE chunk_terms AS ct SET doc_len = c.token_count FROM chunks AS c WHERE c.id = ct.chunk_id")
    op.execute("ALTER TABLE chunk_terms ALTER COLUMN doc_len SET NOT NULL")
    op.execute("ALTER TABLE chunk_terms DROP CONSTRAINT chunk_terms_pkey")
    op.execute("ALTER TABLE chunk_terms ADD CONSTRAINT chunk_terms_pkey "
               "PRIMARY KEY (chunk_id, term) INCLUDE (tf_body, tf_context, doc_len)")
    op.execute(INSERT_TRIGGER)
    op.execute("ANALYZE chunk_terms")


def downgrade() -> None:
    op.execute(OLD_INSERT_TRIGGER)
    op.execute("ALTER TABLE chunk_terms DROP CONSTRAINT chunk_terms_pkey")
    op.execute("ALTER TABLE chunk_terms ADD CONSTRAINT chunk_terms_pkey PRIMARY KEY (chunk_id, term)")
    op.execute("ALTER TABLE chunk_terms DROP COLUMN doc_len")
