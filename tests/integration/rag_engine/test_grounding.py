"""The grounding check holds amounts strictly: units and "per …" qualifiers (issue 20 item 10)."""

from __future__ import annotations

import pytest

from app.configs import engine_config
from rag_engine.attribution import rejection, support
from rag_engine.engine import RagEngine
from rag_engine.quantities import keeps_amounts
from rag_engine.values import AnswerStatus, GeneratedText, SearchHit

LIMITS = ("| Category | Limit | Approval | | Team dinner or team celebration | $75 per person | Manager approves in "
          "advance | | Learning budget | $1,500 per calendar year | Manager for any single item over $300 |")
STIPEND = "Internet stipend: $50 per month, added to your payslip automatically. No receipts are needed."
LEAVE = "All parents receive **16 weeks of fully paid parental leave**, in up to **three blocks** within 12 months."


def _hits(*texts: str) -> list[SearchHit]:
    return [SearchHit(chunk_id=i, document_id=i, collection_id=1, title="", source_uri="", heading_path="", text=t,
                      score=1.0) for i, t in enumerate(texts, start=1)]


@pytest.mark.parametrize("sentence, passage", [
    ("The expense limit for the team dinner is $75.", LIMITS),
    ("The learning budget is $1,500.", LIMITS),
    ("The internet stipend is $50, paid automatically.", STIPEND),
])
def test_an_amount_without_its_qualifier_is_not_supported(sentence, passage):
    assert not keeps_amounts(sentence, passage)


@pytest.mark.parametrize("sentence, passage", [
    ("The expense limit for a team dinner is $75 per person.", LIMITS),
    ("Each attendee of a team dinner may spend up to $75.", LIMITS),
    ("The learning budget is $1,500 every calendar year.", LIMITS),
    ("Single items over $300 need a manager's approval.", LIMITS),
    ("You get $50 a month for internet.", STIPEND),
    ("The internet stipend is $50 monthly.", STIPEND),
    ("The internet stipend is $50/month.", STIPEND),
    ("Parental leave is 16 weeks and can be split into 3 blocks.", LEAVE),
    ("Parental leave is sixteen weeks.", LEAVE),
])
def test_paraphrases_that_keep_amount_unit_and_qualifier_pass(sentence, passage):
    assert keeps_amounts(sentence, passage)


@pytest.mark.parametrize("sentence, passage", [
    ("The expense limit for a team dinner is $57 per person.", LIMITS),  # another number
    ("The expense limit for a team dinner is 75% per person.", LIMITS),  # another unit
    ("Parental leave is 16 days.", LEAVE),
    ("Parental leave can be split into four blocks.", LEAVE),
    ("A SEV2 is a full outage.", "| **SEV1** | Full outage of a customer-facing product |"),  # an identifier
])
def test_changed_numbers_units_and_identifiers_are_not_supported(sentence, passage):
    assert not keeps_amounts(sentence, passage)


def test_similarity_alone_accepted_the_dropped_qualifier_the_strict_check_does_not(embedder):
    hits = _hits(LIMITS)
    answer = "The expense limit for the team dinner is $75."
    before = support(answer, hits, 1, embedder, strict_amounts=False)
    now = support(answer, hits, 1, embedder)
    assert before.fraction == 1.0 and rejection(before, 0.5) is None  # what let the answer through
    assert now.fraction == 0.0 and now.wrong_amounts == (answer,)
    assert "not supported" in rejection(now, 0.5)


def test_one_wrong_amount_rejects_an_otherwise_supported_answer(embedder):
    answer = "A team dinner needs the manager's approval in advance. The limit is $75."
    found = support(answer, _hits(LIMITS), 1, embedder)
    assert found.fraction >= 0.5 and found.wrong_amounts == ("The limit is $75.",)
    assert "amount" in rejection(found, 0.5)
    assert rejection(found, 0.0) is None  # the check switched off stays off


class FixedGenerator:
    """A stand-in model that always gives the same answer (no citation markers)."""

    name = "fixed"

    def __init__(self, text: str) -> None:
        self.text = text

    def generate(self, question, hits, history):
        return GeneratedText(text=self.text, model=self.name, passages=tuple(h.text for h in hits[:3]))


@pytest.mark.parametrize("generated, kept", [
    ("The expense limit for a team dinner is $75.", False),
    ("The expense limit for a team dinner is $75 per person, tax and tip included.", True),
])
def test_engine_replaces_an_answer_that_drops_the_qualifier(db, embedder, settings, tmp_path, generated, kept):
    (tmp_path / "expenses.md").write_text("# Expenses\n\n## Spending limits\n\nLimits include tax and tip. "
                                          "Team dinners are capped at $75 per person.\n")
    engine = RagEngine(engine_config(settings), db=db, embedder=embedder, generator=FixedGenerator(generated),
                       reranker=None)
    engine.ingest([tmp_path], "default")
    answer = engine.answer("What's the expense limit for a team dinner?", engine.every_collection())
    if kept:
        assert answer.status is AnswerStatus.ANSWERED and answer.generator == "fixed"
    else:
        assert answer.status is AnswerStatus.FALLBACK and answer.generator == "extractive"
        assert "$75 per person" in answer.text and "amount" in answer.fallback_reason
