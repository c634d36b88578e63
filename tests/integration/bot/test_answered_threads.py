"""Answered threads (``bot.answered_threads`` + ``rag_engine.answered``) on the real database: an
accepted answer becomes a document of the channel's collection and a curated example in
``ragbot feedback export``, under the collection rules; only the asker's or an admin's reaction
counts; accepting twice changes nothing; removing the reaction withdraws it."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from app.cli import app
from bot.answered_threads import AnsweredThread, ThreadAcceptance, ThreadMessage, is_accept_reaction
from bot.types import Actor, AskRequest, Location
from rag_engine.store import Store
from rag_engine.store import schema as t
from rag_engine.training.dataset import read_jsonl
from tests.conftest import make_bot_config
from tests.support.security import core_for

PUBLIC = Location("slack", "T1", "CHELP")
PRIVATE = Location("slack", "T1", "GSECRET")
ASKER, HELPER, ADMIN = Actor("slack", "UASK"), Actor("slack", "UHELP"), Actor("slack", "UADMIN")
QUESTION = "How do I reset the staging database for the billing service?"
ANSWER = "Run `make reset-staging` from the billing repo; it reloads the fixtures from the Tuesday snapshot."
PRIVATE_QUESTION = "What is the door code of the server room on floor 3?"
PRIVATE_ANSWER = "The server room door code is 4471, changed every quarter by facilities."


def thread(location: Location = PUBLIC, *, answer_id: str = "1700000002.000200", answer: str = ANSWER,
           question: str = QUESTION, private: bool = False, answer_by: str = "UHELP", bot: bool = False,
           thread_id: str = "1700000001.000100") -> AnsweredThread:
    return AnsweredThread(location, thread_id, ThreadMessage(thread_id, "UASK", question),
                          ThreadMessage(answer_id, answer_by, answer, is_bot=bot),
                          url=f"https://test.slack.com/archives/{location.channel_id}/p{answer_id.replace('.', '')}",
                          private=private, label=f"Slack thread in {location.channel_id}")


def counts(db) -> tuple[int, int]:
    with db.connect() as conn:
        docs = conn.execute(select(func.count()).select_from(t.documents)).scalar_one()
        examples = conn.execute(select(func.count()).select_from(t.curated_examples)).scalar_one()
    return docs, examples


def export(scratch_dir, tmp_path) -> dict[str, str]:
    """``ragbot feedback export``: question -> origin of each example."""
    out = tmp_path / "export.jsonl"
    env = {"RAGBOT_DATA_DIR": str(scratch_dir), "RAGBOT_GENERATOR_BACKEND": "extractive"}
    result = CliRunner().invoke(app, ["feedback", "export", "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    back = read_jsonl(out)
    return {e.question: e.origin for e in back.train + back.heldout}


@pytest.fixture()
def acceptance(engine, tmp_path) -> ThreadAcceptance:
    return ThreadAcceptance(core_for(engine, tmp_path, admin_user_ids=["slack:UADMIN"]))


async def test_accepted_threads_are_exported_as_curated_examples_under_the_collection_rules(
        acceptance, db, scratch_dir, tmp_path):
    public = await acceptance.accept(ASKER, thread())
    private = await acceptance.accept(ASKER, thread(PRIVATE, question=PRIVATE_QUESTION, answer=PRIVATE_ANSWER,
                                                    private=True))
    assert public.ok and public.data == {"new": True, "collection": "answered-threads", "example": "added"}
    assert private.ok and private.data["example"] == "not_allowed"  # a private channel's collection: no training
    assert private.data["collection"] == "answered-threads-slack-gsecret"
    assert counts(db) == (2, 1)  # both are documents; only the public one is an example

    exported = export(scratch_dir, tmp_path)
    assert exported.get(QUESTION) == "curated"
    assert PRIVATE_QUESTION not in exported

    # the public collection's training switched off: the export leaves its example out too
    Store(db).collections.update("answered-threads", allow_training=False)
    assert QUESTION not in export(scratch_dir, tmp_path)
    # ...and a thread accepted while it is off becomes a document but no example
    later = await acceptance.accept(ADMIN, thread(answer_id="1700000003.000300", question="Where are the logs?",
                                                  answer="In Grafana, under the billing folder."))
    assert later.ok and later.data["example"] == "not_allowed"
    assert counts(db) == (3, 1)


async def test_only_the_askers_or_an_admins_reaction_counts(acceptance, db, tmp_path, engine):
    ignored = [await acceptance.accept(HELPER, thread()),  # the answer's own author: neither asker nor admin
               await acceptance.accept(Actor("slack", "URANDOM"), thread()),
               await acceptance.accept(Actor("slack", "UASK", is_external=True), thread()),  # an outsider
               await acceptance.accept(ASKER, thread(bot=True)),  # the bot's answers are rated with buttons
               await acceptance.accept(ASKER, thread(answer_id="1700000001.000100")),  # the question itself
               await acceptance.accept(ASKER, thread(Location("slack", "", "D1", is_dm=True)))]
    assert all(not r.ok and r.data.get("ignored") for r in ignored), ignored
    assert counts(db) == (0, 0)
    assert Store(db).audit.recent(10) == []

    assert (await acceptance.accept(ADMIN, thread())).ok
    assert counts(db) == (1, 1)
    only_asker = ThreadAcceptance(core_for(engine, tmp_path, admin_user_ids=["slack:UADMIN"], accept_by="asker"))
    assert (await only_asker.accept(ADMIN, thread(answer_id="1700000009.000900"))).data.get("ignored")
    off = ThreadAcceptance(core_for(engine, tmp_path, accept_reaction=""))
    assert (await off.accept(ASKER, thread(answer_id="1700000009.000900"))).data.get("ignored")


async def test_accepting_twice_changes_nothing_and_removing_the_reaction_withdraws(acceptance, db):
    assert (await acceptance.accept(ASKER, thread())).data["new"]
    again = await acceptance.accept(ADMIN, thread())
    assert again.ok and not again.data["new"] and again.data["example"] == "unchanged"
    assert counts(db) == (1, 1)
    edited = await acceptance.accept(ASKER, thread(answer=ANSWER + " Ask #billing-oncall if it fails."))
    assert edited.data["new"] and counts(db) == (1, 1)  # the edit replaced the document and the example

    # someone who may not accept removes their reaction: nothing happens
    assert (await acceptance.withdraw(HELPER, thread(), [])).data.get("ignored")
    # the asker removes theirs while the admin's is still on the answer: it stays accepted
    assert (await acceptance.withdraw(ASKER, thread(), [ADMIN])).data.get("ignored")
    assert counts(db) == (1, 1)
    withdrawn = await acceptance.withdraw(ASKER, thread(), [HELPER])
    assert withdrawn.ok and counts(db) == (0, 0)
    actions = [a.action for a in Store(db).audit.recent(10)]
    assert actions == ["withdraw answer", "accept answer", "accept answer", "accept answer"]


async def test_an_accepted_thread_is_answered_from_in_its_channel_only_when_private(engine, db, tmp_path):
    core = core_for(engine, tmp_path)
    acceptance = ThreadAcceptance(core)
    accepted = thread(PRIVATE, question=PRIVATE_QUESTION, answer=PRIVATE_ANSWER, private=True)
    assert (await acceptance.accept(ASKER, accepted)).ok

    here = await core.ask(AskRequest(Actor("slack", "U9"), PRIVATE, "what is the server room door code?"))
    assert here.kind == "answer" and "4471" in here.text
    assert [s.url for s in here.sources] == [accepted.url]
    assert here.sources[0].location == "Slack thread in GSECRET"
    elsewhere = await core.ask(AskRequest(Actor("slack", "U9"), PUBLIC, "what is the server room door code?"))
    assert "4471" not in elsewhere.text and not elsewhere.sources

    public = thread()
    assert (await acceptance.accept(ASKER, public)).ok
    found = await core.ask(AskRequest(Actor("slack", "U9"), Location("slack", "T1", "COTHER"),
                                      "how do I reset the staging database for billing?"))
    assert found.kind == "answer" and "reset-staging" in found.text and found.sources[0].url == public.url


def test_the_accept_reaction_is_recognised_by_slack_name_and_discord_emoji():
    config = make_bot_config()
    assert [is_accept_reaction(config, e) for e in ("white_check_mark", ":white_check_mark:", "✅", "eyes", "")] \
        == [True, True, True, False, False]
    custom = make_bot_config(accept_reaction="accepted")
    assert is_accept_reaction(custom, "accepted") and not is_accept_reaction(custom, "✅")
