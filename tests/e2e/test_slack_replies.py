"""What a Slack user sees around an answer (issue 20, items 4-8), through the real Bolt app and
the mock of Slack's Web API: answer codes, retries that never scold, no leftover "Looking…"
note, rejected requests kept out of the logs, and refusals that say what to do next."""

from __future__ import annotations

import logging
import re

import pytest
from typer.testing import CliRunner

from adapters.slack.blocks import ACTION_FEEDBACK
from adapters.testing.slack_server import SlackSender
from bot import messages, metrics
from bot.answer_codes import AnswerCodes
from tests.e2e import test_slack_app as slack_e2e
from tests.e2e.test_slack_app import buttons, section_texts, slack_for

docs_engine = slack_e2e.docs_engine  # the fixture, shared with test_slack_app


def footer(payload: dict) -> str:
    """The answer's footer line (the context block that is not the question preview)."""
    notes = [e["text"] for b in payload.get("blocks", []) if b["type"] == "context" for e in b["elements"]]
    return next(n for n in notes if n.startswith("Answer "))


def count_asks(core) -> list[str]:
    """Record the kind of every reply the core gives (to know when a retry has been handled)."""
    kinds: list[str] = []
    ask = core.ask

    async def counted(req, **kwargs):
        reply = await ask(req, **kwargs)
        kinds.append(reply.kind)
        return reply

    core.ask = counted
    return kinds


# -- item 4: answer codes --------------------------------------------------------------------
async def test_footers_show_codes_that_hide_restarts_and_decode_to_the_answer(docs_engine, tmp_path, db,
                                                                            scratch_dir, monkeypatch):
    shown: list[tuple[int, str]] = []
    for process in ("first", "second"):  # a fresh core per process: each reserves its own block of ids
        async with slack_for(docs_engine, tmp_path / process) as slack:
            await slack.send.command("/ask", "how do I get VPN access?")
            await slack.api.wait_for(lambda api: slack.shown(), what="the answer")
            answer = slack.shown()[0]
            shown.append((int(buttons(answer)[ACTION_FEEDBACK]), footer(answer)))

    (first_id, _), (second_id, second_footer) = shown
    assert second_id - first_id > 1  # the gap a restart leaves in the ids...
    codes = AnswerCodes()
    for interaction_id, note in shown:  # ...is not what users see
        code = re.match(r"Answer ([0-9A-Z]{6})\b", note).group(1)
        assert str(interaction_id) not in note
        assert codes.decode(code) == interaction_id

    # an operator looks a quoted code up
    monkeypatch.setenv("RAGBOT_DATA_DIR", str(scratch_dir))
    monkeypatch.delenv("RAGBOT_DATABASE_URL", raising=False)
    monkeypatch.delenv("RAGBOT_ANSWER_CODE_KEY", raising=False)
    from app.cli import app

    code = second_footer.removeprefix("Answer ")[:6]
    out = CliRunner().invoke(app, ["feedback", "show", code.lower()])
    assert out.exit_code == 0, out.output
    assert f"interaction {second_id}" in out.output and "Q: how do I get VPN access?" in out.output
    missing = CliRunner().invoke(app, ["feedback", "show", "what?"])
    assert missing.exit_code == 1 and "not an answer code" in missing.output


# -- item 5: a retry never meets the rate limit ------------------------------------------------
@pytest.mark.parametrize("burst", [3, 4])
async def test_a_retry_within_a_burst_is_neither_scolded_nor_charged(docs_engine, tmp_path, burst):
    async with slack_for(docs_engine, tmp_path, rate_limit_user_burst=burst, rate_limit_user_per_min=0.01) as slack:
        kinds = count_asks(slack.core)
        questions = ["how do I get VPN access?", "how many vacation days do employees get?",
                     "when must unused vacation days be taken?"]
        for n, question in enumerate(questions):
            await slack.send.event(SlackSender.mention(question, ts=f"80{n}.0001"), event_id=f"EvBURST{n}")
        status, _ = await slack.send.event(SlackSender.mention(questions[2], ts="802.0001"), event_id="EvBURST2",
                                           retry_num=1)
        assert status == 200
        # the core counts an ask before the adapter posts it, and the retry may be the delivery that answers
        await slack.api.wait_for(lambda api: len(kinds) == 4 and len(api.calls_to("reactions.remove")) == 3
                                 and len(api.calls_to("chat.postMessage")) == 3,
                                 what="three answers and the handled retry")

        assert sorted(kinds) == ["answer", "answer", "answer", "duplicate"]
        answered = sorted(c.payload["thread_ts"] for c in slack.api.calls_to("chat.postMessage"))
        assert answered == ["800.0001", "801.0001", "802.0001"]
        assert slack.api.calls_to("chat.postEphemeral") == []
        assert "asking faster" not in slack.api.all_payloads_text()
        # exactly three tokens were taken: what is left of the burst is still there
        limiter = slack.core.limits.user
        for _ in range(burst - 3):
            assert limiter.try_acquire("slack:U1") == 0
        assert limiter.try_acquire("slack:U1") > 0


