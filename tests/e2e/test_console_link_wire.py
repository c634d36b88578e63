"""`/ragbot-admin console` through the platforms' wire doubles: the link reaches the admin privately
(Slack: an ephemeral response_url message; Discord: an ephemeral follow-up), and nobody else gets one."""

from __future__ import annotations

import re

from pydantic import SecretStr

from bot import console_token
from rag_engine.store import Store
from tests.e2e.test_discord_adapter import (  # the Discord double's fixtures, reused as they are
    admin_command,
    deliver,
    discord_settings,
    docs_engine,
    fake,
    start_client,
)
from tests.e2e.test_slack_app import section_texts, slack_for
from tests.support.console import SECRET

__all__ = ["discord_settings", "docs_engine", "fake", "start_client"]
CONSOLE = {"console_secret": SecretStr(SECRET), "console_url": "https://console.example"}
LINK = re.compile(r"https://console\.example/login\?token=([\w.\-]+)")


async def test_slack_admin_gets_the_link_ephemerally_and_others_do_not(engine, tmp_path, db):
    async with slack_for(engine, tmp_path, admin_user_ids=["UADMIN"], **CONSOLE) as slack:
        await slack.send.command("/ragbot-admin", "console", user="UADMIN")
        await slack.api.wait_for(lambda api: len(slack.responses()) == 1, what="the link")
        await slack.send.command("/ragbot-admin", "console", user="U2")
        await slack.api.wait_for(lambda api: len(slack.responses()) == 2, what="the refusal")
    mine, theirs = slack.responses()
    assert mine["response_type"] == "ephemeral"
    token = LINK.search(section_texts(mine)).group(1)
    assert console_token.verify(SECRET, token).user_key == "slack:UADMIN"
    assert "only ragbot admins" in section_texts(theirs) and "token=" not in str(theirs)
    assert [(r.actor, r.action, r.ok) for r in reversed(Store(db).audit.recent(5))] == [
        ("slack:UADMIN", "console", True), ("slack:U2", "console", False)]


async def test_discord_admin_role_gets_the_link_ephemerally_and_manage_server_does_not(fake, start_client, db):
    client = await start_client(admin_role_ids=[fake.helper_role], **CONSOLE)
    mine = admin_command(fake, fake.helper, "console")
    await deliver(client, mine, kind="interaction")
    (reply,) = [c.body for c in fake.find("POST", rf"/webhooks/{fake.application_id}/{mine['token']}")]
    assert reply["flags"] & 64  # ephemeral
    token = LINK.search(reply["content"]).group(1)
    assert console_token.verify(SECRET, token).user_key == f"discord:{fake.helper.id}"
    theirs = admin_command(fake, fake.manager, "console")  # Manage Server: a workspace admin, not a global one
    await deliver(client, theirs, kind="interaction")
    (refusal,) = [c.body for c in fake.find("POST", rf"/webhooks/{fake.application_id}/{theirs['token']}")]
    assert "token=" not in refusal["content"] and "global ragbot admin" in refusal["content"]
