"""The calibrated "not in the documents" rule through the real engine: Postgres, the default embedder, hybrid search.

The shipped model is fitted on the default embedder's cosines (``rag_engine.abstention``), so this uses it rather
than a random one: a random embedder's cosines would say nothing about the rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag_engine.abstention import DEFAULT_MODEL
from rag_engine.engine import RagEngine
from rag_engine.values import AnswerStatus
from tests.conftest import make_engine_config

DOCS = {
    "oncall.md": "# On-call rotation\n\nOn-call shifts last one week and hand over every Tuesday at 10:00. "
                 "A week as primary on-call pays a stipend of 400 dollars, a week as secondary 150 dollars.\n",
    "expenses.md": "# Expenses\n\nSubmit receipts in the finance portal within thirty days. Team dinners are "
                   "reimbursed up to seventy five dollars per person.\n",
    "vpn.md": "# VPN access\n\nTo get VPN access, open a ticket with the IT desk and install the VPN client on "
              "your laptop. The client needs your single sign-on password.\n",
}
ON_TOPIC = "How much is the stipend for a primary on-call week?"
OFF_TOPIC = "Which planets of the solar system have rings?"
# near the documents' words (office life) but answered by none of them: the best cosine clears the old floor
NEAR_MISS = "Can I work from home on Fridays?"


@pytest.fixture()
def engines(db, embedder, scratch_dir: Path, tmp_path: Path) -> dict[str, RagEngine]:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in DOCS.items():
        (folder / name).write_text(text)
    out = {rule: RagEngine(make_engine_config(scratch_dir, abstention_rule=rule), db=db, embedder=embedder,
                           generator=None, reranker=None) for rule in ("min_relevance", "calibrated")}
    out["calibrated"].ingest([folder], "team")
    return out


def test_calibrated_rule_answers_on_topic_and_abstains_off_topic(engines: dict[str, RagEngine]) -> None:
    engine = engines["calibrated"]
    scope = engine.scope_for(["team"])
    answered = engine.answer(ON_TOPIC, scope)
    assert answered.status != AnswerStatus.NOT_FOUND
    assert answered.hits[0].source_uri.endswith("oncall.md")
    refused = engine.answer(OFF_TOPIC, scope)
    assert refused.status == AnswerStatus.NOT_FOUND
    assert refused.metadata["abstention"]["rule"] == "calibrated"
    assert refused.metadata["abstention"]["score"] < DEFAULT_MODEL.threshold


def test_a_near_miss_is_answered_by_the_old_floor_and_refused_by_the_calibrated_rule(
        engines: dict[str, RagEngine]) -> None:
    old, new = (engines[rule].answer(NEAR_MISS, engines[rule].scope_for(["team"]))
                for rule in ("min_relevance", "calibrated"))
    best = max(h.vector_score or 0.0 for h in old.hits)
    assert best >= engines["min_relevance"].config.retrieval.min_relevance
    assert old.status != AnswerStatus.NOT_FOUND
    assert new.status == AnswerStatus.NOT_FOUND
    assert new.metadata["abstention"]["rule"] == "calibrated"
    assert new.metadata["abstention"]["score"] < DEFAULT_MODEL.threshold
    assert new.metadata["best_similarity"] == pytest.approx(best)
