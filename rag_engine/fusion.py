"""Adaptive fusion: the dense/lexical weight decided per query from the two candidate lists.

A fixed convex weight is tuned on one corpus and carries badly to another (issue 17). Here
each query's vector weight is ``sigmoid(intercept + coefficients · signals)``, where the
signals are read off the two runs the retriever already has, so no extra SQL runs:
the best cosine, how far each list's best score stands above the rest of its top 10, how
much the two top-10s agree, and how many lexical candidates were found. Which signals
count, and their coefficients, were chosen and fitted on judged queries by
``benchmarks/adaptive_fusion.py`` (nested 2-fold cross-validation by query;
``docs/retrieval.md`` has the table).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

K = TypeVar("K")  # an item's key: chunk id here, document id in the benchmarks
TOP = 10  # the head of each list the signals look at


@dataclass(frozen=True, slots=True)
class FusionSignals:
    """Query-time evidence of which list to trust; every field is scale-free or a cosine."""

    vector_top: float  # best cosine
    vector_spread: float  # best cosine minus the mean of the top 10
    lexical_spread: float  # 1 - mean of the top 10 BM25 scores / the best (0: flat, near 1: one sharp peak)
    overlap: float  # share of the vector top 10 that is also in the lexical top 10
    lexical_found: float  # lexical candidates found / candidates asked for (few: rare terms only)

    def vector(self) -> tuple[float, ...]:
        return (self.vector_top, self.vector_spread, self.lexical_spread, self.overlap, self.lexical_found)


@dataclass(frozen=True, slots=True)
class AdaptiveModel:
    """A logistic map from signals to the vector weight, clipped to ``[low, high]``."""

    intercept: float
    coefficients: tuple[float, ...]
    low: float = 0.0
    high: float = 1.0

    def vector_weight(self, signals: FusionSignals) -> float:
        z = self.intercept + sum(c * x for c, x in zip(self.coefficients, signals.vector(), strict=True))
        w = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))
        return min(self.high, max(self.low, w))


# ``benchmarks/adaptive_fusion.py evaluate --fit`` (msmarco-5k, tts-handbook, examples/handbook): signals and
# penalty chosen, then fitted, on every judged query of those sets with the default embedder (all-MiniLM-L6-v2,
# whose cosines set the scale): the best cosine and the lexical candidates found were kept. w = 0.59 at cosine 0.6,
# 0.66 at 0.8 (all 100 lexical candidates found). Not the default fusion: out-of-fold it does not beat the fixed
# 0.7 / 0.3 on average over the four sets (docs/retrieval.md), and no rule of the second round beat it honestly
# either (23 families: other normalizations, more signals, weights anchored at 0.7; benchmarks/fusion_search.py).
DEFAULT_MODEL = AdaptiveModel(intercept=-0.22, coefficients=(1.5095, 0.0, 0.0, 0.0, -0.3121))


def _head(run: Mapping[int, float]) -> list[tuple[int, float]]:
    return sorted(run.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]


def signals(vector_run: Mapping[int, float], lexical_run: Mapping[int, float], depth: int) -> FusionSignals:
    """The signals of one query's two runs (either may be empty)."""
    v, lex = _head(vector_run), _head(lexical_run)
    v_top = v[0][1] if v else 0.0
    v_spread = v_top - sum(s for _, s in v) / len(v) if v else 0.0
    l_top = lex[0][1] if lex else 0.0
    l_spread = 1.0 - sum(s for _, s in lex) / len(lex) / l_top if lex and l_top > 0 else 0.0
    shared = len({i for i, _ in v} & {i for i, _ in lex})
    return FusionSignals(vector_top=v_top, vector_spread=v_spread, lexical_spread=l_spread,
                         overlap=shared / len(v) if v else 0.0,
                         lexical_found=min(1.0, len(lexical_run) / depth) if depth > 0 else 0.0)


def convex(runs: Sequence[Mapping[K, float]], weights: Sequence[float]) -> dict[K, float]:
    """Weighted sum of min-max normalized scores (missing = 0)."""
    scores: dict[K, float] = {}
    for run, weight in zip(runs, weights, strict=True):
        if not run:
            continue
        lo, hi = min(run.values()), max(run.values())
        span = (hi - lo) or 1.0
        for item, s in run.items():
            scores[item] = scores.get(item, 0.0) + weight * (s - lo) / span
    return scores


def adaptive(vector_run: Mapping[int, float], lexical_run: Mapping[int, float], depth: int,
             model: AdaptiveModel = DEFAULT_MODEL) -> tuple[dict[int, float], float]:
    """Convex fusion with this query's vector weight; returns the fused scores and the weight used."""
    if not lexical_run:
        return dict(vector_run), 1.0
    if not vector_run:
        return dict(lexical_run), 0.0
    w = model.vector_weight(signals(vector_run, lexical_run, depth))
    return convex((vector_run, lexical_run), (w, 1.0 - w)), w
