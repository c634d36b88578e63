"""The learning loop's report: the deterministic Q&A split, rows scored from answers, kept answers against the
extractive ones, table cells, JSON and the PNG (no models, no database)."""

from __future__ import annotations

import json

import pytest

from rag_engine.eval.answer_eval import QAItem, score_answer
from rag_engine.eval.loop_report import (
    AFTER,
    BEFORE,
    BOOTSTRAP,
    EXTRACTIVE,
    KEPT_COLUMNS,
    TABLE_COLUMNS,
    LoopReport,
    ScoredAnswer,
    kept_rows,
    overlap,
    plot_loop,
    question_key,
    retrain_summary,
    scored,
    split_qa,
    summarize_row,
    table_rows,
)
from rag_engine.values import Answer, AnswerStatus, Citation, FallbackCode

ITEMS = [QAItem(f"Question number {n}?", f"answer {n}") for n in range(40)]


def test_split_is_deterministic_disjoint_and_complete():
    train, test = split_qa(ITEMS, 0.3, seed=7)
    again = split_qa(list(ITEMS), 0.3, seed=7)
    assert (train, test) == again
    assert {i.question for i in train}.isdisjoint({i.question for i in test})
    assert sorted(i.question for i in train + test) == sorted(i.question for i in ITEMS)
    assert len(test) == 12  # 30 % of 40
    assert [i for i in ITEMS if i in test] == test  # file order kept
    assert split_qa(ITEMS, 0.3, seed=8) != (train, test)  # the seed matters


def test_the_split_ignores_file_order_and_repeats_stay_together():
    train, test = split_qa(ITEMS, 0.3, seed=1)
    train_r, test_r = split_qa(ITEMS[::-1], 0.3, seed=1)
    assert (set(train), set(test)) == (set(train_r), set(test_r))
    # the key ignores case and punctuation: a repeated question lands on the same side
    assert question_key("Where is the VPN?", 3) == question_key("where is the vpn", 3)
    twice = [*ITEMS[:10], QAItem("question NUMBER 3", "again")]
    train, test = split_qa(twice, 0.5, seed=2)
    sides = {"train" if i in train else "test" for i in twice if "3" in i.question}
    assert len(sides) == 1


def test_small_files_still_get_both_sides():
    few = ITEMS[:3]
    for seed in range(30):
        train, test = split_qa(few, 0.2, seed=seed)
        assert len(test) == 1 and len(train) == 2
    with pytest.raises(ValueError, match="two different questions"):
        split_qa([ITEMS[0], ITEMS[0]], 0.5)
    with pytest.raises(ValueError, match="between 0 and 1"):
        split_qa(ITEMS, 1.0)


def test_overlap_counts_test_questions_seen_in_training():
    assert overlap(ITEMS[:5], ITEMS[3:8]) == 2
    assert overlap(ITEMS[:5], [QAItem("QUESTION number 1", "x")]) == 1


def _citation(uri: str) -> Citation:
    return Citation(n=1, chunk_id=1, document_id=1, title="t", source_uri=uri)


def _answer(text: str, *, generator: str = "llama", adapter: str | None = None, status=AnswerStatus.ANSWERED,
            code: FallbackCode | None = None, cite: str = "docs/vpn.md") -> Answer:
    return Answer(text=text, citations=[_citation(cite)], status=status, generator=generator,
                  adapter_version=adapter, fallback_code=code)


def _scored(item: QAItem, answer: Answer, seconds: float = 0.1) -> ScoredAnswer:
    return scored(score_answer(item, answer, seconds), answer)


QA = [QAItem("How do I connect to the VPN?", "open the vpn client and sign in", "vpn.md"),
      QAItem("Who approves expenses?", "your manager approves expenses", "expenses.md"),
      QAItem("When is the office open?", "from eight to six", None)]


