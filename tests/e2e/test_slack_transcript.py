"""Issue 20's scenario as one Slack conversation, and exactly what Slack is asked to show.

The real Bolt app in HTTP mode gets correctly signed requests (one badly signed);
the bot core and the extractive answerer run over the sample handbook on the
scratch Postgres; the mock of Slack's Web API records every call. The test
checks the whole transcript: which calls, in which order, and what each
message says — exactly where the text is fixed, by its properties (citation
numbers, sources, footer) where it is quoted from the retrieved passages.
"""

from __future__ import annotations

import json
import re

from sqlalchemy import select

from adapters.slack.blocks import ACTION_CORRECT, ACTION_FEEDBACK
from adapters.slack.handlers import WORKING_REACTION, WORKING_TEXT
from adapters.testing.slack_server import SlackSender
from bot.fallback_notes import NOTES
from bot.messages import ADMIN_ONLY, ASK_USAGE
from rag_engine.store import schema as t
from rag_engine.values import FallbackCode
from tests.conftest import EXAMPLES, ROOT
from tests.e2e.test_slack_app import Slack, buttons, slack_for

DINNER = "what's the expense limit for a team dinner?"
CUSTOMER_MEAL = "what's the limit for a meal with a customer?"
FOLLOW_UP = "Does alcohol count?"
ALCOHOL_RULE = ("Alcohol is reimbursable only as part of a team meal or a customer meal, "
                "and it counts toward the per-person limit.")
EXPENSE_POLICY = "Expense Policy – Northwind Labs Handbook"
ASK_FOLLOW_UP_TS, MENTION_TS, FOLLOW_UP_TS = "1000.0000", "1000.0001", "1000.0005"
FOOTER_NOTE = NOTES[FallbackCode.NO_GENERATOR]  # generator_backend="extractive": no model is configured
MARKER = re.compile(r"\[(\d+(?:, \d+)*)\]")
SOURCE_LINE = re.compile(r"\[(\d+)\] \*(.+?)\*(?: — (.+))?$")


def blocks_of(payload: dict, kind: str) -> list[str]:
    return [b["text"]["text"] if kind == "section" else b["elements"][0]["text"]
            for b in payload["blocks"] if b["type"] == kind]


def check_answer(slack: Slack, payload: dict, *, question: str | None) -> tuple[str, list[str]]:
    """Assert what every answer must look like; return its text and its source titles."""
    kinds = [b["type"] for b in payload["blocks"]]
    assert kinds == ["context"] * bool(question) + ["section", "divider", "section", "context", "context_actions",
                                                    "actions"], kinds
    contexts = blocks_of(payload, "context")
    if question:
        assert contexts.pop(0) == f"*Q:* {question}"
    text, sources = blocks_of(payload, "section")

    # citation markers: numbered from [1] in order of first use, none skipped
    used = [int(n) for group in MARKER.findall(text) for n in group.split(", ")]
    first_use = list(dict.fromkeys(used))
    assert first_use == list(range(1, len(first_use) + 1)), text

    # exactly the cited documents, in that order, each listed once; shown by relative path only
    head, listing = sources.split("\n\n")
    assert head == "*Sources*"
    entries = [SOURCE_LINE.match(line) for line in listing.splitlines()]
    assert all(entries), listing
    assert [int(e.group(1)) for e in entries] == first_use
    titles = [e.group(2) for e in entries]
    assert len(set(titles)) == len(titles), listing

    # readable: no table syntax, no server path, anywhere in the message or its notification text
    shown = json.dumps(payload, ensure_ascii=False)
    assert "|" not in text and "|" not in payload["text"], text
    for server_path in (str(ROOT), str(EXAMPLES), "/work/", "file://"):
        assert server_path not in shown

    # the footer: the answer's short code, and why the answer quotes the documents
    interaction_id = int(buttons(payload)[ACTION_CORRECT])
    code = slack.core.answer_code(interaction_id)
    assert re.fullmatch(r"[0-9A-Z]{6}", code) and str(interaction_id) not in code
    assert contexts == [f"Answer {code} · {FOOTER_NOTE}"]
    assert buttons(payload) == {ACTION_FEEDBACK: str(interaction_id), ACTION_CORRECT: str(interaction_id)}
    return text, titles


def reaction(name_of_call: str, ts: str) -> tuple[str, dict]:
    return name_of_call, {"channel": "C1", "name": WORKING_REACTION, "timestamp": ts}


