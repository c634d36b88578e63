"""A convex fusion weight per collection, fitted on the same feedback pairs as the query adapter.

The 0.7 / 0.3 default was chosen on msmarco-5k; a team's corpus is another one (on
tts-handbook's sections, where the questions use the pages' own words, the lexical
side deserves more). Each training question is searched once (raw query, both
candidate lists) and its fused top 10 scored at every weight of a grid; a collection
with at least ``MIN_QUESTIONS`` questions gets the weight with the best mean nDCG@10,
the configured one kept on ties. The weights ride in the retrieval version, so the
gate judges them together with the adapter, on held-out questions, in the serving
mode, and a rollback takes them back.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

from rag_engine.fusion import convex
from rag_engine.retrieval import Retriever
from rag_engine.scope import CollectionScope
from rag_engine.training.retrieval_gate import ndcg_at
from rag_engine.training.retrieval_pairs import RetrievalPair

GRID = tuple(i / 20 for i in range(21))  # vector weights tried
MIN_QUESTIONS = 20  # fewer questions than this say too little about a corpus: its weight stays as configured
TOP = 10


def ndcg_curve(vector_run: Mapping[int, float], lexical_run: Mapping[int, float], judgment: Mapping[int, int],
               weights: Sequence[float]) -> list[float]:
    """nDCG@10 of the convex fusion of one question's two lists at each weight."""
    curve = []
    for w in weights:
        fused = convex((vector_run, lexical_run), (w, 1.0 - w))
        curve.append(ndcg_at(sorted(fused, key=lambda i: (-fused[i], i))[:TOP], judgment))
    return curve


def best_weight(curves: Sequence[Sequence[float]], weights: Sequence[float], configured: float) -> float:
    """The weight with the best mean; among equals the one nearest ``configured`` (so no evidence, no move)."""
    means = [sum(c[j] for c in curves) / len(curves) for j in range(len(weights))]
    top = max(means)
    return min((w for w, m in zip(weights, means, strict=True) if m >= top - 1e-12),
               key=lambda w: (abs(w - configured), w))


def fit_vector_weights(pairs: Sequence[RetrievalPair], retriever: Retriever, configured: float,
                       min_questions: int = MIN_QUESTIONS) -> dict[int, float]:
    """Collection id -> fitted vector weight, for each collection with enough questions whose weight moved."""
    weights = sorted({*GRID, configured})
    by_collection: dict[int, list[list[float]]] = defaultdict(list)
    for pair in pairs:
        vector_run, lexical_run = retriever.runs(pair.question, CollectionScope.of(pair.collection_ids), TOP)
        if not vector_run or not lexical_run:
            continue
        curve = ndcg_curve(vector_run, lexical_run, pair.judgment(), weights)
        for cid in pair.collection_ids:
            by_collection[cid].append(curve)
    fitted = {cid: best_weight(curves, weights, configured) for cid, curves in by_collection.items()
              if len(curves) >= min_questions}
    return {cid: w for cid, w in fitted.items() if w != configured}
