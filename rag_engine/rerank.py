"""Cross-encoder reranking of the fused candidates.

Off by default: no cross-encoder ships inside a Python package, so one has to be
named (a model id in the local Hugging Face cache, or a directory) in
``RAGBOT_RERANKER_MODEL``.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from rag_engine.config import EmbeddingConfig, RetrievalConfig
from rag_engine.values import SearchHit

log = logging.getLogger(__name__)


def passage_text(hit: SearchHit) -> str:
    """What the cross-encoder reads: title and heading path, then the chunk (as embedded)."""
    context = " > ".join(p for p in (hit.title, hit.heading_path) if p)
    return f"{context}\n\n{hit.text}" if context else hit.text


class CrossEncoderReranker:
    """Scores (query, passage) pairs with a ``sentence_transformers.CrossEncoder``; best first."""

    def __init__(self, model: str, *, device: str = "cpu", batch_size: int = 32, max_length: int = 512) -> None:
        from sentence_transformers import CrossEncoder  # lazy: torch loads only when reranking is on

        self.model_name = model
        self.batch_size = batch_size
        self._model = CrossEncoder(model, device=device, max_length=max_length)

    @classmethod
    def from_config(cls, retrieval: RetrievalConfig, embedding: EmbeddingConfig) -> CrossEncoderReranker:
        """The configured cross-encoder, run on the embedder's device with its batch size."""
        if not retrieval.reranker_model:
            raise ValueError("no reranker configured: set RAGBOT_RERANKER_MODEL to a cross-encoder id or directory")
        return cls(retrieval.reranker_model, device=embedding.embedding_device,
                   batch_size=embedding.embedding_batch_size)

    def scores(self, query: str, passages: list[str]) -> list[float]:
        if not passages:
            return []
        raw = self._model.predict([(query, p) for p in passages], batch_size=self.batch_size,
                                  show_progress_bar=False, convert_to_numpy=True)
        return [float(s) for s in raw.reshape(len(passages), -1)[:, -1]]  # one logit, or the last class

    def rerank(self, query: str, hits: list[SearchHit]) -> list[SearchHit]:
        """The same hits, each with ``rerank_score`` set, ordered by it (ties keep the fused order)."""
        scores = self.scores(query, [passage_text(h) for h in hits])
        ranked = sorted(zip(hits, scores, strict=True), key=lambda pair: -pair[1])  # sorted() is stable
        return [replace(h, rerank_score=s) for h, s in ranked]
