"""What the chat connectors (Slack, Discord) share: a thread rendered as one Markdown document, and a
local cache of rendered threads keyed by a fingerprint of what the listing showed, so a sync
fetches a thread's messages again only when it may have changed."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

TITLE_CHARS = 90
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class ChatMessage:
    author: str
    text: str
    at: datetime


def thread_title(channel_label: str, first_text: str) -> str:
    """``#channel: the first line of the opening message`` (shortened)."""
    line = next((ln.strip() for ln in first_text.splitlines() if ln.strip()), "") or "(no text)"
    line = line.lstrip("#").strip()
    if len(line) > TITLE_CHARS:
        line = line[:TITLE_CHARS].rsplit(" ", 1)[0] + "…"
    return f"{channel_label}: {line}"


def render_thread(title: str, messages: Sequence[ChatMessage]) -> str:
    """One document: the title as heading, then each message as ``**author** (time): text``."""
    parts = [f"# {title}", ""]
    for m in messages:
        # a message's own lines must not turn into headings of the document
        body = "\n".join(re.sub(r"^(\s*)#", r"\1\\#", ln) for ln in m.text.strip().splitlines())
        parts += [f"**{m.author}** ({m.at.astimezone(UTC):%Y-%m-%d %H:%M} UTC): {body}", ""]
    return "\n".join(parts)


class ThreadCache:
    """Rendered threads under ``root``: ``<id>.md`` plus the fingerprint it was rendered for."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, item_id: str) -> Path:
        stem = self.root.joinpath(*(_UNSAFE.sub("_", part).strip(".") or "_" for part in item_id.split("/")))
        return stem.with_name(stem.name + ".md")  # appended: a Slack ts has a dot of its own

    def fresh(self, item_id: str, fingerprint: dict[str, Any]) -> Path | None:
        """The cached file if it was rendered for exactly ``fingerprint``."""
        path = self.path(item_id)
        try:
            stored = json.loads(_meta(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return path if stored == fingerprint and path.is_file() else None

    def write(self, item_id: str, fingerprint: dict[str, Any], markdown: str) -> Path:
        path = self.path(item_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(markdown, encoding="utf-8")
        _meta(path).write_text(json.dumps(fingerprint, sort_keys=True), encoding="utf-8")
        return path


def _meta(path: Path) -> Path:
    return path.with_name(path.name[:-3] + ".json")
