"""Retrieval retraining on the job queue: the ``retrieval_retrain`` job's work, and when to queue one by itself.

The generator retrains when someone asks (``retrain`` jobs); a query adapter trains in
seconds, so the worker also queues one by itself once feedback has produced
``retrieval_retrain_new_pairs`` training pairs more than the last attempt saw. Either
way the job is the CLI's ``ragbot retrieval train``: mine pairs, train, judge on held-out
questions, register, activate only when the gate passes; serving processes read the
active version per question, so a promotion applies from their next question on.
"""

from __future__ import annotations

from typing import Any

from rag_engine import jobs
from rag_engine.config import RetrievalConfig, TrainingConfig
from rag_engine.embedding import Embedder
from rag_engine.store.chunks import ChunkRepo
from rag_engine.store.database import Database
from rag_engine.training import retrieval_registry as registry
from rag_engine.training.retrieval_pairs import PairSet, mine_pairs
from rag_engine.training.retrieval_pipeline import NothingToTrain, train_retrieval

AUTO_REQUESTER = "worker:auto"  # ``requested_by`` of the jobs the worker queues by itself
_DECISION = {"active": "promoted", "rejected": "rejected", "candidate": "kept"}


def run(db: Database, embedder: Embedder, chunks: ChunkRepo, config: TrainingConfig, *,
        retrieval: RetrievalConfig) -> dict[str, Any]:
    """Train and judge one candidate from every usable pair; the job's result (decision, version, gate numbers)."""
    pairs = mine_pairs(db, config)
    try:
        done = train_retrieval(db, embedder, chunks, config, retrieval=retrieval, pairs=pairs, activate=True)
    except NothingToTrain as exc:
        return {"decision": "skipped", "reason": str(exc), "version": None, "pairs": _count(pairs),
                "snapshot": pairs.snapshot()}
    return {"decision": _DECISION[done.status], "reason": done.verdict.reason, "version": done.version,
            "pairs": _count(pairs), "metrics": {"candidate": done.candidate.as_dict(),
                                                "baseline": done.baseline.as_dict(),
                                                "active": done.active.as_dict() if done.active else None},
            "train": {"seconds": round(done.stats.seconds, 2), "steps": done.stats.steps},
            "snapshot": done.snapshot}


def new_pairs(db: Database, config: TrainingConfig) -> tuple[int, int]:
    """(usable pairs now, pairs the last attempt saw): the newest version's data, or a later job's count."""
    now = _count(mine_pairs(db, config))
    newest = next(iter(registry.list_versions(db)), None)
    seen = int(newest.data_snapshot.get("train", 0)) + int(newest.data_snapshot.get("heldout", 0)) if newest else 0
    for job in jobs.recent(db, kind=jobs.RETRIEVAL_RETRAIN, limit=1):  # a skipped or failed run trained nothing
        counted = (job.result or {}).get("pairs", job.payload.get("pairs"))
        if counted is not None:
            seen = max(seen, int(counted))
    return now, seen


def enqueue_if_due(db: Database, config: TrainingConfig) -> jobs.Enqueued | None:
    """Queue a retrieval retrain when enough new pairs exist (and none is open); None when not due."""
    threshold = config.retrieval_retrain_new_pairs
    if threshold <= 0 or jobs.open_jobs(db, kinds=[jobs.RETRIEVAL_RETRAIN]):
        return None
    now, seen = new_pairs(db, config)
    if now - seen < threshold:
        return None
    return jobs.enqueue(db, jobs.RETRIEVAL_RETRAIN, {"pairs": now, "seen": seen}, requested_by=AUTO_REQUESTER)


def _count(pairs: PairSet) -> int:
    return len(pairs.train) + len(pairs.heldout)
