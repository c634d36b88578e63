"""Retrieval learns from feedback: mine pairs, train a query adapter, judge it, register it, maybe activate it.

The query adapter counterpart of ``rag_engine.training.pipeline`` (the generator's):
the candidate is judged on held-out questions by real searches in the serving mode
(``RetrievalConfig``: hybrid fusion by default, the index as it is, HNSW and collection
filters included; no cross-encoder) against raw queries and against the active version.
Judged by vector search alone, an adapter that helped the vector list was promoted while
the fused ranking users get fell (tts-handbook sections, test questions: vector nDCG@10
0.748 -> 0.756, hybrid 0.816 -> 0.799). It is registered either way and activated only
when the gate (``rag_engine.training.retrieval_gate``) passes it. Under convex hybrid fusion the
candidate also carries a fusion weight per collection fitted on the training questions
(``rag_engine.training.fusion_weights``), judged together with the adapter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from rag_engine.config import RetrievalConfig, TrainingConfig
from rag_engine.embedding import Embedder
from rag_engine.eval.scores import strip_citations, token_f1
from rag_engine.extractive import ExtractiveAnswerer
from rag_engine.query_transform import PinnedQueryAdapter, QueryAdapter
from rag_engine.retrieval import Retriever
from rag_engine.scope import CollectionScope
from rag_engine.store.chunks import ChunkRepo
from rag_engine.store.database import Database
from rag_engine.training import retrieval_registry as registry
from rag_engine.training.fusion_weights import fit_vector_weights
from rag_engine.training.query_adapter import TrainParams, TrainStats, train_query_adapter
from rag_engine.training.retrieval_gate import RetrievalScores, Verdict, judge, score_rankings
from rag_engine.training.retrieval_pairs import PairSet, RetrievalPair, build_tensors, mine_pairs

EVAL_DEPTH = 10  # nDCG@10 and hit@5 need the top 10


class NothingToTrain(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class RetrievalTraining:
    version: str
    status: str  # active | candidate | rejected
    verdict: Verdict
    candidate: RetrievalScores
    baseline: RetrievalScores  # raw query embeddings
    active: RetrievalScores | None  # the version active when judged
    stats: TrainStats
    snapshot: dict[str, Any]


def train_params(config: TrainingConfig) -> TrainParams:
    return TrainParams(rank=config.retrieval_adapter_rank, epochs=config.retrieval_train_epochs,
                       seed=config.train_seed)


def train_retrieval(db: Database, embedder: Embedder, chunks: ChunkRepo, config: TrainingConfig, *,
                    retrieval: RetrievalConfig, pairs: PairSet | None = None,
                    activate: bool = True) -> RetrievalTraining:
    """Train, judge and register one candidate; activate it when it passes (and ``activate``). ``retrieval`` is
    the serving configuration the candidate is judged in."""
    ef_search = retrieval.hnsw_ef_search
    pairs = pairs if pairs is not None else mine_pairs(db, config)
    if not pairs.train:
        raise NothingToTrain("no retrieval training pairs yet (👍 answers with citations, approved corrections, "
                             f"curated Q&A with a source page); left out: {dict(pairs.excluded) or 'nothing'}")
    tensors = build_tensors(pairs.train, embedder, db, chunks, hard_negatives=config.retrieval_hard_negatives,
                            ef_search=ef_search)
    if len(tensors) == 0:
        raise NothingToTrain("the training pairs' chunks have no stored vectors")
    adapter, stats = train_query_adapter(tensors, train_params(config))
    if retrieval.search_mode == "hybrid" and retrieval.fusion == "convex":
        adapter = replace(adapter, vector_weights=fit_vector_weights(
            pairs.train, Retriever(chunks, embedder, retrieval), retrieval.vector_weight))
    current = registry.active(db)
    current_adapter = (registry.load(db, current.version)
                       if current is not None and current.embedding_model == embedder.model_name else None)

    def scores(with_adapter: QueryAdapter | None) -> RetrievalScores:
        return evaluate(pairs.heldout, Retriever(chunks, embedder, retrieval, query_adapter=(
            PinnedQueryAdapter("judged", with_adapter) if with_adapter is not None else None)))

    baseline, candidate = scores(None), scores(adapter)
    active_scores = scores(current_adapter) if current_adapter is not None else None
    verdict = judge(candidate, baseline, active_scores, config.retrieval_promotion_margin,
                    active_version=current.version if current_adapter is not None and current else None)
    snapshot = {**pairs.snapshot(), "rows": len(tensors), "hard_negatives": int(tensors.negatives.shape[1])}
    metrics = {"candidate": candidate.as_dict(), "baseline": baseline.as_dict(),
               "active": active_scores.as_dict() if active_scores else None,
               "active_version": verdict.reference if verdict.reference != "none" else None,
               "reason": verdict.reason, "margin": config.retrieval_promotion_margin,
               "train": {"seconds": round(stats.seconds, 2), "steps": stats.steps, "first_loss": stats.first_loss,
                         "last_loss": stats.last_loss, "rank": adapter.rank},
               "vector_weights": {str(c): w for c, w in sorted(adapter.vector_weights.items())}}
    version = registry.next_version(db)
    registry.register(db, version=version, adapter=adapter, embedding_model=embedder.model_name,
                      data_snapshot=snapshot, metrics=metrics,
                      status="candidate" if verdict.passed else "rejected")
    status = "candidate" if verdict.passed else "rejected"
    if verdict.passed and activate:
        registry.activate(db, version, embedding_model=embedder.model_name)
        status = "active"
    return RetrievalTraining(version, status, verdict, candidate, baseline, active_scores, stats, snapshot)


def evaluate(pairs: Sequence[RetrievalPair], retriever: Retriever) -> RetrievalScores:
    """Each question searched in its collections as ``retriever`` serves it (its mode and fusion, its query
    transform; no reranking), the top 10 scored against its positives; for a question with a reviewed answer,
    the extractive answer built from those hits (the default path's fallback, and the sentences a generated
    answer is checked against) scored by token-F1."""
    answerer = ExtractiveAnswerer(retriever.embedder)
    rankings: list[list[int]] = []
    f1s: list[float] = []
    for pair in pairs:
        hits = retriever.search(pair.question, CollectionScope.of(pair.collection_ids), EVAL_DEPTH, rerank=False)
        rankings.append([hit.chunk_id for hit in hits])
        if pair.reference:
            text = answerer.generate(pair.question, hits, []).text
            f1s.append(token_f1(strip_citations(text), strip_citations(pair.reference)))
    scores = score_rankings(rankings, [p.judgment() for p in pairs])
    return replace(scores, answer_f1=sum(f1s) / len(f1s)) if f1s else scores