def test_scored_tells_kept_generations_from_fallbacks():
    kept = _scored(QA[0], _answer("Open the VPN client and sign in [1]."))
    assert kept.kept and kept.fallback is None and kept.citation_hit and kept.token_f1 == 1.0
    replaced = _scored(QA[0], _answer("Open the client.", generator="extractive", status=AnswerStatus.FALLBACK,
                                      code=FallbackCode.NOT_SUPPORTED))
    assert not replaced.kept and replaced.fallback == "not_supported"
    quoted = _scored(QA[0], _answer("Open the client.", generator="extractive", code=FallbackCode.NO_GENERATOR))
    assert not quoted.kept and quoted.fallback == "no_generator"  # extractive by design is not "generated"
    none = _scored(QA[1], _answer("I couldn't find this.", generator="extractive", status=AnswerStatus.NOT_FOUND))
    assert none.abstained and not none.kept and none.citation_hit is False


def _rows():
    before = [
        _scored(QA[0], _answer("Open the VPN client and sign in [1].")),  # kept, perfect
        _scored(QA[1], _answer("manager", generator="extractive", status=AnswerStatus.FALLBACK,
                               code=FallbackCode.NOT_SUPPORTED, cite="docs/other.md"), 0.5),
        _scored(QA[2], _answer("from eight to six", generator="extractive", status=AnswerStatus.FALLBACK,
                               code=FallbackCode.GENERATOR_ERROR), 2.0),
    ]
    quoted = [
        _scored(QA[0], _answer("Sign in", generator="extractive", code=FallbackCode.NO_GENERATOR, cite="x.md")),
        _scored(QA[1], _answer("your manager approves expenses", generator="extractive",
                               code=FallbackCode.NO_GENERATOR, cite="expenses.md")),
        _scored(QA[2], _answer("from eight to six", generator="extractive", code=FallbackCode.NO_GENERATOR)),
    ]
    after = [_scored(q, _answer(q.answer, adapter="v1", cite=q.source or "a.md")) for q in QA]
    return (summarize_row(BEFORE, "llama (base model)", before), summarize_row(EXTRACTIVE, "extractive", quoted),
            summarize_row(AFTER, "llama + adapter v1", after))


def test_rows_count_kept_answers_fallback_reasons_and_latency():
    before, quoted, after = _rows()
    assert before.questions == 3
    assert before.kept_rate == pytest.approx(1 / 3) and after.kept_rate == 1.0 and quoted.kept_rate == 0.0
    assert before.fallbacks == {"not_supported": 1, "generator_error": 1}
    assert quoted.fallbacks == {"no_generator": 3} and after.fallbacks == {}
    assert before.citation_hit_rate == 0.5  # two questions name a source; one was cited
    assert after.citation_hit_rate == 1.0 and after.token_f1 == 1.0
    assert before.p50_ms == pytest.approx(500) and before.p95_ms > before.p50_ms
    assert after.answered_by == {"llama + adapter v1": 3}


def _report(decision: str = "promoted") -> LoopReport:
    before, quoted, after = _rows()
    result = {"decision": decision, "reason": "held-out NLL 3.1 < 3.4", "version": "v1",
              "train": {"seconds": 12.5, "tokens": 4000, "tokens_per_s": 320.0, "examples": 9},
              "snapshot": {"train": 9, "heldout": 3}, "metrics": {"candidate": {"nll": 3.1}}}
    retrain = retrain_summary(4, "done", result, None, 20.0, "v1" if decision == "promoted" else None)
    return LoopReport("handbook", 12, 3, 0, {"added": 12, "duplicates": 0, "errors": 0}, [before, quoted, after],
                      retrain, {"qa_file": "qa.jsonl", "test_fraction": 0.2, "seed": 0})


def test_kept_answers_are_compared_with_the_extractive_answer_to_the_same_questions():
    report = _report()
    before, after = report.kept_vs_extractive()
    assert (before.row, before.kept) == (BEFORE, 1)
    assert before.kept_token_f1 == 1.0  # the one kept answer (VPN) ...
    assert before.extractive_token_f1 == pytest.approx(_rows()[1].answers[0].token_f1)  # ... vs the VPN extract
    assert before.kept_citation_hit == 1.0 and before.extractive_citation_hit == 0.0
    assert after.kept == 3 and after.extractive_citation_hit == 0.5  # the VPN extract cited the wrong file
    cells = kept_rows(report)
    assert len(cells[0]) == len(KEPT_COLUMNS) and cells[0][:2] == [BEFORE, "1"]


