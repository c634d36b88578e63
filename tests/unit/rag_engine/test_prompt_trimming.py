"""Passages shown to the generator: the top ones only, each cut to its sentences about the question."""

from __future__ import annotations

from rag_engine.generation.abstain import ABSTAIN_TEXT, is_abstention
from rag_engine.generation.prompting import ApproxTokenCounter, build_prompt, serving_prompt
from rag_engine.generation.trimming import trim_passage
from rag_engine.values import SearchHit

COUNTER = ApproxTokenCounter()  # 3.5 characters per token

PASSAGE = (
    "The office opens at eight. "
    "Parking permits are issued by the front desk. "
    "Visitors sign in at reception. "
    "A parking permit costs nothing for staff. "
    "The cafeteria serves lunch until two."
)


def _hit(i: int, text: str) -> SearchHit:
    return SearchHit(chunk_id=i, document_id=i, collection_id=1, title=f"Doc {i}", source_uri="",
                     heading_path="", text=text, score=1.0 / i)


def test_a_passage_that_fits_is_returned_unchanged() -> None:
    assert trim_passage(PASSAGE, "Where do I get a parking permit?", 1000, COUNTER) is PASSAGE
    assert trim_passage(PASSAGE, "Where do I get a parking permit?", 0, COUNTER) is PASSAGE  # 0 = no limit


def test_keeps_the_sentences_about_the_question_in_source_order_within_the_limit() -> None:
    limit = 27  # room for the two parking sentences (89 characters), not a third
    trimmed = trim_passage(PASSAGE, "Where do I get a parking permit?", limit, COUNTER)
    assert trimmed == "Parking permits are issued by the front desk. A parking permit costs nothing for staff."
    assert COUNTER.truncate(trimmed, limit) == trimmed
    # trimming what was trimmed changes nothing (logged passages are trimmed again when they train)
    assert trim_passage(trimmed, "Where do I get a parking permit?", limit, COUNTER) == trimmed


def test_ties_go_to_the_earlier_sentence_and_leftover_room_is_filled() -> None:
    trimmed = trim_passage(PASSAGE, "What about the weather?", 17, COUNTER)  # no sentence shares a word
    assert trimmed == "The office opens at eight. Visitors sign in at reception."  # 2nd did not fit, 3rd did


def test_a_single_sentence_longer_than_the_limit_is_cut_to_a_prefix() -> None:
    long = "Parking " + "very " * 200 + "far away. Unrelated short sentence."
    trimmed = trim_passage(long, "parking", 10, COUNTER)
    assert trimmed == long[:35] and trimmed.startswith("Parking very")


def test_list_items_and_table_rows_stay_on_their_own_lines() -> None:
    text = "Badges:\n\n- Lost badge: call security.\n- New badge: ask HR.\n- Visitor badge: reception.\n\nEnd."
    trimmed = trim_passage(text, "lost or new badge", 20, COUNTER)
    assert trimmed == "Badges:\n\n- Lost badge: call security.\n- New badge: ask HR.\n\nEnd."  # no visitor


def test_build_prompt_shows_the_top_passages_trimmed_and_numbers_them_as_shown() -> None:
    hits = [_hit(i, PASSAGE) for i in range(1, 6)]
    built = build_prompt("Where do I get a parking permit?", hits, [], counter=COUNTER, budget=10_000,
                         history_turns=0, max_passages=3, passage_max_tokens=27)
    assert len(built.passages) == 3 and built.dropped_passages == 2
    user = built.messages[-1]["content"]
    assert '<passage n="3"' in user and '<passage n="4"' not in user
    assert all(p.startswith("Parking permits") and p in user for p in built.passages)
    assert "cafeteria" not in user
    whole = build_prompt("Where do I get a parking permit?", hits, [], counter=COUNTER, budget=10_000,
                         history_turns=0)
    assert len(whole.passages) == 5 and whole.passages[0] == PASSAGE  # 0 / 0: every hit, untrimmed
    assert built.prompt_tokens < whole.prompt_tokens


def test_serving_prompt_takes_its_limits_from_the_generation_config(settings) -> None:
    from app.configs import engine_config

    config = engine_config(settings).generation.model_copy(update={"generation_passages": 2,
                                                                   "passage_max_tokens": 27})
    built = serving_prompt(config, "parking permit?", [_hit(i, PASSAGE) for i in range(1, 6)], [],
                           counter=COUNTER, budget=10_000)
    assert len(built.passages) == 2 and all(len(p) < len(PASSAGE) for p in built.passages)


def test_the_abstention_sentence_is_recognised_and_answers_are_not() -> None:
    assert is_abstention(ABSTAIN_TEXT)
    assert is_abstention("The documents don't say.") and is_abstention("the passages do not say how long [2].")
    assert not is_abstention("Parking permits are issued by the front desk [1].")
    assert not is_abstention("The documents do not say it directly, but " + "the desk issues permits " * 5 + ".")
