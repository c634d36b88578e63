"""One answer path: one-shot commands (``ragbot ask``, ``eval answers``) answer with the registry's
active adapter, like the bots, and every answer names the model and adapter that wrote it (tiny
model with a real LoRA adapter, real embedded Postgres, the real CLI)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.configs import engine_config
from rag_engine.engine import RagEngine
from rag_engine.interactions import get_interaction, log_interaction
from rag_engine.testing.tiny_models import make_lora_adapter
from rag_engine.training import registry
from tests.support.training import CTX, DOCS, one_torch_thread, tiny_model, tiny_settings

__all__ = ["one_torch_thread", "tiny_model"]

QUESTION = "How many vacation days do I get per year?"


@pytest.fixture()
def settings_(db, embedder, scratch_dir, tiny_model, tmp_path):
    # min_grounded_fraction=0 (tiny_settings): the generated text is what comes back, not the extractive fallback
    settings = tiny_settings(scratch_dir, tiny_model, tmp_path / "adapters", max_new_tokens=8)
    engine = RagEngine(engine_config(settings), db=db, embedder=embedder, generator=None, reranker=None)
    engine.ingest_records(DOCS, "handbook")
    return settings


def _activate_new_adapter(db, settings) -> str:
    version = registry.next_version(db)
    path = make_lora_adapter(Path(settings.generator_model), settings.adapter_store / version, seed=1, scale=4.0)
    registry.register(db, version=version, method="lora",
                      base_model=registry.base_model_id(engine_config(settings).generation), path=path,
                      data_snapshot={})
    registry.activate(db, version, base_model=registry.base_model_id(engine_config(settings).generation))
    return version


def _ragbot(settings, *args: str):
    from app.cli import app

    env = {"RAGBOT_DATA_DIR": str(settings.data_dir), "RAGBOT_GENERATOR_BACKEND": "transformers",
           "RAGBOT_GENERATOR_MODEL": settings.generator_model, "RAGBOT_GENERATOR_DEVICE": "cpu",
           "RAGBOT_ADAPTER_DIR": str(settings.adapter_store), "RAGBOT_MAX_NEW_TOKENS": str(settings.max_new_tokens),
           "RAGBOT_MIN_GROUNDED_FRACTION": "0", "RAGBOT_MIN_RELEVANCE": str(settings.min_relevance),
           "RAGBOT_SEARCH_K": str(settings.search_k)}
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.stdout  # model loading reports its progress on stderr


def _ask_json(settings) -> dict:
    out = _ragbot(settings, "ask", QUESTION, "-c", "handbook", "--json")
    return json.loads(out)  # stdout is the JSON object alone


def test_ask_and_eval_answer_with_the_active_adapter_and_say_so(db, settings_, tmp_path):
    base = _ask_json(settings_)
    assert (base["status"], base["generator"], base["adapter_version"]) == ("answered", "llama", None)
    assert base["answered_by"] == "llama (base model)" and base["answer"]

    version = _activate_new_adapter(db, settings_)
    tuned = _ask_json(settings_)
    assert (tuned["status"], tuned["generator"], tuned["adapter_version"]) == ("answered", "llama", version)
    assert tuned["answered_by"] == f"llama + adapter {version}"
    assert tuned["answer"] != base["answer"]  # the adapter, not only its name, reached the answer

    shown = _ragbot(settings_, "ask", QUESTION, "-c", "handbook")
    assert f"llama + adapter {version}" in shown

    qa = tmp_path / "qa.jsonl"
    qa.write_text(json.dumps({"question": QUESTION, "answer": "twenty five days", "source": "mem://vacation"}) + "\n")
    out_json = tmp_path / "answers.json"
    table = _ragbot(settings_, "eval", "answers", str(qa), "-c", "handbook", "--json", str(out_json))
    assert f"answered by llama + adapter {version}" in table
    row = json.loads(out_json.read_text())["rows"][0]
    assert (row["generator"], row["adapter_version"], row["answer"]) == ("llama", version, tuned["answer"])

    registry.rollback(db)
    back = _ask_json(settings_)
    assert (back["adapter_version"], back["answered_by"], back["answer"]) == (None, "llama (base model)",
                                                                                base["answer"])


def test_a_broken_adapter_file_answers_with_the_base_model_and_says_so(db, embedder, settings_):
    engine = RagEngine(engine_config(settings_), db=db, embedder=embedder,
                       reranker=None)  # builds its generator: the CLI's path
    good = _activate_new_adapter(db, settings_)
    answer = engine.answer(QUESTION, engine.scope_for(["handbook"]))
    assert answer.adapter_version == good and "adapter_error" not in answer.metadata
    logged = get_interaction(db, log_interaction(db, CTX, QUESTION, answer, engine.collection_ids(["handbook"])))
    assert (logged.generator, logged.adapter_version) == ("llama", good)  # the interaction log keeps both

    broken = _activate_new_adapter(db, settings_)
    (settings_.adapter_store / broken / "adapter_model.safetensors").write_bytes(b"not a tensor file")
    fresh = RagEngine(engine_config(settings_), db=db, embedder=embedder, reranker=None)
    answer = fresh.answer(QUESTION, fresh.scope_for(["handbook"]))
    assert answer.status.value == "answered" and answer.text
    assert (answer.generator, answer.adapter_version, answer.answered_by) == ("llama", None, "llama (base model)")
    assert f"adapter {broken}" in answer.metadata["adapter_error"]
    logged = get_interaction(db, log_interaction(db, CTX, QUESTION, answer, fresh.collection_ids(["handbook"])))
    assert (logged.generator, logged.adapter_version) == ("llama", None)
