"""What a Discord user sees around an answer (issue 20, items 4, 5 and 8), through discord.py
and the fake Discord: answer codes in the footer, replays that never meet the rate limit, and
refusals that say what to do next."""

from __future__ import annotations

import re

from adapters.testing.discord_gateway import action_rows_custom_ids
from bot import messages
from bot.answer_codes import AnswerCodes
from tests.e2e import test_discord_adapter as discord_e2e
from tests.e2e.test_discord_adapter import QUESTION, admin_command, deliver, mention, posted

# the fake Discord and a client on it, shared with test_discord_adapter (pytest finds fixtures by module attribute)
fake = discord_e2e.fake
docs_engine = discord_e2e.docs_engine
discord_settings = discord_e2e.discord_settings
start_client = discord_e2e.start_client


async def test_footers_show_codes_that_hide_restarts(fake, start_client, db):
    shown = []
    for _ in range(2):  # two processes, each with its own block of reserved ids
        client = await start_client()
        await deliver(client, mention(fake, QUESTION))
        await client.close()
        body = posted(fake)[-1]
        interaction_id = int(action_rows_custom_ids(body)[0].rsplit(":", 1)[1])
        shown.append((interaction_id, body["embeds"][-1]["footer"]["text"]))

    (first_id, _), (second_id, _) = shown
    assert second_id - first_id > 1
    for interaction_id, note in shown:
        code = re.match(r"answer ([0-9A-Z]{6})\b", note).group(1)
        assert str(interaction_id) not in note and "#" not in note
        assert AnswerCodes().decode(code) == interaction_id


async def test_a_replayed_message_takes_no_token_and_gets_no_scolding(fake, start_client, db):
    client = await start_client(rate_limit_user_burst=1, rate_limit_user_per_min=0.01)
    question = mention(fake, QUESTION)
    await deliver(client, question)
    await deliver(client, question)  # the gateway replays it after a resume
    (answer,) = posted(fake)
    assert "30 days" in answer["content"]

    await deliver(client, mention(fake, "Who approves expense reports?"))  # a new question: the burst is spent
    assert len(posted(fake)) == 2 and "asking faster" in posted(fake)[-1]["content"]


async def test_admin_and_rate_limit_refusals_name_the_next_step(fake, start_client, db):
    client = await start_client(rate_limit_user_burst=1, rate_limit_user_per_min=0.5)
    payload = admin_command(fake, fake.alice, "retrain")
    await deliver(client, payload, kind="interaction")
    (refusal,) = fake.find("POST", rf"/webhooks/{fake.application_id}/{payload['token']}")
    assert refusal.body["content"] == messages.ADMIN_ONLY and "RAGBOT_ADMIN_USER_IDS" in refusal.body["content"]

    await deliver(client, mention(fake, QUESTION))
    await deliver(client, mention(fake, "Who approves expense reports?"))
    assert re.fullmatch(r"You're asking faster than I can answer\. Try again in \d+ s\.", posted(fake)[-1]["content"])
