"""``ragbot eval loop``: the whole learning loop on one's own documents and Q&A, measured.

Ingest (a collection that allows training) -> answer the test questions through the real answer path
(generator, grounding check, extractive fallback) = "before", and with the generator bypassed =
"extractive" -> (with ``bootstrap``: derive pairs from the documents, retrain, answer again = "bootstrap",
the day-one adapter before any feedback) -> import the train pairs as curated examples -> queue a retrain
and run it with the job worker (training set, training, gate: what ``ragbot worker`` does) -> load whatever
adapter is active now and answer the same test questions again = "after".

A composition root: it gets the engines and the worker already built (settings stay with the caller).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.worker import JobRun, Worker
from bot import admin_ops
from rag_engine import jobs
from rag_engine.engine import RagEngine
from rag_engine.eval.answer_eval import QAItem, score_answer
from rag_engine.eval.loop_report import (
    AFTER,
    BEFORE,
    BOOTSTRAP,
    EXTRACTIVE,
    LoopReport,
    RetrainSummary,
    ScoredAnswer,
    overlap,
    retrain_summary,
    scored,
    summarize_row,
)
from rag_engine.generation.base import AdapterSwitching
from rag_engine.scope import CollectionScope
from rag_engine.training import bootstrap as boot
from rag_engine.training.curated import ImportReport, import_lines


def _nothing(*_args: object) -> None:
    return None


@dataclass(frozen=True, slots=True)
class LoopHooks:
    """What the caller shows while the loop runs: a stage starts (name, items; 0 = no count), an item is done."""

    stage: Callable[[str, int], None] = _nothing
    advance: Callable[[], None] = _nothing


def active_adapter(engine: RagEngine) -> str | None:
    """The adapter the engine's generator serves (None: the base model, or no generator that takes adapters)."""
    gen: object = engine.generator  # a Generator that may also be AdapterSwitching (two protocols)
    return gen.active_adapter if isinstance(gen, AdapterSwitching) else None


def served_by(engine: RagEngine) -> str:
    """The model this engine answers with now, and its adapter (builds the generator, loading the active one)."""
    gen = engine.generator
    if gen is None:
        return f"extractive ({engine.generator_error})" if engine.generator_error else "extractive"
    model = str(getattr(gen, "model_name", "") or gen.name)  # as answers name it (``Answer.generator``)
    adapter = active_adapter(engine)
    return f"{model} + adapter {adapter}" if adapter else f"{model} (base model)"


def prepare_collection(engine: RagEngine, name: str, docs: Path | None, hooks: LoopHooks = LoopHooks()) -> None:
    """Ingest ``docs`` into ``name`` (created public, so training is on), then check the collection may train."""
    found = engine.store.collections.get(name)
    if docs is not None and (found is None or found.allow_training):
        hooks.stage(f"ingesting {docs.name}", 0)
        engine.ingest([docs], name, visibility="public", progress=lambda _uri: hooks.advance())
        found = engine.store.collections.get(name)
    if found is None:
        raise ValueError(f"no collection named {name!r}: give a folder to ingest")
    if not found.allow_training:
        raise ValueError(f"collection {name!r} does not allow training, so a retrain would not learn from it; "
                         f"allow it with `ragbot collections set {name} --training` or use another collection")


def answer_all(engine: RagEngine, items: Sequence[QAItem], scope: CollectionScope, *, k: int | None = None,
               hooks: LoopHooks = LoopHooks()) -> list[ScoredAnswer]:
    """Each question through ``engine.answer`` (the path users get), scored, with what became of the generation."""
    out = []
    for item in items:
        t0 = time.perf_counter()
        answer = engine.answer(item.question, scope, k=k)
        out.append(scored(score_answer(item, answer, time.perf_counter() - t0), answer))
        hooks.advance()
    return out


def import_train(engine: RagEngine, items: Sequence[QAItem], collection: str) -> ImportReport:
    """The train pairs as curated examples of ``collection`` (``ragbot feedback import``; re-imports count as
    duplicates)."""
    lines = [json.dumps({"question": i.question, "answer": i.answer, **({"source": i.source} if i.source else {})})
             for i in items]
    return import_lines(engine.db, lines, collection=collection)


