"""Trainer, gate, registry and rollback on a tiny model (real database, real PEFT)."""

from __future__ import annotations

import json

import pytest
import torch

from app.configs import engine_config
from bot import admin_ops
from rag_engine.generation.transformers_backend import TransformersGenerator
from rag_engine.training import registry
from rag_engine.training.dataset import Passage, TrainingExample, TrainingSet, split
from rag_engine.training.pipeline import train_and_judge
from rag_engine.training.trainer import METRICS_FILE, TrainingInterrupted, encode_examples, train_adapter
from rag_engine.training.watch import AdapterWatcher
from tests.support.training import DOCS, QA, one_torch_thread, tiny_model, tiny_settings

__all__ = ["one_torch_thread", "tiny_model"]


def _examples(qa=QA) -> list[TrainingExample]:
    """Reference answers with the passage each comes from (as if corrected in chat)."""
    out = []
    for i, (question, answer) in enumerate(qa):
        words = set(answer.lower().split())
        doc = max(DOCS, key=lambda r: len(words & set(r.text.lower().split())))
        out.append(TrainingExample(question, answer, (Passage(doc.title, "", doc.text),), "correction", i, (1,)))
    return out


def _training_set() -> TrainingSet:
    train, heldout = split(_examples(), 0.25)
    return TrainingSet(train, heldout, snapshot={"train": len(train), "heldout": len(heldout)})


def test_loss_is_on_answer_tokens_only_and_prompt_matches_serving(tiny_model, tmp_path):
    settings = tiny_settings(tmp_path, tiny_model, tmp_path / "adapters")
    gen = TransformersGenerator(engine_config(settings).generation, model=tiny_model)
    example = _examples()[0]
    (enc,), _ = encode_examples(gen.handle, [example], settings.train_max_tokens)
    answer_ids = gen.tokenizer(example.answer, add_special_tokens=False)["input_ids"] + [gen.tokenizer.eos_token_id]
    scored = [t for t in enc.labels if t != -100]
    assert scored == answer_ids and enc.answer_tokens == len(answer_ids)
    prompt_ids = enc.input_ids[: len(enc.input_ids) - len(answer_ids)]
    # the serving prompt for the same question and passages, token for token
    assert gen.tokenizer.decode(prompt_ids) == gen.tokenizer.decode(
        gen.handle.encode(gen.prompt_text(example.question, example.hits())))


def test_worse_candidate_is_rejected_and_rollback_restores_previous(db, tiny_model, scratch_dir, tmp_path):
    settings = tiny_settings(scratch_dir, tiny_model, tmp_path / "adapters")
    ts = _training_set()
    good = train_and_judge(db, engine_config(settings), ts)
    assert good.decision == "promoted", good.reason
    assert (settings.adapter_store / good.version / "adapter_config.json").is_file()
    assert json.loads((settings.adapter_store / good.version / METRICS_FILE).read_text())["steps"] > 0

    # a deliberately worse candidate: trained on the answers spelled backwards (garbage of the same length)
    garbage = [TrainingExample(e.question, e.answer[::-1], e.passages, e.origin, e.source_id, e.collection_ids)
               for e in ts.train]
    bad = train_and_judge(db, engine_config(settings), ts, train_examples=garbage)
    assert bad.decision == "rejected", bad.reason
    assert bad.metrics["active_version"] == good.version
    assert bad.metrics["candidate"]["nll"] > bad.metrics["active"]["nll"] * (1 - settings.promotion_margin)
    rejected = registry.get(db, bad.version)
    assert rejected.status == "rejected" and rejected.metrics["candidate"]["nll"] == bad.metrics["candidate"]["nll"]
    assert registry.active(db).version == good.version

    # a running bot follows activation and rollback
    gen = TransformersGenerator(engine_config(settings).generation, model=tiny_model)
    watcher = AdapterWatcher(db, engine_config(settings), lambda: gen)
    assert watcher.check_once() == good.version and gen.active_adapter == good.version
    registry.activate(db, bad.version)  # an admin forces the rejected one live...
    assert watcher.check_once() == bad.version
    result = admin_ops.rollback(db, "slack:T1:UADMIN")  # ...and takes it back
    assert (result.rolled_back, result.now_active) == (bad.version, good.version)
    assert good.version in result.message
    assert registry.get(db, bad.version).status == "retired"
    assert watcher.check_once() == good.version and gen.active_adapter == good.version
    assert admin_ops.rollback(db, "x").now_active is None  # the first adapter falls back to base
    assert watcher.check_once() is None and gen.active_adapter is None
    with pytest.raises(LookupError, match="nothing to roll back"):
        admin_ops.rollback(db, "x")


