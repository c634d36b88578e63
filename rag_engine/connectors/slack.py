"""Slack channels as a source: every thread of the channels the bot is in is one document (the
opening message and its replies, with their authors' display names), linked by its permalink.

Slack's API tells a reader what is there, not what changed, so the design is:

* **Incremental sync** (the usual one): per channel, ``conversations.history`` from ``oldest`` =
  the earlier of the newest message seen and *now − rescan window* (default 7 days); every thread
  whose opening message falls in that window is read again with ``conversations.replies``. So a
  new message, an edit (``edited.ts``) or a deleted reply inside the window is in search after the
  next sync, and an opening message that vanished from the window (deleted, or left as a
  ``tombstone`` because its replies remain) deletes its thread's document.
* **Full re-scan** (the first sync, then every ``full_every_h``, default 24 h, and whenever a
  channel was left or turned private/public): the whole history of every channel is listed; a
  thread that is no longer there is deleted (the sync service works that out), and a thread whose
  listing changed (reply count, last reply, an edit of its opening message) is read again. An
  unchanged old thread is served from the local cache without another call.

What the rolling window cannot see before the next full re-scan: a new reply, edit or deletion in a
thread whose opening message is older than the window. A private channel's threads go to a private
collection of its own (``<prefix>-private-<channel id>``) granted to that channel only. The bot's
own messages (its answers) are not indexed.
"""

from __future__ import annotations

import html
import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from rag_engine.connectors.base import ChangeSet, ConnectorError, ItemRef
from rag_engine.connectors.chat_threads import (
    ChatChannel,
    ChatConnector,
    ChatMessage,
    ChatSourceConfig,
    ListedThread,
    http_address,
    render_thread,
    thread_id,
    thread_title,
)
from rag_engine.connectors.http_json import JsonApi

log = logging.getLogger(__name__)

PAGE = 200  # Slack's recommended page size for history listings
RENDER_VERSION = 1  # bump to re-render every cached thread
_SKIPPED_SUBTYPES = frozenset({
    "tombstone", "channel_join", "channel_leave", "channel_topic", "channel_purpose", "channel_name",
    "channel_archive", "channel_unarchive", "group_join", "group_leave", "group_topic", "group_purpose",
    "group_name", "pinned_item", "unpinned_item", "bot_add", "bot_remove", "reminder_add", "channel_convert_to_private",
})
_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_CHANNEL = re.compile(r"<#([CG][A-Z0-9]+)(?:\|([^>]*))?>")
_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|([^>]*))?>")
_SPECIAL = re.compile(r"<!([a-z]+)(?:\^[^|>]*)?(?:\|([^>]*))?>")


class SlackSourceConfig(ChatSourceConfig):
    """What ``sources.config`` holds for a Slack source: ``channels`` are ids or names (empty: every
    channel the bot is in); the token defaults to RAGBOT_SLACK_BOT_TOKEN (the bot's own)."""

    api_url: str = "https://slack.com/api/"
    full_every_h: float = Field(default=24.0, gt=0)

    @field_validator("api_url")
    @classmethod
    def _http(cls, value: str) -> str:
        return http_address(value, "api_url")


