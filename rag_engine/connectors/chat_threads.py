"""What the chat connectors (Slack, Discord) share: the configuration every chat source has, a
listed thread's id and collection (a private channel's threads go to a collection of its own), a
thread rendered as one Markdown document, and a local cache of rendered threads keyed by a
fingerprint of what the listing showed, so a sync fetches a thread's messages again only when it
may have changed."""

from __future__ import annotations

import json
import re
from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rag_engine.connectors.base import Connector, ConnectorError, Fetched, ItemRef, Placement
from rag_engine.connectors.secrets import read_secret

TITLE_CHARS = 90
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class ChatSourceConfig(BaseModel):
    """What every chat source's ``sources.config`` holds (the token is named, never stored)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    collection_prefix: str  # public channels: the source's collection; private: <prefix>-private-<id>
    channels: list[str] = Field(default_factory=list)  # empty: every channel the bot can read
    token_env: str | None = None  # default: the variable of the bot's own token
    token_file: str | None = None
    rescan_days: float = Field(default=7.0, ge=0, le=90)

    @field_validator("collection_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        clean = value.strip()
        if not clean or len(clean) > 60:
            raise ValueError("collection_prefix must be 1-60 characters")
        return clean


def http_address(value: str, field: str) -> str:
    """``value`` if it is an http(s) address (an API's base URL named ``field``)."""
    if not value.startswith(("https://", "http://")):
        raise ValueError(f"{field} must be an http(s) address")
    return value


@dataclass(frozen=True, slots=True)
class ChatChannel:
    id: str
    name: str
    private: bool


@dataclass(frozen=True, slots=True)
class ListedThread:
    """A thread as the listing showed it: ``data`` is the platform's record of it (Slack: the opening
    message; Discord: the thread), ``fingerprint`` what its cached rendering is keyed on, ``active_at``
    its newest activity the listing tells of (Unix seconds)."""

    channel: ChatChannel
    data: dict[str, Any]
    fingerprint: dict[str, Any]
    active_at: float


def private_collection(prefix: str, channel_id: str) -> str:
    return f"{prefix}-private-{channel_id.lower()}"


def thread_id(channel: ChatChannel, key: str) -> str:
    # the visibility is part of the id: a channel that turns private is a new set of documents
    return f"{'private' if channel.private else 'public'}/{channel.id}/{key}"


ConfigT = TypeVar("ConfigT", bound=ChatSourceConfig)


class ChatConnector(Connector, Generic[ConfigT]):
    """A chat source's connector: ``changes`` lists threads (``_listed_item``), ``fetch`` renders one
    again unless its cached rendering was made for the same listing and it was not active within the
    rescan window (an edit changes no listing)."""

    default_token_env: str  # the bot's own token, when the configuration names none

    def __init__(self, config: ConfigT, cache_dir: Path, clock: Callable[[], float]) -> None:
        self.config = config
        self.cache = ThreadCache(cache_dir / "threads")
        self._clock = clock
        token = read_secret(config.token_env, config.token_file) if config.token_env or config.token_file \
            else read_secret(self.default_token_env, None)
        self._token = token or ""
        self._listed: dict[str, ListedThread] = {}

    def secrets(self) -> list[str]:
        return [self._token] if self._token else []

    def fetch(self, item: ItemRef) -> Fetched:
        thread = self._listed.get(item.external_id)
        if thread is None:
            raise ConnectorError(f"{item.external_id} was not listed by this sync")
        recent = thread.active_at >= self._clock() - self.config.rescan_days * 86400
        cached = None if recent else self.cache.fresh(item.external_id, thread.fingerprint)
        if cached is not None:
            return Fetched(cached)
        return Fetched(self.cache.write(item.external_id, thread.fingerprint, self._render(thread)))

    @abstractmethod
    def _render(self, thread: ListedThread) -> str:
        """The thread as one Markdown document, its messages read now."""

    def _listed_item(self, thread: ListedThread, key: str, label: str, url: str | None, workspace: str) -> ItemRef:
        """The item of a listed thread (``key``: its id in the channel), remembered for ``fetch``; a private
        channel's thread goes to the channel's own collection, readable in that channel only."""
        ch = thread.channel
        placement = Placement(private_collection(self.config.collection_prefix, ch.id),
                              ((self.kind, workspace, ch.id),)) if ch.private else None
        item = ItemRef(thread_id(ch, key), label, url, placement)
        self._listed[item.external_id] = thread
        return item


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