# -- item 6: the "Looking…" note goes away -------------------------------------------------------
def calls_for(slack, key: str) -> list[dict]:
    return [c.payload for c in slack.api.calls_to("response_url") if c.payload["_key"] == key]


async def test_a_public_answer_deletes_the_looking_note_after_it(docs_engine, tmp_path):
    async with slack_for(docs_engine, tmp_path) as slack:
        await slack.send.command("/ask", "how do I get VPN access?", response_key="pub")
        await slack.api.wait_for(lambda api: calls_for(slack, "pub"), what="the deletion")
        (answer,) = slack.shown()
        order = [c.method for c in slack.api.calls if c.method != "auth.test"]
    assert "self-service portal" in section_texts(answer)  # posted by the bot, in the channel
    assert order == ["chat.postMessage", "response_url"]  # the answer first, then the note goes
    assert calls_for(slack, "pub") == [{"delete_original": True, "_key": "pub"}]


@pytest.mark.parametrize("overrides, question, expected", [
    ({"answer_ephemeral": True}, "how many vacation days do employees get?", "25 days"),
    ({"max_question_chars": 20}, "how many vacation days do employees get?", "Please shorten it"),
])
async def test_a_private_reply_replaces_the_looking_note(docs_engine, tmp_path, overrides, question, expected):
    async with slack_for(docs_engine, tmp_path, **overrides) as slack:
        await slack.send.command("/ask", question, response_key="own")
        await slack.api.wait_for(lambda api: calls_for(slack, "own"), what="the reply")
        # a later command's full round trip: by then the first one has sent all it will send
        await slack.send.command("/ask", "how do I get VPN access?", response_key="later")
        await slack.api.wait_for(lambda api: calls_for(slack, "later"), what="the later reply")
    (reply,) = calls_for(slack, "own")
    assert reply["response_type"] == "ephemeral" and reply["replace_original"] is True
    assert expected in section_texts(reply)


# -- item 7: a badly signed request is refused quietly, and counted ----------------------------------
async def test_a_badly_signed_request_is_refused_without_logging_its_body(docs_engine, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    series = {"platform": "slack", "reason": "signature"}
    before = metrics.REGISTRY.get_sample_value("ragbot_rejected_requests_total", series) or 0.0
    async with slack_for(docs_engine, tmp_path) as slack:
        body = slack.send.command_body("/ask", "what is the zanzibar payroll secret?", response_key="leakcheck")
        status, _ = await slack.send.post(body, "application/x-www-form-urlencoded", signature="v0=" + "0" * 64)
        garbled, _ = await slack.send.post(body, "application/x-www-form-urlencoded", signature="not even hex")
    assert status == garbled == 401
    assert slack.api.calls == [c for c in slack.api.calls if c.method == "auth.test"]  # nothing reached the bot
    logged = caplog.text + " ".join(str(r.args) for r in caplog.records)
    assert "zanzibar" not in logged and "leakcheck" not in logged and "response_url" not in logged
    assert "rejected a Slack request" in caplog.text
    assert metrics.REGISTRY.get_sample_value("ragbot_rejected_requests_total", series) == before + 2
    assert b'ragbot_rejected_requests_total{platform="slack",reason="signature"}' in metrics.render()[0]


# -- item 8: refusals say what to do next ----------------------------------------------------------
async def test_admin_and_rate_limit_refusals_name_the_next_step(docs_engine, tmp_path):
    async with slack_for(docs_engine, tmp_path, admin_user_ids=["UADMIN"], rate_limit_user_burst=1,
                         rate_limit_user_per_min=0.5) as slack:
        await slack.send.command("/ragbot-admin", "retrain", user="U2")
        await slack.api.wait_for(lambda api: slack.responses(), what="the admin refusal")
        refusal = section_texts(slack.responses()[0])
        assert messages.ADMIN_ONLY in refusal.replace("\\", "")
        assert "RAGBOT_ADMIN_USER_IDS" in refusal

        await slack.send.event(SlackSender.mention("how do I get VPN access?", ts="900.0001"))
        await slack.api.wait_for(lambda api: api.calls_to("chat.postMessage"), what="the answer")
        await slack.send.event(SlackSender.mention("how many vacation days do employees get?", ts="900.0002"))
        await slack.api.wait_for(lambda api: api.calls_to("chat.postEphemeral"), what="the rate-limit note")
    note = section_texts(slack.api.calls_to("chat.postEphemeral")[0].payload)
    assert re.search(r"asking faster than I can answer\. Try again in \d+ s\.", note)
