"""Chunk searches: pgvector HNSW (cosine), Postgres full text and BM25 over lexical postings, and details.

Collection filters are applied inside the SQL of every search, never after. Per-query
settings use ``set_config(..., is_local => true)`` (``SET LOCAL``), so nothing depends on
session state (safe behind a transaction-pooling PgBouncer). One search runs in one
transaction (``ChunkRepo.searching``): the settings it makes and the rows it reads belong
to that question only.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Connection, bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import BigInteger, Integer

from rag_engine.store import schema as t
from rag_engine.store.database import Database
from rag_engine.store.query_adapters import QueryAdapterTx

_FILTER = "AND c.collection_id = ANY(:cids)"

VECTOR_SQL = """
WITH hits AS MATERIALIZED (
    SELECT c.id, c.embedding <=> :qv AS distance
    FROM chunks c
    WHERE c.embedding IS NOT NULL {filter}
    ORDER BY c.embedding <=> :qv
    LIMIT :depth
)
SELECT id, 1 - distance AS score FROM hits ORDER BY distance
"""

# OR over the question's lexemes (stop words removed, stemmed by the 'english'
# config): a natural-language question still matches documents that lack some
# of its words, as BM25 would.
LEXICAL_SQL = """
WITH q AS (
    SELECT to_tsquery('simple', string_agg(quote_literal(lex), ' | ')) AS query
    FROM unnest(tsvector_to_array(to_tsvector('english', :q))) AS lex
    WHERE strpos(lex, E'\\\\') = 0
)
SELECT c.id, ts_rank_cd(c.tsv, q.query, :norm) AS score
FROM chunks c, q
WHERE c.tsv @@ q.query {filter}
ORDER BY score DESC, c.id
LIMIT :depth
"""

# BM25 in SQL over the same OR query, reading every posting of every query term (``term_cap`` 0;
# the reference the capped query below is tested against, and slow on common words). Per query
# term, the GIN index finds the chunks holding it; its frequency there comes from ts_rank_cd on that one term,
# which for a single-term query is the sum of its occurrences' weights (an
# occurrence in the title/heading path, weight A, counts ``context_weight`` times
# a body one; ts_rank_cd weights must be <= 1, hence the scaling). Document
# frequencies are counted from the same rows, lengths come from the chunk's
# token count, and idf is over the searched collections.
BM25_EXHAUSTIVE_SQL = """
WITH terms AS (
    SELECT lex, to_tsquery('simple', quote_literal(lex)) AS query
    FROM (SELECT DISTINCT lex FROM unnest(tsvector_to_array(to_tsvector('english', :q))) AS lex
          WHERE strpos(lex, E'\\\\') = 0) AS l
),
stats AS (
    SELECT count(*)::float8 AS n, greatest(avg(c.token_count), 1)::float8 AS avgdl
    FROM chunks c WHERE true {filter}
),
tf AS MATERIALIZED (
    SELECT c.id, c.token_count, t.lex,
           ts_rank_cd(ARRAY[:body_w, :body_w, :body_w, :context_w]::float4[], c.tsv, t.query, 0) * :tf_scale AS tf
    FROM terms t JOIN chunks c ON c.tsv @@ t.query {filter}
),
df AS (SELECT lex, count(*)::float8 AS n FROM tf GROUP BY lex)
SELECT tf.id,
       sum(ln(1 + (stats.n - df.n + 0.5) / (df.n + 0.5))
           * tf.tf * (:k1 + 1) / (tf.tf + :k1 * (1 - :b + :b * tf.token_count / stats.avgdl))) AS score
