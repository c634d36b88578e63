"""The active query adapter applied to query embeddings before vector search.

A query adapter (trained in ``rag_engine.training.query_adapter``, versioned in
``rag_engine.training.retrieval_registry``) is a d×d matrix ``W``: the search vector is
``normalize(q W)``. Each question reads which version is active (one indexed row), so an
activation or a rollback, from this process or another, applies from the next question
on; the matrix itself is loaded once per version and kept. A version trained for another
embedder (model or dimension) is never applied: the raw query is searched, and a warning
says why once.

A version may also carry a fusion weight per collection, fitted on the same feedback
(``rag_engine.training.fusion_weights``): a corpus where words matter more than meaning
learns to lean on the lexical list. The retriever uses it for convex fusion only.
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from rag_engine.store.query_adapters import QueryAdapterRepo, QueryAdapterTx

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class QueryAdapter:
    """``W = I + ΔW`` (float32, d×d); ``rank`` is the rank it was trained with (0: full); ``vector_weights``:
    collection id -> the convex fusion's vector weight learned with it (collections not named keep the
    configured weight)."""

    matrix: np.ndarray
    rank: int = 0
    vector_weights: Mapping[int, float] = field(default_factory=dict)

    @classmethod
    def identity(cls, dim: int) -> QueryAdapter:
        return cls(np.eye(dim, dtype=np.float32))

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[0])

    def apply(self, queries: np.ndarray) -> np.ndarray:
        """Transformed, L2-normalized query vector(s): a (d,) or (n, d) array in, the same shape out."""
        out = np.asarray(queries, dtype=np.float32) @ self.matrix
        norm = np.linalg.norm(out, axis=-1, keepdims=True)
        result: np.ndarray = (out / np.maximum(norm, 1e-12)).astype(np.float32)
        return result

    def vector_weight(self, collection_ids: Sequence[int], configured: float) -> float:
        """The vector weight for a search over ``collection_ids``: the mean of each collection's learned weight,
        the configured one standing in for a collection without one."""
        if not self.vector_weights or not collection_ids:
            return configured
        return sum(self.vector_weights.get(c, configured) for c in collection_ids) / len(collection_ids)

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        cids = sorted(self.vector_weights)
        np.savez(buf, W=self.matrix.astype(np.float32), rank=np.array(self.rank),
                 weight_collections=np.array(cids, dtype=np.int64),
                 weight_values=np.array([self.vector_weights[c] for c in cids], dtype=np.float64))
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> QueryAdapter:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            matrix = np.asarray(npz["W"], dtype=np.float32)
            rank = int(npz["rank"])
            weights = ({int(c): float(w) for c, w in zip(npz["weight_collections"], npz["weight_values"], strict=True)}
                       if "weight_collections" in npz.files else {})  # versions saved before weights were learned
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
            raise ValueError(f"a query adapter is a square matrix, got shape {matrix.shape}")
        return cls(matrix, rank, weights)


@dataclass(frozen=True, slots=True)
class PinnedQueryAdapter:
    """One version applied whatever is active (``eval retrieval --retriever-version``), named so that its
    searches report the version that served them instead of passing for raw queries."""

    version: str
    adapter: QueryAdapter

    def apply(self, query_vector: np.ndarray) -> np.ndarray:
        return self.adapter.apply(query_vector)


class ActiveQueryAdapter:
    """Applies the active version for one embedder; thread-safe (asks run on a pool)."""

    def __init__(self, repo: QueryAdapterRepo, embedding_model: str, dim: int) -> None:
        self._repo = repo
        self._model = embedding_model
        self._dim = dim
        self._lock = threading.Lock()
        self._loaded: dict[str, QueryAdapter | None] = {}  # version -> adapter (None: does not fit)

    def current(self, reads: QueryAdapterTx | None = None) -> tuple[str | None, QueryAdapter | None]:
        """(active version, its adapter); the adapter is None without an active version or when it does not fit.

        ``reads``: the search's own transaction. A search holds its pooled connection while it runs, so the
        lookup must use that one: a second connection could wait forever on a small pool, and its own
        read-only transaction would end in a ROLLBACK that makes psycopg drop the prepared statements.
        """
        source: QueryAdapterTx | QueryAdapterRepo = reads if reads is not None else self._repo
        version = source.active_version()
        if version is None:
            return None, None
        with self._lock:
            if version not in self._loaded:
                self._loaded[version] = self._load(version, source)
            return version, self._loaded[version]

    def apply(self, query_vector: np.ndarray, reads: QueryAdapterTx | None = None) -> np.ndarray:
        adapter = self.current(reads)[1]
        return query_vector if adapter is None else adapter.apply(query_vector)

    def _load(self, version: str, source: QueryAdapterTx | QueryAdapterRepo) -> QueryAdapter | None:
        found = source.weights(version)
        if found is None:  # rolled back and deleted between the two reads: search raw this time
            return None
        model, dim, weights = found
        if model != self._model or dim != self._dim:
            log.warning("query adapter %s fits embedder %s (dim %d), not %s (dim %d): searching raw queries",
                        version, model, dim, self._model, self._dim)
            return None
        return QueryAdapter.from_bytes(weights)


QueryTransform = ActiveQueryAdapter | PinnedQueryAdapter  # what a retriever searches with: the active or a pinned one
