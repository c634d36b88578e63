"""Setting the Slack app up: the manifest matches what the adapter listens to and calls,
and ``ragbot slack`` refuses to start without credentials, naming them, never echoing them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from adapters.slack import SlackConfigError, check_credentials
from adapters.slack.handlers import ADMIN_COMMAND, ASK_COMMAND
from app.cli import app
from app.configs import slack_config
from tests.conftest import make_settings

MANIFEST = Path(__file__).resolve().parents[3] / "adapters" / "slack_manifest.yml"
# Web API methods the adapter calls, and the bot scope each needs
SCOPE_FOR_METHOD = {
    "chat.postMessage": "chat:write",
    "chat.postEphemeral": "chat:write",
    "reactions.add": "reactions:write",
    "reactions.remove": "reactions:write",
    "users.info": "users:read",
    "conversations.info": "im:read",
    "assistant.threads.setStatus": "chat:write",  # loading states (assistant:write is being retired for it)
    "assistant.threads.setSuggestedPrompts": "assistant:write",  # the Assistant container
    "conversations.replies": "channels:history",  # answered threads (public channels; groups:history private)
}


def test_manifest_declares_the_commands_events_scopes_and_interactivity_the_adapter_uses():
    manifest = yaml.safe_load(MANIFEST.read_text())
    commands = {c["command"] for c in manifest["features"]["slash_commands"]}
    assert commands == {ASK_COMMAND, ADMIN_COMMAND}
    assert set(manifest["settings"]["event_subscriptions"]["bot_events"]) == {
        "app_mention", "message.im", "assistant_thread_started", "assistant_thread_context_changed",
        "reaction_added", "reaction_removed"}  # answered threads: adapters/slack/answered.py
    assert manifest["features"]["assistant_view"]["assistant_description"]  # the split-view container is on
    assert manifest["settings"]["interactivity"]["is_enabled"] is True  # buttons and the correction modal
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert set(SCOPE_FOR_METHOD.values()) | {"commands", "app_mentions:read", "im:history", "reactions:read",
                                             "groups:history", "channels:read", "groups:read"} <= scopes
    assert manifest["features"]["bot_user"]["display_name"]


@pytest.mark.parametrize(("http", "missing"), [(False, "RAGBOT_SLACK_APP_TOKEN"),
                                               (True, "RAGBOT_SLACK_SIGNING_SECRET")])
def test_credentials_are_checked_per_mode(tmp_path, http, missing):
    with pytest.raises(SlackConfigError, match=missing):
        check_credentials(slack_config(make_settings(tmp_path, slack_bot_token="xoxb-1")), http=http)
    check_credentials(slack_config(make_settings(tmp_path, slack_bot_token="xoxb-1", slack_app_token="xapp-1",
                                                 slack_signing_secret="s3cret")), http=http)


def test_ragbot_slack_without_tokens_says_which_and_echoes_none(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no .env file from the repo
    for name in ("RAGBOT_SLACK_APP_TOKEN", "RAGBOT_SLACK_SIGNING_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RAGBOT_SLACK_BOT_TOKEN", "xoxb-do-not-print-me")
    monkeypatch.setenv("RAGBOT_DATA_DIR", str(tmp_path))

    result = CliRunner().invoke(app, ["slack", "--http"])

    assert result.exit_code == 2
    assert "RAGBOT_SLACK_SIGNING_SECRET" in result.output
    assert "do-not-print-me" not in result.output


async def test_a_rejected_or_unreachable_token_stops_the_start_with_a_clear_message(tmp_path):
    from adapters.slack.clients import web_client
    from adapters.slack.server import check_token
    from adapters.testing.slack_server import MockSlackApi

    api = await MockSlackApi().start()
    try:
        client = web_client(slack_config(make_settings(tmp_path, slack_bot_token="xoxb-revoked",
                                                       slack_api_url=api.api_url)))
        api.fail_next("auth.test", status=200, retry_after=None, body={"ok": False, "error": "invalid_auth"})
        with pytest.raises(SlackConfigError, match="invalid_auth"):
            await check_token(client)
        await check_token(client)  # a good token passes
    finally:
        await api.stop()
    with pytest.raises(SlackConfigError, match="cannot reach"):
        await check_token(client)  # the server is gone now
