"""Block Kit rendering, mrkdwn conversion and splitting (pure functions, no server)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.slack.blocks import (
    ACTION_CORRECT,
    ACTION_FEEDBACK,
    action_result_messages,
    correction_metadata,
    correction_modal,
    feedback_vote,
    reply_messages,
)
from adapters.slack.mrkdwn import escape, link, to_mrkdwn
from adapters.slack.split import MAX_BLOCKS, MESSAGE_TEXT_LIMIT, SECTION_TEXT_LIMIT, pack, split_long
from bot.commands import ADMIN_USAGE
from bot.markdown import CitedUrls
from bot.types import ActionResult, Reply, SourceRef

MASS_MENTION = re.compile(r"<!(channel|here|everyone|subteam)|(?<![\w\u200b])@(channel|here|everyone)\b", re.I)
OUR_LINK = re.compile(r"<(https?://|mailto:)[^<>|\s]+\|[^<>]*>")


def all_strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in all_strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in all_strings(v)]
    return []


def sections(messages) -> list[str]:
    return [b["text"]["text"] for m in messages for b in m.blocks if b["type"] == "section"]


def check_limits(messages) -> None:
    for message in messages:
        assert 0 < len(message.blocks) <= MAX_BLOCKS
        assert len(message.text) <= MESSAGE_TEXT_LIMIT
        for block in message.blocks:
            if block["type"] == "section":
                assert 0 < len(block["text"]["text"]) <= SECTION_TEXT_LIMIT


def answer(text: str, sources: list[SourceRef] | None = None, interaction_id: int | None = 7) -> Reply:
    return Reply("answer", text, sources or [], interaction_id=interaction_id,
                 answer_code="7KQM2D" if interaction_id is not None else None,
                 feedback_enabled=interaction_id is not None)


# -- mrkdwn ---------------------------------------------------------------------------
def test_markdown_is_converted_to_mrkdwn():
    md = ("## Getting access\n\nOpen **the portal** and _request_ the role [1]. See "
          "[the guide](https://wiki.example.com/vpn?a=1&b=2).\n\n- first\n- second\n\n1. one\n2. two\n\n"
          "```\nif a < b:\n    go()\n```\n\n~~old~~ `x > y`")
    blocks = to_mrkdwn(md, cited=CitedUrls.of(["https://wiki.example.com/vpn?a=1&b=2"]))  # a cited document
    assert blocks[0] == "*Getting access*"
    assert blocks[1] == ("Open *the portal* and _request_ the role [1]. See "
                         "<https://wiki.example.com/vpn?a=1&amp;b=2|the guide>.")
    assert blocks[2] == "• first\n• second"
    assert blocks[3] == "1. one\n2. two"
    assert blocks[4] == "```\nif a &lt; b:\n    go()\n```"
    assert blocks[5] == "~old~ `x &gt; y`"


def test_slack_markup_in_the_text_is_escaped_not_interpreted():
    text = "<!channel> <!here> <!subteam^S1|@devs> <@U123> <https://evil.example|click> a & b"
    rendered = "\n".join(to_mrkdwn(text))
    assert "<" not in rendered and ">" not in rendered.replace("&gt;", "")
    assert "&lt;!channel&gt;" in rendered and "a &amp; b" in rendered


def test_only_web_and_mail_links_become_links():
    assert link("javascript:alert(1)", "x") == "x"
    assert link("https://ok.example/a|b", "x") == "x"  # a pipe would end the URL early
    assert link("https://ok.example/a", "a <b>") == "<https://ok.example/a|a &lt;b&gt;>"
    assert to_mrkdwn("[get](ftp://files.example/f)") == ["get"]
    assert "<" not in to_mrkdwn("[run](javascript:alert(1))")[0]
    assert escape("<&>") == "&lt;&amp;&gt;"


# -- splitting --------------------------------------------------------------------------
def test_a_long_answer_is_split_within_limits_without_losing_words():
    words = [f"w{i:05d}" for i in range(6000)]  # ~42k characters
    paragraphs = [" ".join(words[i:i + 150]) for i in range(0, len(words), 150)]
    messages = reply_messages(answer("\n\n".join(paragraphs)))

    check_limits(messages)
    assert " ".join(sections(messages)).split() == words
    with_buttons = [m for m in messages if any(b["type"] == "actions" for b in m.blocks)]
    assert with_buttons == [messages[-1]]


def test_one_huge_paragraph_is_cut_at_spaces():
    text = " ".join(["lorem"] * 3000)  # 17,999 characters, no paragraph breaks
    pieces = split_long(text, SECTION_TEXT_LIMIT)
    assert all(len(p) <= SECTION_TEXT_LIMIT for p in pieces)
    assert " ".join(pieces).split() == text.split()


def test_a_code_block_cut_in_two_stays_a_code_block_on_both_sides():
    code = "```\n" + "\n".join(f"line {i} <tag> & more" for i in range(600)) + "\n```"
    pieces = pack(to_mrkdwn(code))
    assert len(pieces) > 1
    for piece in pieces:
        assert piece.startswith("```") and piece.endswith("```") and piece.count("```") == 2
        assert len(piece) <= SECTION_TEXT_LIMIT
        assert not re.search(r"&[a-z]*$", piece.split("\n")[-2])  # no entity cut in half


def test_many_sources_spill_into_more_sections_and_messages():
    sources = [SourceRef(n, f"Document {n} " + "x" * 60, f"docs/{n}.md", None, "Section") for n in range(1, 401)]
    messages = reply_messages(answer("See the documents [1].", sources))
    check_limits(messages)
    rendered = "\n".join(sections(messages))
    assert "[1] *Document 1" in rendered and "[400] *Document 400" in rendered


# -- replies ------------------------------------------------------------------------------
def test_answer_blocks_have_sources_buttons_and_the_question():
    sources = [SourceRef(1, "VPN guide", "https://wiki.example.com/vpn", "https://wiki.example.com/vpn", "Setup"),
               SourceRef(2, "Handbook", "handbook/it.md", None, "")]
    (message,) = reply_messages(answer("Use the portal [1][2].", sources, interaction_id=42),
                                question="how do I get <VPN>?")
    kinds = [b["type"] for b in message.blocks]
    assert kinds == ["context", "section", "divider", "section", "context", "context_actions", "actions"]
    assert message.blocks[0]["elements"][0]["text"] == "*Q:* how do I get &lt;VPN&gt;?"
    source_text = message.blocks[3]["text"]["text"]
    assert "[1] <https://wiki.example.com/vpn|VPN guide> — Setup" in source_text
    assert "[2] *Handbook* — `handbook/it.md`" in source_text
    (votes,) = message.blocks[-2]["elements"]  # Slack's native 👍 / 👎
    assert (votes["type"], votes["action_id"]) == ("feedback_buttons", ACTION_FEEDBACK)
    assert feedback_vote(votes["positive_button"]["value"]) == (1, 42)
    assert feedback_vote(votes["negative_button"]["value"]) == (-1, 42)
    assert message.blocks[-3]["elements"][0]["text"] == "Answer 7KQM2D"  # users see the code, buttons carry the id
    (correct,) = message.blocks[-1]["elements"]
    assert (correct["action_id"], correct["value"]) == (ACTION_CORRECT, "42")


@pytest.mark.parametrize("value", ["", "42", "positive", "positive:", "positive:0", "positive:-3", "positive:x1",
                                   "positive:²", "up:42", "POSITIVE:42", "positive:42:1"])
def test_a_feedback_value_not_of_ours_is_no_vote(value):
    assert feedback_vote(value) is None


def test_replies_without_an_interaction_have_no_buttons_and_errors_carry_a_reference():
    (usage,) = reply_messages(Reply("usage", "Ask me something"))
    assert [b["type"] for b in usage.blocks] == ["section"]
    (error,) = reply_messages(Reply("error", "I'm temporarily unavailable."), reference="abc12345")
    assert "Reference: abc12345" in error.blocks[0]["text"]["text"]
    assert error.blocks[0]["text"]["text"].startswith(":warning:")


MENTION_BITS = st.sampled_from(["<!channel>", "<!here>", "<!everyone>", "<!subteam^S1|@team>", "@here", "@channel",
                                "@everyone", "< ! channel >", "<@U1>", "&", "**", "`", "```", "[1]", "\n\n", "- ",
                                "[x](https://a.example/<!here>)", "<https://x.example|<!here>>"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=40), MENTION_BITS), max_size=60),
       st.lists(st.text(max_size=30), max_size=5))
def test_no_input_can_produce_a_ping_or_break_the_limits(parts, titles):
    text = "".join(parts)
    sources = [SourceRef(i + 1, title + "<!channel>", "https://docs.example/a", "https://docs.example/a", title)
               for i, title in enumerate(titles)]
    messages = reply_messages(answer(text, sources), question=text[:500] or None)
    check_limits(messages)
    for string in all_strings([m.payload() for m in messages]):
        assert MASS_MENTION.search(string) is None
        assert "<" not in OUR_LINK.sub("", string)  # the only markup left is links built by us


# -- admin results and the modal ---------------------------------------------------------------
def test_admin_results_render_usage_preformatted_and_details_as_a_list():
    (usage,) = action_result_messages(ActionResult(True, ADMIN_USAGE))
    assert "```" in usage.blocks[0]["text"]["text"] and "retrain" in usage.blocks[0]["text"]["text"]
    (status,) = action_result_messages(ActionResult(True, "Answering with the base model.",
                                                    ["No retrain queued or running.", "Feedback: 3 👍"]),
                                       title="ragbot status")
    assert status.blocks[0]["type"] == "header"
    assert "• No retrain queued or running.\n• Feedback: 3 👍" in status.blocks[1]["text"]["text"]
    (refused,) = action_result_messages(ActionResult(False, "Sorry, only ragbot admins can run admin commands."))
    assert refused.blocks[0]["text"]["text"].startswith(":no_entry:")


def test_the_correction_modal_round_trips_its_answer_id():
    view = correction_modal(42, "C1", "111.2")
    assert view["callback_id"] == "ragbot_correction"
    assert correction_metadata(view["private_metadata"]) == {"interaction_id": 42, "channel_id": "C1",
                                                            "thread_ts": "111.2"}
    with pytest.raises(ValueError):
        correction_metadata('{"interaction_id": "42; drop"}')
