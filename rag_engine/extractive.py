"""The extractive answerer: no language model, only sentences from the passages.

It picks the sentences from the top chunks most similar to the question, keeps
them in source order and cites each as ``[n]``. It is the baseline and the
fallback whenever a model-based generator cannot answer. Sentences that try to
give orders (``safety.looks_like_injection``) are never quoted; the engine
flags their chunks in the interaction log. A table is quoted row by row, each
row with its column names (``Service: API; SLI: 5xx``) and listed on a line of
its own, never as table syntax.
"""

from __future__ import annotations

import numpy as np

from rag_engine.chunking import split_sentences
from rag_engine.embedding import Embedder
from rag_engine.safety import looks_like_injection
from rag_engine.tables import find_tables, row_sentences
from rag_engine.types import GeneratedText, SearchHit, Turn

NAME = "extractive"


class ExtractiveAnswerer:
    name = NAME

    def __init__(self, embedder: Embedder, *, max_passages: int = 3, max_sentences: int = 3,
                 min_similarity: float = 0.2) -> None:
        self.embedder = embedder
        self.max_passages = max_passages
        self.max_sentences = max_sentences
        self.min_similarity = min_similarity

    def generate(self, question: str, hits: list[SearchHit], history: list[Turn]) -> GeneratedText:
        candidates: list[tuple[int, int, str, bool]] = []  # (passage number, position, sentence, is a row)
        for n, hit in enumerate(hits[: self.max_passages], start=1):
            for pos, (sentence, is_row) in enumerate(_units(hit.text)):
                if len(sentence.split()) >= 3 and not looks_like_injection(sentence):
                    candidates.append((n, pos, sentence, is_row))
        if not candidates:
            return GeneratedText(text="", model=NAME)
        q = self.embedder.embed_query(question)
        vectors = self.embedder.embed_documents([c[2] for c in candidates])
        sims = vectors @ q
        order = np.argsort(-sims)
        chosen = [int(i) for i in order[: self.max_sentences] if sims[i] >= self.min_similarity]
        if not chosen:
            chosen = [int(order[0])]
        chosen.sort(key=lambda i: (candidates[i][0], candidates[i][1]))  # source order
        quotes = [(f"{candidates[i][2].rstrip()} [{candidates[i][0]}]", candidates[i][3]) for i in chosen]
        shown = tuple(h.text for h in hits[: self.max_passages])
        return GeneratedText(text=_join(quotes), model=NAME, passages=shown)


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
