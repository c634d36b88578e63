"""The interaction log on the real database."""

from __future__ import annotations

import pytest

from rag_engine.interactions import InteractionContext, get_interaction, log_interaction, thread_history
from rag_engine.scope import CollectionScope
from rag_engine.values import Answer, AnswerStatus, Citation, SearchHit, Turn

CTX = InteractionContext("discord", "G1", "C9", "T5", "discord:G1:U7")


def _hit(chunk_id: int, collection_id: int, text: str) -> SearchHit:
    return SearchHit(chunk_id=chunk_id, document_id=chunk_id * 10, collection_id=collection_id, title=f"Doc {chunk_id}",
                     source_uri=f"file:///doc{chunk_id}.md", heading_path="Intro", text=text, score=0.5 / chunk_id,
                     vector_score=0.8)


def test_answer_is_stored_with_everything_needed_to_rebuild_it(db):
    hits = [_hit(1, 3, "first passage"), _hit(2, 4, "second passage")]
    answer = Answer(text="Twenty five days [1].", citations=[Citation(1, 1, 10, "Doc 1", "file:///doc1.md")],
                    hits=hits, status=AnswerStatus.ANSWERED, timings={"retrieve": 0.1, "total": 0.5},
                    generator="smollm2", adapter_version="v3", prompt_version="v1", flags=["prompt_injection"],
                    passages=["first passage (trimmed)"])
    iid = log_interaction(db, CTX, "How many days?", answer, [3, 4])
    rec = get_interaction(db, iid)
    assert rec is not None and rec.id == iid
    assert (rec.platform, rec.workspace_id, rec.channel_id, rec.thread_id, rec.user_key) == (
        "discord", "G1", "C9", "T5", "discord:G1:U7")
    assert rec.question == "How many days?" and rec.answer == "Twenty five days [1]."
    assert [(r.chunk_id, r.collection_id, r.title) for r in rec.retrieved] == [(1, 3, "Doc 1"), (2, 4, "Doc 2")]
    assert rec.retrieved[1].score == pytest.approx(0.25)
    assert rec.passages == ["first passage (trimmed)"]  # as shown, not the full hit texts
    assert (rec.generator, rec.adapter_version, rec.prompt_version, rec.status) == ("smollm2", "v3", "v1", "answered")
    assert rec.citations[0]["chunk_id"] == 1 and rec.flags == ["prompt_injection"]
    assert rec.timings == {"retrieve": 0.1, "total": 0.5} and rec.collection_ids == [3, 4]
    assert rec.retrieved_collection_ids == {3, 4}


def test_hit_texts_stand_in_when_the_generator_reported_no_passages(db):
    answer = Answer(text="not found", hits=[_hit(1, 1, "alpha"), _hit(2, 1, "beta")], status=AnswerStatus.NOT_FOUND)
    rec = get_interaction(db, log_interaction(db, CTX, "q", answer, None))
    assert rec.passages == ["alpha", "beta"] and rec.status == "not_found" and rec.collection_ids == []


def test_failed_asks_and_fallbacks_are_logged(db):
    failed = get_interaction(db, log_interaction(db, CTX, "why?", None, [1], error="RuntimeError: boom"))
    assert failed.status == "error" and failed.fallback_reason == "RuntimeError: boom" and failed.answer == ""
    fallback = Answer(text="extractive", status=AnswerStatus.FALLBACK, fallback_reason="GenerationError: oom")
    rec = get_interaction(db, log_interaction(db, CTX, "q", fallback, [1]))
    assert rec.status == "fallback" and rec.fallback_reason == "GenerationError: oom"
    with pytest.raises(ValueError):
        log_interaction(db, CTX, "q", None, [1])


def test_unknown_interaction_is_none(db):
    assert get_interaction(db, 12345) is None


def test_thread_history_is_oldest_first_and_limited_to_the_thread(db):
    other_thread = InteractionContext("discord", "G1", "C9", "T6", "discord:G1:U7")
    for i in range(3):
        log_interaction(db, CTX, f"q{i}", Answer(text=f"a{i}"), [1])
    log_interaction(db, other_thread, "elsewhere", Answer(text="no"), [1])
    log_interaction(db, CTX, "broken", None, [1], error="boom")  # errors are not history

    def history(platform: str, limit: int):
        return thread_history(db, platform, "C9", "T5", limit, readable=CollectionScope.of([1]),
                              user_key="discord:G1:U8")

    assert history("discord", 10).turns == [
        Turn("user", "q0"), Turn("assistant", "a0"), Turn("user", "q1"), Turn("assistant", "a1"),
        Turn("user", "q2"), Turn("assistant", "a2")]
    last3 = history("discord", 3)
    assert last3.turns == [Turn("assistant", "a1"), Turn("user", "q2"), Turn("assistant", "a2")]
    assert len(last3.interaction_ids) == 2  # q1's answer and q2: the interactions the turns come from
    assert history("slack", 10).turns == []
    assert history("discord", 0).turns == []
