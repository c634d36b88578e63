"""Starting the Discord bot: clear messages for a missing or rejected token, which is never shown."""

from __future__ import annotations

import logging

import pytest
from typer.testing import CliRunner

from adapters.discord import DiscordConfigError, RagbotClient, check_credentials, intents, serve
from adapters.testing.discord_gateway import TOKEN, FakeDiscord, connect
from app.cli import app
from app.configs import bot_config, discord_config
from bot.core import BotCore
from tests.conftest import make_settings


def test_missing_token_stops_with_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setenv("RAGBOT_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("RAGBOT_DISCORD_TOKEN", raising=False)
    result = CliRunner().invoke(app, ["discord"])
    assert result.exit_code == 2
    assert "RAGBOT_DISCORD_TOKEN is not set" in " ".join(result.output.split())


def test_a_blank_token_counts_as_missing(tmp_path):
    with pytest.raises(DiscordConfigError):
        check_credentials(discord_config(make_settings(tmp_path, discord_token="   ")))
    assert check_credentials(discord_config(make_settings(tmp_path, discord_token=" abc.def "))) == "abc.def"


def test_only_the_needed_intents_are_requested():
    wanted = intents()
    assert wanted.guilds and wanted.guild_messages and wanted.message_content and wanted.dm_messages
    assert wanted.guild_reactions  # an accept reaction (✅) marks an answered thread
    assert not (wanted.members or wanted.presences or wanted.dm_reactions or wanted.voice_states)


async def test_a_rejected_token_is_reported_without_showing_it(engine, scratch_dir, caplog):
    fake = await FakeDiscord().start()
    settings = make_settings(scratch_dir, discord_api_base=fake.base_url)
    client = RagbotClient(BotCore(bot_config(settings), engine), discord_config(settings))
    wrong = "MTIzNDU2Nzg5MDEyMzQ1Njc4.Gabcde.not-the-right-token-at-all-xyz"
    try:
        with pytest.raises(DiscordConfigError, match="rejected the token") as failure:
            await serve(client, wrong)
        assert wrong not in str(failure.value) and wrong not in caplog.text
    finally:
        await fake.stop()
        client.core.close()


async def test_the_token_is_not_logged_when_connecting(engine, scratch_dir, caplog):
    caplog.set_level(logging.DEBUG)
    fake = await FakeDiscord().start()
    settings = make_settings(scratch_dir, discord_api_base=fake.base_url, discord_token=TOKEN)
    client = RagbotClient(BotCore(bot_config(settings), engine), discord_config(settings))
    try:
        await connect(client, fake)
        assert client.user is not None and str(client.user.id) == fake.bot.id
        assert TOKEN not in caplog.text
    finally:
        await client.close()
        await fake.stop()
        client.core.close()
