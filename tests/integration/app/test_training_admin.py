"""Adapter registry, admin operations, the adapter watcher, the report and the
adapters CLI (real database; adapters are real PEFT files for a tiny model)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.configs import engine_config
from app.report import build_report, feedback_by_day
from bot import admin_ops
from rag_engine import jobs
from rag_engine.feedback import record_correction, record_vote
from rag_engine.generation.transformers_backend import TransformersGenerator
from rag_engine.interactions import log_interaction
from rag_engine.store import Store
from rag_engine.testing.tiny_models import make_lora_adapter
from rag_engine.training import registry
from rag_engine.training.watch import AdapterWatcher
from rag_engine.values import Answer
from tests.support.training import CTX, one_torch_thread, tiny_model, tiny_settings

__all__ = ["one_torch_thread", "tiny_model"]


@pytest.fixture()
def settings_(scratch_dir, tiny_model, tmp_path):
    return tiny_settings(scratch_dir, tiny_model, tmp_path / "adapters")


def _adapter(db, settings, seed: int, *, base_model: str | None = None, metrics=None, snapshot=None) -> str:
    version = registry.next_version(db)
    path = make_lora_adapter(Path(settings.generator_model), settings.adapter_store / version, seed=seed)
    registry.register(db, version=version, method="lora", base_model=base_model or settings.generator_model,
                      path=path, data_snapshot=snapshot or {"train": 3, "heldout": 1}, metrics=metrics or {})
    return version


def _wait_for(condition, attempts: int = 300, pause: float = 0.05):
    for _ in range(attempts):
        if condition():
            return
        time.sleep(pause)
    raise AssertionError("condition never became true")


def test_activation_chain_and_rollback(db, settings_):
    v1, v2, v3 = (_adapter(db, settings_, seed) for seed in (1, 2, 3))
    assert [v1, v2, v3] == ["v1", "v2", "v3"]  # versions are consecutive
    assert registry.activate(db, v1) == registry.Activation(v1, None)
    assert registry.activate(db, v2) == registry.Activation(v2, v1)
    assert registry.activate(db, v3) == registry.Activation(v3, v2)
    assert {a.version: a.status for a in registry.list_adapters(db)} == {v1: "retired", v2: "retired", v3: "active"}
    assert registry.rollback(db) == registry.Activation(v2, v3)
    assert registry.rollback(db) == registry.Activation(v1, v2)
    assert registry.rollback(db) == registry.Activation(None, v1)
    with pytest.raises(registry.NothingToRollBack):
        registry.rollback(db)
    with pytest.raises(registry.AdapterNotFound):
        registry.activate(db, "v99")


def test_activation_refuses_an_adapter_for_another_model_or_without_files(db, settings_):
    other = _adapter(db, settings_, 1, base_model="someone/else")
    with pytest.raises(ValueError, match="trained on 'someone/else'"):
        registry.activate(db, other, base_model=settings_.generator_model)
    gone = _adapter(db, settings_, 2)
    (registry.get(db, gone).path / "adapter_config.json").unlink()
    with pytest.raises(ValueError, match="files are missing"):
        registry.activate(db, gone)
    assert registry.active(db) is None


def test_watcher_switches_loads_once_and_frees_old_adapters(db, settings_, tiny_model):
    gen = TransformersGenerator(engine_config(settings_).generation, model=tiny_model)
    watcher = AdapterWatcher(db, engine_config(settings_), lambda: gen)
    assert watcher.check_once() is None and not gen.loaded  # nothing to do: the model is not even loaded
    versions = [_adapter(db, settings_, seed) for seed in (1, 2, 3)]
    for v in versions:
        registry.activate(db, v)
        assert watcher.check_once() == v and gen.active_adapter == v
    assert gen.adapters == versions[1:]  # the active one and the one before it stay loaded
    registry.rollback(db)
    assert watcher.check_once() == versions[1] and gen.adapters == versions[1:]

    foreign = _adapter(db, settings_, 4, base_model="someone/else")
    registry.deactivate(db)
    with db.begin() as conn:  # activated behind the registry's back: the watcher must still refuse it
        conn.exec_driver_sql(f"UPDATE adapters SET status = 'active' WHERE version = '{foreign}'")
    assert watcher.check_once() is None and gen.active_adapter is None
    assert "someone/else" in watcher.last_error


def test_watcher_ignores_generators_without_adapters(db, settings_):
    registry.activate(db, _adapter(db, settings_, 1))
    assert AdapterWatcher(db, engine_config(settings_), lambda: None).check_once() is None


def test_running_watcher_picks_up_a_new_adapter(db, settings_, tiny_model):
    gen = TransformersGenerator(engine_config(settings_.model_copy(update={"adapter_poll_s": 30.0})).generation,
                                model=tiny_model)
    gen.load()
    watcher = AdapterWatcher(db, engine_config(settings_.model_copy(update={"adapter_poll_s": 30.0})), lambda: gen)
    watcher.start()
    try:
        version = _adapter(db, settings_, 1)
        registry.activate(db, version)  # NOTIFY wakes it long before the 30 s poll
        _wait_for(lambda: gen.active_adapter == version)
        registry.rollback(db)
        _wait_for(lambda: gen.active_adapter is None)
    finally:
        watcher.stop()


def test_status_lines_and_counts_since_last_training(db, settings_):
    empty = admin_ops.status(db, engine_config(settings_))
    assert empty.active_adapter is None and empty.queue == [] and empty.last_trained_at is None
    lines = empty.to_lines()
    assert "base model" in lines[0] and any("No retrain queued" in line for line in lines)

    iid = log_interaction(db, CTX, "q", Answer(text="a"), [1])
    record_vote(db, iid, "u1", 1)
    record_correction(db, iid, "u1", "better", is_admin=False)
    version = _adapter(db, settings_, 1, snapshot={"built_at": datetime.now(UTC).isoformat()},
                       metrics={"candidate": {"nll": 1.5}})
    registry.activate(db, version)
    record_vote(db, iid, "u2", -1)  # after the snapshot

    request = admin_ops.request_retrain(db, engine_config(settings_), "slack:T1:UADMIN")
    done = jobs.enqueue(db, "retrain-old").job_id  # a finished run of another kind is not listed
    jobs.claim(db, "w", kinds=["retrain-old"])
    jobs.finish(db, done, "w", {})
    state = admin_ops.status(db, engine_config(settings_))
    assert [r.job_id for r in state.queue] == [request.job_id] and state.queue[0].requested_by == "slack:T1:UADMIN"
    assert state.active_adapter.version == version and state.last_runs == []
    fb = state.feedback_since_training
    assert (fb.up, fb.down, fb.corrections) == (0, 1, 0)
    text = "\n".join(state.to_lines())
    assert f"adapter {version}" in text and f"Job {request.job_id}: queued" in text and "0 👍, 1 👎" in text

    jobs.claim(db, "w", kinds=["retrain"])
    jobs.finish(db, request.job_id, "w", {"decision": "rejected", "version": "v9", "reason": "no better",
                                          "metrics": {"candidate": {"nll": 2.0, "token_f1": 0.25},
                                                      "base": {"nll": 1.9}}})
    last = admin_ops.status(db, engine_config(settings_)).last_runs[0]
    assert (last.decision, last.version, last.metrics["candidate"]["nll"]) == ("rejected", "v9", 2.0)
    assert "candidate NLL 2.000, F1 0.25" in admin_ops.status(db, engine_config(settings_)).to_lines()[-1]


def test_report_has_both_charts(db, settings_, tmp_path):
    assert "No interactions or feedback yet" in build_report(db, settings_)
    iid = log_interaction(db, CTX, "q", Answer(text="a"), [1])
    record_vote(db, iid, "u1", 1)
    record_correction(db, iid, "u2", "b", is_admin=True)
    assert [(d.up, d.down, d.corrections, d.interactions) for d in feedback_by_day(db)] == [(1, 0, 1, 1)]
    _adapter(db, settings_, 1, metrics={"candidate": {"nll": 2.0, "token_f1": 0.3}, "base": {"nll": 2.5},
                                        "reason": "beats <base>"})
    page = build_report(db, settings_)
    assert page.count("data:image/png;base64,") == 2
    assert "beats &lt;base&gt;" in page  # escaped


def test_adapters_cli(db, settings_, scratch_dir, tiny_model, tmp_path):
    from app.cli import app

    v1, v2 = _adapter(db, settings_, 1), _adapter(db, settings_, 2)
    env = {"RAGBOT_DATA_DIR": str(scratch_dir), "RAGBOT_GENERATOR_MODEL": str(tiny_model),
           "RAGBOT_ADAPTER_DIR": str(settings_.adapter_store)}
    runner = CliRunner()

    def ragbot(*args):
        return runner.invoke(app, list(args), env=env)

    assert ragbot("adapters", "activate", v1).exit_code == 0
    out = ragbot("adapters", "activate", v2)
    assert out.exit_code == 0 and f"Adapter {v2} is active (was {v1})" in out.output
    listing = ragbot("adapters", "list")
    assert listing.exit_code == 0 and v1 in listing.output and "active" in listing.output
    back = ragbot("adapters", "rollback")
    assert back.exit_code == 0 and f"answering with LoRA adapter {v1}" in back.output
    assert ragbot("adapters", "rollback").exit_code == 0
    none_left = ragbot("adapters", "rollback")
    assert none_left.exit_code == 1 and "nothing to roll back" in none_left.output
    missing = ragbot("adapters", "activate", "v42")
    assert missing.exit_code == 1 and "no adapter 'v42'" in missing.output
    queued = ragbot("adapters", "retrain")
    assert queued.exit_code == 0 and "Queued retrain job" in queued.output
    assert "already queued" in ragbot("adapters", "retrain").output
    status = ragbot("adapters", "status")
    assert status.exit_code == 0 and "queued" in status.output
    report = ragbot("report", "--out", str(tmp_path / "r.html"))
    assert report.exit_code == 0 and (tmp_path / "r.html").read_text().startswith("<!doctype html>")
    actions = [(e.action, e.ok) for e in Store(db).audit.recent()]
    assert ("rollback", False) in actions and ("adapters", True) in actions and ("retrain", True) in actions
