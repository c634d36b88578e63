"""``ragbot lora bootstrap`` on the real database: pairs come only from collections that allow
training, land as curated examples with source 'bootstrap', flow into the training set citing the
passage they came from, and the CLI runs a retrain job through the gate on a tiny model."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from app.configs import engine_config
from rag_engine import jobs
from rag_engine.engine import RagEngine
from rag_engine.store import Store
from rag_engine.training import bootstrap, registry
from rag_engine.training.dataset import build_training_set
from rag_engine.values import Record
from tests.support.training import one_torch_thread, tiny_model, tiny_settings

__all__ = ["one_torch_thread", "tiny_model"]

TRAINABLE = [
    Record("mem://expenses", "Expenses", "# Expenses\n\n## Receipts\n\nAn itemised receipt is required for every "
           "expense over twenty five euros. Receipts are uploaded in the finance portal.\n\n## Travel booking\n\n"
           "Travel must be booked through the travel desk. Hotels up to one hundred and fifty euros per night are "
           "approved without review.\n", format="markdown"),
    Record("mem://oncall", "On call", "# On call\n\n## Pages\n\nOn call engineers answer pages within fifteen "
           "minutes. Pages that go unanswered escalate to the secondary.\n\n## Postmortems\n\nA postmortem is a "
           "written review of an incident. It lists causes and follow-up actions.\n\n## Handover\n\n"
           "Q: When do on call shifts hand over? A: On call shifts hand over every Tuesday at ten in the "
           "morning.\n", format="markdown"),
]
SECRET = [
    Record("mem://salaries", "Salaries", "# Salaries\n\n## Salary bands\n\nThe salary band for a staff engineer is "
           "confidential. Salary bands are reviewed every March.\n\nA bonus means a yearly payment decided by the "
           "committee.\n", format="markdown"),
]


def _ingest(db, embedder, settings) -> RagEngine:
    engine = RagEngine(engine_config(settings), db=db, embedder=embedder, generator=None, reranker=None)
    engine.ingest_records(TRAINABLE, "handbook")
    engine.ingest_records(SECRET, "secret", visibility="private")  # private: training off by default
    return engine


def test_pairs_come_only_from_training_collections_and_flow_into_the_training_set(db, embedder, settings):
    engine = _ingest(db, embedder, settings)
    handbook, secret = Store(db).collections.resolve(["handbook", "secret"])
    assert handbook.allow_training and not secret.allow_training

    chunks = bootstrap.load_chunks(db)
    assert chunks and {c.collection_id for c in chunks} == {handbook.id}
    assert bootstrap.load_chunks(db, [secret.id]) == []  # asking for it explicitly reads nothing either

    derived = bootstrap.derive_pairs(chunks)
    assert set(derived.kept()) == {"heading", "faq", "definition"}, derived
    assert bootstrap.store_pairs(db, derived.pairs) == (len(derived.pairs), 0)
    assert bootstrap.store_pairs(db, derived.pairs) == (0, len(derived.pairs))  # a re-run adds nothing

    rows = Store(db).training_examples.curated()
    assert len(rows) == len(derived.pairs)
    assert {r.source for r in rows} == {"bootstrap"} and {r.collection_id for r in rows} == {handbook.id}
    assert not any(re.search(r"salar|bonus", f"{r.question} {r.answer}", re.I) for r in rows)

    def retrieve(question: str, collection_ids: list[int]):
        return engine.retriever.search(question, engine.scope_for(["handbook"]), 2, None)

    built = build_training_set(db, engine_config(settings).training, retrieve=retrieve)
    examples = [e for e in built.train + built.heldout if e.origin != "negative"]  # negatives: test_training_dataset
    assert examples and {e.origin for e in examples} == {"curated"}
    for example in examples:  # [n] points at a shown passage that holds the answer
        n = int(re.search(r"\[(\d+)\]", example.answer).group(1))
        claim = re.sub(r"\s*\[\d+\]", "", example.answer).rstrip(".")
        assert claim in " ".join(example.passages[n - 1].text.split()), example
    assert len(examples) + built.excluded["bootstrap: own passage not retrieved"] == len(rows)


def test_cli_dry_run_writes_nothing_then_bootstrap_retrains(db, embedder, scratch_dir, tiny_model, tmp_path):
    from app.cli import app

    settings = tiny_settings(scratch_dir, tiny_model, tmp_path / "adapters")
    _ingest(db, embedder, settings)
    env = {"RAGBOT_DATA_DIR": str(scratch_dir), "RAGBOT_GENERATOR_BACKEND": "transformers",
           "RAGBOT_GENERATOR_MODEL": str(tiny_model), "RAGBOT_ADAPTER_DIR": str(settings.adapter_store),
           **{f"RAGBOT_{k.upper()}": str(getattr(settings, k)) for k in (
               "generator_device", "max_new_tokens", "train_learning_rate", "train_epochs", "train_batch_size",
               "train_max_tokens", "lora_r", "lora_alpha", "lora_dropout", "train_heldout_fraction",
               "eval_generate_max", "promotion_margin", "min_relevance", "search_k", "min_grounded_fraction")}}
    runner = CliRunner()

    def ragbot(*args: str):
        return runner.invoke(app, list(args), env=env)

    refused = ragbot("lora", "bootstrap", "--collection", "secret", "--dry-run")
    assert refused.exit_code == 1 and "does not allow training" in refused.output

    dry = ragbot("lora", "bootstrap", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert re.search(r"heading\s*│\s*\d+\s*│\s*[1-9]", dry.output) and "nothing written" in dry.output
    assert "What is a postmortem?" in dry.output
    assert Store(db).training_examples.curated() == [] and jobs.recent(db) == []

    out = ragbot("lora", "bootstrap")
    assert out.exit_code == 0, out.output
    stored = Store(db).training_examples.curated()
    assert stored and {r.source for r in stored} == {"bootstrap"}
    assert f"Stored {len(stored)} bootstrap pairs" in out.output
    [job] = jobs.recent(db, kind=jobs.RETRAIN)
    assert job.status == "done" and job.requested_by.startswith("cli:"), job
    result = job.result
    assert result["decision"] in ("promoted", "rejected"), result
    origins = result["snapshot"]["origins"]
    assert set(origins) <= {"curated", "negative"} and origins["curated"] > 0
    assert sum(origins.values()) == result["snapshot"]["train"] + result["snapshot"]["heldout"]
    active = registry.active(db)
    assert (active is not None and active.version == result["version"]) == (result["decision"] == "promoted")
    assert f"job {job.id}: done - {result['decision']}" in out.output
    actions = [(e.action, e.ok) for e in Store(db).audit.recent()]
    assert ("bootstrap", True) in actions and ("retrain", True) in actions
