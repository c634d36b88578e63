"""clarifying_question: ask back on short ambiguous questions with tied hits from several documents."""

from __future__ import annotations

from rag_engine.generation.ask_back import clarifying_question, content_words
from rag_engine.values import SearchHit


def _hit(doc: int, title: str, cosine: float | None, score: float | None = None) -> SearchHit:
    return SearchHit(chunk_id=doc * 10, document_id=doc, collection_id=1, title=title, source_uri=f"file:///{doc}",
                     heading_path="", text="...", score=cosine if score is None else score, vector_score=cosine)


TIED = [_hit(1, "Expense policy", 0.42), _hit(2, "Travel guide", 0.41), _hit(3, "Onboarding", 0.40),
        _hit(1, "Expense policy", 0.39)]


def test_short_ambiguous_question_with_tied_hits_asks_back_naming_topics() -> None:
    q = clarifying_question("limits?", TIED)
    assert q is not None
    assert "Expense policy" in q and "Travel guide" in q and "Onboarding" in q
    assert q.count("Expense policy") == 1  # titles deduplicated


def test_clear_winner_does_not_ask_back() -> None:
    hits = [_hit(1, "Expense policy", 0.55), _hit(2, "Travel guide", 0.41), _hit(3, "Onboarding", 0.40)]
    assert clarifying_question("limits?", hits) is None


def test_long_specific_question_does_not_ask_back() -> None:
    assert clarifying_question("what is the hotel price limit per night when travelling abroad?", TIED) is None


def test_strong_match_does_not_ask_back_even_if_tied() -> None:
    hits = [_hit(1, "Expense policy", 0.81), _hit(2, "Travel guide", 0.80)]
    assert clarifying_question("limits", hits) is None


def test_ties_within_one_document_do_not_ask_back() -> None:
    hits = [_hit(1, "Expense policy", 0.42), _hit(1, "Expense policy", 0.41), _hit(2, "Travel guide", 0.20)]
    assert clarifying_question("limits", hits) is None


def test_falls_back_to_fused_score_without_cosines() -> None:
    hits = [_hit(1, "Expense policy", None, 0.030), _hit(2, "Travel guide", None, 0.029)]
    assert clarifying_question("limits", hits) is not None
    hits = [_hit(1, "Expense policy", None, 0.030), _hit(2, "Travel guide", None, 0.015)]
    assert clarifying_question("limits", hits) is None


def test_lexical_only_hits_are_not_contenders_when_cosines_exist() -> None:
    hits = [_hit(1, "Expense policy", 0.42), _hit(2, "Travel guide", None, 0.031)]
    assert clarifying_question("limits", hits) is None


def test_content_words_ignore_question_words() -> None:
    assert content_words("What is the expense limit?") == ["expense", "limit"]
    assert clarifying_question("what is it?", TIED) is None  # no content words at all


def test_related_documents_named_by_the_question_are_not_ambiguous() -> None:
    hits = [_hit(1, "VPN Setup and MFA", 0.55), _hit(2, "VPN Troubleshooting", 0.52)]
    assert clarifying_question("vpn access?", hits) is None
    unrelated = [_hit(1, "Expense Policy", 0.41), _hit(2, "Travel and Per Diem", 0.40)]
    assert clarifying_question("limits?", unrelated) is not None


def test_tied_cosines_with_a_clear_fused_winner_do_not_ask_back() -> None:
    """Convex fusion: one document has the question's word (BM25), so the fused scores are not tied."""
    hits = [_hit(1, "Meeting Norms", 0.41, 0.98), _hit(2, "On-call Rotation", 0.42, 0.70),
            _hit(3, "Your First Week", 0.40, 0.52)]
    assert clarifying_question("When is all-hands?", hits) is None
    tied = [_hit(1, "Meeting Norms", 0.41, 0.98), _hit(2, "On-call Rotation", 0.42, 0.95)]
    assert clarifying_question("When is all-hands?", tied) is not None
