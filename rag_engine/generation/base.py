"""The generator protocol: what the engine needs from any answer backend."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from rag_engine.types import GeneratedText, SearchHit, Turn


class GenerationError(RuntimeError):
    """A backend failed to produce an answer (the engine falls back to extractive)."""


@runtime_checkable
class Generator(Protocol):
    """Turns a question and ranked passages into answer text with ``[n]`` markers.

    ``[n]`` refers to ``hits[n-1]``; the engine resolves markers to citations and
    drops numbers that do not exist.
    """

    name: str

    def generate(self, question: str, hits: list[SearchHit], history: list[Turn]) -> GeneratedText: ...


@runtime_checkable
class AdapterSwitching(Protocol):
    """A generator whose PEFT adapter can be hot-swapped (transformers and openai backends)."""

    @property
    def active_adapter(self) -> str | None: ...

    def load_adapter(self, version: str, path: Path, *, activate: bool = False) -> None: ...

    def set_active_adapter(self, version: str | None) -> None: ...
