"""Fitting mrkdwn into Slack's limits without breaking its markup.

Slack rejects a section whose text is over 3,000 characters, a message with
more than 50 blocks, and truncates message text past 40,000 characters. Text is
packed paragraph by paragraph; a paragraph that is too long on its own is cut
at a line break or a space, never inside an ``&amp;`` entity or a ``<url|link>``,
and a code block cut in two is closed and reopened so both halves render.
"""

from __future__ import annotations

SECTION_TEXT_LIMIT = 3000
MAX_BLOCKS = 50
MESSAGE_TEXT_LIMIT = 40_000
FENCE = "```"


def pack(paragraphs: list[str], limit: int = SECTION_TEXT_LIMIT) -> list[str]:
    """Join paragraphs (with blank lines) into as few pieces of at most ``limit`` characters as fit."""
    if limit < 50:
        raise ValueError("limit is too small to split mrkdwn safely")
    pieces: list[str] = []
    current = ""
    for paragraph in paragraphs:
        for part in split_long(paragraph, limit):
            joined = f"{current}\n\n{part}" if current else part
            if len(joined) <= limit:
                current = joined
            else:
                pieces.append(current)
                current = part
    if current:
        pieces.append(current)
    return pieces


def split_long(text: str, limit: int = SECTION_TEXT_LIMIT) -> list[str]:
    """Cut one paragraph into pieces of at most ``limit`` characters."""
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = _cut_point(rest, limit - len(FENCE) - 1)  # room to close a code block we cut through
        head, rest = rest[:cut].rstrip(), rest[cut:].lstrip(" ").removeprefix("\n")
        if head.count(FENCE) % 2:  # inside a code block: close it here, reopen in the next piece
            head += "\n" + FENCE
            rest = FENCE + "\n" + rest
        pieces.append(head)
    pieces.append(rest)
    return [p for p in pieces if p.strip()]


def _cut_point(text: str, limit: int) -> int:
    window = text[:limit]
    cut = window.rfind("\n")
    if cut < limit // 2:
        cut = window.rfind(" ")
    if cut < limit // 2:
        cut = limit
    # not inside an entity (&amp;) or a link (<url|label>), unless that would leave too little
    amp = text.rfind("&", 0, cut)
    if amp > limit // 4 and cut - amp <= 6 and ";" not in text[amp:cut]:
        cut = amp
    lt = text.rfind("<", 0, cut)
    if lt > limit // 4 and ">" not in text[lt:cut]:
        cut = lt
    return cut


def truncate(text: str, limit: int = MESSAGE_TEXT_LIMIT) -> str:
    """Shorten plain message text to ``limit`` characters, at a safe point."""
    if len(text) <= limit:
        return text
    return text[: _cut_point(text, limit - 1)].rstrip() + "…"


def chunk_blocks(blocks: list[dict], max_blocks: int = MAX_BLOCKS) -> list[list[dict]]:
    """Split a block list into messages of at most ``max_blocks`` blocks each."""
    return [blocks[i:i + max_blocks] for i in range(0, len(blocks), max_blocks)] or [[]]
