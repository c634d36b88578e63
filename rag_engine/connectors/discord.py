"""Discord forum channels and threads as a source: every thread (a forum post, or a public thread of a
listed text channel) is one document, its messages with their authors, linked by its jump URL.

Each sync lists the guild's threads (``GET /guilds/{id}/threads/active`` and, per channel,
``GET /channels/{id}/threads/archived/public``, paginated): listing is cheap, so every sync is a
full one and a thread that disappeared (deleted, or its channel no longer readable) is deleted.
A thread's messages are read again only when its listing changed (``last_message_id``,
``message_count``, its name) or it was active within the rescan window (default 7 days: edits
change neither), otherwise its cached rendering is reused.

Permissions: the bot's permissions are worked out per channel as Discord does (``@everyone``,
its roles, then the channel's overwrites); a channel it cannot view or read the history of is
skipped. A channel ``@everyone`` cannot view is private: its threads go to a private collection of
its own (``<prefix>-private-<channel id>``) granted to that channel only (a thread is asked in as
its parent channel). Private threads (type 12: invited members only) are never read.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import field_validator

from rag_engine.connectors.base import ChangeSet, ConnectorError, ItemRef
from rag_engine.connectors.chat_threads import (
    ChatChannel,
    ChatConnector,
    ChatMessage,
    ChatSourceConfig,
    ListedThread,
    http_address,
    render_thread,
)
from rag_engine.connectors.http_json import JsonApi

log = logging.getLogger(__name__)

ADMINISTRATOR = 1 << 3
VIEW_CHANNEL = 1 << 10
READ_MESSAGE_HISTORY = 1 << 16
ALL = (1 << 53) - 1
FORUM_TYPES = frozenset({15, 16})  # forum and media channels
TEXT_TYPES = frozenset({0, 5})  # text and announcement channels: their public threads, when listed
PUBLIC_THREADS = frozenset({10, 11})  # announcement and public threads (12, private threads, never)
MESSAGE_TYPES = frozenset({0, 19})  # default and reply (not joins, pins, system messages)
STARTER = 21  # a thread's link to the text-channel message it was started from
DISCORD_EPOCH_MS = 1420070400000
PAGE = 100
RENDER_VERSION = 1
JUMP = "https://discord.com/channels"


class DiscordSourceConfig(ChatSourceConfig):
    """What ``sources.config`` holds for a Discord source: ``channels`` are ids (empty: every forum
    channel the bot can read); the token defaults to RAGBOT_DISCORD_TOKEN (the bot's own)."""

    guild_id: str
    api_base: str = "https://discord.com/api/v10"

    @field_validator("guild_id")
    @classmethod
    def _snowflake(cls, value: str) -> str:
        if not value.strip().isdigit():
            raise ValueError("guild_id must be a Discord id (digits)")
        return value.strip()

    @field_validator("api_base")
    @classmethod
    def _http(cls, value: str) -> str:
        return http_address(value, "api_base")


class DiscordConnector(ChatConnector[DiscordSourceConfig]):
    """A listed thread's ``data`` is Discord's thread object; its ``active_at`` the time of its last
    message (of the thread itself when it has none)."""

    kind = "discord"
    default_token_env = "RAGBOT_DISCORD_TOKEN"

    def __init__(self, config: DiscordSourceConfig, cache_dir: Path, *, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(config, cache_dir, clock)
        self.api = JsonApi(config.api_base, {"Authorization": f"Bot {self._token}"}, sleep=sleep)
        self._me = ""

    # -- the interface ---------------------------------------------------------
    def changes(self, cursor: str | None) -> ChangeSet:
        now = self._clock()
        self._me = str(self._get("/users/@me")["id"])
        channels = self._readable_channels()
        items: list[ItemRef] = []
        for thread in self._list_threads(channels):
            ch, tid = thread.channel, str(thread.data["id"])
            items.append(self._listed_item(thread, tid, f"#{ch.name}/{thread.data.get('name') or tid}",
                                           f"{JUMP}/{self.config.guild_id}/{tid}", self.config.guild_id))
        return ChangeSet(items, [], json.dumps({"v": 1, "synced_at": now}), full=True)

    def _render(self, thread: ListedThread) -> str:
        messages = sorted(self._messages(str(thread.data["id"])), key=lambda m: int(m["id"]))
        rendered = [ChatMessage(_author(m), _plain(m), _parse_time(m.get("timestamp"))) for m in messages]
        return render_thread(f"#{thread.channel.name}: {thread.data.get('name') or 'thread'}", rendered)

    # -- permissions and listing ---------------------------------------------------
    def _readable_channels(self) -> dict[str, ChatChannel]:
        guild_id = self.config.guild_id
        guild = self._get(f"/guilds/{guild_id}")
        roles = {str(r["id"]): int(r.get("permissions") or 0) for r in guild.get("roles") or []}
        member = self._get(f"/guilds/{guild_id}/members/{self._me}")
        my_roles = [str(r) for r in member.get("roles") or []]
        mine = roles.get(guild_id, 0)
        for r in my_roles:
            mine |= roles.get(r, 0)
        wanted = set(self.config.channels)
        found: dict[str, ChatChannel] = {}
        for c in self._get(f"/guilds/{guild_id}/channels"):
            cid, kind = str(c["id"]), int(c.get("type", -1))
            listed = cid in wanted
            if not ((kind in FORUM_TYPES and (listed or not wanted)) or (listed and kind in TEXT_TYPES)):
                continue
            perms = permissions_in(c, mine, guild_id, my_roles, self._me)
            if perms & (VIEW_CHANNEL | READ_MESSAGE_HISTORY) != VIEW_CHANNEL | READ_MESSAGE_HISTORY:
                log.info("discord source: no read access to #%s (%s); skipped", c.get("name"), cid)
                continue
            everyone = permissions_in(c, roles.get(guild_id, 0), guild_id, [], "")
            found[cid] = ChatChannel(cid, str(c.get("name") or cid), not everyone & VIEW_CHANNEL)
        missing = wanted - set(found)
        if missing:
            log.warning("discord source: channels %s are not readable forum/text channels of the guild; skipped",
                        ", ".join(sorted(missing)))
        return found

    def _list_threads(self, channels: dict[str, ChatChannel]) -> Iterator[ListedThread]:
        seen: set[str] = set()
        active = self._get(f"/guilds/{self.config.guild_id}/threads/active").get("threads") or []
        archived = (t for cid in channels for t in self._archived(cid))
        for t in [*active, *archived]:
            tid, parent = str(t["id"]), str(t.get("parent_id") or "")
            if tid in seen or parent not in channels or int(t.get("type", -1)) not in PUBLIC_THREADS:
                continue
            seen.add(tid)
            fingerprint = {"v": RENDER_VERSION, "last": str(t.get("last_message_id") or ""),
                           "count": t.get("message_count"), "name": t.get("name"), "channel": channels[parent].name}
            active = snowflake_time(str(t.get("last_message_id") or tid))
            yield ListedThread(channels[parent], t, fingerprint, active)

    def _archived(self, channel_id: str) -> Iterator[dict[str, Any]]:
        before: str | None = None
        while True:
            page = self._get(f"/channels/{channel_id}/threads/archived/public", limit=PAGE, before=before)
            threads = page.get("threads") or []
            yield from threads
            if not page.get("has_more") or not threads:
                return
            before = min(str((t.get("thread_metadata") or {}).get("archive_timestamp", "")) for t in threads)

    def _messages(self, thread_id: str) -> Iterator[dict[str, Any]]:
        before: str | None = None
        while True:
            page = self._get(f"/channels/{thread_id}/messages", limit=PAGE, before=before)
            for m in page:
                if int(m.get("type", 0)) == STARTER and m.get("referenced_message"):
                    m = m["referenced_message"]  # a text channel's thread opens with a message of the channel
                elif int(m.get("type", 0)) not in MESSAGE_TYPES:
                    continue
                if str((m.get("author") or {}).get("id")) != self._me:
                    yield m
            if len(page) < PAGE:
                return
            before = min((str(m["id"]) for m in page), key=int)

    def _get(self, path: str, **params: Any) -> Any:
        status, body = self.api.request("GET", path, params=params)
        if status >= 400:
            message = body.get("message") if isinstance(body, dict) else None
            raise ConnectorError(f"discord GET {path}: HTTP {status} {message or ''}".rstrip())
        return body


def permissions_in(channel: dict[str, Any], base: int, guild_id: str, roles: list[str], member_id: str) -> int:
    """Permissions in ``channel`` for a member with ``base`` guild permissions, as Discord computes them:
    the @everyone overwrite, then the roles' overwrites together, then the member's own."""
    if base & ADMINISTRATOR:
        return ALL
    overwrites = {str(o["id"]): o for o in channel.get("permission_overwrites") or []}

    def apply(perms: int, allow: int, deny: int) -> int:
        return (perms & ~deny) | allow

    perms = base
    if guild_id in overwrites:
        o = overwrites[guild_id]
        perms = apply(perms, int(o.get("allow") or 0), int(o.get("deny") or 0))
    allow = deny = 0
    for r in roles:
        if r in overwrites:
            allow |= int(overwrites[r].get("allow") or 0)
            deny |= int(overwrites[r].get("deny") or 0)
    perms = apply(perms, allow, deny)
    if member_id and member_id in overwrites:
        o = overwrites[member_id]
        perms = apply(perms, int(o.get("allow") or 0), int(o.get("deny") or 0))
    return perms


def snowflake_time(snowflake: str) -> float:
    """Unix seconds a Discord id was made at."""
    return ((int(snowflake) >> 22) + DISCORD_EPOCH_MS) / 1000.0


def _author(m: dict[str, Any]) -> str:
    a = m.get("author") or {}
    return str(a.get("global_name") or a.get("username") or "someone")


def _plain(m: dict[str, Any]) -> str:
    text = str(m.get("content") or "")
    for u in m.get("mentions") or []:
        name = "@" + str(u.get("global_name") or u.get("username") or "someone")
        text = text.replace(f"<@{u['id']}>", name).replace(f"<@!{u['id']}>", name)
    return text


def _parse_time(value: Any) -> datetime:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return datetime.now(UTC)
