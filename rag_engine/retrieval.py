"""Hybrid retrieval: pgvector HNSW (cosine) + Postgres full text, fused.

Collection filters are applied inside the SQL of both searches, never after.
Per-query settings use ``set_config(..., is_local => true)`` (``SET LOCAL``), so
nothing depends on session state (safe behind a transaction-pooling PgBouncer).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

import numpy as np
from sqlalchemy import Connection, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import BigInteger, Integer

from rag_engine import sources
from rag_engine.embedding import Embedder
from rag_engine.settings import Settings
from rag_engine.store.database import Database
from rag_engine.types import SearchHit, SearchMode

log = logging.getLogger(__name__)

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

# BM25 in SQL over the same OR query. Per query term, the GIN index finds the
# chunks holding it; its frequency there comes from ts_rank_cd on that one term,
# which for a single-term query is the sum of its occurrences' weights (an
# occurrence in the title/heading path, weight A, counts ``context_weight`` times
# a body one; ts_rank_cd weights must be <= 1, hence the scaling). Document
# frequencies are counted from the same rows, lengths come from the chunk's
# token count, and idf is over the searched collections.
BM25_SQL = """
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

DETAILS_SQL = """
SELECT c.id, c.document_id, c.collection_id, c.heading_path, c.text, d.title, d.source_uri,
       d.metadata, col.name AS collection_name, 1 - (c.embedding <=> :qv) AS cosine
FROM chunks c JOIN documents d ON d.id = c.document_id JOIN collections col ON col.id = c.collection_id
WHERE c.id = ANY(:ids)
"""


class Reranker(Protocol):
    def rerank(self, query: str, hits: list[SearchHit]) -> list[SearchHit]: ...


def rrf(rankings: Sequence[Sequence[int]], weights: Sequence[float], k: int) -> dict[int, float]:
    """Weighted reciprocal rank fusion: sum of w / (k + rank)."""
    scores: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return scores


def convex(runs: Sequence[dict[int, float]], weights: Sequence[float]) -> dict[int, float]:
    """Weighted sum of min-max normalized scores (missing = 0)."""
    scores: dict[int, float] = {}
    for run, weight in zip(runs, weights, strict=True):
        if not run:
            continue
        lo, hi = min(run.values()), max(run.values())
        span = (hi - lo) or 1.0
        for item, s in run.items():
            scores[item] = scores.get(item, 0.0) + weight * (s - lo) / span
    return scores


