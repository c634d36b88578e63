"""Post-hoc citations for generated answers that carry no ``[n]`` markers.

Small models often answer from the passages without writing markers. Each
answer sentence is matched to the most similar passage it was shown; the
sentence is cited only when the match is close enough to be a paraphrase.
"""

from __future__ import annotations

import numpy as np

from rag_engine.chunking import split_sentences
from rag_engine.embedding import Embedder
from rag_engine.types import SearchHit

MIN_SIMILARITY = 0.5


def attribute(text: str, hits: list[SearchHit], shown: int, embedder: Embedder,
              min_similarity: float = MIN_SIMILARITY) -> str:
    """``text`` with ``[n]`` appended to each sentence that closely matches passage n."""
    sentences = split_sentences(text)
    passages = [h.text for h in hits[: max(1, shown)]]
    if not sentences or not passages:
        return text
    vectors = embedder.embed_documents(sentences + passages)
    sims = vectors[: len(sentences)] @ vectors[len(sentences):].T
    best = np.argmax(sims, axis=1)
    out = []
    for i, sentence in enumerate(sentences):
        marker = f" [{best[i] + 1}]" if sims[i, best[i]] >= min_similarity else ""
        out.append(sentence.rstrip() + marker)
    return " ".join(out)
