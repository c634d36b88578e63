"""The extractive answerer: no language model, only sentences from the passages.

It picks the sentences from the top chunks most similar to the question, keeps
them in source order and cites each as ``[n]``. It is the baseline and the
fallback whenever a model-based generator cannot answer. Sentences that try to
give orders (``safety.looks_like_injection``) are never quoted; the engine
flags their chunks in the interaction log.
"""

from __future__ import annotations

import numpy as np

from rag_engine.chunking import split_sentences
from rag_engine.embedding import Embedder
from rag_engine.safety import looks_like_injection
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
        candidates: list[tuple[int, int, str]] = []  # (passage number, position, sentence)
        for n, hit in enumerate(hits[: self.max_passages], start=1):
            for pos, sentence in enumerate(split_sentences(hit.text)):
                if len(sentence.split()) >= 3 and not looks_like_injection(sentence):
                    candidates.append((n, pos, sentence))
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
        parts = [f"{candidates[i][2].rstrip()} [{candidates[i][0]}]" for i in chosen]
        shown = tuple(h.text for h in hits[: self.max_passages])
        return GeneratedText(text=" ".join(parts), model=NAME, passages=shown)
