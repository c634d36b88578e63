"""Forum channels, threads and their messages for the Discord wire double, served as Discord's REST
API documents them: ``GET /guilds/{id}`` (roles), ``/guilds/{id}/members/{user}``,
``/guilds/{id}/channels`` (with permission overwrites), ``/guilds/{id}/threads/active``,
``/channels/{id}/threads/archived/public`` (newest archive first, ``before`` + ``has_more``) and
``GET /channels/{id}/messages`` (newest first, ``before`` + ``limit``).

Tests script it: ``add_forum`` (``private``: ``@everyone`` may not view it, the bot's role may;
``readable=False``: the bot may not either), ``start_thread`` (a forum post: the thread's id is its
first message's), ``reply``, ``edit``, ``delete``, ``archive``.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any, Protocol

from aiohttp import web

VIEW_CHANNEL = 1 << 10


class _Guild(Protocol):
    guild_id: str
    bot_role: str

    def guild_create(self) -> dict[str, Any]: ...

    def text_channel(self) -> dict[str, Any]: ...


class _Person(Protocol):
    id: str

    def user(self) -> dict[str, Any]: ...

    def member(self) -> dict[str, Any]: ...


class DiscordHistory:
    def __init__(self, guild: _Guild, people: list[_Person], new_id: Any) -> None:
        self.guild = guild
        self.people = {p.id: p for p in people}
        self._new_id = new_id  # the fake's snowflake maker
        self.channels: dict[str, dict[str, Any]] = {}
        self.threads: dict[str, dict[str, Any]] = {}
        self.messages: dict[str, list[dict[str, Any]]] = {}  # thread -> its messages, oldest first

    # -- scripting -------------------------------------------------------------------
    def add_forum(self, name: str, *, private: bool = False, readable: bool = True) -> str:
        overwrites: list[dict[str, Any]] = []
        if private or not readable:
            overwrites.append({"id": self.guild.guild_id, "type": 0, "allow": "0", "deny": str(VIEW_CHANNEL)})
        if private and readable:
            overwrites.append({"id": self.guild.bot_role, "type": 0, "allow": str(VIEW_CHANNEL), "deny": "0"})
        channel_id = str(self._new_id())
        self.channels[channel_id] = {"id": channel_id, "type": 15, "guild_id": self.guild.guild_id, "name": name,
                                     "position": len(self.channels) + 1, "permission_overwrites": overwrites,
                                     "parent_id": None, "flags": 0, "available_tags": []}
        return channel_id

    def start_thread(self, channel_id: str, title: str, author: _Person, text: str) -> str:
        thread_id = str(self._new_id())
        self.threads[thread_id] = {
            "id": thread_id, "type": 11, "guild_id": self.guild.guild_id, "parent_id": channel_id, "name": title,
            "owner_id": author.id, "last_message_id": thread_id, "message_count": 0, "member_count": 1,
            "flags": 0, "rate_limit_per_user": 0, "total_message_sent": 1,
            "thread_metadata": {"archived": False, "auto_archive_duration": 1440, "archive_timestamp": _now(),
                                "locked": False}}
        self.messages[thread_id] = [self._message(thread_id, thread_id, author, text)]
        return thread_id

    def reply(self, thread_id: str, author: _Person, text: str) -> str:
        message_id = str(self._new_id())
        self.messages[thread_id].append(self._message(thread_id, message_id, author, text))
        thread = self.threads[thread_id]
        thread.update(last_message_id=message_id, message_count=thread["message_count"] + 1,
                      total_message_sent=thread["total_message_sent"] + 1)
        return message_id

    def edit(self, thread_id: str, message_id: str, text: str) -> None:
        message = next(m for m in self.messages[thread_id] if m["id"] == message_id)
        message.update(content=text, edited_timestamp=_now())

    def delete(self, thread_id: str, message_id: str) -> None:
        self.messages[thread_id] = [m for m in self.messages[thread_id] if m["id"] != message_id]
        self.threads[thread_id]["message_count"] -= 1

    def delete_thread(self, thread_id: str) -> None:
        self.threads.pop(thread_id)
        self.messages.pop(thread_id)

    def archive(self, thread_id: str) -> None:
        self.threads[thread_id]["thread_metadata"].update(archived=True, archive_timestamp=_now())

    # -- REST --------------------------------------------------------------------------
    def answer(self, method: str, path: str, query: dict[str, str]) -> web.Response | None:
        """The reply to a history request, or None for a request this does not serve."""
        if method != "GET":
            return None
        g = re.escape(self.guild.guild_id)
        if path == f"/guilds/{self.guild.guild_id}":
            return _json(self.guild.guild_create())
        member = re.fullmatch(rf"/guilds/{g}/members/(\d+)", path)
        if member:
            person = self.people.get(member.group(1))
            return _json(person.member()) if person else _error(404, 10007, "Unknown Member")
        if path == f"/guilds/{self.guild.guild_id}/channels":
            return _json([self.guild.text_channel(), *self.channels.values()])
        if path == f"/guilds/{self.guild.guild_id}/threads/active":
            active = [t for t in self.threads.values() if not t["thread_metadata"]["archived"]]
            return _json({"threads": active, "members": []})
        archived = re.fullmatch(r"/channels/(\d+)/threads/archived/public", path)
        if archived:
            return self._archived(archived.group(1), query)
        listing = re.fullmatch(r"/channels/(\d+)/messages", path)
        if listing and listing.group(1) in self.messages:
            before = int(query.get("before") or 1 << 63)
            limit = max(1, min(int(query.get("limit") or 50), 100))
            newest_first = sorted((m for m in self.messages[listing.group(1)] if int(m["id"]) < before),
                                  key=lambda m: int(m["id"]), reverse=True)
            return _json(newest_first[:limit])
        return None

    def _archived(self, channel_id: str, query: dict[str, str]) -> web.Response:
        before = query.get("before") or "9999"
        limit = max(1, min(int(query.get("limit") or 50), 100))
        found = sorted((t for t in self.threads.values() if t["parent_id"] == channel_id
                        and t["thread_metadata"]["archived"] and t["thread_metadata"]["archive_timestamp"] < before),
                       key=lambda t: t["thread_metadata"]["archive_timestamp"], reverse=True)
        return _json({"threads": found[:limit], "members": [], "has_more": len(found) > limit})

    def _message(self, thread_id: str, message_id: str, author: _Person, text: str) -> dict[str, Any]:
        return {"id": message_id, "channel_id": thread_id, "guild_id": self.guild.guild_id, "author": author.user(),
                "content": text, "timestamp": _now(), "edited_timestamp": None, "tts": False,
                "mention_everyone": False, "mentions": [], "mention_roles": [], "attachments": [], "embeds": [],
                "pinned": False, "type": 0, "flags": 0, "components": []}


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json"})


def _error(status: int, code: int, message: str) -> web.Response:
    return _json({"code": code, "message": message}, status=status)
