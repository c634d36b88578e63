"""Decide when to ask a clarifying question instead of answering."""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag_engine.values import SearchHit

_WORD_RE = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*", re.UNICODE)

# Function words and question words: they do not narrow down a topic.
STOPWORDS = frozenset(
    """
    a an the and or but if then else of to in on at by for with about from into over under as is are was were be
    been being am do does did doing have has had having i me my we our you your he she it its they them their this
    that these those there here what which who whom whose when where why how can could should would will shall may
    might must not no yes so than too very just any some all each every more most much many please tell explain
    know need want get got find show give info information anything something thing things about regarding re vs
    """.split()
)


def content_words(question: str) -> list[str]:
    """Lower-cased words of ``question`` that are not stopwords."""
    return [w for w in (m.group(0).lower() for m in _WORD_RE.finditer(question)) if w not in STOPWORDS]


def _relevance(window: Sequence[SearchHit]) -> list[float]:
    # Cosine similarity is comparable across documents; fused scores (RRF) are
    # rank-based and nearly tied by construction, so cosine is used whenever the
    # vector side saw any hit (a hit it did not see counts as 0, not a contender).
    if any(h.vector_score is not None for h in window):
        return [float(h.vector_score) if h.vector_score is not None else 0.0 for h in window]
    return [h.score for h in window]


def _floor(best: float, tie_margin: float) -> float:
    """The least score still tied with ``best``."""
    return best * (1 - tie_margin) if best > 0 else best - tie_margin


def clarifying_question(
    question: str,
    hits: Sequence[SearchHit],
    *,
    max_content_words: int = 3,
    window: int = 5,
    tie_margin: float = 0.10,
    strong_match: float = 0.60,
    max_topics: int = 3,
) -> str | None:
    """A clarifying question naming candidate topics, or ``None`` to answer normally.

    Rule (all must hold):

    1. the question has 1 to ``max_content_words`` content words (words that are
       not in :data:`STOPWORDS`);
    2. relevance is ``vector_score`` (cosine; 0 for a hit without one) when any
       hit in the top ``window`` has one, else ``score``; the *contenders* are the top-``window``
       hits whose relevance is at least ``best * (1 - tie_margin)`` (for a
       non-positive best: ``best - tie_margin``), i.e. none is clearly above the others,
       and whose fused ``score`` is as close to the best fused score: with convex fusion the
       lexical side separates what cosine ties ("When is all-hands?": cosine 0.41 vs 0.42, fused
       0.98 vs 0.70, only one document has the word); rank fusion's scores are nearly tied by
       construction, so there this adds nothing;
    3. the contenders come from at least 2 different documents (``document_id``)
       with at least 2 different titles;
    4. retrieval is weak: the best hit's ``vector_score``, when known, is below
       ``strong_match`` (a strong match means the question is answerable as asked);
    5. the question does not already name the contenders' shared topic: if one of
       its content words is in every contender's title (``vpn`` for "VPN setup"
       and "VPN troubleshooting"), the documents are related, not rival topics.

    The question names the contenders' distinct titles in rank order, at most
    ``max_topics`` of them.
    """
    words = content_words(question)
    if not 1 <= len(words) <= max_content_words or len(hits) < 2:
        return None
    top = list(hits[:window])
    relevance = _relevance(top)
    best = max(relevance)
    floor, fused_floor = _floor(best, tie_margin), _floor(max(h.score for h in top), tie_margin)
    contenders = [hit for hit, rel in zip(top, relevance, strict=True) if rel >= floor and hit.score >= fused_floor]
    if len({h.document_id for h in contenders}) < 2:
        return None
    best_hit = top[relevance.index(best)]
    if best_hit.vector_score is not None and best_hit.vector_score >= strong_match:
        return None
    titles_words = [set(content_words(h.title)) for h in contenders]
    if any(all(word in tw for tw in titles_words) for word in words):
        return None
    titles: list[str] = []
    for hit in contenders:
        title = hit.title.strip() or hit.display_path  # never source_uri: the server's path
        if title not in titles:
            titles.append(title)
    if len(titles) < 2:
        return None
    shown = [f"“{t}”" for t in titles[:max_topics]]
    options = ", ".join(shown[:-1]) + " or " + shown[-1]
    subject = " ".join(words)
    return (
        f"“{subject}” could mean a few things in the documents. "
        f"Do you mean {options}? Tell me a bit more and I'll look again."
    )