class SlackConnector(ChatConnector[SlackSourceConfig]):
    """A listed thread's ``data`` is its opening message; its ``active_at`` the newest of the message,
    its last reply and its last edit."""

    kind = "slack"
    default_token_env = "RAGBOT_SLACK_BOT_TOKEN"

    def __init__(self, config: SlackSourceConfig, cache_dir: Path, *, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(config, cache_dir, clock)
        self.api = JsonApi(config.api_url, {"Authorization": f"Bearer {self._token}"}, sleep=sleep)
        self._names: dict[str, str] = {}
        self._team = ""
        self._web = ""
        self._me: tuple[str, str] = ("", "")  # the bot's user id and bot id

    # -- the interface ---------------------------------------------------------
    def changes(self, cursor: str | None) -> ChangeSet:
        now = self._clock()
        state = _load(cursor)
        auth = self._call("auth.test")
        self._team, self._web = str(auth.get("team_id", "")), str(auth.get("url", "")).rstrip("/") + "/"
        self._me = (str(auth.get("user_id", "")), str(auth.get("bot_id", "")))
        channels = self._channels()
        known: dict[str, Any] = state.get("channels", {}) if state else {}
        moved = [c for c, s in known.items() if c not in channels or s.get("private") != channels[c].private]
        full = state is None or now - float(state.get("full_at", 0)) >= self.config.full_every_h * 3600 or bool(moved)
        window_start = now - self.config.rescan_days * 86400
        items: list[ItemRef] = []
        deleted: list[str] = []
        next_channels: dict[str, Any] = {}
        for ch in channels.values():
            old = known.get(ch.id)
            oldest = None if full or old is None else min(float(old.get("latest") or 0) or window_start, window_start)
            roots = list(self._list_roots(ch, oldest))
            seen = {r.data["ts"] for r in roots}
            if oldest is not None and old is not None:
                deleted += [thread_id(ch, ts) for ts in old.get("recent", []) if float(ts) >= oldest and ts not in seen]
            items += [self._item(root) for root in roots]
            latest = max([float(ts) for ts in seen] + [float(old.get("latest", 0)) if old else 0.0])
            next_channels[ch.id] = {"private": ch.private, "latest": f"{latest:.6f}",
                                    "recent": sorted(ts for ts in seen if float(ts) >= window_start)}
        full_at = now if full or state is None else float(state.get("full_at", now))
        next_state = {"v": 1, "full_at": full_at, "channels": next_channels}
        return ChangeSet(items, deleted, json.dumps(next_state, sort_keys=True), full=full)

    def _render(self, thread: ListedThread) -> str:
        messages = [thread.data] + (list(self._replies(thread)) if thread.data.get("reply_count") else [])
        rendered = [ChatMessage(self._author(m), self._plain(m.get("text", "")), _when(m["ts"])) for m in messages]
        return render_thread(thread_title(f"#{thread.channel.name}", rendered[0].text), rendered)

    # -- listing ---------------------------------------------------------------
    def _channels(self) -> dict[str, ChatChannel]:
        wanted = set(self.config.channels)
        found: dict[str, ChatChannel] = {}
        for page in self._pages("conversations.list", "channels", types="public_channel,private_channel",
                                exclude_archived="true"):
            for c in page:
                if not c.get("is_member") or c.get("is_im") or c.get("is_mpim"):
                    continue
                ch = ChatChannel(str(c["id"]), str(c.get("name") or c["id"]), bool(c.get("is_private")))
                if not wanted or ch.id in wanted or ch.name in wanted or f"#{ch.name}" in wanted:
                    found[ch.id] = ch
        missing = wanted - {c.id for c in found.values()} - {c.name for c in found.values()} \
            - {f"#{c.name}" for c in found.values()}
        if missing:
            log.warning("slack source: the bot is not a member of %s (invite it there); skipped",
                        ", ".join(sorted(missing)))
        return found

    def _list_roots(self, ch: ChatChannel, oldest: float | None) -> Iterator[ListedThread]:
        params = {"channel": ch.id, "oldest": f"{oldest:.6f}" if oldest else None,
                  "inclusive": "true" if oldest else None}
        for page in self._pages("conversations.history", "messages", **params):
            for m in page:
                ts = str(m.get("ts", ""))
                if not ts or m.get("thread_ts", ts) != ts or not self._wanted(m):
                    continue
                edited = str((m.get("edited") or {}).get("ts", ""))
                fingerprint = {"v": RENDER_VERSION, "text": m.get("text", ""), "edited": edited,
                               "replies": m.get("reply_count", 0), "latest_reply": m.get("latest_reply", ""),
                               "channel": ch.name}
                active = max(float(ts), float(m.get("latest_reply") or 0), float(edited or 0))
                yield ListedThread(ch, m, fingerprint, active)

    def _replies(self, root: ListedThread) -> Iterator[dict[str, Any]]:
        ts = root.data["ts"]
        for page in self._pages("conversations.replies", "messages", channel=root.channel.id, ts=ts):
            for m in page:
                if m.get("ts") != ts and self._wanted(m):
                    yield m

    def _wanted(self, m: dict[str, Any]) -> bool:
        if m.get("subtype") in _SKIPPED_SUBTYPES or m.get("hidden"):
            return False
        user, bot = self._me
        return not ((user and m.get("user") == user) or (bot and m.get("bot_id") == bot))

    def _item(self, root: ListedThread) -> ItemRef:
        ch, ts = root.channel, root.data["ts"]
        url = f"{self._web}archives/{ch.id}/p{ts.replace('.', '')}" if self._web.startswith("http") else None
        return self._listed_item(root, ts, f"#{ch.name}/{ts}", url, self._team)

    # -- text ------------------------------------------------------------------
    def _author(self, m: dict[str, Any]) -> str:
        if m.get("user"):
            return self._name(str(m["user"]))
        profile = m.get("bot_profile") or {}
        return str(m.get("username") or profile.get("name") or "bot")

    def _name(self, user_id: str) -> str:
        if user_id not in self._names:
            try:
                user = self._call("users.info", user=user_id).get("user") or {}
            except ConnectorError:
                user = {}
            profile = user.get("profile") or {}
            self._names[user_id] = str(profile.get("display_name") or profile.get("real_name")
                                       or user.get("real_name") or user.get("name") or user_id)
        return self._names[user_id]

    def _plain(self, text: str) -> str:
        """Slack's markup as readers see it: names for mentions, link labels, then entities unescaped."""
        text = _MENTION.sub(lambda m: "@" + self._name(m.group(1)), text)
        text = _CHANNEL.sub(lambda m: "#" + (m.group(2) or m.group(1)), text)
        text = _LINK.sub(lambda m: f"{m.group(2)} ({m.group(1)})" if m.group(2) else m.group(1), text)
        text = _SPECIAL.sub(lambda m: "@" + (m.group(2) or m.group(1)), text)
        return html.unescape(text)

    # -- the Web API -------------------------------------------------------------
    def _call(self, method: str, **params: Any) -> dict[str, Any]:
        status, body = self.api.request("POST", method, data=params)
        if not isinstance(body, dict) or not body.get("ok"):
            error = body.get("error") if isinstance(body, dict) else f"HTTP {status}"
            raise ConnectorError(f"slack {method}: {error}")
        return body

    def _pages(self, method: str, key: str, **params: Any) -> Iterator[list[dict[str, Any]]]:
        cursor: str | None = None
        while True:
            body = self._call(method, limit=PAGE, cursor=cursor, **params)
            yield list(body.get(key) or [])
            cursor = (body.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                return


def _load(cursor: str | None) -> dict[str, Any] | None:
    if not cursor:
        return None
    try:
        state = json.loads(cursor)
    except ValueError:
        return None  # not ours (an old format): a full re-scan starts over
    return state if isinstance(state, dict) and state.get("v") == 1 else None


def _when(ts: str) -> datetime:
    return datetime.fromtimestamp(float(ts), UTC)
