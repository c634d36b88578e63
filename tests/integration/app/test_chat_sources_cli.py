"""``ragbot sources add slack|discord`` and a sync through the CLI against the Slack wire double:
the stored configuration (no token in it), the channel choice rules, and the documents it writes."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from typer.testing import CliRunner

from adapters.testing.slack_server import MockSlackApi
from app.cli import app

TOKEN_ENV = "RAGBOT_TEST_SLACK_CLI_TOKEN"


def _ragbot(scratch_dir, *args: str, **env: str):
    base = {"RAGBOT_DATA_DIR": str(scratch_dir), "RAGBOT_GENERATOR_BACKEND": "extractive", "COLUMNS": "200"}
    return CliRunner().invoke(app, list(args), env={**base, **env})


def _configs(db) -> dict[str, tuple[str, dict]]:
    with db.connect() as conn:
        rows = conn.execute(text("SELECT s.name, c.name, s.config FROM sources s "
                                 "JOIN collections c ON c.id = s.collection_id")).all()
    return {r[0]: (r[1], r[2]) for r in rows}


def test_adding_chat_sources(db, scratch_dir):
    both = _ragbot(scratch_dir, "sources", "add", "slack", "--channels", "C1", "--all")
    assert both.exit_code != 0 and "either --channels" in both.output
    neither = _ragbot(scratch_dir, "sources", "add", "slack")
    assert neither.exit_code != 0 and "either --channels" in neither.output
    slack = _ragbot(scratch_dir, "sources", "add", "slack", "--channels", "C1, C2", "--collection-prefix", "team",
                    "--every", "1h", "--full-every", "12h", "--token-env", "SLACK_HISTORY_TOKEN")
    assert slack.exit_code == 0, slack.output
    assert "Added slack source slack -> collection team" in slack.output
    discord = _ragbot(scratch_dir, "sources", "add", "discord", "--guild", "123456", "--channels", "42,43")
    assert discord.exit_code == 0, discord.output
    bad = _ragbot(scratch_dir, "sources", "add", "discord", "--guild", "acme", "--name", "other")
    assert bad.exit_code != 0 and "guild_id" in bad.output
    assert _configs(db) == {
        "slack": ("team", {"collection_prefix": "team", "channels": ["C1", "C2"], "token_env": "SLACK_HISTORY_TOKEN",
                           "full_every_h": 12.0}),
        "discord-123456": ("discord", {"guild_id": "123456", "collection_prefix": "discord",
                                       "channels": ["42", "43"]}),
    }


async def test_a_slack_source_synced_from_the_cli(db, scratch_dir):
    api = await MockSlackApi().start()
    try:
        api.history.add_channel("C1", "help")
        root = api.history.post("C1", "Where is the Heron office wifi card?", user="U1")
        api.history.post("C1", "The front desk keeps the Heron wifi card.", user="U2", thread_ts=root)
        added = _ragbot(scratch_dir, "sources", "add", "slack", "--all", "--api-url", api.api_url,
                        "--token-env", TOKEN_ENV)
        assert added.exit_code == 0, added.output
        synced = await asyncio.to_thread(_ragbot, scratch_dir, "sources", "sync", "slack", **{TOKEN_ENV: "xoxb-t"})
        assert synced.exit_code == 0, synced.output
        assert "1 changed, 1 written" in synced.output
        with db.connect() as conn:
            url = conn.execute(text("SELECT url FROM documents WHERE source_id IS NOT NULL")).scalar()
        assert url == f"https://test.slack.com/archives/C1/p{root.replace('.', '')}"
        assert api.calls_to("auth.test")[0].headers["Authorization"] == "Bearer xoxb-t"
    finally:
        await api.stop()