class Retriever:
    def __init__(self, db: Database, embedder: Embedder, settings: Settings, reranker: Reranker | None = None) -> None:
        self.db = db
        self.embedder = embedder
        self.settings = settings
        self.reranker = reranker

    def search(
        self,
        query: str,
        collection_ids: Sequence[int] | None,
        k: int | None = None,
        mode: SearchMode | None = None,
        *,
        ef_search: int | None = None,
        rerank: bool = True,
    ) -> list[SearchHit]:
        """Top-k chunks for ``query`` within ``collection_ids`` (None = every collection)."""
        k = k or self.settings.search_k
        mode = mode or self.settings.search_mode
        if collection_ids is not None and len(collection_ids) == 0:
            return []
        qv = self.embedder.embed_query(query)
        s = self.settings
        with self.db.begin() as conn:
            vector_run: dict[int, float] = {}
            lexical_run: dict[int, float] = {}
            if mode in ("vector", "hybrid"):
                depth = max(k, s.vector_candidate_depth or s.candidate_depth)
                vector_run = self.vector_candidates(conn, qv, collection_ids, depth, ef_search)
            if mode in ("lexical", "hybrid"):
                depth = max(k, s.lexical_candidate_depth or s.candidate_depth)
                lexical_run = self.lexical_candidates(conn, query, collection_ids, depth)
            if mode == "vector":
                fused = vector_run
            elif mode == "lexical":
                fused = lexical_run
            elif self.settings.fusion == "convex":
                fused = convex([vector_run, lexical_run], [self.settings.vector_weight, self.settings.lexical_weight])
            else:
                fused = rrf([list(vector_run), list(lexical_run)],
                            [self.settings.vector_weight, self.settings.lexical_weight], self.settings.rrf_k)
            use_rerank = rerank and self.reranker is not None
            keep = max(k, self.settings.rerank_depth) if use_rerank else k
            top = sorted(fused, key=lambda i: (-fused[i], i))[:keep]
            hits = self._details(conn, top, qv, fused, vector_run, lexical_run)
        if use_rerank:
            # only the top ``rerank_depth`` are re-scored (cross-encoders are slow); the rest keep the fused order
            depth = self.settings.rerank_depth
            hits = self.reranker.rerank(query, hits[:depth]) + hits[depth:]
        return hits[:k]

    def vector_candidates(self, conn: Connection, qv: np.ndarray, collection_ids: Sequence[int] | None,
                          depth: int, ef_search: int | None = None) -> dict[int, float]:
        conn.execute(text("SELECT set_config('hnsw.ef_search', :ef, true), "
                          "set_config('hnsw.iterative_scan', 'relaxed_order', true)"),
                     {"ef": str(ef_search or self.settings.hnsw_ef_search)})
        sql = text(VECTOR_SQL.format(filter=_FILTER if collection_ids is not None else ""))
        params: dict = {"qv": qv, "depth": depth}
        if collection_ids is not None:
            sql = sql.bindparams(bindparam("cids", type_=ARRAY(Integer)))
            params["cids"] = list(collection_ids)
        return {row.id: float(row.score) for row in conn.execute(sql, params)}

    def lexical_candidates(self, conn: Connection, query: str, collection_ids: Sequence[int] | None,
                           depth: int) -> dict[int, float]:
        s = self.settings
        template = BM25_SQL if s.lexical_scoring == "bm25" else LEXICAL_SQL
        sql = text(template.format(filter=_FILTER if collection_ids is not None else ""))
        params: dict = {"q": query, "depth": depth}
        if s.lexical_scoring == "bm25":
            cw = max(s.context_weight, 1e-6)  # ts_rank_cd weights are <= 1: scale down, multiply back
            params.update(k1=s.bm25_k1, b=s.bm25_b, body_w=min(1.0, 1.0 / cw), context_w=min(1.0, cw),
                          tf_scale=max(1.0, cw))
        else:
            params["norm"] = s.lexical_rank_normalization
        if collection_ids is not None:
            sql = sql.bindparams(bindparam("cids", type_=ARRAY(Integer)))
            params["cids"] = list(collection_ids)
        return {row.id: float(row.score) for row in conn.execute(sql, params)}

    def _details(self, conn: Connection, ids: list[int], qv: np.ndarray, fused: dict[int, float],
                 vector_run: dict[int, float], lexical_run: dict[int, float]) -> list[SearchHit]:
        if not ids:
            return []
        sql = text(DETAILS_SQL).bindparams(bindparam("ids", type_=ARRAY(BigInteger)))
        rows = {r.id: r for r in conn.execute(sql, {"ids": ids, "qv": qv})}
        url_bases = self.settings.source_url_bases
        hits = []
        for i in ids:
            r = rows.get(i)
            if r is None:  # deleted between the two queries
                continue
            metadata = r.metadata or {}
            hits.append(SearchHit(
                chunk_id=r.id, document_id=r.document_id, collection_id=r.collection_id, title=r.title,
                source_uri=r.source_uri, heading_path=r.heading_path, text=r.text, score=fused[i],
                vector_score=float(r.cosine) if r.cosine is not None else None,
                lexical_score=lexical_run.get(i),
                display_path=sources.display_path(metadata, r.source_uri),
                url=sources.source_url(metadata, r.source_uri, url_bases.get(r.collection_name)),
            ))
        return hits
