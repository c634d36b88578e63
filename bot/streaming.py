"""Stream replies (``RAGBOT_REPLY_MODE=stream``): the model's text shown as it is written, made safe piece by piece.

Text that reaches a platform must be sanitized (``bot.sanitize``), but a mention or a
credential can arrive split over two pieces. ``LiveTextBuilder`` therefore shows only
a *settled* prefix: up to the last whitespace, and never past an unclosed ``<``; it
sanitizes that prefix as a whole and hands out what is new. Should sanitizing a longer
prefix change text already shown, the live text stops there (the final reply, sanitized
as every reply is, replaces it).
"""

from __future__ import annotations

from bot.sanitize import defuse_mentions, redact_secrets, strip_control
from bot.types import FinalReply, LiveText, Reply

# shown with a final reply that quotes the documents in place of a streamed answer
STREAM_REPLACED = "The streamed answer was replaced."


class LiveTextBuilder:
    """Raw model pieces in, ``LiveText`` out (or None while nothing new is settled)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit  # live text never grows past the reply limit (the final reply is cut there too)
        self.raw = ""
        self.shown = ""
        self.stalled = False

    def add(self, piece: str) -> LiveText | None:
        self.raw += piece
        return self._show(_settled(self.raw))

    def finish(self) -> LiveText | None:
        """Everything the model wrote, once it is done (nothing can be split any more)."""
        return self._show(self.raw)

    def _show(self, prefix: str) -> LiveText | None:
        if self.stalled:
            return None
        safe = redact_secrets(defuse_mentions(strip_control(prefix))).strip()
        if len(safe) > self.limit or not safe.startswith(self.shown):
            self.stalled = True
            return None
        delta = safe[len(self.shown):]
        if not delta:
            return None
        self.shown = safe
        return LiveText(delta, safe)


def _settled(raw: str) -> str:
    """The part of ``raw`` that later pieces cannot change into a mention or a credential."""
    cut = max(raw.rfind(" "), raw.rfind("\n"), raw.rfind("\t"))
    prefix = raw[:cut + 1] if cut >= 0 else ""
    opener = prefix.rfind("<")
    if opener > prefix.rfind(">"):  # a "<" still open could become a mention
        prefix = prefix[:opener]
    return prefix


async def final(reply: Reply) -> Reply:
    """The reply to post, for a caller that does not stream (the live text is skipped)."""
    if reply.stream is None:
        return reply
    last = reply
    async for update in reply.stream():
        if isinstance(update, FinalReply):
            last = update.reply
    return last
