"""Block Kit for the bot's replies, admin results and the correction modal.

Every builder returns ready-to-send payload pieces that already respect Slack's
limits (see :mod:`adapters.slack.split`) and have passed the mention guard:
nothing built here can notify a channel, ``@here``, ``@everyone`` or a user group.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from adapters.slack.mrkdwn import escape, link, to_mrkdwn
from adapters.slack.split import MAX_BLOCKS, SECTION_TEXT_LIMIT, chunk_blocks, pack, truncate
from bot.fallback_notes import REFINED
from bot.markdown import CitedUrls
from bot.sanitize import defuse_mentions
from bot.types import ActionResult, Reply, SourceRef

ACTION_FEEDBACK = "ragbot_feedback"  # Slack's native feedback_buttons: 👍 / 👎
ACTION_VOTE_UP = "ragbot_vote_up"  # the 👍 / 👎 buttons of answers posted before feedback_buttons: still handled
ACTION_VOTE_DOWN = "ragbot_vote_down"
ACTION_CORRECT = "ragbot_correct"
FEEDBACK_BLOCK = "ragbot_feedback"
VOTES_BLOCK = "ragbot_votes"
FEEDBACK_POSITIVE, FEEDBACK_NEGATIVE = "positive", "negative"  # a feedback button's value: "<which>:<answer id>"
CORRECTION_VIEW = "ragbot_correction"
CORRECTION_BLOCK = "correction"
CORRECTION_INPUT = "text"
CORRECTION_MAX_CHARS = 3000  # Slack's plain_text_input limit
QUESTION_PREVIEW_CHARS = 300

_KIND_ICON = {"refused": ":no_entry_sign:", "rate_limited": ":hourglass:", "error": ":warning:"}


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """One message: ``text`` is the notification/accessibility fallback of ``blocks``."""

    text: str
    blocks: list[dict]

    def payload(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": self.blocks}


def reply_messages(reply: Reply, *, question: str | None = None, reference: str | None = None) -> list[SlackMessage]:
    """Render a bot-core reply; long answers become several messages, buttons on the last one."""
    head: list[dict] = []
    if question:
        preview = truncate(" ".join(question.split()), QUESTION_PREVIEW_CHARS)
        head.append(_context(f"*Q:* {escape(preview)}"))
    body = to_mrkdwn(reply.text, cited=CitedUrls.from_sources(reply.sources)) or [escape(reply.text or "…")]
    icon = _KIND_ICON.get(reply.kind)
    if icon:
        body[0] = f"{icon} {body[0]}"
    if reply.kind == "error" and reply.interaction_id is None and reference:
        body.append(f"_Reference: {escape(reference)}_")
    sections = [_section(piece) for piece in pack(body)]
    tail = _source_sections(reply.sources)
    footer: list[dict] = []
    if reply.answer_code:
        note = f"Answer {reply.answer_code}"
        if reply.fallback_note:
            note += f" · {reply.fallback_note}"
        if reply.refined:
            note += f" · {REFINED}"
        footer.append(_context(escape(note)))
    if reply.feedback_enabled and reply.interaction_id is not None:
        footer += feedback_actions(reply.interaction_id)
    return _messages(head + sections + tail, footer)


def feedback_actions(interaction_id: int) -> list[dict]:
    """Slack's native 👍 / 👎 (``feedback_buttons`` in a ``context_actions`` block), then the correction button
    (a plain button: ``context_actions`` holds only feedback and icon buttons)."""
    votes = {
        "type": "feedback_buttons",
        "action_id": ACTION_FEEDBACK,
        "positive_button": {"text": {"type": "plain_text", "text": "Helpful"},
                            "accessibility_label": "This answer was helpful",
                            "value": f"{FEEDBACK_POSITIVE}:{interaction_id}"},
        "negative_button": {"text": {"type": "plain_text", "text": "Not helpful"},
                            "accessibility_label": "This answer was not helpful",
                            "value": f"{FEEDBACK_NEGATIVE}:{interaction_id}"},
    }
    return [
        {"type": "context_actions", "block_id": VOTES_BLOCK, "elements": [votes]},
        {"type": "actions", "block_id": FEEDBACK_BLOCK,
         "elements": [_button("Suggest a correction", ACTION_CORRECT, str(interaction_id))]},
    ]


def feedback_vote(value: str) -> tuple[int, int] | None:
    """A feedback button's value back as ``(vote, interaction id)``; None when it is not one of ours."""
    which, _, ident = (value or "").partition(":")
    vote = {FEEDBACK_POSITIVE: +1, FEEDBACK_NEGATIVE: -1}.get(which)
    if vote is None or not (ident.isascii() and ident.isdigit()) or int(ident) <= 0:
        return None
    return vote, int(ident)