FROM tf JOIN df USING (lex) CROSS JOIN stats
GROUP BY tf.id
ORDER BY score DESC, tf.id
LIMIT :depth
"""

# BM25 over the lexical postings (migration 0006), without reading every posting of a common term:
# per query term and searched collection only its ``cap`` best postings by impact (the term's BM25
# tf factor under reference parameters, precomputed; the index hands them out best first). Their
# impact-weighted idf sum picks ``rescore`` candidates, which are then scored exactly: tf from the
# stored counts (a context occurrence counts ``context_w`` times), N, average length and df from
# the statistics the triggers keep, idf over the searched collections. A term rarer than ``cap``
# is read whole, so only the common terms' tails are skipped (their idf is small by definition).
# The rescoring reads only the postings key, which carries tf and the chunk's length (migration 0008).
BM25_SQL = """
WITH terms AS (
    SELECT DISTINCT lex AS term FROM unnest(tsvector_to_array(to_tsvector('english', :q))) AS lex
    WHERE strpos(lex, E'\\\\') = 0
),
stats AS (
    SELECT coalesce(sum(chunk_count), 0)::float8 AS n,
           greatest(coalesce(sum(token_total)::float8 / nullif(sum(chunk_count), 0), 1), 1) AS avgdl
    FROM lexical_collections WHERE collection_id = ANY(:cids)
),
idf AS MATERIALIZED (
    SELECT lt.term, ln(1 + (stats.n - sum(lt.df) + 0.5) / (sum(lt.df) + 0.5)) AS idf
    FROM terms JOIN lexical_terms lt ON lt.term = terms.term AND lt.collection_id = ANY(:cids) CROSS JOIN stats
    WHERE lt.df > 0
    GROUP BY lt.term, stats.n
),
candidates AS MATERIALIZED (
    SELECT p.chunk_id
    FROM idf CROSS JOIN unnest(:cids) AS cid
    CROSS JOIN LATERAL (
        SELECT ct.chunk_id, ct.impact FROM chunk_terms ct
        WHERE ct.collection_id = cid AND ct.term = idf.term
        ORDER BY ct.impact DESC, ct.chunk_id DESC
        LIMIT :cap
    ) AS p
    GROUP BY p.chunk_id
    ORDER BY sum(idf.idf * p.impact) DESC, p.chunk_id
    LIMIT :rescore
)
SELECT ct.chunk_id AS id,
       sum(idf.idf * f.tf * (:k1 + 1) / (f.tf + :k1 * (1 - :b + :b * ct.doc_len / stats.avgdl))) AS score
FROM candidates
CROSS JOIN idf
JOIN chunk_terms ct ON ct.chunk_id = candidates.chunk_id AND ct.term = idf.term
CROSS JOIN stats
CROSS JOIN LATERAL (SELECT ct.tf_body + :context_w * ct.tf_context AS tf) AS f
GROUP BY ct.chunk_id
ORDER BY score DESC, id
LIMIT :depth
"""

# metadata: a synced document's ``url`` column joins it (rag_engine.sources reads it there), unless
# the document names its own address (front matter), which wins
DETAILS_SQL = """
SELECT c.id, c.document_id, c.collection_id, c.ordinal, c.heading_path, c.text, d.title, d.source_uri,
       jsonb_strip_nulls(jsonb_build_object('url', d.url)) || d.metadata AS metadata,
       col.name AS collection_name, 1 - (c.embedding <=> :qv) AS cosine
