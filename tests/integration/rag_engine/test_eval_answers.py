"""``eval answers``: the real (extractive) answer path scored on a tiny QA file."""

from __future__ import annotations

import json

import pytest

from rag_engine.eval.answer_eval import QAFormatError, evaluate_answers, load_qa, source_matches, write_html

SENTENCE = "Request VPN access in the it-help channel."


@pytest.fixture()
def vpn_engine(engine, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "vpn.md").write_text(f"# VPN\n\n{SENTENCE}\n")
    engine.ingest([docs], "it")
    return engine


def _qa(tmp_path, rows):
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_scores_known_answers_and_counts_an_abstention(vpn_engine, tmp_path):
    items = load_qa(_qa(tmp_path, [
        {"question": "How do I get VPN access?", "answer": SENTENCE, "source": "vpn.md"},
        {"question": "How do I get VPN access?", "answer": "Ask in the it-help channel", "source": "other.md"},
        {"question": "What is the airspeed velocity of an unladen swallow?", "answer": "unknown"},
    ]))
    result = evaluate_answers(vpn_engine, items, ["it"], k=1)
    exact, partial, abstained = result.rows
    assert exact.answer == SENTENCE  # the single passage's sentence, citation marker stripped
    assert (exact.exact_match, exact.token_f1) == (1.0, 1.0)
    assert exact.citation_hit and exact.retrieval_hit and not exact.abstained
    assert partial.exact_match == 0.0
    assert partial.token_f1 == pytest.approx(0.6)  # 3 shared of 6 predicted / 4 reference tokens
    assert partial.citation_hit is False and partial.retrieval_hit is False
    assert abstained.abstained and abstained.status == "not_found"
    assert abstained.citation_hit is None  # no source given

    s = result.summary
    assert s["questions"] == 3
    assert s["exact_match"] == pytest.approx(1 / 3)
    assert s["abstention_rate"] == pytest.approx(1 / 3)
    assert s["citation_hit_rate"] == pytest.approx(0.5)  # over the two lines with a source
    assert s["retrieval_hit_rate"] == pytest.approx(0.5)
    assert s["p95_ms"] >= s["p50_ms"] > 0

    html_path = tmp_path / "report.html"
    write_html(result, html_path)
    page = html_path.read_text()
    assert "airspeed velocity" in page and "it-help channel" in page and "vpn.md" in page


def test_source_matching_is_on_path_boundaries():
    assert source_matches("/srv/docs/it/vpn-setup.md", "vpn-setup.md")
    assert source_matches("/srv/docs/x/y.md", "docs/x/y.md")
    assert source_matches("beir:123", "123")
    assert not source_matches("/srv/docs/old-vpn-setup.md", "vpn-setup.md")


def test_bad_qa_lines_are_clear_errors(tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text('{"question": "q", "answer": "a"}\n{"answer": "no question"}\n')
    with pytest.raises(QAFormatError, match="line 2"):
        load_qa(path)


def test_cli_answers_json_and_html(vpn_engine, tmp_path, scratch_dir, monkeypatch):
    from typer.testing import CliRunner

    from app.cli import app

    monkeypatch.setenv("RAGBOT_DATA_DIR", str(scratch_dir))
    monkeypatch.setenv("RAGBOT_GENERATOR_BACKEND", "extractive")
    qa = _qa(tmp_path, [{"question": "How do I get VPN access?", "answer": SENTENCE, "source": "vpn.md"}])
    out_json, out_html = tmp_path / "a.json", tmp_path / "a.html"
    result = CliRunner().invoke(app, ["eval", "answers", str(qa), "--collection", "it", "--extractive",
                                      "--json", str(out_json), "--html", str(out_html)])
    assert result.exit_code == 0, result.output
    assert "token_f1" in result.output
    data = json.loads(out_json.read_text())
    assert data["summary"]["exact_match"] == 1.0 and data["rows"][0]["citation_hit"] is True
    assert "<table>" in out_html.read_text()
