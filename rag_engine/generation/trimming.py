"""Cut a retrieved passage down to the sentences that bear on the question.

A small model on a CPU pays for every prompt token (prefill) and is easily
distracted by long passages, so each passage shown to the generator keeps only
its sentences most relevant to the question: the most question content words
first (ties by position in the passage), as many as fit a token limit, put back
in their source order so the passage still reads as written.
"""

from __future__ import annotations

import re
from typing import Protocol

from rag_engine.generation.ask_back import content_words

_PARAGRAPH = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")
# lines that stand on their own (list items, table rows): one unit each, joined back with a newline
_LINE_UNIT = re.compile(r"\s*([-*+]|\d+[.)]|\|)\s?")


class Truncator(Protocol):
    """The part of a ``TokenCounter`` trimming needs."""

    def truncate(self, text: str, max_tokens: int) -> str:
        """The longest prefix of ``text`` of at most ``max_tokens`` tokens."""


def _stem(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _terms(text: str) -> set[str]:
    return {_stem(w) for w in content_words(text)}


def _units(text: str) -> list[tuple[str, str]]:
    """``(separator before, unit)`` pairs: sentences, or whole lines of lists and tables."""
    units: list[tuple[str, str]] = []
    for p, para in enumerate(_PARAGRAPH.split(text.strip())):
        lines = [line.strip() for line in para.splitlines() if line.strip()]
        if not lines:
            continue
        first = "\n\n" if p and units else ""
        if len(lines) > 1 and all(_LINE_UNIT.match(line) for line in lines):
            units += [(first if i == 0 else "\n", line) for i, line in enumerate(lines)]
            continue
        sentences = [s.strip() for s in _SENTENCE_END.split(" ".join(lines)) if s.strip()]
        units += [(first if i == 0 else " ", s) for i, s in enumerate(sentences)]
    return units


def _join(units: list[tuple[str, str]], chosen: list[int]) -> str:
    text = ""
    for i in sorted(chosen):
        sep, unit = units[i]
        text += (sep if text else "") + unit
    return text


def trim_passage(text: str, question: str, max_tokens: int, counter: Truncator) -> str:
    """``text`` cut to at most ``max_tokens`` tokens by keeping its most question-relevant sentences.

    Returns ``text`` unchanged when it fits (so trimming twice changes nothing) or
    when ``max_tokens`` is 0 (no limit). When the most relevant sentence alone
    does not fit, the longest prefix of it that does.
    """
    if max_tokens <= 0 or counter.truncate(text, max_tokens) == text:
        return text
    units = _units(text)
    wanted = _terms(question)
    overlap = [len(wanted & _terms(unit)) for _, unit in units]
    order = sorted(range(len(units)), key=lambda i: (-overlap[i], i))
    if not units:
        return counter.truncate(text, max_tokens)
    best = units[order[0]][1]
    if counter.truncate(best, max_tokens) != best:  # the most relevant sentence alone is too long: its start
        return counter.truncate(best, max_tokens)
    chosen: list[int] = []
    for i in order:
        candidate = _join(units, [*chosen, i])
        if counter.truncate(candidate, max_tokens) == candidate:
            chosen.append(i)
    return _join(units, chosen)
