"""``ragbot eval loop`` end to end on a tiny model and the real embedded Postgres: a docs folder and a Q&A file
-> ingest -> answers before (generator + grounding check + fallback) and extractive -> curated import ->
a retrain job run by the worker, gate included -> answers after with the promoted adapter -> table, JSON, PNG."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from rag_engine import jobs
from rag_engine.store import Store
from rag_engine.training import registry
from tests.support.training import DOCS, QA, one_torch_thread, tiny_model, tiny_settings

__all__ = ["one_torch_thread", "tiny_model"]

# QA[i] is answered by the document named here
SOURCES = ["vacation", "vacation", "carryover", "carryover", "remote", "remote", "expenses", "expenses", "travel",
           "travel", "deploy", "deploy", "oncall", "oncall", "security", "security", "security", "vacation"]
ENV_FIELDS = ("generator_backend", "generator_model", "generator_device", "max_new_tokens", "train_learning_rate",
              "train_epochs", "train_batch_size", "train_max_tokens", "lora_r", "lora_alpha", "lora_dropout",
              "train_heldout_fraction", "eval_generate_max", "promotion_margin", "worker_heartbeat_s",
              "min_relevance", "search_k", "min_grounded_fraction")


def _fixture(tmp_path: Path) -> tuple[Path, Path]:
    docs = tmp_path / "handbook"
    docs.mkdir()
    for record in DOCS:
        (docs / f"{record.source_uri.removeprefix('mem://')}.md").write_text(f"# {record.title}\n\n{record.text}\n")
    qa = tmp_path / "qa.jsonl"
    qa.write_text("".join(json.dumps({"question": q, "answer": a, "source": f"{src}.md"}) + "\n"
                          for (q, a), src in zip(QA, SOURCES, strict=True)))
    return docs, qa


def _ragbot(settings, *args: str):
    from app.cli import app

    env = {f"RAGBOT_{name.upper()}": str(getattr(settings, name)) for name in ENV_FIELDS}
    env |= {"RAGBOT_DATA_DIR": str(settings.data_dir), "RAGBOT_ADAPTER_DIR": str(settings.adapter_store)}
    return CliRunner().invoke(app, list(args), env=env)


def test_eval_loop_measures_before_extractive_and_after_a_worker_retrain(db, scratch_dir, tiny_model, tmp_path):
    settings = tiny_settings(scratch_dir, tiny_model, tmp_path / "adapters")
    docs, qa = _fixture(tmp_path)
    out = tmp_path / "out"
    result = _ragbot(settings, "eval", "loop", str(docs), str(qa), "--test-fraction", "0.3", "--seed", "1",
                     "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "Learning loop on eval-loop-handbook" in result.stdout and "promoted v1" in result.stdout

    report = json.loads((out / "loop.json").read_text())
    assert (report["train_questions"], report["test_questions"], report["test_in_train"]) == (13, 5, 0)
    assert report["imported"] == {"added": 13, "duplicates": 0, "errors": 0}
    before, quoted, after = report["rows"]
    assert [before["name"], quoted["name"], after["name"]] == ["before", "extractive", "after"]
    for row in (before, quoted, after):
        assert row["questions"] == 5 and len(row["answers"]) == 5
        for metric in ("token_f1", "rouge_l", "citation_hit_rate", "abstention_rate", "kept_rate"):
            assert 0.0 <= row[metric] <= 1.0, (row["name"], metric)
        assert 0 < row["p50_ms"] <= row["p95_ms"]
    # the same test questions on every row
    assert [a["question"] for a in before["answers"]] == [a["question"] for a in after["answers"]]
    assert [a["question"] for a in quoted["answers"]] == [a["question"] for a in before["answers"]]

    # before: the base model; the grounding check is off in tiny_settings, so its text is kept
    assert before["model"] == "llama (base model)" and before["kept_rate"] == 1.0 and not before["note"]
    assert before["answered_by"] == {"llama (base model)": 5}
    # extractive: no model, every answer a quote by design, and it finds the right documents
    assert quoted["model"] == "extractive" and quoted["kept_rate"] == 0.0
    assert quoted["fallbacks"] == {"no_generator": 5} and quoted["citation_hit_rate"] >= 0.6
    # after: the adapter the gate promoted answers, and it changed what users receive
    assert after["model"] == "llama + adapter v1" and after["answered_by"] == {"llama + adapter v1": 5}
    assert [a["answer"] for a in after["answers"]] != [a["answer"] for a in before["answers"]]

    retrain = report["retrain"]
    assert (retrain["status"], retrain["decision"], retrain["version"], retrain["active_after"]) == (
        "done", "promoted", "v1", "v1")
    assert retrain["tokens"] > 0 and retrain["tokens_per_s"] > 0 and retrain["wall_s"] >= retrain["train_s"] > 0
    assert retrain["gate"]["candidate"]["nll"] < retrain["gate"]["base"]["nll"]
    kept = {k["row"]: k for k in report["kept_vs_extractive"]}
    assert kept["before"]["kept"] == 5 and kept["before"]["extractive_token_f1"] == quoted["token_f1"]

    # it went through the job queue and the worker, and the registry serves the result
    job = jobs.get(db, retrain["job_id"])
    assert job is not None and job.kind == jobs.RETRAIN and job.status == "done"
    assert job.requested_by.startswith("cli:") and job.result["version"] == "v1"
    assert registry.active(db).version == "v1"
    assert Store(db).collections.get("eval-loop-handbook").allow_training

    assert (out / "loop.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "generated+kept" in (out / "loop.txt").read_text()


def test_eval_loop_refuses_a_collection_that_does_not_train(db, scratch_dir, tiny_model, tmp_path):
    from rag_engine import collections as cols

    settings = tiny_settings(scratch_dir, tiny_model, tmp_path / "adapters")
    docs, qa = _fixture(tmp_path)
    cols.create(Store(db).collections, "private-docs", visibility="private")
    result = _ragbot(settings, "eval", "loop", str(docs), "--collection", "private-docs", "--train", str(qa),
                     "--test", str(qa))
    assert result.exit_code == 1
    assert "does not allow training" in result.output and "--training" in result.output
    assert jobs.recent(db, kind=jobs.RETRAIN) == []  # nothing was queued


def test_eval_loop_bootstrap_row_measures_the_day_one_adapter_before_the_train_pairs(db, scratch_dir, tiny_model,
                                                                                    tmp_path):
    settings = tiny_settings(scratch_dir, tiny_model, tmp_path / "adapters")
    docs, qa = _fixture(tmp_path)
    (docs / "leave.md").write_text("# Leave\n\n## How to request parental leave\n\n"
                                   "Request parental leave in the HR portal two months ahead.\n\n"
                                   "## Sick leave\n\nSick leave needs a doctor's note after three days of leave.\n")
    out = tmp_path / "out"
    result = _ragbot(settings, "eval", "loop", str(docs), str(qa), "--test-fraction", "0.3", "--seed", "1",
                     "--bootstrap", "--out", str(out))
    assert result.exit_code == 0, result.output

    report = json.loads((out / "loop.json").read_text())
    assert [r["name"] for r in report["rows"]] == ["before", "extractive", "bootstrap", "after"]
    boot, final = report["bootstrap_retrain"], report["retrain"]
    # two retrains through the worker: the first on the documents' own pairs, the second adds the train pairs
    assert (boot["status"], boot["version"], final["status"], final["version"]) == ("done", "v1", "done", "v2")
    assert 0 < boot["examples"] < final["examples"]
    bootstrap_row = report["rows"][2]
    assert bootstrap_row["questions"] == 5
    served = "llama + adapter v1" if boot["decision"] == "promoted" else "llama (base model)"
    assert bootstrap_row["model"] == served
    assert "bootstrap" in (out / "loop.txt").read_text()