@pytest.mark.parametrize("method", ["prefix", "ia3"])
def test_other_peft_methods_train_gate_and_load_through_the_same_path(db, tiny_model, scratch_dir, tmp_path, method):
    settings = tiny_settings(scratch_dir, tiny_model, tmp_path / "adapters", peft_method=method,
                             prefix_virtual_tokens=4, train_epochs=2, train_learning_rate=5e-2)
    outcome = train_and_judge(db, engine_config(settings), _training_set())
    record = registry.get(db, outcome.version)
    assert record.method == method and record.status in ("active", "rejected")
    assert outcome.metrics["candidate"]["nll"] != outcome.metrics["base"]["nll"]  # it learned something
    gen = TransformersGenerator(engine_config(settings).generation, model=tiny_model)
    gen.load_adapter(outcome.version, record.path, activate=True)
    example = _training_set().heldout[0]
    with_adapter = gen.handle.score_nll(gen.prompt_text(example.question, example.hits()), example.answer)
    gen.set_active_adapter(None)
    base = gen.handle.score_nll(gen.prompt_text(example.question, example.hits()), example.answer)
    assert with_adapter != pytest.approx(base, abs=1e-4)
    assert gen.generate(example.question, example.hits(), []).text  # serves


def test_interrupted_training_checkpoints_and_resumes_to_the_same_adapter(tiny_model, tmp_path):
    settings = tiny_settings(tmp_path, tiny_model, tmp_path / "adapters", train_epochs=2, train_checkpoint_steps=0)
    train = _examples()[:8]
    full = train_adapter(train, engine_config(settings), tmp_path / "full")
    steps_seen = []
    checkpoint = tmp_path / "ckpt"
    with pytest.raises(TrainingInterrupted) as stopped:
        train_adapter(train, engine_config(settings), tmp_path / "resumed", checkpoint_dir=checkpoint,
                      on_step=lambda s: steps_seen.append(s.step), should_stop=lambda: len(steps_seen) >= 2)
    assert stopped.value.step == 2 and (checkpoint / "trainer_state.pt").is_file()
    resumed = train_adapter(train, engine_config(settings), tmp_path / "resumed", checkpoint_dir=checkpoint)
    assert resumed.resumed_from_step == 2 and resumed.steps == full.steps
    assert not checkpoint.exists()  # cleaned up after a finished run
    from safetensors.torch import load_file

    a = load_file(tmp_path / "full" / "adapter_model.safetensors")
    b = load_file(tmp_path / "resumed" / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_seq2seq_model_trains(tmp_path):
    from rag_engine.testing.tiny_models import make_tiny_t5

    t5 = make_tiny_t5(tmp_path / "t5")
    settings = tiny_settings(tmp_path, t5, tmp_path / "adapters", train_epochs=1)
    result = train_adapter(_examples()[:4], engine_config(settings), tmp_path / "t5-lora")
    assert result.steps == 1 and (tmp_path / "t5-lora" / "adapter_config.json").is_file()
    assert result.answer_tokens > 0 and result.trainable_params < result.total_params


def test_empty_training_set_is_a_clear_error(tiny_model, tmp_path):
    with pytest.raises(ValueError, match="training set is empty"):
        train_adapter([], engine_config(tiny_settings(tmp_path, tiny_model, tmp_path / "a")), tmp_path / "out")


def test_retrain_without_enough_feedback_is_skipped_with_the_reason(db, tiny_model, scratch_dir, tmp_path):
    from rag_engine.training.pipeline import retrain

    outcome = retrain(db, engine_config(tiny_settings(scratch_dir, tiny_model, tmp_path / "adapters")), retrieve=None)
    assert outcome.decision == "skipped" and "not enough usable examples yet (0" in outcome.reason
    assert outcome.version is None and registry.list_adapters(db) == []