def retrain_with_worker(worker: Worker, requested_by: str, *, poll_s: float = 2.0) -> tuple[JobRun, float]:
    """Queue a retrain (or join the one already open) and run it with ``worker``; waits for it when another worker
    (``ragbot worker``) claimed it first. Returns the run and its wall seconds, queueing included."""
    started = time.perf_counter()
    job_id = admin_ops.request_retrain(worker.db, worker.config, requested_by).job_id
    while True:
        run = worker.run_once()
        if run is not None and run.job_id == job_id:
            return run, time.perf_counter() - started
        if run is None:
            job = jobs.get(worker.db, job_id)
            if job is None:
                raise RuntimeError(f"retrain job {job_id} disappeared")
            if job.status in ("done", "failed"):
                return JobRun(job.id, job.kind, job.status, job.result, job.error), time.perf_counter() - started
            time.sleep(poll_s)  # another worker is running it


def store_bootstrap_pairs(engine: RagEngine, collection: str) -> int:
    """``ragbot lora bootstrap --no-train`` on one collection: pairs derived from its documents, stored as curated
    examples; returns how many were added."""
    chunks = boot.load_chunks(engine.db, engine.collection_ids([collection]))
    added, _existing = boot.store_pairs(engine.db, boot.derive_pairs(chunks).pairs)
    return added


def retrain_and_serve(engine: RagEngine, extractive: RagEngine, worker: Worker, requested_by: str) -> RetrainSummary:
    """Run a retrain with ``worker``, then make ``engine`` serve whatever adapter the gate left active."""
    worker.use_engine(extractive)  # the worker retrieves passages for curated examples with this engine's embedder
    run, wall_s = retrain_with_worker(worker, requested_by)
    engine.adapter_watcher.check_once()  # serve what the gate left active (the new adapter when promoted)
    return retrain_summary(run.job_id, run.status, run.result, run.error, wall_s, active_adapter(engine))


def run_loop(engine: RagEngine, extractive: RagEngine, worker: Worker, collection: str, train: Sequence[QAItem],
             test: Sequence[QAItem], *, k: int | None = None, requested_by: str = "cli:eval-loop",
             split: dict[str, object] | None = None, bootstrap: bool = False,
             hooks: LoopHooks = LoopHooks()) -> LoopReport:
    """Before / extractive / [bootstrap] / retrain / after on ``test``, with ``train`` imported as curated examples.

    ``engine`` answers with the configured generator, ``extractive`` (same database, embedder and reranker) with
    none; ``worker`` runs the retrain jobs. The collection must exist (``prepare_collection``). With ``bootstrap``
    the "after" retrain learns from the bootstrap pairs and the train pairs together, as a team's would.
    """
    scope = engine.scope_for([collection])
    hooks.stage("loading the generator", 0)
    model_before = served_by(engine)
    hooks.stage(f"answering ({model_before})", len(test))
    before = summarize_row(BEFORE, model_before, answer_all(engine, test, scope, k=k, hooks=hooks))
    hooks.stage("answering (extractive)", len(test))
    quoted = summarize_row(EXTRACTIVE, "extractive", answer_all(extractive, test, scope, k=k, hooks=hooks))
    rows = [before, quoted]

    boot_retrain = None
    if bootstrap:
        hooks.stage("bootstrap pairs from the documents", 0)
        pairs = store_bootstrap_pairs(engine, collection)
        hooks.stage(f"retraining on {pairs} bootstrap pairs (training set, training, gate)", 0)
        boot_retrain = retrain_and_serve(engine, extractive, worker, requested_by)
        model_boot = served_by(engine)
        hooks.stage(f"answering ({model_boot})", len(test))
        rows.append(summarize_row(BOOTSTRAP, model_boot, answer_all(engine, test, scope, k=k, hooks=hooks),
                                  note=_note(boot_retrain)))

    hooks.stage("importing the train pairs", 0)
    imported = import_train(engine, train, collection)
    hooks.stage("retraining (training set, training, gate)", 0)
    retrain = retrain_and_serve(engine, extractive, worker, requested_by)
    model_after = served_by(engine)

    hooks.stage(f"answering ({model_after})", len(test))
    after = summarize_row(AFTER, model_after, answer_all(engine, test, scope, k=k, hooks=hooks), note=_note(retrain))
    return LoopReport(
        collection=collection, train_questions=len(train), test_questions=len(test),
        test_in_train=overlap(train, test),
        imported={"added": imported.added, "duplicates": imported.duplicates, "errors": len(imported.errors)},
        rows=[*rows, after], retrain=retrain, split=dict(split or {}), bootstrap_retrain=boot_retrain,
    )


def _note(retrain: RetrainSummary) -> str:
    """Said on the "after" row when no new adapter answers it."""
    if retrain.decision == "promoted":
        return ""
    if retrain.decision is None:
        return f"retrain job {retrain.status}"
    return f"gate {retrain.decision} {retrain.version}" if retrain.version else f"retrain {retrain.decision}"
