"""Every refusal gives its reason, then the next step in one short sentence."""

from __future__ import annotations

import re

import pytest

from app.configs import bot_config
from bot import access, messages
from bot.core import BotCore
from bot.types import Actor, AskRequest, Location
from rag_engine.store import Store
from tests.conftest import make_settings

REFUSALS = {
    "empty ask": messages.ASK_USAGE,
    "admin": messages.ADMIN_ONLY,
    "workspace not served": messages.NOT_ENABLED,
    "no collection here": messages.NO_COLLECTIONS_HERE,
    "rate limit": messages.rate_limited(9),
    "correction rate limit": messages.corrections_rate_limited(9),
    "question length": messages.question_too_long(2500, 2000),
    "correction length": messages.correction_too_long(4000),
    "empty correction": messages.CORRECTION_EMPTY,
    "command length": messages.command_too_long(2500, 2000),
    "unknown answer": messages.unknown_answer("7KQM2D"),
    "unknown button": messages.UNKNOWN_BUTTON,
    "database away": messages.UNAVAILABLE,
    "failed answer": messages.answer_failed("7KQM2D"),
    "failed request": messages.failed("message 1234"),
}


def sentences(text: str) -> list[str]:
    return re.split(r"(?<=[.!?])\s+(?=[A-Z])", text.strip())


@pytest.mark.parametrize("what", sorted(REFUSALS))
def test_each_refusal_ends_with_one_short_next_step(what):
    *reason, step = sentences(REFUSALS[what])
    assert reason, f"{what}: no next step after the reason"
    assert len(step) <= 110 and step.endswith((".", "`")), f"{what}: {step!r}"


HERE = Location("slack", "T1", "C1")
ELSEWHERE = Location("slack", "T1", "C9")
ALICE = Actor("slack", "U_ALICE")


@pytest.fixture()
def core(engine, tmp_path, scratch_dir):
    (tmp_path / "dinner.md").write_text("# Expenses\n\nTeam dinners are capped at $75 per person including tip.\n")
    engine.ingest([tmp_path / "dinner.md"], "default")
    return BotCore(bot_config(make_settings(scratch_dir)), engine)


async def test_a_channel_that_reads_no_collection_is_told_who_can_change_that(core, db):
    default = Store(db).collections.get("default")
    access.set_access(Store(db), default.id, "slack", "T1", "C9", "exclude")

    refused = await core.ask(AskRequest(ALICE, ELSEWHERE, "what is the team dinner limit?"))
    assert refused.kind == "refused" and refused.text == messages.NO_COLLECTIONS_HERE
    assert (await core.ask(AskRequest(ALICE, HERE, "what is the team dinner limit?"))).kind == "answer"


async def test_not_found_says_what_to_try(core):
    reply = await core.ask(AskRequest(ALICE, HERE, "which satellites orbit Neptune?"))
    assert reply.kind == "not_found" and reply.text.endswith(messages.NOT_FOUND_NEXT_STEP)


async def test_correction_refusals_say_how_to_retry(core):
    answer = await core.ask(AskRequest(ALICE, HERE, "what is the team dinner limit?"))
    empty = await core.correct(ALICE, answer.interaction_id, "   ")
    long = await core.correct(ALICE, answer.interaction_id, "x" * 4001)
    assert (empty.ok, empty.message) == (False, messages.CORRECTION_EMPTY)
    assert (long.ok, long.message) == (False, messages.correction_too_long(4000))
