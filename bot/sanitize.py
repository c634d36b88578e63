"""Input cleaning and output sanitization shared by every platform adapter.

Text that reaches a chat platform may come from documents or a model; none of it
may ping people, inject platform markup, hide characters or leak a credential.
Mass mentions are defused with a zero-width space so they read the same but
notify nobody. Adapters still escape their own markup (Slack: ``& < >``) and
send with mentions disabled; this is the layer both platform adapters share.
"""

from __future__ import annotations

import re

from rag_engine.redact import redact_secrets, secret_values

__all__ = ["clean_question", "defuse_mentions", "redact_secrets", "sanitize_output", "secret_values",
           "strip_control", "truncate"]

ZWSP = "\u200b"

# Slack: <!channel> <!here> <!everyone> <!subteam^ID|@name> <@U123> <#C123> <!date^...>
_SLACK_SPECIAL = re.compile(r"<\s*([!@#])\s*([^<>\n]{0,200})>")
# Discord: <@123> <@!123> <@&123> <#123>, slash-command mentions </name:123>, guild nav <id:home>
_DISCORD_MENTION = re.compile(r"<(@[!&]?|#|/[^<>\s:]{1,64}(?: [^<>\s:]{1,64}){0,2}:|id:)\s*([\w-]{1,32})>")
_AT_MASS = re.compile(r"@(everyone|here|channel|group)", re.I)  # no \b: cutting "@everyoneX" would make one
# what is left of a mention opener after the passes above (nested or unterminated forms)
_OPENER = re.compile(r"<(?=\s*(?:[!@#]|/[^\s/]|id:))")

# Characters that render as nothing or reorder text: C0/C1 controls (but \t \n),
# bidi overrides and isolates, BOM, interlinear annotations and the Unicode
# "tag" block (invisible ASCII look-alikes used to smuggle text to models).
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff\ufff9-\ufffb"
    "\U000e0000-\U000e007f]"
)
_LINE_SEPARATORS = re.compile("[\r\u2028\u2029\x85]")


def defuse_mentions(text: str) -> str:
    """Neutralize every mention form of Slack and Discord. (Links are not text: the renderers
    decide on the parsed Markdown which may keep a label, see :mod:`bot.markdown`.)"""
    text = _SLACK_SPECIAL.sub(lambda m: f"‹{ZWSP}{m.group(1)}{m.group(2)}›", text)
    text = _DISCORD_MENTION.sub(lambda m: f"‹{ZWSP}{m.group(1)}{m.group(2)}›", text)
    text = _OPENER.sub("‹", text)
    return _AT_MASS.sub(lambda m: f"@{ZWSP}{m.group(1)}", text)


def strip_control(text: str) -> str:
    """Remove invisible and reordering characters; line separators become newlines."""
    return _INVISIBLE.sub("", _LINE_SEPARATORS.sub("\n", text.replace("\r\n", "\n")))


_DANGLING_MARKER = re.compile(r"\[\d{0,3}$")  # a citation marker cut in half


def truncate(text: str, limit: int) -> str:
    """At most ``limit`` characters, cut at a word boundary when one is near, ending in "…"."""
    if limit <= 0:
        return ""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    cut = cut[:space] if space > limit * 0.8 else cut
    return _DANGLING_MARKER.sub("", cut.rstrip()).rstrip() + "…"


def sanitize_output(text: str, *, limit: int) -> str:
    """Text safe to post: no hidden characters, mentions or credentials; at most ``limit``. (Links are
    judged when rendered, against the answer's citations: :mod:`bot.markdown`.)"""
    return truncate(redact_secrets(defuse_mentions(strip_control(text or ""))), limit)


# Leading mentions of the bot: Slack <@U123> / <@U123|name>, Discord <@123> / <@!123> / <@&role>.
_MENTION_PREFIX = re.compile(r"^\s*(?:<@[!&]?[A-Za-z0-9]{1,40}(?:\|[^<>\n]{0,100})?>[\s,:]*)+")


def clean_question(text: str) -> str:
    """The question as asked: leading bot mentions removed, hidden characters dropped, whitespace
    normalized, and a pasted credential masked (the question is logged and may become training data)."""
    text = strip_control(text or "").replace(ZWSP, "").replace("\u2060", "")
    return redact_secrets(" ".join(_MENTION_PREFIX.sub("", text).split()))
