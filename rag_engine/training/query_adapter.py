"""A query adapter: a learned linear map applied to query embeddings only, trained contrastively.

``q' = normalize(q (I + ΔW))``. The corpus vectors stay as they are (no re-embedding),
so a version can be switched or rolled back between two questions. ``ΔW`` starts at
zero (the adapter starts as the identity) and is either low-rank (``A B``, ``A``
d×r, ``B`` r×d, ``B`` zero at the start, as in LoRA) or a full d×d matrix; an L2
penalty on ``ΔW`` keeps it near the identity, which is what a few hundred pairs can
support. The loss is InfoNCE over the batch: each question against its own
positive chunk, every other pair's positive (in-batch negatives) and the mined
hard negatives; a column that is also a positive of the row's question is masked
out, so two questions citing the same page do not push each other away.

Training runs on CPU in torch (imported lazily); applying the result is one numpy
matrix product per question (``rag_engine.query_transform``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag_engine.query_transform import QueryAdapter

TEMPERATURE = 0.05  # cosine logits / τ: the usual scale for MiniLM-style normalized embeddings
LEARNING_RATE = 1e-3
BATCH_SIZE = 32


@dataclass(frozen=True, slots=True)
class TrainParams:
    rank: int = 8  # 0: full d×d
    epochs: int = 30
    weight_decay: float = 1e-2  # L2 on ΔW (pulls towards the identity)
    learning_rate: float = LEARNING_RATE
    temperature: float = TEMPERATURE
    batch_size: int = BATCH_SIZE
    seed: int = 13


@dataclass(frozen=True, slots=True)
class PairTensors:
    """Training pairs as arrays: row i is (query i, its positive chunk), ``group`` the question it came from.

    ``negatives`` (n, h, d) are hard negatives per row (h may be 0); ``positive_ids`` / ``negative_ids``
    name the chunks so a column that is another positive of the row's question can be masked.
    """

    queries: np.ndarray
    positives: np.ndarray
    group: np.ndarray
    positive_ids: np.ndarray
    negatives: np.ndarray
    negative_ids: np.ndarray

    def __len__(self) -> int:
        return int(self.queries.shape[0])


@dataclass(frozen=True, slots=True)
class TrainStats:
    pairs: int
    questions: int
    steps: int
    first_loss: float
    last_loss: float
    seconds: float


def train_query_adapter(data: PairTensors, params: TrainParams) -> tuple[QueryAdapter, TrainStats]:
    """Fit ``ΔW`` with InfoNCE (in-batch + hard negatives); deterministic for the same data and seed."""
    import torch  # lazy: only training needs torch; applying an adapter is numpy

    if len(data) == 0:
        raise ValueError("no training pairs")
    started = time.perf_counter()
    torch.manual_seed(params.seed)
    rng = np.random.default_rng(params.seed)
    dim = int(data.queries.shape[1])
    q_all = torch.from_numpy(np.ascontiguousarray(data.queries, dtype=np.float32))
    p_all = torch.from_numpy(np.ascontiguousarray(data.positives, dtype=np.float32))
    n_all = torch.from_numpy(np.ascontiguousarray(data.negatives, dtype=np.float32))
    positive_sets = _positive_sets(data)
    if params.rank > 0:
        a = torch.nn.Parameter(torch.randn(dim, params.rank) * (1.0 / dim ** 0.5))
        b = torch.nn.Parameter(torch.zeros(params.rank, dim))
        weights = [a, b]

        def delta() -> torch.Tensor:
            return a @ b
    else:
        full = torch.nn.Parameter(torch.zeros(dim, dim))
        weights = [full]

        def delta() -> torch.Tensor:
            return full

    optimizer = torch.optim.Adam(weights, lr=params.learning_rate)
    losses: list[float] = []
    steps = 0
    for _ in range(params.epochs):
        order = rng.permutation(len(data))
        for start in range(0, len(order), params.batch_size):
            rows = order[start:start + params.batch_size]
            if len(rows) < 2 and data.negatives.shape[1] == 0:
                continue  # one pair without negatives has nothing to be contrasted with
            idx = torch.from_numpy(rows)
            d = delta()
            q = q_all[idx]
            q = torch.nn.functional.normalize(q + q @ d, dim=-1)
            columns = torch.cat([p_all[idx], n_all[idx].reshape(-1, dim)])
            logits = q @ columns.T / params.temperature
            mask = torch.from_numpy(_mask(rows, data, positive_sets))
            logits = logits.masked_fill(mask, float("-inf"))
            target = torch.arange(len(rows))
            loss = torch.nn.functional.cross_entropy(logits, target) + params.weight_decay * (d ** 2).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            steps += 1
    with torch.no_grad():
        matrix = (torch.eye(dim) + delta()).numpy().astype(np.float32)
    stats = TrainStats(pairs=len(data), questions=len(set(data.group.tolist())), steps=steps,
                       first_loss=losses[0] if losses else 0.0, last_loss=losses[-1] if losses else 0.0,
                       seconds=time.perf_counter() - started)
    return QueryAdapter(matrix, params.rank), stats


def _positive_sets(data: PairTensors) -> dict[int, set[int]]:
    sets: dict[int, set[int]] = {}
    for g, cid in zip(data.group.tolist(), data.positive_ids.tolist(), strict=True):
        sets.setdefault(int(g), set()).add(int(cid))
    return sets


def _mask(rows: Sequence[int] | np.ndarray, data: PairTensors, positive_sets: dict[int, set[int]]) -> np.ndarray:
    """True where a column must not count as a negative for a row: another positive of the row's question."""
    column_ids = np.concatenate([data.positive_ids[rows], data.negative_ids[rows].reshape(-1)])
    mask = np.zeros((len(rows), len(column_ids)), dtype=bool)
    for r, row in enumerate(rows):
        own = positive_sets[int(data.group[row])]
        mask[r] = [int(c) in own for c in column_ids]
        mask[r, r] = False  # the row's own positive is the target
    mask[:, column_ids < 0] = True  # padding (a row with fewer hard negatives than the others)
    return mask
