"""Turn the core's ``Reply`` / ``ActionResult`` into Discord messages within Discord's limits.

Discord refuses a message whose content exceeds 2,000 characters, an embed whose
description exceeds 4,096, more than 10 embeds per message, or more than 6,000
embed characters per message. Long answers are split on paragraph, line or
word boundaries (never inside a code fence without closing and reopening it);
sources go into embeds after the text; the feedback buttons go on the very last
message so they sit under the whole answer. Markdown tables, which Discord
cannot show, become aligned code blocks first (:mod:`adapters.discord.table_blocks`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import discord

from adapters.discord.markup import to_discord, unlink
from adapters.discord.table_blocks import tables_as_code
from bot.fallback_notes import REFINED
from bot.markdown import CitedUrls
from bot.types import ActionResult, Reply, SourceRef

MESSAGE_LIMIT = 2000
EMBED_DESCRIPTION_LIMIT = 4096
EMBED_TITLE_LIMIT = 256
EMBED_FOOTER_LIMIT = 2048
EMBEDS_PER_MESSAGE = 10
EMBED_TOTAL_LIMIT = 6000
SOURCE_LINE_LIMIT = 600  # one source never crowds out the others

SOURCES_TITLE = "Sources"
EMBED_COLOUR = discord.Colour.blurple()
_FENCE = "```"


@dataclass(slots=True)
class OutgoingMessage:
    """One Discord message to send: content and/or embeds; buttons only where ``with_feedback``."""

    content: str = ""
    embeds: list[discord.Embed] = field(default_factory=list)
    with_feedback: bool = False


def render_reply(reply: Reply) -> list[OutgoingMessage]:
    """The messages for one answer, in order. ``duplicate`` renders to nothing (post nothing)."""
    if reply.kind == "duplicate":
        return []
    body = to_discord(tables_as_code(reply.text), CitedUrls.from_sources(reply.sources))
    chunks = split_text(body or "…")
    embeds = source_embeds(reply.sources, footer=_footer(reply))
    messages = [OutgoingMessage(content=c) for c in chunks]
    groups = pack_embeds(embeds)
    if groups:
        messages[-1].embeds = groups[0]
        messages.extend(OutgoingMessage(embeds=g) for g in groups[1:])
    messages[-1].with_feedback = reply.feedback_enabled and reply.interaction_id is not None
    return messages


def render_action(result: ActionResult) -> list[str]:
    """An admin or feedback outcome as message contents (details in a code block)."""
    text = result.message
    if result.detail_lines:
        details = "\n".join(line.replace(_FENCE, "'''") for line in result.detail_lines)
        text = f"{text}\n{_FENCE}\n{details}\n{_FENCE}"
    return split_text(unlink(text))  # it may quote what someone typed: no masked link


# -- text splitting -------------------------------------------------------------------------------

def split_text(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split ``text`` into pieces of at most ``limit`` characters.

    Prefers paragraph breaks, then line breaks, then spaces; cuts hard only in a
    single over-long word. A piece that ends inside a ``` fence is closed and
    the next piece reopens it (with the same language tag), so code renders
    the same across messages.
    """
    if limit < 40:
        raise ValueError("limit must leave room for code fences")
    pieces: list[str] = []
    rest = text.strip("\n")
    reopen = ""
    while rest:
        rest = reopen + rest
        if len(rest) <= limit:
            pieces.append(rest)
            break
        # room to close a fence we may be inside of; always move past the reopened fence
        cut = _cut_point(rest, limit - len(_FENCE) - 1, floor=max(limit // 2, len(reopen) + 1))
        head, rest = rest[:cut].rstrip(), rest[cut:].lstrip(" ").lstrip("\n")
        fence = _open_fence(head)
        reopen = f"{fence}\n" if fence is not None else ""
        if fence is not None:
            head = f"{head}\n{_FENCE}"
        if head.strip():
            pieces.append(head)
    return pieces or [""]


def _cut_point(text: str, limit: int, *, floor: int) -> int:
    """Where to cut: the last separator in ``(floor, limit]`` (no tiny pieces), else ``limit``."""
    for sep in ("\n\n", "\n", " "):
        at = text.rfind(sep, floor, limit)
        if at > 0:
            return at
    cut = limit
    while cut > floor and text[cut - 1] == "`":  # never through a ``` fence
        cut -= 1
    return cut


_FENCE_LANG = re.compile(r"[A-Za-z0-9_+#.-]{0,20}\n")


def _open_fence(text: str) -> str | None:
    """The opening fence (e.g. ```python) when ``text`` ends inside a code block, else None."""
    if text.count(_FENCE) % 2 == 0:
        return None
    lang = _FENCE_LANG.match(text, text.rfind(_FENCE) + len(_FENCE))
    return _FENCE + (lang.group(0)[:-1] if lang else "")


# -- sources ---------------------------------------------------------------------------------------

def source_line(source: SourceRef) -> str:
    """``**[n]** [Title](<url>) · heading`` (a link when one is known; else the document's relative path)."""
    title = _escape(source.title or source.location or "untitled")
    heading = f" · {_escape(source.heading_path)}" if source.heading_path else ""
    if source.url:
        line = f"**[{source.n}]** [{title}](<{_safe_url(source.url)}>){heading}"
        if len(line) <= SOURCE_LINE_LIMIT:
            return line
        # a link cut in half renders as garbage: show the title alone instead
        return _clip(f"**[{source.n}]** {title}{heading}", SOURCE_LINE_LIMIT)
    # its path below the folder it was ingested from (the bot core never passes the server's own path)
    name = source.location
    where = f" — `{_clip(_inline_code(name), 200)}`" if name and name != source.title else ""
    return _clip(f"**[{source.n}]** {title}{where}{heading}", SOURCE_LINE_LIMIT)


def source_embeds(sources: list[SourceRef], *, footer: str = "") -> list[discord.Embed]:
    """Embeds listing the sources; as many as their text needs (each description ≤ 4,096)."""
    if not sources and not footer:
        return []
    embeds: list[discord.Embed] = []
    lines: list[str] = []
    size = 0
    for line in (source_line(s) for s in sources):
        if lines and size + len(line) + 1 > EMBED_DESCRIPTION_LIMIT:
            embeds.append(_embed(lines, first=not embeds))
            lines, size = [], 0
        lines.append(line)
        size += len(line) + 1
    if lines or not embeds:
        embeds.append(_embed(lines, first=not embeds))
    if footer:
        embeds[-1].set_footer(text=_clip(footer, EMBED_FOOTER_LIMIT))
    return embeds


def pack_embeds(embeds: list[discord.Embed]) -> list[list[discord.Embed]]:
    """Group embeds into messages: at most 10 per message and 6,000 embed characters in all."""
    groups: list[list[discord.Embed]] = []
    current: list[discord.Embed] = []
    total = 0
    for embed in embeds:
        size = len(embed)
        if current and (len(current) >= EMBEDS_PER_MESSAGE or total + size > EMBED_TOTAL_LIMIT):
            groups.append(current)
            current, total = [], 0
        current.append(embed)
        total += size
    if current:
        groups.append(current)
    return groups


def _embed(lines: list[str], *, first: bool) -> discord.Embed:
    embed = discord.Embed(description="\n".join(lines) or None, colour=EMBED_COLOUR)
    if first and lines:
        embed.title = SOURCES_TITLE
    return embed


def _footer(reply: Reply) -> str:
    if not reply.answer_code:
        return ""
    parts = [f"answer {reply.answer_code}"]
    if reply.fallback_note:
        parts.append(reply.fallback_note)
    if reply.refined:
        parts.append(REFINED)
    return " · ".join(parts)


_MD_SPECIAL = re.compile(r"([\\`*_~|>\[\]])")  # mid-line, these are the ones Discord acts on


def _escape(text: str) -> str:
    return unlink(_MD_SPECIAL.sub(r"\\\1", " ".join(text.split())))  # a title could close our link


def _inline_code(text: str) -> str:
    return " ".join(text.replace("`", "'").split())


def _safe_url(url: str) -> str:
    # inside <...> a '>' or whitespace would end the link early
    return url.replace(" ", "%20").replace(">", "%3E").replace("<", "%3C").replace(")", "%29")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip("\\") + "…"
