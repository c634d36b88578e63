"""Text embeddings with sentence-transformers (batched, L2-normalized)."""

from __future__ import annotations

import logging
from typing import Any, Protocol

import numpy as np

from rag_engine.config import EmbeddingConfig
from rag_engine.embedding_model import resolve_embedding_model
from rag_engine.embedding_onnx import OnnxInt8Embedder

log = logging.getLogger(__name__)


class Embedder(Protocol):
    model_name: str
    backend: str
    dim: int

    def embed_documents(self, texts: list[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


class SentenceTransformerEmbedder:
    """fp32 torch backend."""

    backend = "torch"

    def __init__(self, model: str, *, device: str = "cpu", batch_size: int = 32) -> None:
        from sentence_transformers import SentenceTransformer  # lazy: torch loads only when this backend is used

        self.model_name = model
        self.batch_size = batch_size
        self._model = SentenceTransformer(resolve_embedding_model(model), device=device)
        st = self._model
        dimension = getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension
        self.dim = _known(dimension(), "embedding dimension")
        self.max_seq_length = _known(self._model.max_seq_length, "max_seq_length")
        self.tokenizer = self._model.tokenizer

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        row: np.ndarray = self.embed_documents([text])[0]
        return row


def build_embedder(config: EmbeddingConfig) -> Embedder:
    if config.embedding_backend == "onnx-int8":
        return OnnxInt8Embedder.from_config(config)
    return SentenceTransformerEmbedder(
        config.embedding_model, device=config.embedding_device, batch_size=config.embedding_batch_size
    )


def count_tokens(tokenizer: Any, text: str) -> int:
    """Tokens ``text`` takes in a Hugging Face tokenizer, without [CLS]/[SEP]."""
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def _known(value: object, what: str) -> int:
    """An integer the model reports; a model that reports none cannot be used for chunking."""
    if not isinstance(value, int):
        raise RuntimeError(f"the embedding model reports no {what} ({value!r})")
    return value