def test_table_puts_the_retrain_on_the_after_row_and_says_when_the_gate_rejects():
    rows = table_rows(_report())
    assert [len(r) for r in rows] == [len(TABLE_COLUMNS)] * 3
    head = dict(zip(TABLE_COLUMNS, rows[2], strict=True))
    assert head["row"] == AFTER and head["model"] == "llama + adapter v1"
    assert (head["retrain s"], head["train tokens"], head["tokens/s"], head["gate"]) == ("20.0", "4000", "320",
                                                                                         "promoted v1")
    assert dict(zip(TABLE_COLUMNS, rows[0], strict=True))["gate"] == "–"
    assert dict(zip(TABLE_COLUMNS, rows[0], strict=True))["fallbacks"] == "not_supported 1, generator_error 1"

    rejected = _report("rejected")
    rejected.rows[2].note = "gate rejected v1"
    cells = dict(zip(TABLE_COLUMNS, table_rows(rejected)[2], strict=True))
    assert cells["row"] == "after (gate rejected v1)" and cells["gate"] == "rejected v1"


def test_a_failed_job_has_no_verdict_numbers():
    failed = retrain_summary(5, "failed", None, "RuntimeError: out of memory", 3.0, None)
    assert failed.verdict == "job failed" and failed.reason.startswith("RuntimeError")
    assert failed.tokens is None and failed.tokens_per_s is None


def test_json_and_png(tmp_path):
    report = _report()
    data = json.loads(json.dumps(report.as_dict()))
    assert [r["name"] for r in data["rows"]] == [BEFORE, EXTRACTIVE, AFTER]
    assert data["retrain"]["verdict"] == "promoted v1" and data["retrain"]["tokens_per_s"] == 320.0
    assert data["kept_vs_extractive"][0]["row"] == BEFORE
    assert len(data["rows"][0]["answers"]) == 3 and "kept" in data["rows"][0]["answers"][0]
    png = tmp_path / "out" / "loop.png"
    plot_loop(report, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_invented_content_is_counted_over_kept_answers_only():
    shown = ["Open the VPN client and sign in with your SSO account."]
    honest = Answer(text="Open the VPN client and sign in [1].", citations=[_citation("docs/vpn.md")],
                    generator="llama", passages=shown)
    inventive = Answer(text="Open the VPN client on port 4433 [1].", citations=[_citation("docs/vpn.md")],
                       generator="llama", passages=shown)
    quoted = Answer(text="Call 555 0100.", generator="extractive", fallback_code=FallbackCode.NOT_SUPPORTED,
                    status=AnswerStatus.FALLBACK, passages=shown)  # not kept: never counted
    rows = [_scored(QA[0], honest), _scored(QA[0], inventive), _scored(QA[1], quoted)]
    assert [r.invented for r in rows] == [(), ("4433",), ()]
    assert summarize_row(AFTER, "llama", rows).invented_rate == 0.5
    assert summarize_row(EXTRACTIVE, "extractive", [rows[2]]).invented_rate is None
    report = _report()
    report.rows[2] = summarize_row(AFTER, "llama + adapter v1", rows)
    assert dict(zip(TABLE_COLUMNS, table_rows(report)[2], strict=True))["invented (kept)"] == "0.500"


def test_a_bootstrap_row_carries_its_own_retrain():
    report = _report()
    boot = retrain_summary(3, "done", {"decision": "rejected", "version": "v1", "reason": "no gain"}, None, 9.0, None)
    report.rows.insert(2, summarize_row(BOOTSTRAP, "llama (base model)", report.rows[0].answers))
    report.bootstrap_retrain = boot
    cells = {r[0]: dict(zip(TABLE_COLUMNS, r, strict=True)) for r in table_rows(report)}
    assert cells["bootstrap"]["gate"] == "rejected v1" and cells["after"]["gate"] == "promoted v1"
    assert report.as_dict()["bootstrap_retrain"]["verdict"] == "rejected v1"
