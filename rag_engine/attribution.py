"""How well a generated answer is supported by the passages it was shown.

Each answer sentence is matched to the most similar passage; a sentence whose
best match is close enough to be a paraphrase counts as supported. This gives
(1) post-hoc ``[n]`` markers for models that answer without writing them, and
(2) the grounding check: an answer that is mostly unsupported is replaced by
the extractive one instead of being shown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from rag_engine.chunking import split_sentences
from rag_engine.embedding import Embedder
from rag_engine.types import SearchHit

MIN_SIMILARITY = 0.5
_MARKER = re.compile(r"\s*\[\d+(?:\s*,\s*\d+)*\]")


@dataclass(frozen=True, slots=True)
class Support:
    annotated: str  # the answer with [n] after each supported sentence
    fraction: float  # supported sentences / sentences


def support(text: str, hits: list[SearchHit], shown: int, embedder: Embedder,
            min_similarity: float = MIN_SIMILARITY) -> Support:
    sentences = [s for s in split_sentences(_MARKER.sub("", text)) if s.strip()]
    passages = [h.text for h in hits[: max(1, shown)]]
    if not sentences or not passages:
        return Support(text, 0.0)
    vectors = embedder.embed_documents(sentences + passages)
    sims = vectors[: len(sentences)] @ vectors[len(sentences):].T
    best = np.argmax(sims, axis=1)
    supported = sims[np.arange(len(sentences)), best] >= min_similarity
    out = [s.rstrip() + (f" [{best[i] + 1}]" if supported[i] else "") for i, s in enumerate(sentences)]
    return Support(" ".join(out), float(supported.mean()))
