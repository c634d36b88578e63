"""Build the configured generator backend."""

from __future__ import annotations

from pathlib import Path

from rag_engine.config import GenerationConfig
from rag_engine.generation.base import Generator


def build_generator(config: GenerationConfig, *, adapter: tuple[str, Path] | None = None) -> Generator | None:
    """The backend ``config.generator_backend`` names; ``None`` for "extractive".

    Cheap and side-effect free: the transformers model loads on first use (or
    ``generator.load()``), so a model that cannot load raises ``GenerationError``
    from ``generate`` and the engine falls back to the extractive answerer.
    ``adapter`` is a ``(version, path)`` to load and activate with the model.
    """
    backend = config.generator_backend
    if backend == "extractive":
        return None
    if backend == "transformers":
        from rag_engine.generation.transformers_backend import TransformersGenerator  # lazy: pulls torch

        return TransformersGenerator(config, adapter=adapter)
    if backend == "openai":
        from rag_engine.generation.openai_backend import OpenAIGenerator  # lazy: only this backend needs httpx

        generator = OpenAIGenerator(config)
        if adapter is not None:
            generator.load_adapter(*adapter, activate=True)
        return generator
    raise ValueError(f"unknown generator_backend: {backend!r}")
