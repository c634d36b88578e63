"""Rendering answers for Discord: splitting within its limits, source embeds, buttons."""

from __future__ import annotations

import dataclasses
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.discord.render import (
    EMBED_DESCRIPTION_LIMIT,
    EMBED_TOTAL_LIMIT,
    EMBEDS_PER_MESSAGE,
    MESSAGE_LIMIT,
    render_action,
    render_reply,
    source_line,
    split_text,
)
from adapters.discord.views import CUSTOM_ID_TEMPLATE, FeedbackButton, feedback_view
from adapters.testing.discord_gateway import message_limit_problem
from bot.types import ActionResult, Reply, SourceRef


def words(text: str) -> list[str]:
    return [w for w in text.split() if w != "```" and not w.startswith("```")]


def test_short_text_is_one_piece():
    assert split_text("Expense reports are due in 30 days [1].") == ["Expense reports are due in 30 days [1]."]


def test_split_prefers_paragraph_breaks():
    first, second = "a" * 1500, "b" * 1500
    assert split_text(f"{first}\n\n{second}") == [first, second]


def test_a_single_huge_word_is_cut_hard():
    pieces = split_text("x" * 4500)
    assert all(len(p) <= MESSAGE_LIMIT for p in pieces) and "".join(pieces) == "x" * 4500


def test_code_fences_are_closed_and_reopened_across_pieces():
    code = "\n".join(f"print({i})" for i in range(600))
    pieces = split_text(f"Run this:\n```python\n{code}\n```\nDone.")
    assert len(pieces) >= 3
    for piece in pieces:
        assert len(piece) <= MESSAGE_LIMIT
        assert piece.count("```") % 2 == 0, piece[:80]
    assert all(p.startswith("```python\n") for p in pieces[1:-1])
    assert pieces[-1].rstrip().endswith("Done.")


_TEXT = st.text(alphabet=st.characters(blacklist_characters="`", blacklist_categories=("Cs",)), min_size=1,
               max_size=300)


def visible(text: str) -> str:
    """The characters that matter: no whitespace, no fence backticks (pieces add and close fences)."""
    return "".join(text.replace("`", "").split())


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(_TEXT, st.sampled_from(["\n\n", "\n", " ", "```\n", "\n```\n"])), max_size=60),
       st.integers(min_value=40, max_value=MESSAGE_LIMIT))
def test_split_stays_within_the_limit_keeps_the_text_and_balances_fences(parts, limit):
    text = "".join(parts)
    pieces = split_text(text, limit)
    assert all(len(p) <= limit for p in pieces)
    assert visible("".join(pieces)) == visible(text)
    assert all(p.count("```") % 2 == 0 for p in pieces[:-1])


def reply(text: str = "Expense reports are due in 30 days [1].", n_sources: int = 1, **kwargs) -> Reply:
    sources = [SourceRef(n=i + 1, title=f"Expenses policy {i}", location=f"finance/expenses-{i}.md", url=None,
                         heading_path="Deadlines") for i in range(n_sources)]
    return Reply(kwargs.pop("kind", "answer"), text, sources, interaction_id=kwargs.pop("interaction_id", 42),
                 answer_code=kwargs.pop("answer_code", "7KQM2D"),
                 feedback_enabled=kwargs.pop("feedback_enabled", True), **kwargs)


def test_answer_renders_text_then_sources_and_buttons_on_the_last_message():
    (msg,) = render_reply(reply())
    assert msg.content.startswith("Expense reports") and msg.with_feedback
    (embed,) = msg.embeds
    assert embed.title == "Sources"
    assert embed.description == "**[1]** Expenses policy 0 — `finance/expenses-0.md` · Deadlines"
    assert embed.footer.text == "answer 7KQM2D"  # the code users quote, not the interaction id


def test_web_sources_are_links_and_titles_cannot_break_the_markup():
    line = source_line(SourceRef(n=2, title="Q3 [draft] *plan*", location="https://wiki.example.com/q3 plan)",
                                 url="https://wiki.example.com/q3 plan)"))
    assert line == r"**[2]** [Q3 \[draft\] \*plan\*](<https://wiki.example.com/q3%20plan%29>)"


def test_a_huge_url_is_dropped_rather_than_cut_in_half():
    url = "https://example.com/" + "a" * 3000
    line = source_line(SourceRef(n=1, title="Big", location=url, url=url))
    assert line == "**[1]** Big" and "](" not in line


def test_many_long_sources_fit_discords_embed_limits():
    long_title = "Handbook section " + "x" * 180
    r = reply(text="y " * 2500, n_sources=60)
    r.sources = [dataclasses.replace(s, title=long_title, heading_path="h" * 200) for s in r.sources]
    messages = render_reply(r)
    assert sum(1 for m in messages if m.with_feedback) == 1 and messages[-1].with_feedback
    listed = 0
    for m in messages:
        payload = {"content": m.content, "embeds": [e.to_dict() for e in m.embeds]}
        assert message_limit_problem(payload) is None
        assert len(m.embeds) <= EMBEDS_PER_MESSAGE
        assert sum(len(e) for e in m.embeds) <= EMBED_TOTAL_LIMIT
        assert all(len(e.description or "") <= EMBED_DESCRIPTION_LIMIT for e in m.embeds)
        listed += sum(len(re.findall(r"\*\*\[\d+\]\*\*", e.description or "")) for e in m.embeds)
    assert listed == 60  # every source is listed somewhere


@pytest.mark.parametrize("kind", ["usage", "refused", "rate_limited", "error"])
def test_non_answers_have_no_buttons(kind):
    (msg,) = render_reply(Reply(kind, "Try again later."))
    assert not msg.with_feedback and msg.embeds == [] and msg.content == "Try again later."


def test_not_found_keeps_its_buttons_but_lists_no_sources():
    (msg,) = render_reply(reply(kind="not_found", n_sources=0, text="I couldn't find that in the documents."))
    assert msg.with_feedback
    assert [e.description for e in msg.embeds] == [None] and msg.embeds[0].footer.text == "answer 7KQM2D"


def test_duplicates_render_to_nothing():
    assert render_reply(Reply("duplicate", "")) == []


def test_action_details_go_in_a_code_block():
    (text,) = render_action(ActionResult(True, "2 collections", ["handbook: public", "hr: private ```"]))
    assert text == "2 collections\n```\nhandbook: public\nhr: private '''\n```"


def test_feedback_custom_ids_carry_the_interaction_id_and_match_the_template():
    view = feedback_view(1234)
    ids = [item.custom_id for item in view.children]
    assert ids == ["ragbot:up:1234", "ragbot:down:1234", "ragbot:fix:1234"]
    assert all(re.fullmatch(CUSTOM_ID_TEMPLATE, i) and len(i) <= 100 for i in ids)
    assert all(isinstance(item, FeedbackButton) for item in view.children)
    assert view.timeout is None
