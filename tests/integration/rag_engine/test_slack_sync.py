"""Syncing Slack channels into the real embedded PostgreSQL, the Web API mocked at the wire
(``adapters/testing/slack_history.py``): one thread = one document with its permalink and
authors, the bot's own answers left out, a private channel in a private collection granted to
that channel only, edits re-indexed, deletions (a reply, a thread, a tombstone) out of search,
and the rolling window versus the full re-scan."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import text

from adapters.testing.slack_server import BOT_USER, TEAM, MockSlackApi
from rag_engine import collections as cols
from rag_engine.connectors.slack import SlackConnector, SlackSourceConfig
from rag_engine.source_admin import add_source
from rag_engine.sync import SourceSyncer

TOKEN_ENV = "RAGBOT_TEST_SLACK_HISTORY_TOKEN"
USERS = {"U1": {"name": "alice", "profile": {"display_name": "Alice Ames"}},
         "U2": {"name": "bob", "profile": {"real_name": "Bob Burns"}}}
VPN_Q = "How do I get the VPN profile on a new laptop?"
VPN_A = "Download the WireGuard profile from portal.example.com and import it into the client."
BANDS = "The confidential Nightingale salary band for L7 engineers is 212,000 to 248,000 dollars."


@pytest.fixture()
async def api(monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, "xoxb-history-token")
    api = await MockSlackApi(USERS).start()
    api.history.add_channel("C1", "help")
    api.history.add_channel("CPRIV", "people-team", private=True)
    api.history.add_channel("CNOT", "random", member=False)
    try:
        yield api
    finally:
        await api.stop()


def _source(engine, api: MockSlackApi, **config):
    return add_source(engine.store, "slack-ws", "slack",
                      {"collection_prefix": "slack", "api_url": api.api_url, "token_env": TOKEN_ENV, **config},
                      "slack", every_s=None)


async def _sync(syncer: SourceSyncer, source_id: int):
    report = await asyncio.to_thread(syncer.sync, source_id)  # the fake answers on this loop
    assert report.status == "synced", report.error
    return report


def _docs(db) -> dict[str, tuple[str, str, str]]:
    """external_id -> (collection, url, title)."""
    with db.connect() as conn:
        rows = conn.execute(text("SELECT d.external_id, c.name, d.url, d.title FROM documents d "
                                 "JOIN collections c ON c.id = d.collection_id WHERE d.source_id IS NOT NULL")).all()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def _texts(db) -> str:
    with db.connect() as conn:
        return "\n".join(conn.execute(text("SELECT text FROM chunks")).scalars())


async def test_threads_become_documents_with_permalinks_and_private_channels_their_own_collection(
        engine, db, api, tmp_path):
    root = api.history.post("C1", VPN_Q, user="U1")
    api.history.post("C1", VPN_A, user="U2", thread_ts=root)
    api.history.post("C1", "Here is what I found: <@U1> should ask IT.", user=BOT_USER, thread_ts=root)
    api.history.post("C1", "has joined the channel", user="U2", subtype="channel_join")
    lone = api.history.post("C1", "Lunch is at noon on Fridays, says <@U2>.", user="U1")
    secret = api.history.post("CPRIV", BANDS, user="U2")
    api.history.post("CNOT", "Nobody invited the bot here: the garage code is 4711.", user="U1")
    source = _source(engine, api)
    report = await _sync(SourceSyncer(engine.store, engine.ingestor, tmp_path / "data"), source.id)

    assert (report.changed, report.written, report.deleted) == (3, 3, 0)
    docs = _docs(db)
    assert docs[f"public/C1/{root}"] == ("slack", f"https://test.slack.com/archives/C1/p{root.replace('.', '')}",
                                         f"#help: {VPN_Q}")
    assert docs[f"public/C1/{lone}"][0] == "slack"
    assert docs[f"private/CPRIV/{secret}"][0] == "slack-private-cpriv"
    chunks = _texts(db)
    assert "**Alice Ames**" in chunks and "**Bob Burns**" in chunks and VPN_A in chunks
    assert "says @Bob Burns" in chunks  # mentions read as names
    assert "Here is what I found" not in chunks and "joined the channel" not in chunks  # own answers, joins
    assert "4711" not in chunks  # a channel the bot is not in is never read
    private = engine.store.collections.get("slack-private-cpriv")
    assert private.visibility == "private" and not private.allow_training
    with db.connect() as conn:
        grants = conn.execute(text("SELECT platform, workspace_id, channel_id, access FROM collection_access "
                                   "WHERE collection_id = :c"), {"c": private.id}).all()
    assert [tuple(g) for g in grants] == [("slack", TEAM, "CPRIV", "grant")]
    assert all(c.payload.get("limit") for c in api.calls_to("conversations.history"))  # paginated listings


async def test_an_edited_message_is_reindexed_and_deleted_ones_leave_search(engine, db, api, tmp_path):
    root = api.history.post("C1", VPN_Q, user="U1")
    reply = api.history.post("C1", VPN_A, user="U2", thread_ts=root)
    wrong = api.history.post("C1", "The VPN profile is on the old wiki under Kestrel.", user="U1", thread_ts=root)
    lone = api.history.post("C1", "The parking garage closes at 22:00 on weekdays.", user="U2")
    with_replies = api.history.post("C1", "Who owns the Marmot build cache?", user="U1")
    api.history.post("C1", "The Marmot cache belongs to the platform team.", user="U2", thread_ts=with_replies)
    source = _source(engine, api)
    syncer = SourceSyncer(engine.store, engine.ingestor, tmp_path / "data")
    await _sync(syncer, source.id)
    assert "Kestrel" in _texts(db) and "22:00" in _texts(db)

    api.history.edit("C1", reply, "Download the WireGuard profile from vpn.example.org (moved in May).")
    api.history.delete("C1", wrong)
    api.history.delete("C1", lone)
    api.history.delete("C1", with_replies)  # has a reply: Slack leaves a tombstone
    report = await _sync(syncer, source.id)

    chunks = _texts(db)
    assert "vpn.example.org" in chunks and "portal.example.com" not in chunks  # the edit, re-indexed
    assert "Kestrel" not in chunks  # a deleted reply is gone from its thread's document
    assert "22:00" not in chunks  # a deleted thread is gone
    assert "Marmot" not in chunks  # and so is one whose opening message is a tombstone
    assert sorted(_docs(db)) == [f"public/C1/{root}"]
    assert report.deleted == 2
    hits = engine.search("parking garage closing time", engine.scope_for(["slack"]), 5)
    assert all("22:00" not in h.text for h in hits)


async def test_the_window_reads_recent_threads_and_the_full_rescan_the_rest(engine, db, api, tmp_path):
    now = [time.time()]
    month_ago = now[0] - 30 * 86400
    old = api.history.post("C1", "The Heron office wifi password rotates every quarter.", user="U1",
                           ts=f"{month_ago:.6f}")
    api.history.post("C1", "Ask the front desk for the Heron wifi card.", user="U2", ts=f"{month_ago + 60:.6f}",
                     thread_ts=old)
    recent = api.history.post("C1", VPN_Q, user="U1")
    source = _source(engine, api)

    def connector(row, cache):
        return SlackConnector(SlackSourceConfig.model_validate(row.config), cache, clock=lambda: now[0])

    syncer = SourceSyncer(engine.store, engine.ingestor, tmp_path / "data", connector_factory=connector)
    await _sync(syncer, source.id)  # first sync: full
    assert len(api.calls_to("conversations.replies")) == 1  # only the thread that has replies

    now[0] += 3600
    api.calls.clear()
    api.history.delete("C1", old)  # outside the 7-day window: an incremental sync cannot see it
    api.history.post("C1", "Put the Heron card back.", user="U2", thread_ts=recent)
    report = await _sync(syncer, source.id)
    (history,) = [c for c in api.calls_to("conversations.history") if c.payload["channel"] == "C1"]
    assert float(history.payload["oldest"]) == pytest.approx(now[0] - 7 * 86400)
    assert report.deleted == 0 and "Heron office wifi" in _texts(db)
    assert "Put the Heron card back" in _texts(db)

    now[0] += 24 * 3600  # a day later: the full re-scan
    api.calls.clear()
    report = await _sync(syncer, source.id)
    assert "oldest" not in api.calls_to("conversations.history")[0].payload
    assert report.deleted == 1 and "Heron office wifi" not in _texts(db)
    # the recent thread is read again (edits inside the window); nothing old is left to read
    assert [c.payload["ts"] for c in api.calls_to("conversations.replies")] == [recent]


async def test_a_channel_that_turns_private_moves_to_its_private_collection(engine, db, api, tmp_path):
    root = api.history.post("C1", VPN_Q, user="U1")
    source = _source(engine, api)
    syncer = SourceSyncer(engine.store, engine.ingestor, tmp_path / "data")
    await _sync(syncer, source.id)
    api.history.channels["C1"]["is_private"] = True
    report = await _sync(syncer, source.id)
    assert _docs(db) == {f"private/C1/{root}": ("slack-private-c1", f"https://test.slack.com/archives/C1/p"
                                                f"{root.replace('.', '')}", f"#help: {VPN_Q}")}
    assert report.deleted == 1


async def test_private_content_is_never_written_to_a_public_collection(engine, db, api, tmp_path):
    api.history.post("CPRIV", BANDS, user="U2")
    cols.create(engine.store.collections, "slack-private-cpriv")  # public, made by someone before
    source = _source(engine, api)
    report = await asyncio.to_thread(SourceSyncer(engine.store, engine.ingestor, tmp_path / "data").sync, source.id)
    assert report.status == "failed" and "is public" in (report.error or "")
    assert "Nightingale" not in _texts(db)


async def test_a_missing_token_fails_the_sync_and_names_the_variable(engine, api, tmp_path, monkeypatch):
    monkeypatch.delenv(TOKEN_ENV)
    source = _source(engine, api)
    report = await asyncio.to_thread(SourceSyncer(engine.store, engine.ingestor, tmp_path / "data").sync, source.id)
    assert report.status == "failed" and TOKEN_ENV in (report.error or "")


async def test_a_rate_limited_call_is_retried(engine, db, api, tmp_path):
    api.history.post("C1", VPN_Q, user="U1")
    api.fail_next("conversations.history", status=429, retry_after=0)
    source = _source(engine, api)
    await _sync(SourceSyncer(engine.store, engine.ingestor, tmp_path / "data"), source.id)
    in_c1 = [c for c in api.calls_to("conversations.history") if c.payload["channel"] == "C1"]
    assert len(in_c1) == 2 and len(_docs(db)) == 1  # the 429, then the same call again
