"""Answered threads on Slack end to end: a ✅ on a reply (signed ``reaction_added`` into the real
Bolt app) makes the real bot core fetch the thread from the Slack double, store it, and tell the
reactor; the next question in the channel is answered from it with the permalink; a stranger's ✅
does nothing; removing the asker's ✅ withdraws it."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

from sqlalchemy import func, select

from adapters.testing.slack_server import MockSlackApi, SlackSender, serving
from app.configs import bot_config
from bot.core import BotCore
from rag_engine.store import schema as t
from tests.conftest import make_settings

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
QUESTION = "How do I reset the staging database for the billing service?"
ANSWER = "Run <https://wiki.example.com/reset|make reset-staging> from the billing repo; ask <@UOPS> if it fails."
CHECK = {"name": "white_check_mark", "users": ["UASK"], "count": 1}


@asynccontextmanager
async def slack_for(engine, tmp_path):
    api = await MockSlackApi().start()
    core = BotCore(bot_config(make_settings(tmp_path, slack_bot_token="xoxb-test-token", slack_signing_secret=SECRET,
                                            slack_api_url=api.api_url, admin_user_ids=["UADMIN"])), engine)
    try:
        async with serving(core, api, SECRET) as sender:
            yield api, sender
    finally:
        await api.stop()


def counts(db) -> tuple[int, int]:
    with db.connect() as conn:
        return (conn.execute(select(func.count()).select_from(t.documents)).scalar_one(),
                conn.execute(select(func.count()).select_from(t.curated_examples)).scalar_one())


def notes(api: MockSlackApi) -> list[dict]:
    return [c.payload for c in api.calls_to("chat.postEphemeral")]


async def test_a_checked_reply_becomes_knowledge_of_its_channel_and_unchecking_withdraws_it(engine, db, tmp_path):
    async with slack_for(engine, tmp_path) as (api, send):
        api.history.add_channel("CHELP", "help")
        api.conversations["CHELP"] = {"id": "CHELP", "name": "help", "is_channel": True, "is_private": False}
        question = api.history.post("CHELP", QUESTION, user="UASK")
        noise = api.history.post("CHELP", "Did you try turning it off and on?", user="URANDOM", thread_ts=question)
        answer = api.history.post("CHELP", ANSWER, user="UHELP", thread_ts=question, reactions=[CHECK])

        # someone who neither asked nor administers the bot: read, then ignored
        await send.event(SlackSender.reaction(noise, user="URANDOM", channel="CHELP"))
        await api.wait_for(lambda a: a.calls_to("chat.getPermalink"), what="the thread fetched")
        await asyncio.sleep(0.5)
        assert counts(db) == (0, 0) and notes(api) == []
        # a reaction that is not the accept reaction costs no API call at all
        before = len(api.calls)
        await send.event(SlackSender.reaction(answer, user="UASK", channel="CHELP", name="eyes"))
        await asyncio.sleep(0.3)
        assert len(api.calls) == before

        await send.event(SlackSender.reaction(answer, user="UASK", channel="CHELP"))
        await api.wait_for(lambda a: notes(a), what="the note to the asker")
        (note,) = notes(api)
        assert note["user"] == "UASK" and note["thread_ts"] == question and "Saved this answer" in note["text"]
        assert counts(db) == (1, 1)
        with db.connect() as conn:
            doc = conn.execute(select(t.documents)).one()
        permalink = f"https://test.slack.com/archives/CHELP/p{answer.replace('.', '')}"
        assert doc.metadata["url"] == permalink and doc.title == QUESTION
        # Slack markup is stored as readers see it
        with db.connect() as conn:
            text = " ".join(conn.execute(select(t.chunks.c.text)).scalars())
        assert "make reset-staging (https://wiki.example.com/reset)" in text and "@UOPS" in text

        # the same ✅ delivered again (or an admin's): nothing new, nobody told twice
        await send.event(SlackSender.reaction(answer, user="UADMIN", channel="CHELP"))
        await api.wait_for(lambda a: len(a.calls_to("chat.getPermalink")) >= 3, what="the second fetch")
        await asyncio.sleep(0.5)
        assert counts(db) == (1, 1) and len(notes(api)) == 1

        # the next question in the channel is answered from the accepted thread, linking to it
        await send.event(SlackSender.mention("how do I reset the staging database for billing?", ts="1800000001.1",
                                             channel="CHELP", user="UNEW"))
        await api.wait_for(lambda a: any(c.payload.get("thread_ts") == "1800000001.1"
                                         for c in a.calls_to("chat.postMessage")), what="the answer")
        assert permalink in api.all_payloads_text()

        # the asker takes the ✅ back (no one else's is left on it): withdrawn
        for message in api.history.messages["CHELP"]:
            if message["ts"] == answer:
                message["reactions"] = []
        await send.event(SlackSender.reaction(answer, user="UASK", channel="CHELP", removed=True))
        await api.wait_for(lambda a: len(notes(a)) == 2, what="the withdrawal note")
        assert "Withdrawn" in notes(api)[-1]["text"] and counts(db) == (0, 0)


async def test_a_private_channels_thread_stays_in_that_channel(engine, db, tmp_path):
    async with slack_for(engine, tmp_path) as (api, send):
        api.history.add_channel("GSEC", "secret-project", private=True)  # conversations.info unknown: private too
        question = api.history.post("GSEC", "What is the door code of the lab?", user="UASK")
        answer = api.history.post("GSEC", "The lab door code is 4471.", user="UHELP", thread_ts=question)
        await send.event(SlackSender.reaction(answer, user="UASK", channel="GSEC"))
        await api.wait_for(lambda a: notes(a), what="the note to the asker")
        assert "answered-threads-slack-gsec" in notes(api)[0]["text"]
        assert "not used for training" in notes(api)[0]["text"]
        assert counts(db) == (1, 0)

        await send.event(SlackSender.mention("what is the lab door code?", ts="1800000002.1", channel="COTHER"))
        await send.event(SlackSender.mention("what is the lab door code?", ts="1800000003.1", channel="GSEC"))
        def replies(a: MockSlackApi) -> dict[str, str]:  # thread -> what the bot posted there (a refusal: privately)
            return {c.payload["thread_ts"]: str(c.payload) for c in a.calls
                    if c.method in ("chat.postMessage", "chat.postEphemeral") and c.payload.get("thread_ts")}

        await api.wait_for(lambda a: {"1800000002.1", "1800000003.1"} <= replies(a).keys(), what="both replies")
        assert "4471" in replies(api)["1800000003.1"] and "4471" not in replies(api)["1800000002.1"]
