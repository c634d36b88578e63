"""Answer metrics shared by ``ragbot eval answers`` and the retraining gate.

Text normalization follows the SQuAD evaluation script (lower case, punctuation
and the articles a/an/the removed, whitespace collapsed), so exact match and
token F1 mean what they mean in the literature. ROUGE-L comes from
``rouge-score`` and BLEU from ``sacrebleu``; every score is in [0, 1].
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD normalization: lower case, no punctuation, no articles, single spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def answer_tokens(text: str) -> list[str]:
    return normalize_answer(text).split()


def exact_match(pred: str, ref: str) -> float:
    """1.0 when the normalized strings are equal, else 0.0."""
    return float(normalize_answer(pred) == normalize_answer(ref))


_MARKER = re.compile(r"\s*\[\d+(?:\s*,\s*\d+)*\]")


def strip_citations(text: str) -> str:
    """The answer without its ``[n]`` markers: references carry none, so they are not scored."""
    return " ".join(_MARKER.sub("", text).split())


def token_f1(pred: str, ref: str) -> float:
    """Harmonic mean of token precision and recall over normalized tokens (SQuAD F1).

    Two empty answers agree (1.0); one empty answer against a non-empty one is 0.0.
    """
    p, r = answer_tokens(pred), answer_tokens(ref)
    if not p or not r:
        return float(p == r)
    common = Counter(p) & Counter(r)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(p), overlap / len(r)
    return 2 * precision * recall / (precision + recall)


@lru_cache(maxsize=1)
def _rouge_scorer() -> Any:
    from rouge_score import rouge_scorer  # lazy: pulls in nltk and absl, only `ragbot eval` needs it

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l(pred: str, ref: str) -> float:
    """ROUGE-L F-measure (longest common subsequence, Porter-stemmed tokens)."""
    if not pred.strip() or not ref.strip():
        return float(pred.strip() == ref.strip())
    return float(_rouge_scorer().score(ref, pred)["rougeL"].fmeasure)


def bleu(preds: Sequence[str], refs: Sequence[str]) -> float:
    """Corpus BLEU (sacrebleu defaults: 13a tokenization, up to 4-grams), scaled to [0, 1]."""
    import sacrebleu  # lazy: only evaluation scores BLEU, and sacrebleu imports slowly

    if len(preds) != len(refs):
        raise ValueError(f"bleu needs as many predictions as references ({len(preds)} != {len(refs)})")
    if not preds:
        return 0.0
    return min(1.0, float(sacrebleu.corpus_bleu(list(preds), [list(refs)]).score) / 100.0)


def sentence_bleu(pred: str, ref: str) -> float:
    """Smoothed sentence BLEU in [0, 1], for per-question tables (use ``bleu`` for a corpus)."""
    import sacrebleu  # lazy: only evaluation scores BLEU, and sacrebleu imports slowly

    return min(1.0, float(sacrebleu.sentence_bleu(pred, [ref]).score) / 100.0)


# -- aggregates ---------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class AnswerScores:
    """Mean scores over a set of (prediction, reference) pairs."""

    n: int
    exact_match: float
    token_f1: float
    rouge_l: float
    bleu: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def score_answers(preds: Sequence[str], refs: Sequence[str]) -> AnswerScores:
    """Mean EM / token F1 / ROUGE-L and corpus BLEU of predictions against references."""
    if len(preds) != len(refs):
        raise ValueError(f"need as many predictions as references ({len(preds)} != {len(refs)})")
    if not preds:
        return AnswerScores(0, 0.0, 0.0, 0.0, 0.0)
    return AnswerScores(
        n=len(preds),
        exact_match=mean(exact_match(p, r) for p, r in zip(preds, refs, strict=True)),
        token_f1=mean(token_f1(p, r) for p, r in zip(preds, refs, strict=True)),
        rouge_l=mean(rouge_l(p, r) for p, r in zip(preds, refs, strict=True)),
        bleu=bleu(preds, refs),
    )


def mean(values: Iterable[float]) -> float:
    values = list(values)
    return float(sum(values) / len(values)) if values else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100, linear interpolation); 0.0 for no values."""
    return float(np.percentile(np.asarray(values, dtype=float), q)) if len(values) else 0.0


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """p50 / p95 / mean in milliseconds."""
    return {"p50_ms": percentile(seconds, 50) * 1000, "p95_ms": percentile(seconds, 95) * 1000,
            "mean_ms": mean(seconds) * 1000}
