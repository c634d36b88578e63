"""The promotion gate for query adapters: held-out questions' nDCG@10 and hit@5, before and after.

A candidate goes live only when, on held-out questions (reviewed feedback the
candidate never trained on), its nDCG@10 beats the reference by at least
``retrieval_promotion_margin``, its hit@5 is not lower, and what users would receive
does not get worse: the token-F1 of the extractive answer built from its ranking,
against the reviewed answers (the generator gate's rule, for retrieval: a better
ranking by the judged chunk can still put another page's sentence first). The reference is the
better of "no adapter" and the adapter active when it is judged, so a candidate
must beat what answers today, and never beats it by matching a worse active one.
A candidate that fails is kept with its numbers (status ``rejected``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

Judgment = Mapping[int, int]  # chunk (or document) id -> relevance grade (> 0 relevant)


@dataclass(frozen=True, slots=True)
class RetrievalScores:
    ndcg10: float
    hit1: float
    hit5: float
    questions: int
    answer_f1: float | None = None  # token-F1 of the extractive answer from these rankings (questions with a reference)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Verdict:
    passed: bool
    reason: str
    reference: str  # "none" or the active version the candidate was compared with


def ndcg_at(ranked: Sequence[int], relevant: Judgment, k: int = 10) -> float:
    """nDCG@k with graded gains (2^g - 1) and log2 discounts; 0 when nothing is relevant."""
    gains = [2 ** relevant.get(i, 0) - 1 for i in ranked[:k]]
    dcg = sum(g / math.log2(r + 2) for r, g in enumerate(gains))
    ideal = sorted((2 ** g - 1 for g in relevant.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(r + 2) for r, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def hit_at(ranked: Sequence[int], relevant: Judgment, k: int) -> float:
    return 1.0 if any(relevant.get(i, 0) > 0 for i in ranked[:k]) else 0.0


def score_rankings(rankings: Sequence[Sequence[int]], judgments: Sequence[Judgment]) -> RetrievalScores:
    """Mean nDCG@10, hit@1 and hit@5 over questions (one ranking and one judgment each)."""
    n = len(rankings)
    if n == 0:
        return RetrievalScores(0.0, 0.0, 0.0, 0)
    pairs = list(zip(rankings, judgments, strict=True))
    return RetrievalScores(
        ndcg10=sum(ndcg_at(r, j) for r, j in pairs) / n,
        hit1=sum(hit_at(r, j, 1) for r, j in pairs) / n,
        hit5=sum(hit_at(r, j, 5) for r, j in pairs) / n,
        questions=n,
    )


def judge(candidate: RetrievalScores, baseline: RetrievalScores, active: RetrievalScores | None,
          margin: float, *, active_version: str | None = None) -> Verdict:
    """Pass when the candidate's nDCG@10 >= reference + ``margin`` and its hit@5 >= the reference's."""
    if candidate.questions == 0:
        return Verdict(False, "no held-out questions to judge it by (approved corrections or curated Q&A)", "none")
    reference, name = baseline, "none"
    if active is not None and active.ndcg10 > baseline.ndcg10:
        reference, name = active, active_version or "active"
    if candidate.ndcg10 < reference.ndcg10 + margin:
        return Verdict(False, f"nDCG@10 {candidate.ndcg10:.3f} < {reference.ndcg10:.3f} + margin {margin:g} "
                              f"({name})", name)
    if candidate.hit5 < reference.hit5:
        return Verdict(False, f"hit@5 {candidate.hit5:.3f} < {reference.hit5:.3f} ({name})", name)
    answers = ""
    if candidate.answer_f1 is not None and reference.answer_f1 is not None:
        if candidate.answer_f1 < reference.answer_f1:
            return Verdict(False, f"what users receive gets worse: answer token-F1 {candidate.answer_f1:.3f} < "
                                  f"{reference.answer_f1:.3f} ({name})", name)
        answers = f", answer token-F1 {reference.answer_f1:.3f} -> {candidate.answer_f1:.3f}"
    return Verdict(True, f"nDCG@10 {reference.ndcg10:.3f} -> {candidate.ndcg10:.3f}, hit@5 {reference.hit5:.3f} -> "
                         f"{candidate.hit5:.3f}{answers} (vs {name})", name)
