"""Issue 14 item 4: the extractive answerer quotes the sentences that answer the question.

It is what users see whenever the model fails, so it must answer on its own: the section whose
heading asks the question wins over passages that are merely similar, sentences that only restate
the question are skipped, the quote stays within a character budget, in source order, every
sentence cited, table rows still quoted as rows. Small hand-written passages, the real embedder.
"""

from __future__ import annotations

import re

from rag_engine.extractive import ExtractiveAnswerer
from rag_engine.values import SearchHit

MARKER = re.compile(r" \[(\d+)\]")


def hit(i: int, heading: str, text: str, doc: int | None = None) -> SearchHit:
    doc = i if doc is None else doc
    return SearchHit(chunk_id=100 + i, document_id=doc, collection_id=1, title=f"Doc {doc}",
                     source_uri=f"file:///doc{doc}.md", heading_path=f"Doc {doc} > {heading}", text=text, score=1.0)


def quoted(text: str) -> list[tuple[str, int]]:
    """(sentence, cited passage) pairs of an answer, in the order shown."""
    parts = MARKER.split(text)
    return [(parts[j].strip().lstrip("- "), int(parts[j + 1])) for j in range(0, len(parts) - 1, 2)]


PAGED = "I just got paged. What should I do?"
SIMILAR = hit(1, "Alert urgency", "High urgency alerts page the on-call engineer at any hour. "
                                  "Low urgency alerts never page and wait for working hours.")
ANSWERS = hit(2, "What to do when you get paged", "Acknowledge the page in PagerDuty within five minutes. "
                                                 "Open the incident channel and post what you see.")


def test_the_section_that_answers_wins_over_a_merely_similar_passage(embedder):
    text = ExtractiveAnswerer(embedder).generate(PAGED, [SIMILAR, ANSWERS], []).text

    assert quoted(text) == [("Acknowledge the page in PagerDuty within five minutes.", 2),
                            ("Open the incident channel and post what you see.", 2)]


def test_a_sentence_that_only_restates_the_question_is_skipped(embedder):
    section = hit(1, "Laptops", "How do I request a new laptop? File a ticket in the IT portal with your cost centre.")

    text = ExtractiveAnswerer(embedder).generate("How do I request a new laptop?", [section], []).text

    assert quoted(text) == [("File a ticket in the IT portal with your cost centre.", 1)]


def test_sentences_stay_in_source_order_and_each_cites_its_passage(embedder):
    # two overlapping chunks of one section: the shared sentence is quoted once, from the first
    first = hit(1, "Expense reports", "Expense reports are filed in the finance tool. "
                                      "Receipts are attached as photos or PDF files.", doc=7)
    second = hit(2, "Expense reports", "Receipts are attached as photos or PDF files. "
                                       "Your manager approves expense reports within a week.", doc=7)

    question = "How are expense reports filed and approved?"
    text = ExtractiveAnswerer(embedder).generate(question, [first, second], []).text

    assert quoted(text) == [("Expense reports are filed in the finance tool.", 1),
                            ("Receipts are attached as photos or PDF files.", 1),
                            ("Your manager approves expense reports within a week.", 2)]


def test_the_quote_stops_at_the_character_budget(embedder):
    sentences = [f"Step {w} of the onboarding checklist is done on your first day with your buddy."
                 for w in ("one", "two", "three", "four", "five", "six")]
    section = hit(1, "Onboarding checklist", " ".join(sentences))

    text = ExtractiveAnswerer(embedder, budget_chars=200).generate(
        "What is on the onboarding checklist?", [section], []).text

    shown = [s for s, _ in quoted(text)]
    assert 1 <= len(shown) < len(sentences) and sum(map(len, shown)) <= 200
    assert shown == [s for s in sentences if s in shown]  # source order
    # the best sentence is quoted even when it alone is longer than the budget
    assert quoted(ExtractiveAnswerer(embedder, budget_chars=10).generate(
        "What is on the onboarding checklist?", [section], []).text)


def test_table_rows_of_the_answering_section_are_quoted_as_rows(embedder):
    section = hit(1, "Deploy windows", "Deploys are allowed in these windows: | Day | Window | |-----|:------:| "
                                       "| Friday | 09:00 – 12:00 | | Sunday | none | "
                                       "Ask the release manager otherwise.")

    text = ExtractiveAnswerer(embedder).generate("When are deploy windows on Friday?", [section], []).text

    assert "- Day: Friday; Window: 09:00 – 12:00 [1]" in text.split("\n")
    assert "|" not in text
