"""Lexical postings and BM25 term statistics, kept by triggers, so BM25 stops touching every posting.

chunk_terms: one row per (chunk, lexeme of its ``tsv``): how often the lexeme occurs in the
chunk's body (``tf_body``) and in its title/heading context (``tf_context``, weight A), and an
``impact``: the lexeme's BM25 term-frequency factor in that chunk under reference parameters
(k1 0.9, b 0.4, context counted twice, average length 100 tokens). The index
``(collection_id, term, impact, chunk_id)`` hands out a term's postings best first, so a query
reads only the top N of a common term instead of all of them (``rag_engine.store.chunks``). The
impact only orders candidates; their scores are recomputed exactly from ``tf_body``/``tf_context``
with the configured k1, b and context weight.

lexical_terms: document frequency of each lexeme per collection; lexical_collections: chunk
count and token total per collection (BM25's N and average length). Both, and chunk_terms, are
maintained by statement-level triggers on ``chunks`` (insert, delete, truncate) from transition
tables. Every chunk write of a collection first locks that collection's statistics row, so
concurrent ingestions of one collection serialize there instead of deadlocking on term rows.
Chunks are replaced, never edited in place: an UPDATE of ``text``, ``context``, ``collection_id``
or ``token_count`` is refused (re-embedding, an UPDATE of ``embedding``, is allowed).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# a chunk's postings from its tsvector; used by the insert trigger and by the backfill below
POSTINGS_FUNCTION = """
CREATE FUNCTION chunk_postings(tsv tsvector, token_count integer)
RETURNS TABLE (term text, tf_body smallint, tf_context smallint, impact real)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT u.lexeme, p.body::smallint, p.ctx::smallint,
           ((p.body + 2 * p.ctx) / (p.body + 2 * p.ctx + 0.9 * (0.6 + 0.4 * token_count / 100.0)))::real
    FROM unnest(tsv) AS u
    CROSS JOIN LATERAL (
        SELECT count(*) FILTER (WHERE w <> 'A') AS body, count(*) FILTER (WHERE w = 'A') AS ctx
        FROM unnest(u.weights) AS w
    ) AS p
