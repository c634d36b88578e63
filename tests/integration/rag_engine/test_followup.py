"""Follow-up questions in a thread are searched as standalone questions (issue 20 item 9)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.configs import bot_config
from bot.core import BotCore
from bot.types import Actor, AskRequest, Location
from rag_engine.followup import is_followup, standalone_question
from rag_engine.store import schema as t
from rag_engine.values import Turn
from tests.conftest import EXAMPLES, make_settings

DINNER = "What's the expense limit for a team dinner?"
DINNER_ANSWER = Turn("assistant", "Team dinner or team celebration | $75 per person [1]")


def test_a_follow_up_is_searched_with_the_subject_of_the_thread():
    query = standalone_question("Does alcohol count?", [Turn("user", DINNER), DINNER_ANSWER])
    assert query.startswith("Does alcohol count?")
    assert {"expense", "limit", "team", "dinner"} <= set(query.split())
    assert "75" not in query  # the answer's words are not the user's subject


def test_the_subject_survives_a_chain_of_follow_ups_and_acknowledgements():
    history = [Turn("user", DINNER), DINNER_ANSWER, Turn("user", "Thanks!"), Turn("assistant", "…"),
               Turn("user", "Who approves it?"), Turn("assistant", "Your manager [1]")]
    query = standalone_question("Does alcohol count?", history)
    assert query == "Does alcohol count? expense limit team dinner"


@pytest.mark.parametrize("question", ["How do I install the VPN client?",
                                      "What is the per diem outside the United States?"])
def test_a_question_that_names_its_own_subject_is_searched_as_asked(question):
    assert not is_followup(question)
    assert standalone_question(question, [Turn("user", DINNER), DINNER_ANSWER]) == question


def test_openers_and_pronouns_mark_follow_ups():
    assert is_followup("And for a meal with a customer?")
    assert is_followup("What about contractors?")
    assert is_followup("How soon do I have to report it?")


def test_without_earlier_user_turns_nothing_changes():
    assert standalone_question("Does alcohol count?", []) == "Does alcohol count?"
    assert standalone_question("Does alcohol count?", [Turn("assistant", "Hello")]) == "Does alcohol count?"
    # the first question of a thread sets its subject even when it is short
    assert standalone_question("When does it start?", [Turn("user", "On-call shifts?")]).endswith("on-call shifts")


@pytest.fixture()
def core(engine, scratch_dir):
    engine.ingest([EXAMPLES], "handbook")
    return BotCore(bot_config(make_settings(scratch_dir)), engine)


@pytest.mark.parametrize("turns, section", [
    # the last user turn before the follow-up carries no subject: searching it with the follow-up (the rule
    # before) found the travel policy's per diem rules
    ([DINNER, "Thanks!", "Does alcohol count?"], "Alcohol"),
    ([DINNER, "What if we go over?", "Does alcohol count?"], "Alcohol"),
])
async def test_thread_follow_up_cites_the_section_that_answers_it(core, db, turns, section):
    here, alice = Location("slack", "T1", "C1"), Actor("slack", "U_ALICE")
    for text in turns:
        reply = await core.ask(AskRequest(alice, here, text, thread_id="th-dinner"))
    assert reply.kind == "answer"
    assert reply.sources and all(s.title.startswith("Expense Policy") for s in reply.sources), reply.sources
    assert any(section in s.heading_path for s in reply.sources)
    assert "alcohol" in reply.text.lower()
    with db.connect() as conn:
        row = conn.execute(select(t.interactions.c.question, t.interactions.c.flags, t.interactions.c.search_query)
                           .where(t.interactions.c.id == reply.interaction_id)).one()
    assert row.question == "Does alcohol count?" and "followup_rewritten" in row.flags  # the log keeps both
    assert row.search_query and row.search_query.startswith("Does alcohol count?")


async def test_on_call_chain_follow_up_finds_the_compensation_section(core):
    here, bob = Location("slack", "T1", "C1"), Actor("slack", "U_BOB")
    for text in ["How long is an on-call shift?", "When does it start?", "How much does it pay?"]:
        reply = await core.ask(AskRequest(bob, here, text, thread_id="th-oncall"))
    assert any("Compensation" in s.heading_path for s in reply.sources), reply.sources
