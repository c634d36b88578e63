"""The extractive answerer: no language model, only sentences from the passages.

It is the baseline and the fallback whenever a model-based generator cannot
answer, so it must answer on its own. Handbooks answer a question in the section
whose heading asks it: when a top passage's heading shares enough terms with the
question, only that "anchor" section is quoted, its sentences ranked by the
IDF-weighted share of the question's terms they contain (IDF over the candidate
sentences; ties keep source order). Otherwise up to three sentences similar
enough to the question are quoted, ranked by embedding similarity plus that
share (embedding sentences is the slow part, so the anchor case skips it: about
5 ms per answer). Sentences that only restate the question are skipped. The
best are taken until a character budget is spent (short answers read and score
better), then shown in source order, each cited as ``[n]``. Sentences that try
to give orders (``safety.looks_like_injection``) are never quoted; the engine
flags their chunks in the interaction log. A table is quoted row by row, each
row with its column names (``Service: API; SLI: 5xx``) and listed on a line of
its own, never as table syntax.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from rag_engine.chunking import split_sentences
from rag_engine.embedding import Embedder
from rag_engine.pipe_tables import find_tables, row_sentences
from rag_engine.safety import looks_like_injection
from rag_engine.values import GeneratedText, SearchHit, Turn

NAME = "extractive"


# picked on the tts-handbook train questions and examples/handbook (docs/retrieval.md, "Extractive answers")
BUDGET_CHARS = 600  # the knee: token-F1 0.72 at 400, 0.78 at 600, 0.79 at 800 characters
LEXICAL_WEIGHT = 0.5  # IDF-weighted question-term overlap, added to the cosine similarity (no anchor)
HEADING_MATCH = 0.25  # least question/heading Jaccard for an anchor (0.2: wrong anchors on handbook; 0.3: F1 -.02)
UNANCHORED_SENTENCES = 3  # without an anchor, a few similar sentences (examples/handbook F1 0.31 with 8, 0.35 with 3)
RANK_PENALTY = 0.1  # per rank, when choosing the anchor among equally matching headings
RESTATES = 0.2  # a sentence with fewer than this share of words not in the question only restates it

_STOP = frozenset("""a an the of to in on for and or is are was were be been being do does did how what when where
which who whom why can could should would will shall may might must i you we they he she it my your our their me us
this that these those with at by from as if about into than then so not no yes any some there here have has had get
got need want use using via its im""".split())


@dataclass(frozen=True, slots=True)
class _Candidate:
    n: int  # passage number, as cited
    pos: int  # unit position in its passage
    text: str
    is_row: bool
    anchor: bool  # from the anchor section


class ExtractiveAnswerer:
    name = NAME

    def __init__(self, embedder: Embedder, *, max_passages: int = 3, max_sentences: int = 8,
                 min_similarity: float = 0.2, budget_chars: int = BUDGET_CHARS) -> None:
        self.embedder = embedder
        self.max_passages = max_passages
        self.max_sentences = max_sentences
        self.min_similarity = min_similarity  # floor for a sentence when no heading matches the question
        self.budget_chars = budget_chars

    def generate(self, question: str, hits: list[SearchHit], history: list[Turn]) -> GeneratedText:
        shown = hits[: self.max_passages]
        candidates = _candidates(question, shown)
        if not candidates:
            return GeneratedText(text="", model=NAME)
        lexical = _idf_overlap(_terms(question), [_terms(c.text) for c in candidates])
        anchored = [i for i, c in enumerate(candidates) if c.anchor]
        if anchored:  # the section whose heading asks the question answers it: its sentences, by the question's terms
            candidates, scores = [candidates[i] for i in anchored], lexical[anchored]
            eligible = [int(i) for i in np.argsort(-scores, kind="stable")]
        else:  # no heading matches: sentences from any passage, similar enough to the question
            q = self.embedder.embed_query(question)
            sims = self.embedder.embed_documents([c.text for c in candidates]) @ q
            scores = sims + LEXICAL_WEIGHT * lexical
            eligible = [int(i) for i in np.argsort(-scores, kind="stable") if sims[i] >= self.min_similarity]
        most = self.max_sentences if anchored else min(self.max_sentences, UNANCHORED_SENTENCES)
        chosen = _within_budget([len(candidates[i].text) for i in eligible], self.budget_chars, most)
        picked = sorted((eligible[j] for j in chosen), key=lambda i: (candidates[i].n, candidates[i].pos))
        if not picked:  # nothing on topic: the single best sentence, as before
            picked = [int(np.argmax(scores))]
        quotes = [(f"{candidates[i].text.rstrip()} [{candidates[i].n}]", candidates[i].is_row) for i in picked]
        return GeneratedText(text=_join(quotes), model=NAME, passages=tuple(h.text for h in shown))


def _terms(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 1 and w not in _STOP}


def _heading_match(question: set[str], hit: SearchHit) -> float:
    """Jaccard overlap of the question's terms with the passage's own (last) heading."""
    heading = _terms(hit.heading_path.rsplit(" > ", 1)[-1])
    return len(question & heading) / len(question | heading) if question and heading else 0.0


def _candidates(question: str, hits: list[SearchHit]) -> list[_Candidate]:
    """Quotable units of the passages, once each (chunks overlap), flagged when in the anchor section."""
    q = _terms(question)
    matching = [(_heading_match(q, h) - RANK_PENALTY * i, i) for i, h in enumerate(hits)
                if _heading_match(q, h) >= HEADING_MATCH]
    best = hits[max(matching)[1]] if matching else None
    anchor = (best.source_uri, best.heading_path) if best else None
    seen: set[str] = set()
    out: list[_Candidate] = []
    for n, hit in enumerate(hits, start=1):
        for pos, (sentence, is_row) in enumerate(_units(hit.text)):
            words = _terms(sentence)
            key = " ".join(sentence.split())
            if (key in seen or len(sentence.split()) < 3 or looks_like_injection(sentence)
                    or (words and len(words - q) < RESTATES * len(words))):
                continue
            seen.add(key)
            out.append(_Candidate(n, pos, sentence, is_row, (hit.source_uri, hit.heading_path) == anchor))
    return out


def _idf_overlap(question: set[str], sentences: list[set[str]]) -> np.ndarray:
    """Each sentence's share of the question's IDF weight (rare question words count most)."""
    idf = {t: math.log(1 + len(sentences) / (1 + sum(t in s for s in sentences))) for t in question}
    total = sum(idf.values()) or 1.0
    return np.array([sum(idf[t] for t in question & s) / total for s in sentences])


def _within_budget(lengths: list[int], budget: int, most: int) -> list[int]:
    """Indexes (in ranked order) taken greedily while they fit the budget; the first is always taken."""
    taken: list[int] = []
    used = 0
    for j, length in enumerate(lengths):
        if len(taken) == most or used >= budget:
            break
        if taken and used + length > budget:
            continue
        taken.append(j)
        used += length
    return taken


def _units(text: str) -> list[tuple[str, bool]]:
    """A passage's quotable units in order: sentences, and each table row as one line (flagged True)."""
    units: list[tuple[str, bool]] = []
    pos = 0
    for table in find_tables(text):
        units += [(s, False) for s in split_sentences(text[pos:table.start])]
        units += [(row, True) for row in row_sentences(table)]
        pos = table.end
    return units + [(s, False) for s in split_sentences(text[pos:])]


def _join(quotes: list[tuple[str, bool]]) -> str:
    """Sentences run on as prose; table rows become list items, one per line."""
    blocks: list[tuple[bool, list[str]]] = []
    for quote, is_row in quotes:
        if blocks and blocks[-1][0] == is_row:
            blocks[-1][1].append(quote)
        else:
            blocks.append((is_row, [quote]))
    return "\n\n".join("\n".join(f"- {q}" for q in items) if rows else " ".join(items) for rows, items in blocks)
