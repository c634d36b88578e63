"""The generator protocol: what the engine needs from any answer backend."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from rag_engine.values import FallbackCode, GeneratedText, SearchHit, Turn


class GenerationError(RuntimeError):
    """A backend failed to produce an answer (the engine falls back to extractive)."""


class ModelUnavailable(GenerationError):
    """The model could not be loaded or reached: no answer was attempted."""


class GeneratorBusy(GenerationError):
    """The model did not take or finish the request in the time allowed (a full queue)."""


def fallback_code(exc: BaseException) -> FallbackCode:
    """The reason code an answer carries when ``exc`` made the engine quote the documents instead."""
    if isinstance(exc, GeneratorBusy):
        return FallbackCode.QUEUE_TIMEOUT
    if isinstance(exc, ModelUnavailable):
        return FallbackCode.MODEL_UNAVAILABLE
    return FallbackCode.GENERATOR_ERROR


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
    """A generator whose PEFT adapters can be loaded, hot-swapped and freed (transformers and openai backends).

    The adapter watcher drives it through exactly these members, so a backend
    either supports all of them or is not ``AdapterSwitching`` at all.
    """

    @property
    def active_adapter(self) -> str | None:
        """The version answering now (``None``: the base model)."""
        ...

    @property
    def adapters(self) -> list[str]:
        """The versions loaded (active or not)."""
        ...

    def load_adapter(self, version: str, path: Path, *, activate: bool = False) -> None: ...

    def set_active_adapter(self, version: str | None) -> None: ...

    def unload_adapter(self, version: str) -> None: ...