FROM chunks c JOIN documents d ON d.id = c.document_id JOIN collections col ON col.id = c.collection_id
WHERE c.id = ANY(:ids)
"""


@dataclass(frozen=True, slots=True)
class ChunkDetails:
    """What a search hit shows of its chunk, its document and its collection."""

    id: int
    document_id: int
    collection_id: int
    heading_path: str
    text: str
    title: str
    source_uri: str
    metadata: dict[str, Any]
    collection_name: str
    cosine: float | None
    ordinal: int = 0  # the chunk's place in its document (rag_engine.pdf_pages reads its page by it)


class ChunkSearch:
    """The queries of one search, inside one transaction (``conn``). Scores are keyed by chunk id."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def query_adapters(self) -> QueryAdapterTx:
        """The query adapter reads, in this search's transaction (``ActiveQueryAdapter.current``)."""
        return QueryAdapterTx(self.conn)

    def vector(self, qv: np.ndarray, collection_ids: Sequence[int], depth: int, ef_search: int) -> dict[int, float]:
        """Nearest chunks by cosine; ``ef_search`` and the iterative scan are set for this transaction only."""
        self.conn.execute(text("SELECT set_config('hnsw.ef_search', :ef, true), "
                               "set_config('hnsw.iterative_scan', 'relaxed_order', true)"), {"ef": str(ef_search)})
        sql = text(VECTOR_SQL.format(filter=_FILTER)).bindparams(bindparam("cids", type_=ARRAY(Integer)))
        return self._scores(sql, {"qv": qv, "depth": depth, "cids": list(collection_ids)})

    def lexical_rank(self, query: str, collection_ids: Sequence[int], depth: int,
                     normalization: int) -> dict[int, float]:
        """Full-text candidates scored by ``ts_rank_cd`` with the given normalization."""
        sql = text(LEXICAL_SQL.format(filter=_FILTER)).bindparams(bindparam("cids", type_=ARRAY(Integer)))
        return self._scores(sql, {"q": query, "depth": depth, "norm": normalization, "cids": list(collection_ids)})

    def lexical_bm25(self, query: str, collection_ids: Sequence[int], depth: int, *, k1: float, b: float,
                     context_weight: float, term_cap: int = 5000) -> dict[int, float]:
        """Full-text candidates scored by BM25; title/heading occurrences count ``context_weight`` times.

        ``term_cap`` postings are read per query term (best first) and ``max(4 * depth, 1000)`` candidates
        scored exactly; ``term_cap`` 0 reads every posting (the exhaustive query, same scores)."""
        cids = list(collection_ids)
        if term_cap > 0:
            sql = text(BM25_SQL).bindparams(bindparam("cids", type_=ARRAY(Integer)))
            return self._scores(sql, {"q": query, "depth": depth, "k1": k1, "b": b, "context_w": context_weight,
                                      "cap": term_cap, "rescore": max(4 * depth, 1000), "cids": cids})
        cw = max(context_weight, 1e-6)  # ts_rank_cd weights are <= 1: scale down, multiply back
        sql = text(BM25_EXHAUSTIVE_SQL.format(filter=_FILTER)).bindparams(bindparam("cids", type_=ARRAY(Integer)))
        return self._scores(sql, {"q": query, "depth": depth, "k1": k1, "b": b, "body_w": min(1.0, 1.0 / cw),
                                  "context_w": min(1.0, cw), "tf_scale": max(1.0, cw), "cids": cids})

    def details(self, chunk_ids: Sequence[int], qv: np.ndarray) -> dict[int, ChunkDetails]:
        """The chunks still present among ``chunk_ids`` (one may be deleted between two queries)."""
        if not chunk_ids:
            return {}
        sql = text(DETAILS_SQL).bindparams(bindparam("ids", type_=ARRAY(BigInteger)))
        rows = self.conn.execute(sql, {"ids": list(chunk_ids), "qv": qv})
        return {r.id: ChunkDetails(
            id=r.id, document_id=r.document_id, collection_id=r.collection_id, heading_path=r.heading_path,
            text=r.text, title=r.title, source_uri=r.source_uri, metadata=dict(r.metadata or {}),
            collection_name=r.collection_name, cosine=float(r.cosine) if r.cosine is not None else None,
            ordinal=int(r.ordinal),
        ) for r in rows}

    def _scores(self, sql: Any, params: dict[str, Any]) -> dict[int, float]:
        return {int(row.id): float(row.score) for row in self.conn.execute(sql, params)}


class ChunkRepo:
    """Searches over ``chunks`` and the embedding cache ingestion reads."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @contextmanager
    def searching(self) -> Iterator[ChunkSearch]:
        """One transaction for the candidate and detail queries of one search."""
        with self.db.begin() as conn:
            yield ChunkSearch(conn)

    def embeddings_by_text_hash(self, collection_id: int, text_hashes: set[str]) -> dict[str, Any]:
        """Stored vectors of ``collection_id`` by the hash of the text they embed (reused, not recomputed)."""
        if not text_hashes:
            return {}
        with self.db.connect() as conn:
            return dict(conn.execute(  # rows are (hash, vector) pairs
                select(t.chunks.c.text_hash, t.chunks.c.embedding)
                .where(t.chunks.c.collection_id == collection_id, t.chunks.c.text_hash.in_(text_hashes))
            ).all())
