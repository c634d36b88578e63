"""Issue 20 item 3: an answer's citation numbers start at [1] in order of first use, one number per
document, and its sources list each cited document once with the sections cited from it — the same
numbering for the interaction log, both chat platforms, and (mapped back) the training set.
"""

from __future__ import annotations

from dataclasses import asdict

import pytest
from sqlalchemy import select

from app.configs import engine_config
from rag_engine.engine import RagEngine
from rag_engine.extractive import ExtractiveAnswerer
from rag_engine.feedback import record_vote
from rag_engine.generation.citations import cited_sources, parse_citations, passage_markers
from rag_engine.interactions import log_interaction
from rag_engine.store import schema as t
from rag_engine.training.dataset import build_training_set
from rag_engine.values import GeneratedText, SearchHit
from tests.conftest import EXAMPLES, make_settings
from tests.support.replies import PLATFORMS, ask
from tests.support.training import CTX

TRAVEL = ("# Travel policy\n\n## Flights\n\nEconomy class is booked through Navan for every flight shorter than six "
          "hours.\n\n## Hotels\n\nHotels up to 180 euros per night are approved without a manager sign-off.\n")
EXPENSES = "# Expenses\n\nExpense reports must be submitted within 30 days of the purchase date.\n"
QUESTION = "What are the rules for booking flights and hotels and filing the expenses afterwards?"


def hit(i: int, document_id: int, heading: str, text: str = "") -> SearchHit:
    return SearchHit(chunk_id=100 + i, document_id=document_id, collection_id=1, title=f"Doc {document_id}",
                     source_uri=f"file:///doc{document_id}.md", heading_path=f"Doc {document_id} > {heading}",
                     text=text or f"text {i}", score=1.0)


def test_markers_are_renumbered_from_one_per_document_in_order_of_first_use():
    hits = [hit(1, 10, "Intro"), hit(2, 20, "Flights"), hit(3, 30, "Expenses"), hit(4, 20, "Hotels")]
    text, cites = parse_citations("Economy [2]. Reports within 30 days [3]. Hotels [4]. Both [4][2].", hits)
    assert text == "Economy [1]. Reports within 30 days [2]. Hotels [1]. Both [1]."
    assert [(c.n, c.passage, c.document_id) for c in cites] == [(1, 2, 20), (1, 4, 20), (2, 3, 30)]
    sources = cited_sources(cites)
    assert [(s.n, s.citation.document_id, s.sections) for s in sources] == [(1, 20, ("Flights", "Hotels")),
                                                                           (2, 30, ("Expenses",))]
    # the training set needs the prompt's numbers back: a document's number stands for its cited passages
    assert passage_markers(text, [asdict(c) for c in cites]) == ("Economy [2, 4]. Reports within 30 days [3]. "
                                                                 "Hotels [2, 4]. Both [2, 4].")


def test_an_extractive_answer_quoting_passages_two_and_three_cites_one_and_two(embedder):
    hits = [hit(1, 10, "Cafeteria", "The cafeteria menu changes every Monday morning at nine."),
            hit(2, 20, "Deadline", "Expense reports must be submitted within 30 days of the purchase date."),
            hit(3, 30, "Approval", "Your manager approves expense reports in the finance tool.")]
    question = "When must expense reports be submitted and who approves the expense reports?"
    raw = ExtractiveAnswerer(embedder, max_sentences=2).generate(question, hits, []).text
    assert "[2]" in raw and "[3]" in raw and "[1]" not in raw  # what the reader used to see

    text, cites = parse_citations(raw, hits)
    assert text == raw.replace("[2]", "[1]").replace("[3]", "[2]")
    assert [(c.n, c.passage) for c in cites] == [(1, 2), (2, 3)]


class CitingModel:
    """Cites the Flights, Hotels and Expenses passages by their numbers in the prompt, whatever the ranking."""

    name = "citing-model"

    def generate(self, question, hits, history):
        n = {h.heading_path.split(" > ")[-1]: i for i, h in enumerate(hits, start=1)}
        text = (f"Economy class is booked through Navan for flights shorter than six hours [{n['Flights']}]. "
                f"Hotels up to 180 euros per night need no manager sign-off [{n['Hotels']}]. "
                f"Expense reports are due within 30 days of the purchase [{n['Expenses']}].")
        return GeneratedText(text=text, model=self.name, passages=tuple(h.text for h in hits))


@pytest.fixture()
def travel_engine(db, embedder, scratch_dir, tmp_path):
    settings = make_settings(scratch_dir, min_grounded_fraction=0.0)  # numbering is under test, not grounding
    engine = RagEngine(engine_config(settings), db=db, embedder=embedder, generator=CitingModel(), reranker=None)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "travel.md").write_text(TRAVEL)
    (tmp_path / "docs" / "expenses.md").write_text(EXPENSES)
    engine.ingest([tmp_path / "docs"], "default")
    return engine


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_a_generated_answer_shows_one_source_per_document_numbered_from_one(platform, travel_engine, db,
                                                                                   tmp_path):
    seen = await ask(platform, travel_engine, tmp_path, QUESTION)

    assert "six hours [1]. Hotels" in seen.text and "sign-off [1]. Expense" in seen.text
    assert "purchase [2]." in seen.text
    travel, expenses = seen.sources  # exactly the cited documents, each once, in order of first use
    assert travel.startswith("**[1]** Travel policy" if platform == "discord" else "[1] *Travel policy*")
    assert "Flights; Hotels" in travel
    assert expenses.startswith("**[2]** Expenses" if platform == "discord" else "[2] *Expenses*")
    with db.connect() as conn:
        (row,) = conn.execute(select(t.interactions.c.answer, t.interactions.c.citations)).all()
    assert "[1]" in row.answer and "[2]" in row.answer and "[3]" not in row.answer  # the log reads the same
    assert [c["n"] for c in row.citations] == [1, 1, 2]


def test_the_training_target_keeps_the_prompts_passage_numbers(travel_engine, settings):
    answer = travel_engine.answer(QUESTION, travel_engine.every_collection())
    shown = {h.heading_path.split(" > ")[-1]: i for i, h in enumerate(answer.hits, start=1)}
    interaction_id = log_interaction(travel_engine.db, CTX, QUESTION, answer,
                                     travel_engine.collection_ids(["default"]))
    record_vote(travel_engine.db, interaction_id, "slack:U1", 1)

    (example,) = build_training_set(travel_engine.db, engine_config(settings).training).train
    travel = ", ".join(str(n) for n in sorted((shown["Flights"], shown["Hotels"])))  # the document's passages
    assert f"six hours [{travel}]" in example.answer and f"sign-off [{travel}]" in example.answer
    assert f"purchase [{shown['Expenses']}]" in example.answer


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_an_extractive_answer_from_two_sections_lists_the_document_once(platform, engine, tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "slos.md").write_bytes((EXAMPLES / "slos.md").read_bytes())
    engine.ingest([tmp_path / "docs"], "default")

    seen = await ask(platform, engine, tmp_path, "What is the availability objective for the Public API?")

    (source,) = seen.sources  # once, although two of its sections are quoted
    assert "Service Level Objectives" in source and "Current SLOs" in source and "Error budgets" in source
    assert "[2]" not in seen.text
