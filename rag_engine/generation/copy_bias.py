"""Copy bias: a small model writes the documents' words rather than its own.

A 135M-parameter model asked to answer from passages drifts into fluent text
that no passage says ("You should not panic ..."), and the grounding check then
replaces the answer by a quote. Adding a constant to the logits of every token
that occurs in the passages shown (and the question) tilts each step towards
copying or paraphrasing them, the way copy mechanisms and pointer-generator
decoders do, without training. Tokens outside the passages stay possible (a
verb the answer needs, "[1]"), only less likely.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from transformers import LogitsProcessor

_WORD = re.compile(r"\S+")
_ALWAYS = (" [1]", " [2]", " [3]", " [4]", " [5]", "[1]", ".", ",", " and", " the", " a", " to", " is", " are",
           " you", " your", " if", " of", " in", " for", " with", " it", " or")


class CopyBias(LogitsProcessor):
    """Adds ``bias`` to the logits of a fixed set of token ids at every step."""

    def __init__(self, token_ids: Iterable[int], bias: float, vocab_size: int) -> None:
        ids = sorted({i for i in token_ids if 0 <= i < vocab_size})
        self.boost = torch.zeros(vocab_size)
        if ids:
            self.boost[torch.tensor(ids)] = bias

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        boost = self.boost.to(device=scores.device, dtype=scores.dtype)
        width = min(scores.shape[-1], boost.shape[0])
        scores[..., :width] += boost[:width]
        return scores


def copy_token_ids(tokenizer: Any, texts: Sequence[str], extra_ids: Iterable[int] = ()) -> set[int]:
    """Token ids that write ``texts`` again: the texts as tokenized, and each of their words with a leading
    space and capitalised (the same word tokenizes differently at the start of a sentence)."""
    ids: set[int] = set(extra_ids)
    words: set[str] = set()
    for text in texts:
        ids.update(tokenizer.encode(text, add_special_tokens=False))
        words.update(_WORD.findall(text))
    variants = {v for w in words for v in (f" {w}", f" {w[:1].upper()}{w[1:]}", f"{w[:1].upper()}{w[1:]}")}
    variants.update(_ALWAYS)
    for variant in sorted(variants):
        ids.update(tokenizer.encode(variant, add_special_tokens=False))
    return ids