async def test_issue_20_scenario_transcript(engine, db, tmp_path):
    report = engine.ingest([EXAMPLES], "handbook")
    assert not report.skipped, report.skipped
    async with slack_for(engine, tmp_path, admin_user_ids=["UADMIN"], rate_limit_user_burst=4,
                         rate_limit_user_per_min=0.01, rate_limit_channel_burst=4,
                         rate_limit_channel_per_min=0.01) as slack:
        api, send = slack.api, slack.send
        handled: list[str] = []  # the kind of each reply the core gave: how a silent retry is seen handled
        ask = slack.core.ask

        async def recorded_ask(req, **kwargs):
            reply = await ask(req, **kwargs)
            handled.append(reply.kind)
            return reply

        slack.core.ask = recorded_ask

        # 1. /ask: the ack says it is looking; the bot posts the answer in the channel, then the note goes
        status, body = await send.command("/ask", DINNER, response_key="ask")
        assert (status, json.loads(body)) == (200, {"text": WORKING_TEXT, "response_type": "ephemeral"})
        await api.wait_for(lambda a: len(a.calls_to("response_url")) == 1, what="the answer and the note's removal")
        ask_ts = api.calls_to("chat.postMessage")[0].response["ts"]

        # 1b. a follow-up mention in the /ask answer's thread: the /ask is its history
        status, _ = await send.event(SlackSender.mention(FOLLOW_UP, ts=ASK_FOLLOW_UP_TS, thread_ts=ask_ts),
                                     event_id="EvASKTHREAD")
        assert status == 200
        await api.wait_for(lambda a: len(a.calls_to("reactions.remove")) == 1, what="the /ask follow-up's answer")

        # 2. a mention asking another question, answered in its thread
        status, _ = await send.event(SlackSender.mention(CUSTOMER_MEAL, ts=MENTION_TS), event_id="EvMEAL")
        assert status == 200
        await api.wait_for(lambda a: len(a.calls_to("reactions.remove")) == 2, what="the mention's answer")

        # 3. a follow-up in that thread; 4. Slack retries it (same event_id) when the burst is used up
        follow_up = SlackSender.mention(FOLLOW_UP, ts=FOLLOW_UP_TS, thread_ts=MENTION_TS)
        status, _ = await send.event(follow_up, event_id="EvALCOHOL")
        assert status == 200
        await api.wait_for(lambda a: len(a.calls_to("reactions.remove")) == 3, what="the follow-up's answer")
        status, _ = await send.event(follow_up, event_id="EvALCOHOL", retry_num=1)
        assert status == 200
        await api.wait_for(lambda a: len(handled) == 5, what="the retry to be handled")
        assert handled == ["answer", "answer", "answer", "answer", "duplicate"]

        # 5. 👍 on the /ask answer
        ask_answer = api.calls_to("chat.postMessage")[0].payload
        (votes,) = [e for b in ask_answer["blocks"] if b["type"] == "context_actions" for e in b["elements"]]
        status, _ = await send.feedback(votes["positive_button"]["value"])
        assert status == 200
        await api.wait_for(lambda a: len(a.calls_to("response_url")) == 2, what="the vote's thanks")

        # 6. a badly signed request: refused, and nothing reaches Slack
        before = len(api.calls)
        status, _ = await send.post(send.command_body("/ask", DINNER), "application/x-www-form-urlencoded",
                                    signature="v0=" + "0" * 64)
        assert status == 401
        assert len(api.calls) == before

        # 7. an empty /ask: the usage, in the ack only
        status, body = await send.command("/ask", "  ")
        assert (status, json.loads(body)) == (200, {"text": ASK_USAGE, "response_type": "ephemeral"})
        assert len(api.calls) == before

        # 8. a non-admin's /ragbot-admin retrain: refused, with the next step
        status, body = await send.command("/ragbot-admin", "retrain", user="U2", response_key="admin")
        assert (status, body) == (200, "")
        await api.wait_for(lambda a: len(a.calls_to("response_url")) == 3, what="the admin refusal")

    # -- the whole transcript, in order --------------------------------------------------------
    calls = api.calls
    assert [(c.method, re.sub(r"^act\d+$", "click", c.payload.get("_key", "")) or None) for c in calls] == [
        ("auth.test", None),  # Bolt learns the bot's own user id on the first request
        ("chat.postMessage", None),  # 1. the answer, posted by the bot: it has a ts to thread on...
        ("response_url", "ask"),  # ...then the "Looking…" note is deleted
        ("reactions.add", None),  # 1b.
        ("chat.postMessage", None),
        ("reactions.remove", None),
        ("reactions.add", None),  # 2.
        ("chat.postMessage", None),
        ("reactions.remove", None),
        ("reactions.add", None),  # 3.
        ("chat.postMessage", None),
        ("reactions.remove", None),
        # 4. the retry: no call at all (no reaction, no answer, no rate-limit note)
        ("response_url", "click"),  # 5. the click's own response_url
        # 6. and 7.: nothing
        ("response_url", "admin"),  # 8.
    ]
    (_, answer, deletion, *rest) = calls
    add_0, ask_follow_up, remove_0, add_1, mention_answer, remove_1, add_2, follow_up_answer, remove_2, \
        thanks, refusal = rest

    # 1. the /ask answer, in the channel, quoting the table row by its columns
    assert deletion.payload == {"delete_original": True, "_key": "ask"}
    assert answer.payload["channel"] == "C1" and "thread_ts" not in answer.payload
    assert answer.response["ts"] == ask_ts
    text, titles = check_answer(slack, answer.payload, question=DINNER)
    assert text.startswith("• Category: Team dinner or team celebration; Limit: $75 per person; Approval: "
                           "Manager approves in advance; the most senior person present pays [1]\n"), text
    assert titles[0] == EXPENSE_POLICY

    # 1b. the follow-up in the /ask answer's thread, answered there from the Alcohol section
    for call, name in ((add_0, "reactions.add"), (remove_0, "reactions.remove")):
        assert (call.method, {k: call.payload[k] for k in ("channel", "name", "timestamp")}) == reaction(
            name, ASK_FOLLOW_UP_TS)
    assert {k: ask_follow_up.payload[k] for k in ("channel", "thread_ts")} == {"channel": "C1", "thread_ts": ask_ts}
    text, titles = check_answer(slack, ask_follow_up.payload, question=None)
    assert text.startswith(f"{ALCOHOL_RULE} [1]"), text
    assert titles == [EXPENSE_POLICY]
    assert "Alcohol" in blocks_of(ask_follow_up.payload, "section")[1]
    with db.connect() as conn:  # ...because the /ask was its history
        asked, followed = conn.execute(select(t.interactions).order_by(t.interactions.c.id).limit(2)).all()
    assert (asked.question, asked.thread_id) == (DINNER, ask_ts)
    assert (followed.question, followed.thread_id, followed.history_ids) == (FOLLOW_UP, ask_ts, [asked.id])

    # 2. the mention: 👀 while working, the answer in the mention's thread
    for call, name, ts in ((add_1, "reactions.add", MENTION_TS), (remove_1, "reactions.remove", MENTION_TS),
                           (add_2, "reactions.add", FOLLOW_UP_TS), (remove_2, "reactions.remove", FOLLOW_UP_TS)):
        assert (call.method, {k: call.payload[k] for k in ("channel", "name", "timestamp")}) == reaction(name, ts)
    assert {k: mention_answer.payload[k] for k in ("channel", "thread_ts")} == {"channel": "C1",
                                                                              "thread_ts": MENTION_TS}
    text, titles = check_answer(slack, mention_answer.payload, question=None)
    assert "Limit: $100 per person" in text and titles[0] == EXPENSE_POLICY

    # 3. the follow-up was searched as a standalone question: the Alcohol section answers it
    assert {k: follow_up_answer.payload[k] for k in ("channel", "thread_ts")} == {"channel": "C1",
                                                                                "thread_ts": MENTION_TS}
    text, titles = check_answer(slack, follow_up_answer.payload, question=None)
    assert text.startswith(f"{ALCOHOL_RULE} [1]"), text
    assert titles == [EXPENSE_POLICY]
    assert "Alcohol" in blocks_of(follow_up_answer.payload, "section")[1]

    # four different answers, four different codes
    footers = [blocks_of(c.payload, "context")[-1] for c in (answer, ask_follow_up, mention_answer,
                                                             follow_up_answer)]
    assert len(set(footers)) == 4

    # 5. the thanks go to the clicker only, leaving the answer in place
    assert thanks.payload == {"text": "Thanks for the 👍!", "response_type": "ephemeral", "replace_original": False,
                              "_key": thanks.payload["_key"], "blocks": [{"type": "section", "text": {
                                  "type": "mrkdwn", "text": "Thanks for the 👍!"}}]}

    # 8. the refusal says what to do next
    assert refusal.payload == {"text": f":no_entry: {ADMIN_ONLY}", "response_type": "ephemeral", "_key": "admin",
                               "blocks": [{"type": "section", "text": {
                                   "type": "mrkdwn", "text": f":no_entry: {ADMIN_ONLY}"}}]}
    assert ADMIN_ONLY == ("Sorry, only ragbot admins can run admin commands. Ask an admin to run it for you, "
                          "or to have your user id added to RAGBOT_ADMIN_USER_IDS.")

    # no message anywhere scolded the retry
    assert "asking faster" not in api.all_payloads_text()
