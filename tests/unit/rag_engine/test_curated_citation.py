"""A curated answer without a citation learns to cite the shown passage it comes from."""

from __future__ import annotations

from rag_engine.training.dataset import cite_best_passage

PASSAGES = [
    "Laptops are replaced every three years by IT.",
    "Team dinners are capped at 75 dollars per person including tip.",
    "Dinner receipts go to the expenses tool within a week.",
]


def test_the_passage_sharing_most_words_is_cited():
    answer = "Team dinners are capped at 75 dollars per person, tip included."
    assert cite_best_passage(answer, PASSAGES) == f"{answer} [2]"


def test_an_answer_with_a_marker_or_sharing_nothing_is_unchanged():
    assert cite_best_passage("Capped at 75 dollars [3].", PASSAGES) == "Capped at 75 dollars [3]."
    assert cite_best_passage("Ask Priya.", PASSAGES) == "Ask Priya."
    assert cite_best_passage("Team dinners are capped.", []) == "Team dinners are capped."
