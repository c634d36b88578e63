"""End to end on a tiny model and the real embedded Postgres: ask -> feedback ->
admin retrain -> worker trains -> gate -> promotion -> the running engine answers
with the new adapter (picked up by the adapter watcher)."""

from __future__ import annotations

from app.configs import engine_config
from app.worker import Worker
from bot import admin_ops
from rag_engine import jobs
from rag_engine.training import registry
from rag_engine.training.watch import AdapterWatcher
from tests.support.training import (
    QA,
    ask_and_correct,
    ask_and_vote,
    one_torch_thread,
    open_engine,
    tiny_model,
    tiny_settings,
)

__all__ = ["one_torch_thread", "tiny_model"]


def test_feedback_to_promoted_adapter(db, embedder, scratch_dir, tiny_model, tmp_path):
    settings = tiny_settings(scratch_dir, tiny_model, tmp_path / "adapters")
    engine = open_engine(settings, db, embedder)
    watcher = AdapterWatcher(db, engine_config(settings), lambda: engine.generator)
    assert watcher.check_once() is None  # nothing trained yet: the base model answers

    before = engine.answer(QA[0][0], engine.scope_for(["handbook"]))
    assert before.generator == "llama" and before.adapter_version is None

    ask_and_correct(engine, QA[:-1])
    ask_and_vote(engine, [q for q, _ in QA[-1:]], +1)

    request = admin_ops.request_retrain(db, engine_config(settings), "slack:T1:UADMIN")
    again = admin_ops.request_retrain(db, engine_config(settings), "slack:T1:UOTHER")
    assert request.created and not again.created and again.job_id == request.job_id

    worker = Worker(settings, db)
    worker.use_engine(engine)
    run = worker.run_once()
    assert run is not None and run.job_id == request.job_id and run.status == "done", run
    result = run.result
    assert result["decision"] == "promoted", result["reason"]
    version = result["version"]
    assert jobs.get(db, request.job_id).status == "done"
    assert registry.active(db).version == version

    # the candidate learned the answers: held-out reference NLL well below the base model's
    candidate, base = result["metrics"]["candidate"], result["metrics"]["base"]
    assert candidate["examples"] >= 2
    assert candidate["nll"] < base["nll"] * 0.9, (candidate, base)
    assert candidate["token_f1"] is not None and candidate["rouge_l"] is not None
    # the worker's gate also scored what users would receive, and it did not get worse
    assert candidate["delivered_f1"] is not None and candidate["delivered_f1"] >= base["delivered_f1"]

    assert watcher.check_once() == version
    after = engine.answer(QA[0][0], engine.scope_for(["handbook"]))
    assert after.adapter_version == version

    status = admin_ops.status(db, engine_config(settings))
    assert status.active_adapter.version == version and not status.queue
    assert status.last_runs[0].decision == "promoted"
    lines = status.to_lines()
    assert version in lines[0] and any("promoted" in line for line in lines)
