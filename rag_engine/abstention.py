"""When to say "not in the documents": a decision read off the hits, calibrated on judged questions.

The old rule (``abstention_rule = "min_relevance"``) abstains when the best cosine is below one fixed
floor. One cosine misjudges both ways: a paraphrased answerable question can score low, and a question
whose answer is missing still finds the same topic's pages at a fair cosine. The calibrated rule
(``"calibrated"``) combines what the retriever already returned, so no extra SQL or model runs: the
best cosine, how far it stands above the other hits, how many of the question's content words the top
hits contain, and whether the lexical search found the best-cosine hit too (not the share of hits it
found: that share grows with the corpus, so a few-document collection would read as off-topic). A
logistic model turns them into the probability that the documents answer the question; below
``threshold`` the engine abstains.
``benchmarks/abstention.py`` fitted it and reports both rules (``docs/retrieval.md``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag_engine.config import AbstentionRule
from rag_engine.values import SearchHit

TOP_TEXT = 3  # the hits whose words count for term coverage (the passages an answer mostly comes from)
STEM = 5  # words compare by their first letters: "reimbursed" meets "reimbursement", "deploys" meets "deploy"
_WORD = re.compile(r"[a-z0-9]+")
# function words and question words: present in any text, they say nothing about whether it answers
_STOPWORDS = frozenset("""
a about above after again all also am an and any are as at be been before being below between both but by
can could did do does doing done down during each else ever every few for from get gets got had has have
having he her here hers him his how i if in into is it its itself just know let like may me might more most
much must my need needs no nor not now of off on once one only or other our out over own per please same
shall she should so some such than that the their them then there these they this those through to too
under until up us use used very want was way we were what when where whether which while who whom whose why
will with within without would yes yet you your
""".split())


@dataclass(frozen=True, slots=True)
class AbstentionSignals:
    """Query-time evidence that the hits answer the question; cosines and shares in [0, 1]."""

    top_cosine: float  # best cosine among the hits
    cosine_gap: float  # best cosine minus the mean cosine of the hits (a sharp best match vs a flat topic)
    term_coverage: float  # share of the question's content words found in the top hits' title, headings, text
    lexical_top: float  # 1.0 when the lexical search found the best-cosine hit too, else 0.0

    def vector(self) -> tuple[float, ...]:
        return (self.top_cosine, self.cosine_gap, self.term_coverage, self.lexical_top)


@dataclass(frozen=True, slots=True)
class AbstentionModel:
    """Logistic P(answerable | signals); abstain below ``threshold``."""

    intercept: float
    coefficients: tuple[float, float, float, float]
    threshold: float

    def probability(self, signals: AbstentionSignals) -> float:
        z = self.intercept + sum(c * x for c, x in zip(self.coefficients, signals.vector(), strict=True))
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


@dataclass(frozen=True, slots=True)
class Decision:
    """The engine's verdict and what it rested on (stored with a "not found" answer)."""

    abstain: bool
    rule: AbstentionRule
    score: float  # the best cosine (min_relevance) or P(answerable) (calibrated)
    signals: AbstentionSignals


# Fitted by ``benchmarks/abstention.py evaluate --fit`` on its train split only: tts-handbook's qa-train and 60 % of
# benchmarks/data/handbook_feedback.jsonl, each asked of its own collection (answerable) and with its source document
# removed (unanswerable), plus every corpus's train questions asked of the other collections (msmarco-5k included);
# default embedder all-MiniLM-L6-v2 (its cosines set the scale), convex 0.7 / 0.3 hybrid, search_k 5. Each
# (corpus, answerable) group weighs the same; the threshold minimises (2 x false-abstention + false-answer) / 3 on
# train. Another embedder needs a refit.
DEFAULT_MODEL = AbstentionModel(intercept=-7.7684, coefficients=(6.1263, 2.8465, 3.9931, 1.4294), threshold=0.3240)


def terms(text: str) -> set[str]:
    """Content words of ``text``, lower-cased and cut to their first ``STEM`` letters."""
    return {w[:STEM] for w in _WORD.findall(text.lower()) if len(w) > 2 and w not in _STOPWORDS}


def signals(question: str, hits: Sequence[SearchHit]) -> AbstentionSignals:
    """The signals of one question's hits (in the retriever's order; may be empty)."""
    cosines = [h.vector_score or 0.0 for h in hits]
    top = max(cosines, default=0.0)
    gap = top - sum(cosines) / len(cosines) if cosines else 0.0
    wanted = terms(question)
    seen: set[str] = set()
    for h in hits[:TOP_TEXT]:
        seen |= terms(f"{h.title} {h.heading_path} {h.text}")
    coverage = len(wanted & seen) / len(wanted) if wanted else 0.0
    best = max(hits, key=lambda h: h.vector_score or 0.0, default=None)
    lexical = 1.0 if best is not None and best.lexical_score is not None else 0.0
    return AbstentionSignals(top_cosine=top, cosine_gap=gap, term_coverage=coverage, lexical_top=lexical)


def decide(question: str, hits: Sequence[SearchHit], rule: AbstentionRule, min_relevance: float,
           model: AbstentionModel = DEFAULT_MODEL) -> Decision:
    """Abstain or answer. No hits always abstains; ``min_relevance`` is the old rule's cosine floor."""
    s = signals(question, hits)
    if rule == "min_relevance":
        return Decision(abstain=not hits or s.top_cosine < min_relevance, rule=rule, score=s.top_cosine, signals=s)
    p = model.probability(s)
    return Decision(abstain=not hits or p < model.threshold, rule=rule, score=p, signals=s)
