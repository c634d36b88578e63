"""How well a generated answer is supported by the passages it was shown.

Each answer sentence is matched to the most similar passage; a sentence whose
best match is close enough to be a paraphrase counts as supported. This gives
(1) post-hoc ``[n]`` markers for models that answer without writing them, and
(2) the grounding check: an answer that is mostly unsupported is replaced by
the extractive one instead of being shown.

Similarity alone reads "$75" as a paraphrase of "$75 per person", so numbers
are held strictly (``rag_engine.quantities``): a sentence is supported only by
a passage that states its amounts with the same units and qualifiers, and a
sentence whose amounts no passage states is reported in ``wrong_amounts``.

Similarity also reads a restated question as "on topic", hence supported; ``shallow``
catches that and a link no passage has, and ``invents`` an answer naming a name,
number or term no passage has (``rag_engine.invented``). Those three were measured on
156 hand-labelled generated answers (benchmarks/grounding_generated.py): none
rejected a supported answer. ``describes_passages`` catches answers about the
passages ("The passage is about …") rather than from them; it rejects 4 answers
labelled supported there, which scored far below the extract that replaces them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from rag_engine.chunking import split_sentences
from rag_engine.embedding import Embedder
from rag_engine.invented import invented_terms
from rag_engine.quantities import amounts, keeps_amounts
from rag_engine.values import SearchHit

MIN_SIMILARITY = 0.5
_MARKER = re.compile(r"\s*\[\d+(?:\s*,\s*\d+)*\]")
_URL = re.compile(r"(?:https?://|www\.)[^\s)\]>\"']+")
_WORD = re.compile(r"[a-z][a-z0-9'’-]{2,}")
# words any answer may use without saying anything: they do not count as taken from the passages
_FILLER = frozenset("""the and for are was were this that these those with from into your you our its it's has have had
    not but can will would should could does did how what when where who why which about answer answered question
    passage passages document documents provided provides quoted data fact here there then than also very just
    more most some any all each other such only own same both""".split())


@dataclass(frozen=True, slots=True)
class Support:
    annotated: str  # the answer with [n] after each supported sentence
    fraction: float  # supported sentences / sentences
    wrong_amounts: tuple[str, ...] = ()  # sentences stating an amount no passage states so (unit, "per …")


def support(text: str, hits: list[SearchHit], shown: int, embedder: Embedder,
            min_similarity: float = MIN_SIMILARITY, *, strict_amounts: bool = True) -> Support:
    """``strict_amounts=False`` is the similarity-only check (kept to measure what the strict one changes)."""
    sentences = [s for s in split_sentences(_MARKER.sub("", text)) if s.strip()]
    passages = [h.text for h in hits[: max(1, shown)]]
    if not sentences or not passages:
        return Support(text, 0.0)
    vectors = embedder.embed_documents(sentences + passages)
    sims = vectors[: len(sentences)] @ vectors[len(sentences):].T
    wrong: list[str] = []
    if strict_amounts:
        for i, sentence in enumerate(sentences):
            if amounts(sentence):
                keeps = np.array([keeps_amounts(sentence, p) for p in passages])
                sims[i, ~keeps] = -1.0  # a passage that does not state these amounts cannot support the sentence
                if not keeps.any():
                    wrong.append(sentence)
    best = np.argmax(sims, axis=1)
    supported = sims[np.arange(len(sentences)), best] >= min_similarity
    out = [s.rstrip() + (f" [{best[i] + 1}]" if supported[i] else "") for i, s in enumerate(sentences)]
    return Support(" ".join(out), float(supported.mean()), tuple(wrong))


def rejection(found: Support, min_fraction: float) -> str | None:
    """Why a generated answer must not be shown (None: show it); ``min_fraction`` 0 switches the check off."""
    if not min_fraction:
        return None
    if found.wrong_amounts:  # a changed amount or a dropped "per …" is never a paraphrase, however few
        return ("generated answer not supported by the passages: it states an amount they do not "
                "(or drops its unit or 'per …')")
    if found.fraction < min_fraction:
        return f"generated answer not supported by the passages ({found.fraction:.0%} of sentences)"
    return None


def shallow(answer: str, question: str, passages: list[str]) -> str | None:
    """Why an answer says nothing the passages say (None: it does): it links an address no passage has, or it
    adds no word of the passages to the question's own words (a restated question, an empty lead-in)."""
    shown = " ".join(passages)
    if any(url.rstrip(".,") not in shown for url in _URL.findall(answer)):
        return "generated answer links an address no passage has"
    asked = set(_WORD.findall(question.lower()))
    said = set(_WORD.findall(shown.lower()))
    new = {w for w in _WORD.findall(answer.lower()) if w not in asked and w not in _FILLER and w in said}
    return None if new else "generated answer adds nothing from the passages to the question"


# a lead-in that says nothing ("The answer to your question is:"), skipped before ``_DESCRIBES`` looks
_LEAD_IN = re.compile(r"^\W*(?:the )?answer(?: to (?:this|your|the) question)? is\s*:?\s*", re.I)
# an answer whose subject is the passage itself ("The passage is about …", "The passages are quoted data",
# "The passage provides a clear explanation of …"), or a hedge ("The answer to this question depends …");
# "The passage says / states / notes …" and "… explains / mentions / shows that …" report content, so pass
_DESCRIBES = re.compile(
    r"^\W*(?:(?:the|this|these|that) (?:passage|passages|text|excerpt)s?\b"
    r"(?! (?:says|states|notes)\b)(?! (?:explains|mentions|shows) that\b)"
    r"|the answer to (?:this|your|the) question depends\b)", re.I)


def describes_passages(answer: str) -> str | None:
    """Why an answer talks about the passages instead of answering from them (None: it does not).

    A small model's commonest fluent non-answer. The similarity check keeps it (it names the passage's
    topic), and so did some hand labels ("supported", nothing false), but on the tts-handbook *train*
    questions such answers scored token-F1 0.18 against the reference, where the extract the engine falls
    back to scored 0.85 (benchmarks/grounding_generated.py; docs/retraining.md §12)."""
    if _DESCRIBES.match(_LEAD_IN.sub("", _MARKER.sub("", answer).strip(), count=1)):
        return "generated answer describes the passages instead of answering"
    return None


def content_rejection(answer: str, question: str, passages: list[str]) -> str | None:
    """Why the grounding check rejects an answer for what it says, beyond similarity (None: it does not):
    ``describes_passages``, ``shallow``, then ``invents``. The engine and the calibration benchmark both
    apply exactly this."""
    return describes_passages(answer) or shallow(answer, question, passages) or invents(answer, question, passages)


def invents(answer: str, question: str, passages: list[str]) -> str | None:
    """Why an answer must not be shown because it names what no passage holds (None: it names nothing new):
    a name, number or term that neither the passages shown nor the question contain (``rag_engine.invented``)."""
    terms = invented_terms(answer, passages, question)
    if not terms:
        return None
    return f"generated answer names {', '.join(repr(t) for t in terms[:3])}, which no passage has"
