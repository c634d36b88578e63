"""Output sanitization shared by every adapter.

Text that reaches a chat platform may come from documents or a model; none of it
may ping people or inject platform markup. Mass mentions are defused with a
zero-width space so they read the same but notify nobody.
"""

from __future__ import annotations

import re

ZWSP = "\u200b"

# Slack: <!channel> <!here> <!everyone> <!subteam^ID|@name> <@U123> <#C123> <!date^...>
_SLACK_SPECIAL = re.compile(r"<\s*([!@#])\s*([^<>\n]{0,200})>")
# Discord: @everyone @here <@123> <@!123> <@&123> <#123>
_DISCORD_MENTION = re.compile(r"<(@[!&]?|#)(\d{1,25})>")
_AT_MASS = re.compile(r"@(everyone|here|channel)\b", re.I)


def defuse_mentions(text: str) -> str:
    """Neutralize every mention form of Slack and Discord."""
    text = _SLACK_SPECIAL.sub(lambda m: f"<{ZWSP}{m.group(1)}{m.group(2)}>".replace("<", "‹").replace(">", "›"),
                              text)
    text = _DISCORD_MENTION.sub(lambda m: f"‹{m.group(1)}{ZWSP}{m.group(2)}›", text)
    return _AT_MASS.sub(lambda m: f"@{ZWSP}{m.group(1)}", text)


def strip_control(text: str) -> str:
    return "".join(ch for ch in text if ch in "\n\t" or (ord(ch) >= 32 and ord(ch) != 127))


def truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit * 0.8 else cut).rstrip() + "…"


def sanitize_output(text: str, *, limit: int) -> str:
    return truncate(defuse_mentions(strip_control(text)), limit)


_MENTION_PREFIX = re.compile(r"^\s*(?:<@[!&]?[A-Za-z0-9]+(?:\|[^>]*)?>\s*)+")


def clean_question(text: str) -> str:
    """The question as asked: leading bot mentions removed, whitespace normalized."""
    text = _MENTION_PREFIX.sub("", strip_control(text or ""))
    return " ".join(text.split())
