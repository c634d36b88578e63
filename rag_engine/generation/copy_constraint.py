"""Copy-constrained decoding: the model writes its answer only out of the passages' own words.

A 135M-parameter model asked to answer from passages drifts into fluent text no
passage says ("You should not panic ... ignore the high-urgency pages"), and
biasing it towards the passages' tokens does not stop that (measured: kept
answers got worse). Here the model still decides, token by token, what to say,
but every step is masked so that the answer is a sequence of *segments*, each a
stretch of one passage sentence copied from its start (or from a clause after
";" or ":", such as a table cell) to that sentence's end,
followed by that passage's citation ``[n].``, and the answer may stop after any
complete segment. Nothing outside the passages can be written (no invented
names, numbers or links), and which passage each segment came from is known, so
its citation is always right. What the model contributes is the choice: which
sentences answer the question, where to start inside them, in which order and
when to stop — scored by the (fine-tuned) model, so retraining still changes
what users get.

Word-by-word tokenization equals whole-text tokenization for byte-level BPE
vocabularies (their pre-tokenizer splits at spaces), so each sentence is
tokenized as ``" " + word`` pieces and copied token by token.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import torch
from transformers import LogitsProcessor

from rag_engine.chunking import split_sentences

_INLINE_ITEM = re.compile(r"\s+[-*+]\s+(?=\S)")  # list items the chunker ran into one line
_MIN_SEGMENT_TOKENS = 4  # a segment shorter than this is no statement ("VPN [1].")
_MIN_WORDS = 3  # sentences of fewer words (a bare heading) are not offered
_CLAUSE_END = (";", ":")  # a segment starts at a sentence's start or after one of these (a table row's cell)


@dataclass(frozen=True, slots=True)
class _Sentence:
    passage: int  # 1-based, the citation number
    tokens: tuple[int, ...]
    word_starts: tuple[int, ...]  # token offsets where a segment may begin


@dataclass(slots=True)
class _State:
    """Where a partial answer stands: between segments, inside one, or inside its citation."""

    mode: str = "free"  # free | copy | cite
    positions: frozenset[tuple[int, int]] = frozenset()  # copy: (sentence, next token); cite: (passage, next token)
    segment_tokens: int = 0
    used: frozenset[int] = frozenset()  # sentences already copied from
    segments: int = 0
    ended: frozenset[int] = field(default_factory=frozenset)  # copy: sentences whose end was reached


class CopyConstraint(LogitsProcessor):
    """Masks every token that would leave the passages (see the module docstring); one per generation."""

    def __init__(self, tokenizer: Any, passages: Sequence[str], prompt_length: int, *, max_new_tokens: int,
                 max_segments: int = 3) -> None:
        self.prompt_length = prompt_length
        self.max_new_tokens = max_new_tokens
        self.max_segments = max_segments
        eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
        self.eos = tuple(int(i) for i in eos)
        self.sentences = [s for n, passage in enumerate(passages, start=1) for s in _sentences(tokenizer, n, passage)]
        self.cites = {n: tuple(tokenizer.encode(f" [{n}].", add_special_tokens=False))
                      for n in range(1, len(passages) + 1)}
        self._states: dict[tuple[int, ...], _State] = {(): _State()}

    # -- the mask ---------------------------------------------------------------------
    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        mask = torch.full_like(scores, float("-inf"))
        for row, ids in enumerate(input_ids.tolist()):
            allowed = self.allowed(self.state(tuple(ids[self.prompt_length:])), len(ids) - self.prompt_length)
            if not allowed:
                allowed = set(self.eos)
            mask[row, sorted(i for i in allowed if i < scores.shape[-1])] = 0.0
        return cast(torch.FloatTensor, scores + mask)

    def allowed(self, state: _State, generated: int) -> set[int]:
        """Token ids that may come next."""
        if state.mode == "cite":
            return {self.cites[n][i] for n, i in state.positions}
        if state.mode == "copy":
            out = {self.sentences[s].tokens[i] for s, i in state.positions if i < len(self.sentences[s].tokens)}
            if state.ended and state.segment_tokens >= _MIN_SEGMENT_TOKENS:
                out |= {self.cites[self.sentences[s].passage][0] for s in state.ended}
            return out
        out = set(self.eos) if state.segments else set()
        if state.segments < self.max_segments:
            room = self.max_new_tokens - generated
            out |= {self.sentences[s].tokens[w] for s in range(len(self.sentences)) if s not in state.used
                    for w in self.sentences[s].word_starts
                    if len(self.sentences[s].tokens) - w >= _MIN_SEGMENT_TOKENS
                    and len(self.sentences[s].tokens) - w + len(self.cites[self.sentences[s].passage]) <= room}
        return out

    def state(self, generated: tuple[int, ...]) -> _State:
        """The state after ``generated`` (cached per prefix, so each step costs one transition)."""
        known = self._states.get(generated)
        if known is None:
            known = self._states[generated] = self._step(self.state(generated[:-1]), generated[-1])
        return known

    def _step(self, state: _State, token: int) -> _State:
        if state.mode == "free":
            starts = frozenset((s, w + 1) for s, sentence in enumerate(self.sentences) if s not in state.used
                               for w in sentence.word_starts if sentence.tokens[w] == token)
            return self._copying(state, starts, 1)
        if state.mode == "copy":
            ahead = frozenset((s, i + 1) for s, i in state.positions
                              if i < len(self.sentences[s].tokens) and self.sentences[s].tokens[i] == token)
            if ahead:
                return self._copying(state, ahead, state.segment_tokens + 1)
            passages = frozenset((self.sentences[s].passage, 1) for s in state.ended
                                 if self.cites[self.sentences[s].passage][0] == token)
            used = state.used | state.ended
            return self._citing(_State("cite", passages, used=used, segments=state.segments))
        ahead = frozenset((n, i + 1) for n, i in state.positions if self.cites[n][i] == token)
        return self._citing(_State("cite", ahead, used=state.used, segments=state.segments))

    def _copying(self, state: _State, positions: frozenset[tuple[int, int]], length: int) -> _State:
        ended = frozenset(s for s, i in positions if i == len(self.sentences[s].tokens))
        return _State("copy", positions, length, state.used, state.segments, ended)

    def _citing(self, state: _State) -> _State:
        done = [n for n, i in state.positions if i == len(self.cites[n])]
        if done:  # the citation is written: the segment is complete
            return _State("free", used=state.used, segments=state.segments + 1)
        return state


def _sentences(tokenizer: Any, passage_number: int, passage: str) -> list[_Sentence]:
    """The passage's sentences as token pieces, their final full stop left for the citation's ``].``."""
    out: list[_Sentence] = []
    for sentence in split_sentences(passage):
        for part in _INLINE_ITEM.split(sentence):
            words = part.split()
            if len(words) < _MIN_WORDS:
                continue
            if words[-1].endswith(".") and len(words[-1]) > 1:
                words[-1] = words[-1][:-1]
            tokens: list[int] = []
            starts: list[int] = []
            for i, word in enumerate(words):
                if i == 0 or words[i - 1][-1:] in _CLAUSE_END:
                    starts.append(len(tokens))
                tokens.extend(tokenizer.encode(f" {word}", add_special_tokens=False))
            out.append(_Sentence(passage_number, tuple(tokens), tuple(starts)))
    return out


def tidy(text: str) -> str:
    """The decoded answer with each segment starting with a capital letter."""
    segments = re.split(r"(?<=\]\.)\s+", text.strip())
    return " ".join(s[:1].upper() + s[1:] for s in segments if s)
