"""Retrieval training pairs (question, chunk) from feedback, with hard negatives mined from the index.

Positives, by the generator's training-set rules (``rag_engine.training.dataset``):

- a 👍 answer (votes add up to > 0, answered or fallback): the passages it cited;
- an approved correction (an admin's, else the latest approved): the passages its
  ``[n]`` markers name (readers' numbers, resolved through the answer's citations),
  else the passages the corrected answer cited;
- a curated Q&A line with a ``source`` page: the chunk of that document (in a
  collection that allows training) sharing most content words with its answer.
  Bootstrap pairs and lines without a source name no document and are left out.

Only collections that allow training count: an interaction is used only when every
collection it retrieved from and its thread history drew on allows training, and
a positive chunk in any other collection is dropped. One pair per normalized
question (strongest origin first, as the training set), split like the training
set: reviewed pairs (curated, approved corrections) are held out by question hash,
👍 pairs always train. Cited chunks replaced by a re-ingest since are dropped (counted).

Hard negatives: the question's top vector hits (raw query, training-allowed
collections of the pair) that are neither a positive nor a chunk of a positive's
document, so another section of the right page is never pushed away.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rag_engine.config import TrainingConfig
from rag_engine.embedding import Embedder
from rag_engine.generation.ask_back import content_words
from rag_engine.interactions import record_from_row
from rag_engine.store.chunks import ChunkRepo
from rag_engine.store.database import Database
from rag_engine.store.retrieval_pairs import RetrievalPairRepo
from rag_engine.store.training_examples import TrainingExampleRepo
from rag_engine.training import bootstrap
from rag_engine.training.dataset import (
    REVIEWED_ORIGINS,
    Origin,
    is_heldout,
    is_upvoted,
    not_upvoted_reason,
    question_key,
)
from rag_engine.training.query_adapter import PairTensors

_PRIORITY: dict[str, int] = {"admin_correction": 4, "correction": 3, "curated": 2, "upvote": 1}
_MARKER_RE = re.compile(r"\[\s*(\d+(?:\s*,\s*\d+)*)\s*\]")


@dataclass(frozen=True, slots=True)
class RetrievalPair:
    """One question and the chunks that answer it (``grades`` parallel to ``positives``, 1 unless judged)."""

    question: str
    positives: tuple[int, ...]
    origin: Origin
    source_id: int
    collection_ids: tuple[int, ...]  # where it may search: the training-allowed collections it came from
    grades: tuple[int, ...] = ()
    reference: str = ""  # the reviewed answer (curated, approved correction): the gate scores what users receive

    @property
    def key(self) -> str:
        return question_key(self.question)

    @property
    def reviewed(self) -> bool:
        return self.origin in REVIEWED_ORIGINS

    def judgment(self) -> dict[int, int]:
        grades = self.grades or (1,) * len(self.positives)
        return dict(zip(self.positives, grades, strict=True))


@dataclass(slots=True)
class PairSet:
    train: list[RetrievalPair]
    heldout: list[RetrievalPair]
    excluded: Counter[str] = field(default_factory=Counter)

    def snapshot(self) -> dict[str, Any]:
        both = [*self.train, *self.heldout]
        return {"train": len(self.train), "heldout": len(self.heldout),
                "positives": sum(len(p.positives) for p in both),
                "origins": dict(Counter(p.origin for p in both)), "excluded": dict(self.excluded)}


def mine_pairs(db: Database, config: TrainingConfig) -> PairSet:
    """Every usable pair feedback has produced so far, de-duplicated and split."""
    examples = TrainingExampleRepo(db)
    chunks = RetrievalPairRepo(db)
    allowed = examples.collection_training_flags()
    excluded: Counter[str] = Counter()
    found = [*_from_interactions(examples, chunks, allowed, excluded), *_from_curated(examples, chunks, allowed,
                                                                                      excluded)]
    best: dict[str, RetrievalPair] = {}
    for pair in found:
        current = best.get(pair.key)
        if current is not None:
            excluded["duplicate question"] += 1
            if _PRIORITY[pair.origin] <= _PRIORITY[current.origin]:
                continue
        best[pair.key] = pair
    train, heldout = split_pairs(list(best.values()), config.train_heldout_fraction)
    return PairSet(train, heldout, excluded)


def split_pairs(pairs: Sequence[RetrievalPair], fraction: float) -> tuple[list[RetrievalPair], list[RetrievalPair]]:
    """By question hash, reviewed pairs only held out (the training set's rule); with two or more reviewed
    pairs and ``fraction > 0`` neither side is left without one."""
    ordered = sorted(pairs, key=lambda p: p.key)
    heldout = [p for p in ordered if p.reviewed and is_heldout(p.key, fraction)]
    train = [p for p in ordered if not (p.reviewed and is_heldout(p.key, fraction))]
    if fraction > 0 and len(ordered) >= 2:
        reviewed_train = [p for p in train if p.reviewed]
        if not heldout and reviewed_train:
            heldout, train = [reviewed_train[0]], [p for p in train if p is not reviewed_train[0]]
        elif not train:
            train, heldout = [heldout[-1]], heldout[:-1]
    return train, heldout


def build_tensors(pairs: Sequence[RetrievalPair], embedder: Embedder, db: Database, chunks: ChunkRepo, *,
                  hard_negatives: int, ef_search: int) -> PairTensors:
    """One row per (question, positive chunk), with up to ``hard_negatives`` mined negatives per question."""
    repo = RetrievalPairRepo(db)
    queries = [embedder.embed_query(p.question) for p in pairs]
    negatives = [mine_negatives(repo, chunks, qv, p, hard_negatives, ef_search) for qv, p in zip(queries, pairs,
                                                                                                    strict=True)]
    vectors = repo.embeddings(sorted({c for p in pairs for c in p.positives} | {c for n in negatives for c in n}))
    dim = int(queries[0].shape[0]) if queries else embedder.dim
    rows: list[tuple[int, int, list[int]]] = [(g, c, [n for n in negatives[g] if n in vectors])
                                             for g, p in enumerate(pairs) for c in p.positives if c in vectors]
    h = max((len(r[2]) for r in rows), default=0)
    neg = np.zeros((len(rows), h, dim), dtype=np.float32)
    neg_ids = np.full((len(rows), h), -1, dtype=np.int64)
    for r, (_, _, ids) in enumerate(rows):
        for j, cid in enumerate(ids):
            neg[r, j], neg_ids[r, j] = vectors[cid], cid
    return PairTensors(
        queries=np.asarray([queries[g] for g, _, _ in rows], dtype=np.float32).reshape(len(rows), dim),
        positives=np.asarray([vectors[c] for _, c, _ in rows], dtype=np.float32).reshape(len(rows), dim),
        group=np.asarray([g for g, _, _ in rows], dtype=np.int64),
        positive_ids=np.asarray([c for _, c, _ in rows], dtype=np.int64),
        negatives=neg, negative_ids=neg_ids,
    )


def mine_negatives(repo: RetrievalPairRepo, chunks: ChunkRepo, query_vector: np.ndarray, pair: RetrievalPair,
                   count: int, ef_search: int) -> list[int]:
    """The top vector hits that are neither positives nor in a positive's document."""
    if count <= 0 or not pair.collection_ids:
        return []
    with chunks.searching() as search:
        run = search.vector(query_vector, list(pair.collection_ids), count * 3 + len(pair.positives) + 5, ef_search)
    ranked = sorted(run, key=lambda i: (-run[i], i))
    rows = {r.chunk_id: r for r in repo.chunks([*ranked, *pair.positives])}
    positive_docs = {rows[c].document_id for c in pair.positives if c in rows}
    return [i for i in ranked if i in rows and i not in pair.positives
            and rows[i].document_id not in positive_docs][:count]


# -- sources ---------------------------------------------------------------------
def _from_interactions(examples: TrainingExampleRepo, repo: RetrievalPairRepo, allowed: dict[int, bool],
                       excluded: Counter[str]) -> list[RetrievalPair]:
    found: list[RetrievalPair] = []
    rows, _ = examples.rated_interactions()
    for row in rows:
        record = record_from_row(row)
        origin: Origin
        if row.correction is not None:
            origin = "admin_correction" if row.is_admin else "correction"
            cited = _cited_by_markers(row.correction, record.citations) or _cited(record.citations)
        elif is_upvoted(row):
            origin, cited = "upvote", _cited(record.citations)
        else:
            excluded[not_upvoted_reason(row)] += 1
            continue
        if not all(allowed.get(cid, False) for cid in record.retrieved_collection_ids):
            excluded["collection does not allow training"] += 1
            continue
        if not all(allowed.get(cid, False) for cid in record.history_collection_ids):
            excluded["thread history from a collection that does not allow training"] += 1
            continue
        if not cited:
            excluded["no cited passage"] += 1
            continue
        live = [r for r in repo.chunks(cited) if allowed.get(r.collection_id, False)]
        if not live:
            excluded["cited passage no longer indexed"] += 1
            continue
        positives = tuple(r.chunk_id for r in live)
        scope = tuple(sorted(record.retrieved_collection_ids | {r.collection_id for r in live}))
        found.append(RetrievalPair(record.question, positives, origin, record.id, scope,
                                   reference=row.correction or ""))
    return found


def _cited(citations: Sequence[dict[str, Any]]) -> list[int]:
    return sorted({int(c["chunk_id"]) for c in citations if c.get("chunk_id")})


def _cited_by_markers(text: str, citations: Sequence[dict[str, Any]]) -> list[int]:
    """Chunks a correction's ``[n]`` markers name (readers' numbers: ``n`` of the answer's citations)."""
    numbers = {int(n) for m in _MARKER_RE.finditer(text) for n in re.findall(r"\d+", m.group(1))}
    return sorted({int(c["chunk_id"]) for c in citations if c.get("n") in numbers and c.get("chunk_id")})


def _from_curated(examples: TrainingExampleRepo, repo: RetrievalPairRepo, allowed: dict[int, bool],
                  excluded: Counter[str]) -> list[RetrievalPair]:
    trainable = sorted(cid for cid, ok in allowed.items() if ok)
    found: list[RetrievalPair] = []
    for row in examples.curated():
        if row.collection_id is not None and not allowed.get(row.collection_id, False):
            excluded["collection does not allow training"] += 1
            continue
        if not row.source or row.source == bootstrap.SOURCE:
            excluded["curated: no source document"] += 1
            continue
        scope = [row.collection_id] if row.collection_id is not None else trainable
        candidates = repo.document_chunks(row.source, scope)
        if not candidates:
            excluded["curated: source document not indexed"] += 1
            continue
        best = best_chunk(row.answer, row.question, [(c.heading_path, c.text) for c in candidates])
        chunk = candidates[best]
        found.append(RetrievalPair(row.question, (chunk.chunk_id,), "curated", row.id, tuple(scope),
                                   reference=row.answer))
    return found


def best_chunk(answer: str, question: str, chunks: Sequence[tuple[str, str]]) -> int:
    """Index of the chunk sharing most content words with the answer (then the question; the first on a tie)."""
    answer_words, question_words = set(content_words(answer)), set(content_words(question))

    def overlap(i: int) -> tuple[int, int, int]:
        words = set(content_words(" ".join(chunks[i])))
        return len(answer_words & words), len(question_words & words), -i

    return max(range(len(chunks)), key=overlap)
