"""The job worker: claims jobs from Postgres, heartbeats while running them, records the outcome.

Several workers may run at once (on one machine or many): claims use
``FOR UPDATE SKIP LOCKED``, so each job goes to exactly one of them. A worker
that dies stops heartbeating; any other worker re-queues its job after
``settings.worker_stale_after_s`` and runs it again (a retrain resumes from its
last checkpoint). On SIGTERM / Ctrl-C a running retrain checkpoints and goes
back to the queue. Each poll (at most every ``SCHEDULE_EVERY_S``) also queues a
``source_sync`` job for every scheduled source that is due (``rag_engine.sync``), and
the running loop (at most every ``RETRIEVAL_CHECK_EVERY_S``) queues a
``retrieval_retrain`` once feedback holds enough new retrieval training pairs
(``rag_engine.training.retrieval_jobs``).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.configs import engine_config
from app.housekeeping import Housekeeping
from app.settings import Settings
from rag_engine import jobs
from rag_engine.config import EngineConfig
from rag_engine.scope import CollectionScope
from rag_engine.store import Store
from rag_engine.store.database import Database
from rag_engine.values import GeneratedText, SearchHit

if TYPE_CHECKING:
    from rag_engine.engine import RagEngine

log = logging.getLogger(__name__)
SCHEDULE_EVERY_S = 30.0  # how often a polling worker looks for sources due a sync
RETRIEVAL_CHECK_EVERY_S = 300.0  # how often the running loop counts retrieval training pairs (reads all feedback)


@dataclass(slots=True)
class JobContext:
    """What a job handler gets: the job, the stores, and a way to notice it should stop."""

    job: jobs.Job
    db: Database
    config: EngineConfig
    worker: Worker

    def should_stop(self) -> bool:
        """True when the worker is shutting down or has lost the job (stale heartbeat)."""
        return self.worker.stopping.is_set() or self.worker.lost.is_set()


Handler = Callable[[JobContext], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class JobRun:
    job_id: int
    kind: str
    status: str  # done | failed | requeued | lost
    result: dict[str, Any] | None = None
    error: str | None = None


class Worker:
    def __init__(self, settings: Settings, db: Database, *, worker_id: str | None = None,
                 handlers: dict[str, Handler] | None = None, show_progress: bool = False) -> None:
        self.settings = settings
        self.config = engine_config(settings)  # what the engine and the job handlers get
        self.db = db
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.handlers: dict[str, Handler] = handlers if handlers is not None else {
            jobs.RETRAIN: run_retrain, jobs.RETRIEVAL_RETRAIN: run_retrieval_retrain,
            jobs.SOURCE_SYNC: run_source_sync}
        self.show_progress = show_progress
        self.stopping = threading.Event()  # set by stop(): finish or checkpoint, then exit
        self.lost = threading.Event()  # set when the current job was taken away
        self.closing = threading.Event()  # set once the current job's outcome is being recorded
        self._engine: Any = None
        self._engine_lock = threading.Lock()
        self._scheduled_at = float("-inf")
        self._retrieval_checked_at = float("-inf")

    # -- one job -----------------------------------------------------------------
    def run_once(self) -> JobRun | None:
        """Re-queue stale jobs, claim one job, run it; None when the queue is empty."""
        requeued = jobs.requeue_stale(self.db, self.settings.worker_stale_after_s)
        if requeued:
            log.warning("re-queued jobs %s: their worker stopped heartbeating", requeued)
        self.schedule_sources()
        job = jobs.claim(self.db, self.worker_id, kinds=list(self.handlers))
        if job is None:
            return None
        log.info("worker %s running job %d (%s, attempt %d)", self.worker_id, job.id, job.kind, job.attempts)
        self.lost.clear()
        self.closing.clear()
        beat_stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(job.id, beat_stop), daemon=True,
                                name=f"ragbot-heartbeat-{job.id}")
        beat.start()
        try:
            return self._run(job)
        finally:
            beat_stop.set()
            beat.join(5)

    def _run(self, job: jobs.Job) -> JobRun:
        from rag_engine.training.trainer import TrainingInterrupted  # lazy: the trainer pulls torch

        ctx = JobContext(job, self.db, self.config, self)
        try:
            result = self.handlers[job.kind](ctx)
        except TrainingInterrupted as exc:
            return self._interrupted(job, str(exc))
        except Exception as exc:
            if self.lost.is_set():
                return JobRun(job.id, job.kind, "lost", error=str(exc))
            log.exception("job %d failed", job.id)
            error = f"{type(exc).__name__}: {exc}"
            self._record(jobs.fail, job, error)
            return JobRun(job.id, job.kind, "failed", error=error)
        if self.lost.is_set():
            return JobRun(job.id, job.kind, "lost", result=result)
        self._record(jobs.finish, job, result)
        return JobRun(job.id, job.kind, "done", result=result)

    def _interrupted(self, job: jobs.Job, note: str) -> JobRun:
        if self.lost.is_set():
            return JobRun(job.id, job.kind, "lost", error=note)
        self.closing.set()
        jobs.release(self.db, job.id, self.worker_id, note)
        return JobRun(job.id, job.kind, "requeued", error=note)

    def _record(self, fn: Callable[..., None], job: jobs.Job, value: Any) -> None:
        self.closing.set()
        try:
            fn(self.db, job.id, self.worker_id, value)
        except jobs.JobLost as exc:
            log.warning("%s", exc)

    def _heartbeat(self, job_id: int, stop: threading.Event) -> None:
        while not stop.wait(self.settings.worker_heartbeat_s):
            try:
                jobs.heartbeat(self.db, job_id, self.worker_id)
            except jobs.JobLost as exc:
                if not self.closing.is_set():  # a beat after the outcome was recorded finds the job closed: fine
                    log.error("%s; stopping it", exc)
                    self.lost.set()
                return
            except Exception as exc:  # noqa: BLE001 - the database may come back before we go stale
                log.warning("heartbeat for job %d failed: %s", job_id, exc)

    def schedule_sources(self, *, force: bool = False) -> list[int]:
        """Queue syncs of the sources that are due (throttled unless ``force``); their ids. Only a
        worker that runs sync jobs schedules them, and a scheduling error never stops the queue."""
        if jobs.SOURCE_SYNC not in self.handlers:
            return []
        now = time.monotonic()
        if not force and now - self._scheduled_at < SCHEDULE_EVERY_S:
            return []
        self._scheduled_at = now
        from rag_engine.sync import enqueue_due  # lazy: pulls the parsers; app.cli imports this module

        try:
            queued = enqueue_due(Store(self.db))
        except Exception as exc:  # noqa: BLE001 - e.g. the database is away: retrain jobs still run
            log.warning("scheduling source syncs failed: %s", exc)
            return []
        if queued:
            log.info("queued syncs of sources %s", queued)
        return queued

    def schedule_retrieval(self, *, force: bool = False) -> int | None:
        """Queue a retrieval retrain when feedback holds ``retrieval_retrain_new_pairs`` new pairs (throttled unless
        ``force``); the new job's id. Only a worker that runs those jobs queues them; an error never stops the queue."""
        if jobs.RETRIEVAL_RETRAIN not in self.handlers or self.config.training.retrieval_retrain_new_pairs <= 0:
            return None
        now = time.monotonic()
        if not force and now - self._retrieval_checked_at < RETRIEVAL_CHECK_EVERY_S:
            return None
        self._retrieval_checked_at = now
        from rag_engine.training.retrieval_jobs import enqueue_if_due  # lazy: app.cli imports this module

        try:
            queued = enqueue_if_due(self.db, self.config.training)
        except Exception as exc:  # noqa: BLE001 - e.g. the database is away: the queue still runs
            log.warning("counting retrieval training pairs failed: %s", exc)
            return None
        if queued is None or not queued.created:
            return None
        log.info("queued retrieval retrain job %d: enough new feedback pairs", queued.job_id)
        return queued.job_id

    # -- the loop ------------------------------------------------------------------
    def run_forever(self, idle_s: float = 2.0) -> None:
        """Run jobs until :meth:`stop`; waits ``idle_s`` between empty polls. Meanwhile a
        housekeeping thread deletes expired delivery ids."""
        log.info("worker %s started (jobs: %s)", self.worker_id, ", ".join(self.handlers))
        housekeeping = Housekeeping(self.db, self.settings)
        housekeeping.start()
        try:
            while not self.stopping.is_set():
                try:
                    self.schedule_retrieval()
                    ran = self.run_once()
                except Exception as exc:  # noqa: BLE001 - e.g. the database is down: wait and retry
                    log.warning("worker poll failed: %s", exc)
                    ran = None
                if ran is None:
                    self.stopping.wait(idle_s)
        finally:
            housekeeping.stop()
        log.info("worker %s stopped", self.worker_id)

    def stop(self) -> None:
        self.stopping.set()

    # -- services for handlers -----------------------------------------------------
    def engine(self) -> RagEngine:
        """The engine (its embedder loads on first use), shared by the jobs of this worker."""
        with self._engine_lock:
            if self._engine is None:
                from rag_engine.engine import RagEngine  # lazy: app.cli imports this module; keeps it light

                self._engine = RagEngine(self.config, db=self.db, generator=None)
            engine: RagEngine = self._engine
            return engine

    def retrieve(self, question: str, collection_ids: list[int]) -> list[SearchHit]:
        """Passages for curated examples."""
        return self.engine().retriever.search(question, CollectionScope.of(collection_ids),
                                              self.config.retrieval.search_k, None)

    def deliver(self, question: str, result: GeneratedText, hits: list[SearchHit]) -> str:
        """What a user would receive for a generated answer (the engine's grounding check): the retrain gate's
        delivered F1."""
        return str(self.engine().delivered_text(question, result, hits))

    def use_engine(self, engine: Any) -> None:
        """Share an already open engine (its embedder) instead of opening one."""
        self._engine = engine


