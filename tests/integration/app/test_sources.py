"""Sources end to end: the ``ragbot sources`` commands on a real local git repository, the worker's
schedule with back-off for a failing source, and citations of synced documents linking to their
web URL (title as the link text) in what Slack and Discord would be sent."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from adapters.discord.render import render_reply
from adapters.slack.blocks import reply_messages
from app.cli import app
from app.configs import bot_config
from app.worker import Worker
from bot.core import BotCore
from bot.types import Actor, AskRequest, Location
from rag_engine import jobs
from rag_engine.source_admin import add_source
from rag_engine.sync import SourceSyncer
from tests.conftest import make_settings
from tests.support.git_repo import GitRepo

WEB = "https://github.com/org/handbook/blob/main/{path}"
DINNER = "The team dinner limit is 75 dollars per person, tip included."
PARKING = "The garage on Elm Street gives staff free parking after 18:00."


def _handbook(root) -> GitRepo:
    repo = GitRepo(root)
    repo.write("policies/expenses.md", f"# Team expenses\n\n{DINNER}\n")
    repo.write("office/parking.md", f"# Parking\n\n{PARKING}\n")
    repo.commit("first")
    return repo


def _chunk_texts(db) -> str:
    with db.connect() as conn:
        return "\n".join(conn.execute(text("SELECT text FROM chunks")).scalars())


def test_sources_commands(db, scratch_dir, tmp_path):
    repo = _handbook(tmp_path / "handbook")
    env = {"RAGBOT_DATA_DIR": str(scratch_dir), "RAGBOT_GENERATOR_BACKEND": "extractive", "COLUMNS": "200"}

    def ragbot(*args: str):
        return CliRunner().invoke(app, list(args), env=env)

    added = ragbot("sources", "add", "git", str(repo.root), "--collection", "docs", "--url-base", WEB,
                   "--every", "1h")
    assert added.exit_code == 0, added.output
    assert "Added git source handbook -> collection docs (every 1h)" in added.output
    synced = ragbot("sources", "sync")
    assert synced.exit_code == 0, synced.output
    assert "2 changed, 2 written" in synced.output and PARKING in _chunk_texts(db)

    repo.delete("office/parking.md").commit("parking is gone")
    again = ragbot("sources", "sync", "handbook")
    assert again.exit_code == 0 and "1 deleted" in again.output, again.output
    assert PARKING not in _chunk_texts(db) and DINNER in _chunk_texts(db)

    listing = ragbot("sources", "list")
    assert listing.exit_code == 0
    assert "handbook" in listing.output and "every 1h" in listing.output and "1 deleted" in listing.output
    assert "never" not in listing.output  # it has a last success

    queued = ragbot("sources", "sync", "handbook", "--queue")
    assert queued.exit_code == 0 and "queued sync of handbook" in queued.output
    assert [j.kind for j in jobs.open_jobs(db)] == [jobs.SOURCE_SYNC]

    missing = ragbot("sources", "sync", "nope")
    assert missing.exit_code == 1 and "no source named 'nope'" in missing.output
    removed = ragbot("sources", "remove", "handbook")
    assert removed.exit_code == 0 and "1 documents deleted" in removed.output
    assert _chunk_texts(db) == ""
    assert "no sources yet" in ragbot("sources", "list").output


def test_a_failing_source_backs_off_while_another_syncs(db, engine, scratch_dir, tmp_path):
    good_repo = _handbook(tmp_path / "good")
    bad_repo = _handbook(tmp_path / "bad")
    good = add_source(engine.store, "good", "git", {"repo": str(good_repo.root)}, "docs", every_s=60)
    bad = add_source(engine.store, "bad", "git", {"repo": str(bad_repo.root)}, "other", every_s=60)
    shutil.rmtree(bad_repo.root)  # the repository went away
    worker = Worker(make_settings(scratch_dir, worker_heartbeat_s=0.1), db, worker_id="w1")
    worker.use_engine(engine)

    assert sorted(worker.schedule_sources(force=True)) == [good.id, bad.id]
    assert worker.schedule_sources(force=True) == []  # their jobs are open: not queued twice
    runs = {r.job_id: r for r in (worker.run_once(), worker.run_once())}
    by_source = {jobs.get(db, i).payload["source_id"]: r for i, r in runs.items()}
    assert by_source[good.id].status == "done" and by_source[good.id].result["written"] == 2
    assert by_source[bad.id].status == "failed" and "git clone failed" in by_source[bad.id].error
    assert DINNER in _chunk_texts(db)

    failing = engine.store.sources.get(bad.id)
    assert failing.error_count == 1 and "git clone failed" in failing.last_error
    assert 50 < (failing.backoff_until - datetime.now(UTC)).total_seconds() <= 60  # 60 s after one failure
    assert engine.store.sources.get(good.id).last_error is None
    assert worker.schedule_sources(force=True) == []  # good: synced a moment ago; bad: backing off

    with db.begin() as conn:  # two minutes later; bad's back-off is over
        conn.execute(text("UPDATE sources SET last_attempt_at = now() - interval '2 minutes', "
                          "backoff_until = CASE WHEN backoff_until IS NULL THEN NULL "
                          "ELSE now() - interval '1 second' END"))
    assert sorted(worker.schedule_sources(force=True)) == [good.id, bad.id]
    while worker.run_once() is not None:
        pass
    failing = engine.store.sources.get(bad.id)
    assert failing.error_count == 2
    assert 110 < (failing.backoff_until - datetime.now(UTC)).total_seconds() <= 120  # doubled
    healthy = engine.store.sources.get(good.id)
    assert healthy.error_count == 0 and healthy.last_counts["changed"] == 0  # incremental: nothing new


async def test_citations_of_synced_documents_link_to_their_web_url(engine, db, scratch_dir, tmp_path):
    repo = _handbook(tmp_path / "handbook")
    source = add_source(engine.store, "handbook", "git", {"repo": str(repo.root), "url_base": WEB}, "docs",
                        every_s=None)
    assert SourceSyncer(engine.store, engine.ingestor, scratch_dir).sync(source.id).status == "synced"
    core = BotCore(bot_config(make_settings(scratch_dir)), engine)
    reply = await core.ask(AskRequest(Actor("slack", "U1"), Location("slack", "T1", "C1"),
                                      "What is the team dinner limit per person?"))
    assert reply.kind == "answer" and reply.sources, reply
    url = "https://github.com/org/handbook/blob/main/policies/expenses.md"
    assert (reply.sources[0].url, reply.sources[0].title) == (url, "Team expenses")
    slack = json.dumps([m.payload() for m in reply_messages(reply)])
    assert f"<{url}|Team expenses>" in slack
    embeds = [e.to_dict() for m in render_reply(reply) for e in m.embeds]
    assert f"[Team expenses](<{url}>)" in json.dumps(embeds)
    assert str(scratch_dir) not in slack + json.dumps(embeds)


@pytest.fixture(autouse=True)
def _no_stray_jobs(db):
    yield
    with db.begin() as conn:
        conn.execute(text("DELETE FROM jobs"))
