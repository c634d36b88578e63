"""Admin operations on retraining: retrain, status, rollback (adapter or retrieval), correction review
(platform-neutral).

The caller (``BotCore``, the CLI) has already checked that the actor is an
admin and writes the audit row; these functions only do the work and return
typed results with a plain-text rendering for chat.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.sanitize import sanitize_output
from rag_engine import jobs
from rag_engine.config import EngineConfig
from rag_engine.engine import Database
from rag_engine.feedback import FeedbackCounts, ReviewOutcome, feedback_counts, pending_corrections, review_correction
from rag_engine.training import registry, retrieval_registry
from rag_engine.training.registry import AdapterRecord, NothingToRollBack

__all__ = [
    "AdminStatus",
    "NothingToRollBack",
    "RetrainRequest",
    "RetrievalRollbackResult",
    "ReviewReport",
    "RollbackResult",
    "RunSummary",
    "pending_review",
    "request_retrain",
    "request_retrieval_retrain",
    "review_corrections",
    "rollback",
    "rollback_retrieval",
    "status",
]

LAST_RUNS = 3
PENDING_SHOWN = 20


@dataclass(frozen=True, slots=True)
class RetrainRequest:
    job_id: int
    created: bool  # False: a retrain was already queued or running, and this is its id


@dataclass(frozen=True, slots=True)
class RunSummary:
    """A retrain job, open or finished, with the numbers it produced."""

    job_id: int
    status: str  # queued | running | done | failed
    requested_by: str | None
    created_at: datetime
    finished_at: datetime | None
    version: str | None = None
    decision: str | None = None  # promoted | rejected | skipped
    reason: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)  # {"candidate": {...}, "active": {...}, "base": {...}}
    error: str | None = None


@dataclass(frozen=True, slots=True)
class AdapterSummary:
    version: str
    method: str
    base_model: str
    activated_at: datetime | None
    metrics: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AdminStatus:
    queue: list[RunSummary]
    last_runs: list[RunSummary]
    active_adapter: AdapterSummary | None
    base_model: str
    feedback_since_training: FeedbackCounts
    last_trained_at: datetime | None
    retriever_version: str | None = None  # the active retrieval version (None: raw query embeddings)
    retrieval_runs: list[RunSummary] = field(default_factory=list)  # open, then the last finished one

    def to_lines(self) -> list[str]:
        """Plain text for chat: a headline, then one line per fact."""
        active = (f"LoRA adapter {self.active_adapter.version} ({self.active_adapter.method})"
                  if self.active_adapter else "the base model (no LoRA adapter)")
        lines = [f"Answering with {active} on {self.base_model}."]
        lines.append(f"Searching with retrieval version {self.retriever_version}." if self.retriever_version
                     else "Searching with raw query embeddings (no retrieval version active).")
        lines.extend(f"Retrieval retrain: {_run_line(run)}" for run in self.retrieval_runs)
        if self.queue:
            lines.extend(f"Job {run.job_id}: {run.status}, requested by {run.requested_by or 'unknown'} "
                         f"at {_when(run.created_at)}." for run in self.queue)
        else:
            lines.append("No retrain queued or running.")
        fb = self.feedback_since_training
        since = f"since the last training ({_when(self.last_trained_at)})" if self.last_trained_at else "so far"
        pending = (f" ({fb.pending_corrections} awaiting review: /ragbot-admin feedback pending)"
                   if fb.pending_corrections else "")
        lines.append(f"Feedback {since}: {fb.up} 👍, {fb.down} 👎, {fb.corrections} corrections{pending}.")
        lines.extend(_run_line(run) for run in self.last_runs)
        if not self.last_runs:
            lines.append("No retrain has finished yet.")
        return lines


@dataclass(frozen=True, slots=True)
class RollbackResult:
    rolled_back: str  # the version that was active
    now_active: str | None  # None = the base model

    @property
    def message(self) -> str:
        now = f"LoRA adapter {self.now_active}" if self.now_active else "the base model"
        return f"Rolled back LoRA adapter {self.rolled_back}; answering with {now} now."


@dataclass(frozen=True, slots=True)
class RetrievalRollbackResult:
    rolled_back: str  # the retrieval version that was active
    now_active: str | None  # None = raw query embeddings

    @property
    def message(self) -> str:
        now = f"retrieval version {self.now_active}" if self.now_active else "raw query embeddings"
        return f"Rolled back retrieval version {self.rolled_back}; searching with {now} from the next question."


def request_retrain(db: Database, config: EngineConfig, requested_by: str) -> RetrainRequest:
    """Queue a retrain (or return the one already queued or running) with the configured method."""
    queued = jobs.enqueue(db, jobs.RETRAIN, {"peft_method": config.training.peft_method}, requested_by=requested_by)
    return RetrainRequest(job_id=queued.job_id, created=queued.created)


def request_retrieval_retrain(db: Database, requested_by: str) -> RetrainRequest:
    """Queue a retrieval retrain (a query adapter from feedback pairs), or return the one already open."""
    queued = jobs.enqueue(db, jobs.RETRIEVAL_RETRAIN, requested_by=requested_by)
    return RetrainRequest(job_id=queued.job_id, created=queued.created)


def status(db: Database, config: EngineConfig) -> AdminStatus:
    queue = [_summary(j) for j in jobs.open_jobs(db, kinds=[jobs.RETRAIN])]
    retrieval_runs = [_summary(j) for j in [*jobs.open_jobs(db, kinds=[jobs.RETRIEVAL_RETRAIN]),
                                            *jobs.recent(db, kind=jobs.RETRIEVAL_RETRAIN, limit=1)]]
    retriever = retrieval_registry.active(db)
    last = [_summary(j) for j in jobs.recent(db, kind=jobs.RETRAIN, limit=LAST_RUNS)]
    current = registry.active(db)
    trained_at = last_training_time(db)
    return AdminStatus(
        queue=queue,
        last_runs=last,
        active_adapter=_adapter(current) if current else None,
        base_model=registry.base_model_id(config.generation),
        feedback_since_training=feedback_counts(db, since=trained_at),
        last_trained_at=trained_at,
        retriever_version=retriever.version if retriever else None,
        retrieval_runs=retrieval_runs,
    )


def rollback(db: Database, requested_by: str) -> RollbackResult:
    """Restore the LoRA adapter active before the current one (or the base model).

    Raises ``NothingToRollBack`` (a ``LookupError``) when no LoRA adapter is active.
    """
    del requested_by  # the audit row (written by the caller) records who
    change = registry.rollback(db)
    assert change.previous is not None
    return RollbackResult(rolled_back=change.previous, now_active=change.version)


def rollback_retrieval(db: Database, requested_by: str) -> RetrievalRollbackResult:
    """Restore the retrieval version active before the current one (or raw query embeddings): what
    ``ragbot retrieval rollback`` does, for chat admins undoing an automatic promotion.

    Raises ``retrieval_registry.NothingToRollBack`` (a ``LookupError``) when no retrieval version is active.
    """
    del requested_by  # the audit row (written by the caller) records who
    change = retrieval_registry.rollback(db)
    assert change.previous is not None
    return RetrievalRollbackResult(rolled_back=change.previous, now_active=change.version)


def last_training_time(db: Database) -> datetime | None:
    """When the data of the newest LoRA adapter was snapshotted (feedback after it is new)."""
    newest = next(iter(registry.list_adapters(db)), None)
    if newest is None:
        return None
    built = newest.data_snapshot.get("built_at")
    try:
        return datetime.fromisoformat(built) if built else newest.created_at
    except (TypeError, ValueError):
        return newest.created_at


@dataclass(frozen=True, slots=True)
class ReviewReport:
    """What one approve / reject command did, id by id."""

    approve: bool
    decided: list[ReviewOutcome]
    unknown: list[int]

    @property
    def ok(self) -> bool:
        return bool(self.decided) and not self.unknown

    def message(self) -> str:
        done = "approved" if self.approve else "rejected"
        changed = [o.correction_id for o in self.decided if o.changed]
        same = [o.correction_id for o in self.decided if not o.changed]
        parts = []
        if changed:
            use = ": training data from the next retraining" if self.approve else ": never used for training"
            parts.append(f"{done.capitalize()} correction {_ids(changed)}{use}")
        if same:
            parts.append(f"correction {_ids(same)} was already {done}")
        if self.unknown:
            parts.append(f"there is no correction {_ids(self.unknown)} (see feedback pending)")
        return "; ".join(parts) + "."


def review_corrections(db: Database, ids: list[int], *, approve: bool, reviewer: str) -> ReviewReport:
    """Approve or reject each correction in ``ids`` as ``reviewer``; unknown ids are reported, not fatal."""
    decided: list[ReviewOutcome] = []
    unknown: list[int] = []
    for correction_id in ids:
        try:
            decided.append(review_correction(db, correction_id, approve=approve, reviewer=reviewer))
        except LookupError:
            unknown.append(correction_id)
    return ReviewReport(approve, decided, unknown)


def pending_review(db: Database, limit: int = PENDING_SHOWN) -> tuple[str, list[str]]:
    """A headline and one line per correction awaiting review (oldest first), for chat."""
    found, total = pending_corrections(db, limit)
    if not total:
        return "No corrections await review.", []
    more = f" (the oldest {len(found)} shown)" if total > len(found) else ""
    lines = [f"{p.id}: by {p.user_key} at {_when(p.created_at)}; question "
             f"\"{sanitize_output(' '.join(p.question.split()), limit=120)}\" -> correction "
             f"\"{sanitize_output(' '.join(p.text.split()), limit=400)}\"" for p in found]
    return (f"{total} correction(s) await review{more}. Approve or reject by id: "
            f"feedback approve ID... / feedback reject ID...", lines)


def _ids(ids: list[int]) -> str:
    return ", ".join(str(i) for i in ids)


def _summary(job: jobs.Job) -> RunSummary:
    result = job.result or {}
    return RunSummary(
        job_id=job.id, status=job.status, requested_by=job.requested_by, created_at=job.created_at,
        finished_at=job.finished_at, version=result.get("version"), decision=result.get("decision"),
        reason=result.get("reason"), metrics=dict(result.get("metrics") or {}), error=job.error,
    )


def _adapter(record: AdapterRecord) -> AdapterSummary:
    return AdapterSummary(record.version, record.method, record.base_model, record.activated_at, record.metrics)


def _run_line(run: RunSummary) -> str:
    if run.finished_at is None:
        return (f"Job {run.job_id}: {run.status}, requested by {run.requested_by or 'unknown'} "
                f"at {_when(run.created_at)}.")
    head = f"Job {run.job_id} ({_when(run.finished_at)}): "
    if run.status == "failed":
        return head + f"failed: {(run.error or 'unknown error')[:200]}"
    parts = [f"{run.decision or run.status}" + (f" {run.version}" if run.version else "")]
    for name in ("candidate", "active", "base"):
        m = run.metrics.get(name)
        if m and m.get("nll") is not None:
            extra = f", F1 {m['token_f1']:.2f}" if m.get("token_f1") is not None else ""
            parts.append(f"{name} NLL {m['nll']:.3f}{extra}")
    for name in ("candidate", "baseline"):  # a retrieval run's held-out numbers
        m = run.metrics.get(name)
        if m and m.get("ndcg10") is not None:
            parts.append(f"{'raw' if name == 'baseline' else name} nDCG@10 {m['ndcg10']:.3f}, hit@5 {m['hit5']:.2f}")
    if run.reason:
        parts.append(run.reason)
    return head + "; ".join(parts)


def _when(at: datetime | None) -> str:
    if at is None:
        return "never"
    return (at.astimezone(UTC) if at.tzinfo else at).strftime("%Y-%m-%d %H:%M UTC")