def run_retrain(ctx: JobContext) -> dict[str, Any]:
    """The ``retrain`` job: training set -> train -> gate -> promote or reject."""
    from rag_engine.training.pipeline import clear_checkpoint, retrain  # lazy: pulls torch
    from rag_engine.training.trainer import StepInfo, TrainingInterrupted  # lazy: pulls torch

    def progress(step: StepInfo) -> None:
        if step.step == 1 or step.step % 10 == 0 or step.step == step.total_steps:
            log.info("job %d: step %d/%d, loss %.4f", ctx.job.id, step.step, step.total_steps, step.loss)

    try:
        outcome = retrain(ctx.db, ctx.config, retrieve=ctx.worker.retrieve, job_id=ctx.job.id,
                          should_stop=ctx.should_stop, on_step=progress, show_progress=ctx.worker.show_progress,
                          deliver=ctx.worker.deliver)
    except TrainingInterrupted:
        raise  # the checkpoint stays for the next attempt
    except Exception:
        clear_checkpoint(ctx.config.training, ctx.job.id)  # a failed job is not retried
        raise
    log.info("job %d: %s %s: %s", ctx.job.id, outcome.decision, outcome.version or "", outcome.reason)
    return outcome.to_result()


def run_retrieval_retrain(ctx: JobContext) -> dict[str, Any]:
    """The ``retrieval_retrain`` job: feedback pairs -> query adapter -> gate -> promote or reject (seconds)."""
    from rag_engine.training import retrieval_jobs  # lazy: pulls the training modules (torch when it trains)

    engine = ctx.worker.engine()
    result = retrieval_jobs.run(ctx.db, engine.embedder, engine.store.chunks, ctx.config.training,
                                retrieval=ctx.config.retrieval)
    log.info("job %d: retrieval %s %s: %s", ctx.job.id, result["decision"], result.get("version") or "",
             result["reason"])
    return result


class SourceSyncFailed(RuntimeError):
    """The source's sync failed; the error is recorded on the source, which backs off."""


def run_source_sync(ctx: JobContext) -> dict[str, Any]:
    """The ``source_sync`` job: one incremental sync of the source in the payload."""
    from rag_engine.sync import SourceSyncer  # lazy: pulls the parsers

    engine = ctx.worker.engine()
    syncer = SourceSyncer(engine.store, engine.ingestor, ctx.config.data_dir, ctx.config.store.secrets)
    report = syncer.sync(int(ctx.job.payload["source_id"]))
    if report.status == "failed":
        raise SourceSyncFailed(f"source {report.source}: {report.error}")
    return report.as_result()
