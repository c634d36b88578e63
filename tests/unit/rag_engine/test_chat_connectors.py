"""The chat connectors' pure parts: a thread rendered as one document, the thread cache (a Slack ts
keeps its own dot), Slack markup read as text, the stored configurations, Discord id times."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rag_engine.connectors import checked_config
from rag_engine.connectors.chat_threads import ChatMessage, ThreadCache, render_thread, thread_title
from rag_engine.connectors.discord import snowflake_time
from rag_engine.connectors.slack import SlackConnector, SlackSourceConfig

AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def test_a_thread_is_one_document_whose_messages_cannot_make_headings():
    md = render_thread("#help: VPN", [ChatMessage("Alice", "How?\n# not a heading", AT),
                                      ChatMessage("Bob", "Like this.", AT)])
    assert md.splitlines()[0] == "# #help: VPN"
    assert "**Alice** (2026-03-01 09:30 UTC): How?\n\\# not a heading" in md
    assert sum(line.startswith("#") for line in md.splitlines()) == 1


def test_titles_take_the_first_line_shortened():
    assert thread_title("#help", "\n\n## Where is the VPN profile?\nmore") == "#help: Where is the VPN profile?"
    long = thread_title("#help", "word " * 60)
    assert len(long) < 110 and long.endswith("…")
    assert thread_title("#help", "  ") == "#help: (no text)"


def test_the_cache_keeps_each_ts_apart_and_checks_the_fingerprint(tmp_path):
    cache = ThreadCache(tmp_path)
    a = cache.write("public/C1/1700000001.000100", {"n": 1}, "a")
    b = cache.write("public/C1/1700000001.000200", {"n": 1}, "b")
    assert a != b and a.read_text() == "a" and b.read_text() == "b"
    assert cache.fresh("public/C1/1700000001.000100", {"n": 1}) == a
    assert cache.fresh("public/C1/1700000001.000100", {"n": 2}) is None
    assert cache.fresh("public/C1/9.9", {"n": 1}) is None
    assert cache.path("../../etc/passwd").resolve().is_relative_to(tmp_path.resolve())


def test_slack_markup_reads_as_text(tmp_path, monkeypatch):
    monkeypatch.setenv("RAGBOT_SLACK_BOT_TOKEN", "xoxb-unit")
    connector = SlackConnector(SlackSourceConfig(collection_prefix="slack", api_url="http://127.0.0.1:9/"), tmp_path)
    connector._names["U1"] = "Alice"
    text = connector._plain("<@U1> see <#C2|ops>, <https://x.example/a|the guide> &amp; <!here> &lt;3")
    assert text == "@Alice see #ops, the guide (https://x.example/a) & @here <3"
    assert connector.secrets() == ["xoxb-unit"]


def test_configurations_are_checked_and_hold_no_token():
    assert checked_config("slack", {"collection_prefix": "s", "channels": ["C1"]}) == {
        "collection_prefix": "s", "channels": ["C1"]}
    with pytest.raises(ValueError, match="secrets"):
        checked_config("slack", {"collection_prefix": "s", "token": "xoxb-1"})
    with pytest.raises(ValueError, match="rescan_days"):
        checked_config("slack", {"collection_prefix": "s", "rescan_days": 365})
    with pytest.raises(ValueError, match="guild_id"):
        checked_config("discord", {"guild_id": "acme", "collection_prefix": "d"})


def test_discord_ids_carry_their_time():
    assert snowflake_time("175928847299117063") == pytest.approx(1462015105.796)
