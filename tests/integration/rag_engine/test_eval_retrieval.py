"""``eval retrieval`` on a tiny BEIR data set built here, where the right ranking is known."""

from __future__ import annotations

import json
import math

import pytest

from rag_engine.eval.beir import BeirFormatError, load_beir
from rag_engine.eval.retrieval_eval import evaluate_retrieval, hits_to_run
from tests.support.eval_data import write_beir

CORPUS = {
    "d1": ("", "To request VPN access, open a ticket with the IT desk and install the client."),
    "d2": ("", "Team dinners are reimbursed up to seventy five dollars per person with receipts."),
    "d3": ("", "The office kitchen is cleaned every Friday afternoon by the facilities crew."),
    "d4": ("", "The holiday calendar lists every holiday; check the holiday calendar before booking."),
    "d5": ("", "A floating holiday can be taken on any day you choose."),
    "d6": ("Parking", "Staff parking permits are issued by reception on the ground floor."),
}
QUERIES = {
    "q1": "vpn access request",  # only d1 has these words: rank 1
    "q2": "zebra migration patterns",  # no document has these words: lexical finds nothing
    "q3": "holiday calendar",  # d4 (both words, twice) outranks the relevant d5 (one word): rank 2
    "q_unjudged": "parking",
}
QRELS = {"q1": {"d1": 2}, "q2": {"d2": 1}, "q3": {"d5": 1}}


@pytest.fixture()
def tiny_beir(tmp_path):
    return write_beir(tmp_path / "tiny", CORPUS, QUERIES, QRELS)


def test_metrics_match_hand_computed_values(engine, tiny_beir):
    ds = load_beir(tiny_beir)
    assert set(ds.queries) == {"q1", "q2", "q3"}  # only judged queries are evaluated
    result = evaluate_retrieval(engine, ds, "tiny", modes=["lexical", "vector", "hybrid"])
    lexical = result.mode("lexical").metrics
    assert lexical["ndcg@10"] == pytest.approx((1 + 0 + 1 / math.log2(3)) / 3)
    assert lexical["mrr@10"] == pytest.approx((1 + 0 + 0.5) / 3)
    assert lexical["recall@10"] == pytest.approx((1 + 0 + 1) / 3)
    for mode in ("vector", "hybrid"):  # the dense side sees every document: q2's relevant one is ranked
        assert result.mode(mode).metrics["recall@100"] == pytest.approx(1.0)
        assert result.mode(mode).latency["p95_ms"] >= result.mode(mode).latency["p50_ms"] > 0
    assert result.ingest["documents_written"] == len(CORPUS)
    assert result.ingest["embedded"] >= len(CORPUS)


def test_second_run_embeds_nothing(engine, tiny_beir):
    ds = load_beir(tiny_beir)
    first = evaluate_retrieval(engine, ds, "tiny", modes=["lexical"])
    second = evaluate_retrieval(engine, ds, "tiny", modes=["lexical"])
    assert first.ingest["embedded"] > 0
    assert second.ingest["embedded"] == 0
    assert second.ingest["documents_unchanged"] == len(CORPUS)
    assert second.ingest["documents_written"] == 0
    assert second.modes[0].metrics == first.modes[0].metrics


def test_chunks_of_one_document_count_once():
    from rag_engine.values import SearchHit

    def hit(i, uri):
        return SearchHit(i, i, 1, "", uri, "", "", 1.0)

    run = hits_to_run([hit(1, "beir:a"), hit(2, "beir:a"), hit(3, "beir:b")], depth=10)
    assert list(run) == ["a", "b"] and run["a"] > run["b"]


def test_bad_data_sets_are_clear_errors(tmp_path):
    with pytest.raises(BeirFormatError, match=r"corpus\.jsonl is missing"):
        load_beir(tmp_path)
    root = write_beir(tmp_path / "bad", CORPUS, QUERIES, QRELS)
    (root / "queries.jsonl").write_text('{"_id": "q1", "text": "ok"}\nnot json\n')
    with pytest.raises(BeirFormatError, match=r"queries\.jsonl line 2"):
        load_beir(root)


def test_cli_writes_table_json_and_plot(tiny_beir, tmp_path, scratch_dir, db, monkeypatch):
    from typer.testing import CliRunner

    from app.cli import app

    monkeypatch.setenv("RAGBOT_DATA_DIR", str(scratch_dir))
    monkeypatch.setenv("RAGBOT_GENERATOR_BACKEND", "extractive")
    out_json, out_png = tmp_path / "r.json", tmp_path / "r.png"
    result = CliRunner().invoke(app, ["eval", "retrieval", str(tiny_beir), "--json", str(out_json),
                                      "--plot", str(out_png)])
    assert result.exit_code == 0, result.output
    assert "ndcg@10" in result.output and "hybrid" in result.output
    data = json.loads(out_json.read_text())
    assert [m["mode"] for m in data["modes"]] == ["vector", "lexical", "hybrid"]
    assert data["collection"] == "eval-tiny-torch"
    assert out_png.read_bytes()[:4] == b"\x89PNG"

    bad = CliRunner().invoke(app, ["eval", "retrieval", str(tmp_path / "missing")])
    assert bad.exit_code == 1 and "not a BEIR data set" in " ".join(bad.output.split())


LONG_QUESTION = ("I am travelling to Seattle next month for a conference and would really like to know how much "
                 "the daily per diem allowance is, and whether breakfast at the hotel counts")


@pytest.fixture()
def small_docs(engine, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "travel.md").write_text("# Travel\n\n## Per diem\n\nThe per diem in Seattle is $79 a day for meals.\n")
    (docs / "vpn.md").write_text("# VPN\n\nRequest VPN access in the it-help channel before your first day.\n")
    (docs / "kitchen.md").write_text("# Kitchen\n\nThe kitchen is cleaned every Friday; label your food.\n")
    (docs / "laptop-policy.md").write_text("# Laptop policy\n\nReturn equipment when you leave the company.\n")
    (docs / "offboarding.md").write_text("# Offboarding\n\nReturn your laptop and badge when you leave.\n")
    engine.ingest([docs], "docs")
    return engine


@pytest.mark.parametrize("scoring", ["bm25", "ts_rank_cd"])
def test_lexical_finds_a_document_for_a_long_question_missing_most_terms(small_docs, scoring):
    from rag_engine.retrieval import Retriever

    engine = small_docs
    retriever = Retriever(engine.store.chunks, engine.embedder,
                          engine.config.retrieval.model_copy(update={"lexical_scoring": scoring}))
    hits = retriever.search(LONG_QUESTION, engine.scope_for(["docs"]), 3, "lexical")
    assert hits and hits[0].source_uri.endswith("travel.md")  # OR semantics: "hotel", "conference"... are absent
    assert all(h.lexical_score and h.lexical_score > 0 for h in hits)


def test_bm25_weighs_title_matches_higher(small_docs):
    engine = small_docs
    hits = engine.search("laptop", engine.scope_for(["docs"]), k=2, mode="lexical")
    # both mention "laptop" once; in laptop-policy.md it is in the title (weight A), in offboarding.md in the body
    assert [h.source_uri.rsplit("/", 1)[-1] for h in hits] == ["laptop-policy.md", "offboarding.md"]


def test_stop_word_only_query_finds_nothing_lexically(small_docs):
    assert small_docs.search("what is the", small_docs.scope_for(["docs"]), k=3, mode="lexical") == []