$$
"""

INSERT_TRIGGER = """
CREATE FUNCTION chunks_lexical_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO lexical_collections AS lc (collection_id, chunk_count, token_total)
    SELECT collection_id, count(*), sum(token_count) FROM new_chunks GROUP BY collection_id ORDER BY collection_id
    ON CONFLICT (collection_id) DO UPDATE
        SET chunk_count = lc.chunk_count + EXCLUDED.chunk_count, token_total = lc.token_total + EXCLUDED.token_total;
    WITH added AS (
        INSERT INTO chunk_terms (chunk_id, collection_id, term, tf_body, tf_context, impact)
        SELECT n.id, n.collection_id, p.term, p.tf_body, p.tf_context, p.impact
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

DELETE_TRIGGER = """
CREATE FUNCTION chunks_lexical_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE lexical_collections AS lc
    SET chunk_count = lc.chunk_count - o.n, token_total = lc.token_total - o.tokens
    FROM (SELECT collection_id, count(*) AS n, sum(token_count) AS tokens
          FROM old_chunks GROUP BY collection_id) AS o
    WHERE lc.collection_id = o.collection_id;
    WITH gone AS (
        DELETE FROM chunk_terms AS ct USING old_chunks AS o WHERE ct.chunk_id = o.id
        RETURNING ct.collection_id, ct.term
    )
    UPDATE lexical_terms AS lt SET df = lt.df - g.n
    FROM (SELECT collection_id, term, count(*) AS n FROM gone GROUP BY collection_id, term) AS g
    WHERE lt.collection_id = g.collection_id AND lt.term = g.term;
    DELETE FROM lexical_terms AS lt
    USING (SELECT DISTINCT o.collection_id, u.lexeme FROM old_chunks AS o CROSS JOIN LATERAL unnest(o.tsv) AS u) AS g
    WHERE lt.collection_id = g.collection_id AND lt.term = g.lexeme AND lt.df <= 0;
    DELETE FROM lexical_collections AS lc
    USING (SELECT DISTINCT collection_id FROM old_chunks) AS o
    WHERE lc.collection_id = o.collection_id AND lc.chunk_count <= 0;
    RETURN NULL;
END
$$
"""

TRUNCATE_TRIGGER = """
CREATE FUNCTION chunks_lexical_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE chunk_terms, lexical_terms, lexical_collections;
    RETURN NULL;
END
$$
"""

REFUSE_EDIT = """
CREATE FUNCTION chunks_refuse_text_edit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'chunks are replaced, not edited: delete the chunk and insert the new one'
        USING HINT = 'the lexical postings (chunk_terms) follow inserts and deletes only';
END
$$
"""


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE chunk_terms (
            chunk_id bigint NOT NULL,
            collection_id integer NOT NULL,
            term text NOT NULL,
            tf_body smallint NOT NULL,
            tf_context smallint NOT NULL,
            impact real NOT NULL,
            PRIMARY KEY (chunk_id, term)
        )
        """
    )
    op.execute("CREATE TABLE lexical_terms (collection_id integer NOT NULL, term text NOT NULL, "
               "df integer NOT NULL, PRIMARY KEY (collection_id, term))")
    op.execute("CREATE TABLE lexical_collections (collection_id integer PRIMARY KEY, "
               "chunk_count bigint NOT NULL, token_total bigint NOT NULL)")
    for sql in (POSTINGS_FUNCTION, INSERT_TRIGGER, DELETE_TRIGGER, TRUNCATE_TRIGGER, REFUSE_EDIT):
        op.execute(sql)
    # the existing chunks, then their statistics (before the triggers, which would count them twice)
    op.execute(
        """
        INSERT INTO chunk_terms (chunk_id, collection_id, term, tf_body, tf_context, impact)
        SELECT c.id, c.collection_id, p.term, p.tf_body, p.tf_context, p.impact
        FROM chunks AS c CROSS JOIN LATERAL chunk_postings(c.tsv, c.token_count) AS p
        """
    )
    op.execute("INSERT INTO lexical_terms (collection_id, term, df) "
               "SELECT collection_id, term, count(*) FROM chunk_terms GROUP BY collection_id, term")
    op.execute("INSERT INTO lexical_collections (collection_id, chunk_count, token_total) "
               "SELECT collection_id, count(*), sum(token_count) FROM chunks GROUP BY collection_id")
    op.execute("CREATE INDEX chunk_terms_impact ON chunk_terms (collection_id, term, impact, chunk_id)")
    op.execute("ANALYZE chunk_terms, lexical_terms, lexical_collections")  # plans for the first queries, too
    op.execute("CREATE TRIGGER chunks_lexical_insert AFTER INSERT ON chunks REFERENCING NEW TABLE AS new_chunks "
               "FOR EACH STATEMENT EXECUTE FUNCTION chunks_lexical_insert()")
    op.execute("CREATE TRIGGER chunks_lexical_delete AFTER DELETE ON chunks REFERENCING OLD TABLE AS old_chunks "
               "FOR EACH STATEMENT EXECUTE FUNCTION chunks_lexical_delete()")
    op.execute("CREATE TRIGGER chunks_lexical_truncate AFTER TRUNCATE ON chunks "
               "FOR EACH STATEMENT EXECUTE FUNCTION chunks_lexical_truncate()")
    op.execute("CREATE TRIGGER chunks_refuse_text_edit BEFORE UPDATE OF text, context, collection_id, token_count "
               "ON chunks FOR EACH ROW WHEN (OLD.text IS DISTINCT FROM NEW.text OR OLD.context IS DISTINCT FROM "
               "NEW.context OR OLD.collection_id IS DISTINCT FROM NEW.collection_id OR OLD.token_count IS DISTINCT "
               "FROM NEW.token_count) EXECUTE FUNCTION chunks_refuse_text_edit()")


def downgrade() -> None:
    for trigger in ("chunks_refuse_text_edit", "chunks_lexical_truncate", "chunks_lexical_delete",
                    "chunks_lexical_insert"):
        op.execute(f"DROP TRIGGER {trigger} ON chunks")
    for function in ("chunks_refuse_text_edit()", "chunks_lexical_truncate()", "chunks_lexical_delete()",
                     "chunks_lexical_insert()", "chunk_postings(tsvector, integer)"):
        op.execute(f"DROP FUNCTION {function}")
    op.execute("DROP TABLE chunk_terms, lexical_terms, lexical_collections")
