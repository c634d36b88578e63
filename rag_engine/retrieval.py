"""Hybrid retrieval: pgvector HNSW (cosine) + Postgres full text, fused and optionally reranked.

The candidate queries (with the collection filter inside their SQL) live in
``rag_engine.store.chunks``; this module picks the searches, fuses their runs and builds
the hits readers are shown.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from rag_engine import pdf_pages, sources
from rag_engine.config import Fusion, RetrievalConfig
from rag_engine.embedding import Embedder
from rag_engine.fusion import adaptive, convex
from rag_engine.query_transform import ActiveQueryAdapter, PinnedQueryAdapter, QueryAdapter, QueryTransform
from rag_engine.scope import CollectionScope
from rag_engine.store.chunks import ChunkRepo, ChunkSearch
from rag_engine.values import SearchHit, SearchMode

log = logging.getLogger(__name__)


class Reranker(Protocol):
    def rerank(self, query: str, hits: list[SearchHit]) -> list[SearchHit]: ...


def rrf(rankings: Sequence[Sequence[int]], weights: Sequence[float], k: int) -> dict[int, float]:
    """Weighted reciprocal rank fusion: sum of w / (k + rank)."""
    scores: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return scores


@dataclass(frozen=True, slots=True)
class Searched:
    """One search's hits and the retriever version whose query transform the vector search used (None: raw)."""

    hits: list[SearchHit]
    retriever_version: str | None = None


