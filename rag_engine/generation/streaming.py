"""Generators that hand out their text while they decode (``RAGBOT_REPLY_MODE=stream``).

A streaming backend yields ``TextDelta`` pieces as tokens are decoded and, last,
the complete ``GeneratedText`` (the same value ``generate`` returns), so the
engine checks and cites exactly what a non-streamed answer would have been.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from rag_engine.values import GeneratedText, SearchHit, Turn


@dataclass(frozen=True, slots=True)
class TextDelta:
    """Text the model decoded since the previous piece (raw: markers unresolved, nothing checked)."""

    text: str


@runtime_checkable
class StreamingGenerator(Protocol):
    """A ``Generator`` that can also stream: ``TextDelta``s, then exactly one ``GeneratedText``."""

    name: str

    def generate(self, question: str, hits: list[SearchHit], history: list[Turn]) -> GeneratedText: ...

    def stream(self, question: str, hits: list[SearchHit],
               history: list[Turn]) -> Iterator[TextDelta | GeneratedText]: ...
