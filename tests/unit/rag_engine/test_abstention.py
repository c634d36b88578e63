"""The "not in the documents" decision: its signals and both rules, on hand-made hits."""

from __future__ import annotations

import pytest

from rag_engine.abstention import DEFAULT_MODEL, AbstentionModel, AbstentionSignals, decide, signals, terms
from rag_engine.values import SearchHit


def hit(text: str, cosine: float | None, lexical: float | None = None, title: str = "Doc") -> SearchHit:
    return SearchHit(chunk_id=1, document_id=1, collection_id=1, title=title, source_uri="doc.md", heading_path="",
                     text=text, score=1.0, vector_score=cosine, lexical_score=lexical)


def test_terms_drop_function_words_and_compare_by_stem() -> None:
    assert terms("How do I get reimbursed for the taxi?") == {"reimb", "taxi"}
    assert terms("Reimbursement of taxis") == {"reimb", "taxis"}  # cut to 5 letters, so "taxi" != "taxis"


def test_signals_are_read_off_the_hits() -> None:
    hits = [hit("Taxi rides are reimbursed within thirty days.", 0.8, 4.0),
            hit("The office opens at eight.", 0.5),
            hit("Parking permits come from reception.", 0.2, 1.0, title="Parking")]
    s = signals("How is a taxi reimbursed, and where do I park?", hits)
    assert s.top_cosine == pytest.approx(0.8)
    assert s.cosine_gap == pytest.approx(0.8 - (0.8 + 0.5 + 0.2) / 3)
    assert s.term_coverage == pytest.approx(2 / 3)  # taxi, reimb found; "park" is not "parki(ng)"
    assert s.lexical_top == 1.0  # the best-cosine hit was a lexical match too


def test_lexical_top_looks_at_the_best_cosine_hit_not_the_first() -> None:
    hits = [hit("taxi", 0.5, 9.0), hit("taxi", 0.7, None)]
    assert signals("taxi", hits).lexical_top == 0.0


def test_only_the_top_hits_count_for_term_coverage() -> None:
    hits = [hit("nothing relevant", 0.5)] * 3 + [hit("parking permits", 0.4)]
    assert signals("parking permits", hits).term_coverage == 0.0


def test_no_hits_abstain_under_both_rules() -> None:
    assert decide("anything", [], "min_relevance", 0.0).abstain
    assert decide("anything", [], "calibrated", 0.0).abstain


def test_min_relevance_is_the_old_cosine_floor() -> None:
    hits = [hit("Taxi rides are reimbursed.", 0.31)]
    assert not decide("taxi", hits, "min_relevance", 0.30).abstain
    assert decide("taxi", hits, "min_relevance", 0.32).abstain
    assert decide("taxi", [hit("x", None)], "min_relevance", 0.01).abstain  # no cosine counts as 0


def test_calibrated_answers_a_matching_question_and_abstains_on_a_weak_match() -> None:
    strong = [hit("Taxi rides are reimbursed within thirty days.", 0.78, 6.0)] + [
        hit("Other travel rules.", 0.55, 1.0) for _ in range(4)]
    weak = [hit("The office opens at eight.", 0.42)] + [hit("Lunch is at noon.", 0.40) for _ in range(4)]
    yes = decide("How are taxi rides reimbursed?", strong, "calibrated", 0.30)
    no = decide("How are taxi rides reimbursed?", weak, "calibrated", 0.30)
    assert not yes.abstain and yes.score >= DEFAULT_MODEL.threshold
    assert no.abstain and no.score < DEFAULT_MODEL.threshold
    # the old floor answers both: a cosine of 0.42 clears 0.30
    assert not decide("How are taxi rides reimbursed?", weak, "min_relevance", 0.30).abstain


def test_every_signal_raises_the_probability_of_an_answer() -> None:
    base = AbstentionSignals(top_cosine=0.5, cosine_gap=0.05, term_coverage=0.5, lexical_top=0.5)
    p = DEFAULT_MODEL.probability(base)
    for field in ("top_cosine", "cosine_gap", "term_coverage", "lexical_top"):
        more = AbstentionSignals(**{**{f: getattr(base, f) for f in base.__slots__}, field: getattr(base, field) + 0.1})
        assert DEFAULT_MODEL.probability(more) > p, field


def test_probability_is_logistic_and_clipped() -> None:
    model = AbstentionModel(intercept=0.0, coefficients=(1.0, 0.0, 0.0, 0.0), threshold=0.5)
    assert model.probability(AbstentionSignals(0.0, 0.0, 0.0, 0.0)) == pytest.approx(0.5)
    huge = AbstentionModel(intercept=1e6, coefficients=(0.0, 0.0, 0.0, 0.0), threshold=0.5)
    assert huge.probability(AbstentionSignals(0.0, 0.0, 0.0, 0.0)) == pytest.approx(1.0)