def action_result_messages(result: ActionResult, *, title: str | None = None) -> list[SlackMessage]:
    """An admin or feedback outcome: a headline, then its detail lines as a list."""
    blocks: list[dict] = []
    if title:
        blocks.append({"type": "header", "text": {"type": "plain_text", "text": truncate(title, 150),
                                                  "emoji": True}})
    icon = ":white_check_mark:" if result.ok else ":no_entry:"
    message = result.message.strip()
    if "\n" in message:  # usage text is laid out in columns: keep it preformatted
        first, rest = message.split("\n", 1)
        paragraphs = [f"{icon} {escape(first)}", f"```\n{escape(rest)}\n```"]
    else:
        paragraphs = [f"{icon} {escape(message)}"]
    if result.detail_lines:
        paragraphs.append("\n".join(f"• {escape(line)}" for line in result.detail_lines))
    blocks += [_section(piece) for piece in pack(paragraphs)]
    return _messages(blocks, [])


def notice(text: str) -> SlackMessage:
    """A one-off plain message (escaped, guarded)."""
    return _messages([_section(piece) for piece in pack([escape(text)])], [])[0]


def correction_modal(interaction_id: int, channel_id: str, thread_ts: str | None = None) -> dict:
    metadata = json.dumps({"interaction_id": interaction_id, "channel_id": channel_id, "thread_ts": thread_ts})
    return _guard({
        "type": "modal",
        "callback_id": CORRECTION_VIEW,
        "private_metadata": metadata,
        "title": {"type": "plain_text", "text": "Suggest a correction"},
        "submit": {"type": "plain_text", "text": "Save"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": (
                "What should this answer have said? An admin reviews corrections "
                "before they are used for training.")}},
            {
                "type": "input",
                "block_id": CORRECTION_BLOCK,
                "label": {"type": "plain_text", "text": "Corrected answer"},
                "element": {"type": "plain_text_input", "action_id": CORRECTION_INPUT, "multiline": True,
                            "max_length": CORRECTION_MAX_CHARS},
            },
        ],
    })


def correction_metadata(private_metadata: str) -> dict:
    """The modal's metadata back; raises ValueError when it is not ours."""
    data = json.loads(private_metadata or "{}")
    if not isinstance(data, dict) or not isinstance(data.get("interaction_id"), int):
        raise ValueError("the correction form lost its answer id")
    return data


# -- pieces ---------------------------------------------------------------------
def _source_sections(sources: list[SourceRef]) -> list[dict]:
    if not sources:
        return []
    lines = [_source_line(s) for s in sources]
    pieces = pack(["*Sources*", "\n".join(lines)])
    return [{"type": "divider"}, *(_section(piece) for piece in pieces)]


def _source_line(source: SourceRef) -> str:
    title = source.title.strip() or source.location or "untitled"
    name = link(source.url, title) if source.url else f"*{escape(title)}*"
    extra = []
    if source.heading_path:
        extra.append(escape(source.heading_path))
    if not source.url and source.location:
        extra.append(f"`{escape(source.location)}`")
    suffix = f" — {' · '.join(extra)}" if extra else ""
    return truncate(f"[{source.n}] {name}{suffix}", SECTION_TEXT_LIMIT // 4)


def _messages(blocks: list[dict], footer: list[dict]) -> list[SlackMessage]:
    """Split ``blocks`` into messages of at most 50 blocks; ``footer`` ends the last one."""
    room = MAX_BLOCKS - len(footer)
    groups = chunk_blocks(blocks, room) if len(blocks) > room else [blocks]
    groups[-1] = groups[-1] + footer
    messages = []
    for group in groups:
        text = "\n\n".join(b["text"]["text"] for b in group if b.get("type") == "section") or "ragbot"
        messages.append(SlackMessage(text=truncate(text), blocks=group))
    return [_guard(m) for m in messages]


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(text: str) -> dict:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(text, SECTION_TEXT_LIMIT)}]}


def _button(label: str, action_id: str, value: str) -> dict:
    return {"type": "button", "text": {"type": "plain_text", "text": label, "emoji": True},
            "action_id": action_id, "value": value}


def _guard(value: Any) -> Any:
    """Last line of defence: defuse any mention form in every string that leaves for Slack."""
    if isinstance(value, str):
        return defuse_mentions(value)
    if isinstance(value, SlackMessage):
        return SlackMessage(_guard(value.text), _guard(value.blocks))
    if isinstance(value, dict):
        return {k: v if k in ("action_id", "block_id", "callback_id", "private_metadata", "value") else _guard(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_guard(v) for v in value]
    return value