class Retriever:
    def __init__(self, chunks: ChunkRepo, embedder: Embedder, config: RetrievalConfig,
                 reranker: Reranker | None = None, *, query_adapter: QueryTransform | None = None) -> None:
        self.chunks = chunks
        self.embedder = embedder
        self.config = config
        self.reranker = reranker
        self.query_adapter = query_adapter  # the active retrieval version, applied to the vector search's query

    def search(
        self,
        query: str,
        scope: CollectionScope,
        k: int | None = None,
        mode: SearchMode | None = None,
        *,
        ef_search: int | None = None,
        rerank: bool = True,
        fusion: Fusion | None = None,
    ) -> list[SearchHit]:
        """Top-k chunks for ``query`` within ``scope``; an empty scope finds nothing (and runs no SQL).

        ``fusion`` overrides the configured one for this call (hybrid mode only; the eval compares them)."""
        return self.retrieve(query, scope, k, mode, ef_search=ef_search, rerank=rerank, fusion=fusion).hits

    def retrieve(
        self,
        query: str,
        scope: CollectionScope,
        k: int | None = None,
        mode: SearchMode | None = None,
        *,
        ef_search: int | None = None,
        rerank: bool = True,
        fusion: Fusion | None = None,
    ) -> Searched:
        """:meth:`search`, also naming the retriever version that served it (the interaction log records it)."""
        if scope.is_empty:
            return Searched([])
        k = k or self.config.search_k
        mode = mode or self.config.search_mode
        cids = scope.ids()
        qv = self.embedder.embed_query(query)
        s = self.config
        with self.chunks.searching() as search:
            # the learned query transform, if one is active, moves only the vector search's query; the hits'
            # cosine (the relevance floor's input) stays that of the raw query it was calibrated on
            version, adapter = self._version(search) if mode != "lexical" else (None, None)
            search_qv = adapter.apply(qv) if adapter is not None else qv
            vector_run, lexical_run = self._runs(search, query, search_qv, cids, k, mode, ef_search)
            if mode == "vector":
                fused = vector_run
            elif mode == "lexical":
                fused = lexical_run
            elif (how := fusion or s.fusion) == "adaptive":
                lexical_depth = max(k, s.lexical_candidate_depth or s.candidate_depth)
                fused, weight = adaptive(vector_run, lexical_run, lexical_depth)
                log.debug("adaptive fusion: vector weight %.2f", weight)
            elif how == "convex":
                # a learned weight (the retriever version's, fitted on this collection's feedback) replaces 0.7 / 0.3
                w = adapter.vector_weight(cids, s.vector_weight) if adapter is not None else s.vector_weight
                fused = convex((vector_run, lexical_run),
                               (w, s.lexical_weight if w == s.vector_weight else 1.0 - w))
            else:
                fused = rrf([list(vector_run), list(lexical_run)], [s.vector_weight, s.lexical_weight], s.rrf_k)
            use_rerank = rerank and self.reranker is not None
            keep = max(k, s.rerank_depth) if use_rerank else k
            top = sorted(fused, key=lambda i: (-fused[i], i))[:keep]
            hits = self._details(search, top, qv, fused, lexical_run)
        if use_rerank and self.reranker is not None:
            # only the top ``rerank_depth`` are re-scored (cross-encoders are slow); the rest keep the fused order
            depth = s.rerank_depth
            hits = self.reranker.rerank(query, hits[:depth]) + hits[depth:]
        return Searched(hits[:k], version)

    def runs(self, query: str, scope: CollectionScope, k: int) -> tuple[dict[int, float], dict[int, float]]:
        """Both candidate lists of a hybrid search for the raw query, unfused (fitting a fusion weight tabulates
        the fused ranking at many weights from one search)."""
        qv = self.embedder.embed_query(query)
        with self.chunks.searching() as search:
            return self._runs(search, query, qv, scope.ids(), k, "hybrid", None)

    def _runs(self, search: ChunkSearch, query: str, search_qv: np.ndarray, cids: Sequence[int], k: int,
              mode: SearchMode, ef_search: int | None) -> tuple[dict[int, float], dict[int, float]]:
        s = self.config
        vector_run: dict[int, float] = {}
        lexical_run: dict[int, float] = {}
        if mode in ("vector", "hybrid"):
            depth = max(k, s.vector_candidate_depth or s.candidate_depth)
            vector_run = search.vector(search_qv, cids, depth, ef_search or s.hnsw_ef_search)
        if mode in ("lexical", "hybrid"):
            depth = max(k, s.lexical_candidate_depth or s.candidate_depth)
            lexical_run = self.lexical_candidates(search, query, cids, depth)
        return vector_run, lexical_run

    def _version(self, search: ChunkSearch) -> tuple[str | None, QueryAdapter | None]:
        """The retriever version to search with and its adapter (the active one, read in the search's own
        transaction, or the pinned one); (None, None): raw queries and the configured weights."""
        transform = self.query_adapter
        if isinstance(transform, ActiveQueryAdapter):
            version, adapter = transform.current(search.query_adapters())
            return (version, adapter) if adapter is not None else (None, None)
        if isinstance(transform, PinnedQueryAdapter):  # ``eval retrieval --retriever-version``: reads nothing
            return transform.version, transform.adapter
        return None, None

    def lexical_candidates(self, search: ChunkSearch, query: str, collection_ids: Sequence[int],
                           depth: int) -> dict[int, float]:
        """Full-text candidates, scored as ``config.lexical_scoring`` says."""
        s = self.config
        if s.lexical_scoring == "bm25":
            return search.lexical_bm25(query, collection_ids, depth, k1=s.bm25_k1, b=s.bm25_b,
                                       context_weight=s.context_weight, term_cap=s.bm25_term_cap)
        return search.lexical_rank(query, collection_ids, depth, s.lexical_rank_normalization)

    def _details(self, search: ChunkSearch, ids: list[int], qv: np.ndarray, fused: dict[int, float],
                 lexical_run: dict[int, float]) -> list[SearchHit]:
        rows = search.details(ids, qv)
        url_bases = self.config.source_url_bases
        hits = []
        for i in ids:
            r = rows.get(i)
            if r is None:  # deleted between the two queries
                continue
            hits.append(SearchHit(
                chunk_id=r.id, document_id=r.document_id, collection_id=r.collection_id, title=r.title,
                source_uri=r.source_uri, heading_path=r.heading_path, text=r.text, score=fused[i],
                vector_score=r.cosine, lexical_score=lexical_run.get(i),
                display_path=sources.display_path(r.metadata, r.source_uri),
                url=sources.source_url(r.metadata, r.source_uri, url_bases.get(r.collection_name)),
                page=pdf_pages.chunk_page(r.metadata, r.ordinal),
            ))
        return hits
