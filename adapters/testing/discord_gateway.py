"""A local fake of Discord: its REST API (an aiohttp server) and its gateway payloads.

discord.py runs unchanged on top of it: its HTTP client is pointed here
(``DiscordConfig.discord_api_base`` → ``discord.http.Route.BASE``), and gateway
events are fed as the JSON dicts Discord sends, through the client's own
``ConnectionState.parse_*`` methods, so the library's real dispatch, model,
view and command-tree code runs. The fake records every request (method, path,
JSON body) so tests assert on what would have reached Discord.

Used by ``tests/test_discord_*.py`` and ``benchmarks/discord_reply.py``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import discord
from aiohttp import web

from adapters.testing.discord_history import DiscordHistory

API_PREFIX = "/api/v10"
TOKEN = "fake-bot-token"
MANAGE_GUILD = discord.Permissions(manage_guild=True).value
MEMBER_PERMS = discord.Permissions(view_channel=True, send_messages=True, read_message_history=True,
                                   use_application_commands=True).value
_ids = itertools.count(1)


def snowflake() -> str:
    """A realistic, unique snowflake (17–20 digits, as discord.py's mention regexes expect)."""
    return str(discord.utils.time_snowflake(datetime.now(UTC)) + next(_ids))


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


@dataclass(frozen=True, slots=True)
class Call:
    """One request the fake received."""

    method: str
    path: str  # without the /api/v10 prefix
    query: dict[str, str]
    body: Any
    at: float  # time.perf_counter() on arrival


@dataclass(slots=True)
class Person:
    id: str
    name: str
    roles: list[str] = field(default_factory=list)
    bot: bool = False

    def user(self) -> dict[str, Any]:
        return {"id": self.id, "username": self.name, "discriminator": "0", "global_name": self.name.title(),
                "avatar": None, "bot": self.bot, "public_flags": 0}

    def member(self, *, permissions: int | None = None) -> dict[str, Any]:
        data = {"user": self.user(), "roles": list(self.roles), "joined_at": now_iso(), "deaf": False,
                "mute": False, "flags": 0, "nick": None, "avatar": None, "pending": False,
                "communication_disabled_until": None}
        if permissions is not None:
            data["permissions"] = str(permissions)
        return data


class FakeDiscord:
    """One guild with a text channel, a few people, and the REST endpoints the adapter uses."""

    def __init__(self) -> None:
        self.application_id = snowflake()
        self.bot = Person(self.application_id, "ragbot", bot=True)
        self.guild_id = snowflake()
        self.channel_id = snowflake()
        self.manager_role = snowflake()  # has Manage Server
        self.helper_role = snowflake()  # no permissions; tests configure it as an admin role id
        self.bot_role = snowflake()  # the bot's managed integration role
        self.alice = Person(snowflake(), "alice")
        self.manager = Person(snowflake(), "morgan", roles=[self.manager_role])
        self.helper = Person(snowflake(), "hank", roles=[self.helper_role])
        self.bot.roles = [self.bot_role]
        self.dm_channel_id = snowflake()
        self.calls: list[Call] = []
        self.messages: dict[str, dict[str, Any]] = {}
        self.threads: dict[str, dict[str, Any]] = {}
        self.forbidden: set[tuple[str, str]] = set()  # (method, path regex) answered with 403
        # forum channels, threads and messages for the history sync (GET /guilds/…, /channels/…/messages)
        self.history = DiscordHistory(self, [self.bot, self.alice, self.manager, self.helper], snowflake)
        self._interactions: dict[str, dict[str, Any]] = {}  # token -> interaction payload
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- server lifecycle ------------------------------------------------------------------------
    async def start(self) -> FakeDiscord:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{API_PREFIX}"

    # -- what tests look at ----------------------------------------------------------------------
    def find(self, method: str, path_pattern: str) -> list[Call]:
        rx = re.compile(path_pattern)
        return [c for c in self.calls if c.method == method and rx.fullmatch(c.path)]

    async def wait_for(self, method: str, path_pattern: str, count: int = 1, timeout: float = 60.0) -> list[Call]:
        """Wait until at least ``count`` matching requests arrived (a deadline only so a broken
        handler fails the test instead of hanging it)."""
        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(lambda: len(self.find(method, path_pattern)) >= count), timeout)
        return self.find(method, path_pattern)

    def channel_messages_path(self, channel_id: str | None = None) -> str:
        return f"/channels/{channel_id or self.channel_id}/messages"

    # -- gateway payloads ------------------------------------------------------------------------
    def guild_create(self) -> dict[str, Any]:
        everyone = {"id": self.guild_id, "name": "@everyone", "permissions": str(MEMBER_PERMS)}
        base_roles: list[dict[str, Any]] = [
            everyone,
            {"id": self.manager_role, "name": "managers", "permissions": str(MANAGE_GUILD)},
            {"id": self.helper_role, "name": "helpers", "permissions": "0"},
            {"id": self.bot_role, "name": "ragbot", "permissions": str(MEMBER_PERMS), "managed": True,
             "tags": {"bot_id": self.bot.id}}]
        roles = [{"color": 0, "colors": {"primary_color": 0}, "hoist": False, "position": i, "managed": False,
                  "mentionable": False, "flags": 0, **r} for i, r in enumerate(base_roles)]
        return {
            "id": self.guild_id, "name": "Acme", "icon": None, "splash": None, "discovery_splash": None,
            "owner_id": snowflake(), "afk_channel_id": None, "afk_timeout": 300, "verification_level": 0,
            "default_message_notifications": 0, "explicit_content_filter": 0, "roles": roles, "emojis": [],
            "features": [], "mfa_level": 0, "application_id": None, "system_channel_id": None,
            "system_channel_flags": 0, "rules_channel_id": None, "vanity_url_code": None, "description": None,
            "banner": None, "premium_tier": 0, "preferred_locale": "en-US", "public_updates_channel_id": None,
            "nsfw_level": 0, "stickers": [], "premium_progress_bar_enabled": False, "joined_at": now_iso(),
            "large": False, "unavailable": False, "member_count": 4, "voice_states": [],
            "members": [p.member() for p in (self.bot, self.alice, self.manager, self.helper)],
            "channels": [self.text_channel()], "threads": [], "presences": [], "stage_instances": [],
            "guild_scheduled_events": [], "soundboard_sounds": [],
        }

    def text_channel(self) -> dict[str, Any]:
        return {"id": self.channel_id, "type": 0, "guild_id": self.guild_id, "name": "general", "position": 0,
                "permission_overwrites": [], "nsfw": False, "parent_id": None, "topic": None,
                "last_message_id": None, "rate_limit_per_user": 0, "flags": 0}

    def message_create(self, author: Person, content: str, *, channel_id: str | None = None,
                       reply_to: dict[str, Any] | None = None, dm: bool = False) -> dict[str, Any]:
        """A MESSAGE_CREATE payload (mentions filled in from the content, as Discord does)."""
        mentioned = [p for p in (self.bot, self.alice, self.manager, self.helper) if f"<@{p.id}>" in content
                     or f"<@!{p.id}>" in content]
        data: dict[str, Any] = {
            "id": snowflake(), "channel_id": channel_id or (self.dm_channel_id if dm else self.channel_id),
            "author": author.user(), "content": content, "timestamp": now_iso(), "edited_timestamp": None,
            "tts": False, "mention_everyone": "@everyone" in content,
            "mentions": [{**p.user(), **({} if dm else {"member": _strip_user(p.member())})} for p in mentioned],
            "mention_roles": re.findall(r"<@&(\d+)>", content), "attachments": [], "embeds": [],
            "pinned": False, "type": 0, "flags": 0, "components": [],
        }
        if not dm:
            data["guild_id"] = self.guild_id
            data["member"] = _strip_user(author.member())
        if reply_to is not None:
            data["type"] = 19
            data["message_reference"] = {"type": 0, "message_id": reply_to["id"], "channel_id": reply_to["channel_id"],
                                         **({"guild_id": self.guild_id} if not dm else {})}
            data["referenced_message"] = _one_level(reply_to)
        self.messages[data["id"]] = data
        return data

    def thread_create(self, thread: dict[str, Any]) -> dict[str, Any]:
        """The THREAD_CREATE Discord sends after the bot opened a thread."""
        return {**thread, "newly_created": True}

    def reaction(self, person: Person, message: dict[str, Any], emoji: str = "✅", *,
                 removed: bool = False) -> dict[str, Any]:
        """A MESSAGE_REACTION_ADD payload (``removed``: MESSAGE_REACTION_REMOVE, which carries no member);
        feed it to ``parse_message_reaction_add`` / ``_remove``."""
        data: dict[str, Any] = {"user_id": person.id, "channel_id": message["channel_id"], "message_id": message["id"],
                                "emoji": {"id": None, "name": emoji}, "burst": False, "type": 0}
        if "guild_id" in message:
            data["guild_id"] = message["guild_id"]
            if not removed:
                data["member"] = person.member()
                data["message_author_id"] = message["author"]["id"]
        return data

    def command_interaction(self, person: Person, name: str, options: list[dict[str, Any]] | None = None, *,
                            channel_id: str | None = None, dm: bool = False) -> dict[str, Any]:
        """An INTERACTION_CREATE for a slash command (``options`` as Discord nests them)."""
        data = {"id": snowflake(), "name": name, "type": 1, "options": options or []}
        return self._interaction(person, 2, data, channel_id=channel_id, dm=dm)

    def component_interaction(self, person: Person, message: dict[str, Any], custom_id: str) -> dict[str, Any]:
        """A button click on ``message`` (the message payload as Discord stored it)."""
        payload = self._interaction(person, 3, {"custom_id": custom_id, "component_type": 2},
                                    channel_id=message["channel_id"])
        payload["message"] = message
        return payload

    def modal_submit(self, person: Person, custom_id: str, values: dict[str, str], *,
                     message: dict[str, Any] | None = None) -> dict[str, Any]:
        """A modal submission: each text input wrapped in its label, as Discord sends them."""
        components = [{"type": 18, "id": i * 2 + 1, "component": {"type": 4, "id": i * 2 + 2, "custom_id": cid,
                                                                    "value": value}}
                      for i, (cid, value) in enumerate(values.items())]
        payload = self._interaction(person, 5, {"custom_id": custom_id, "components": components},
                                    channel_id=message["channel_id"] if message else None)
        if message is not None:
            payload["message"] = message
        return payload

    def _interaction(self, person: Person, kind: int, data: dict[str, Any], *, channel_id: str | None,
                     dm: bool = False) -> dict[str, Any]:
        token = f"itoken-{snowflake()}"
        channel_id = channel_id or (self.dm_channel_id if dm else self.channel_id)
        payload: dict[str, Any] = {
            "id": snowflake(), "application_id": self.application_id, "type": kind, "token": token, "version": 1,
            "data": data, "channel_id": channel_id, "locale": "en-US", "entitlements": [],
            "app_permissions": str(MEMBER_PERMS), "attachment_size_limit": 8 * 1024 * 1024,
        }
        if dm:
            payload.update(user=person.user(), context=1, authorizing_integration_owners={"1": person.id},
                           channel={"id": channel_id, "type": 1, "recipients": [person.user()], "flags": 0})
        else:
            perms = MEMBER_PERMS | (MANAGE_GUILD if self.manager_role in person.roles else 0)
            channel = self.threads.get(channel_id) or self.text_channel()
            payload.update(guild_id=self.guild_id, guild_locale="en-US", context=0,
                           authorizing_integration_owners={"0": self.guild_id},
                           member=person.member(permissions=perms), channel={**channel, "permissions": str(perms)})
        self._interactions[token] = payload
        return payload

    # -- REST ------------------------------------------------------------------------------------
    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            if request.content_type == "application/json":
                body = json.loads(raw or b"null")
            elif request.content_type.startswith("multipart/"):
                body = {"multipart": True}
        call = Call(request.method, path, dict(request.query), body, time.perf_counter())
        try:
            bot_route = path.startswith(("/users", "/channels", "/applications", "/oauth2", "/guilds"))
            if bot_route and request.headers.get("Authorization") != f"Bot {TOKEN}":
                return _error(401, 0, "401: Unauthorized")
            if any(m == request.method and re.fullmatch(p, path) for m, p in self.forbidden):
                return _error(403, 50013, "Missing Permissions")
            history = self.history.answer(request.method, path, dict(request.query))
            return history if history is not None else await self._route(request.method, path, body)
        finally:
            async with self._changed:
                self.calls.append(call)
                self._changed.notify_all()

    async def _route(self, method: str, path: str, body: Any) -> web.StreamResponse:
        parts = path.strip("/").split("/")
        if (method, path) == ("GET", "/users/@me"):
            return _json({**self.bot.user(), "verified": True, "mfa_enabled": False, "flags": 0})
        if (method, path) == ("GET", "/oauth2/applications/@me"):
            return _json(self._application())
        if method == "DELETE" and re.fullmatch(r"/users/@me/guilds/\d+", path):  # the bot leaves a server
            return web.Response(status=204)
        if method == "PUT" and parts[0] == "applications" and parts[-1] == "commands":
            return _json([{**cmd, "id": snowflake(), "application_id": self.application_id,
                                       "version": snowflake()} for cmd in body or []])
        if parts[0] == "channels":
            return self._channels(method, parts[1:], body)
        if method == "POST" and parts[0] == "interactions" and parts[-1] == "callback":
            return self._callback(parts[1], parts[2], body)
        if parts[0] == "webhooks":
            return self._webhook(method, parts[1:], body)
        return _error(404, 0, f"404: Not Found ({method} {path})")

    def _channels(self, method: str, parts: list[str], body: Any) -> web.StreamResponse:
        channel_id = parts[0]
        if method == "GET" and len(parts) == 1:
            channel = self.threads.get(channel_id) or (self.text_channel() if channel_id == self.channel_id else None)
            return _json(channel) if channel else _error(404, 10003, "Unknown Channel")
        if method == "POST" and parts[1:] == ["typing"]:
            return web.Response(status=204)
        if method == "POST" and parts[1:] == ["messages"]:
            problem = message_limit_problem(body)
            if problem:
                return _error(400, 50035, f"Invalid Form Body: {problem}")
            return _json(self._store_posted(channel_id, body))
        if method == "PATCH" and len(parts) == 3 and parts[1] == "messages":  # an edit (answer-first replies)
            return self._edit(parts[2], body)
        if method == "DELETE" and len(parts) == 3 and parts[1] == "messages":  # e.g. a status line removed
            return web.Response(status=204) if self.messages.pop(parts[2], None) else _error(404, 10008,
                                                                                             "Unknown Message")
        if method == "GET" and len(parts) == 3 and parts[1] == "messages":
            found = self.messages.get(parts[2])
            return _json(found) if found else _error(404, 10008, "Unknown Message")
        if method == "POST" and len(parts) == 4 and parts[1] == "messages" and parts[3] == "threads":
            thread = {"id": parts[2], "type": 11, "guild_id": self.guild_id, "parent_id": channel_id,
                      "name": body.get("name", "thread"), "owner_id": self.bot.id, "last_message_id": None,
                      "rate_limit_per_user": 0, "message_count": 0, "member_count": 1, "flags": 0,
                      "thread_metadata": {"archived": False, "auto_archive_duration": body.get(
                          "auto_archive_duration", 1440), "archive_timestamp": now_iso(), "locked": False},
                      "total_message_sent": 0}
            self.threads[thread["id"]] = thread
            return _json(thread, status=201)
        return _error(404, 0, "404: Not Found")

    def _callback(self, interaction_id: str, token: str, body: dict[str, Any]) -> web.StreamResponse:
        source = self._interactions.get(token)
        if source is None or source["id"] != interaction_id:
            return _error(404, 10062, "Unknown interaction")
        kind = body.get("type")
        flags = (body.get("data") or {}).get("flags", 0) or 0
        return _json({
            "interaction": {"id": interaction_id, "type": source["type"], "response_message_loading": kind == 5,
                            "response_message_ephemeral": bool(flags & 64)},
            "resource": {"type": kind},
        })

    def _webhook(self, method: str, parts: list[str], body: Any) -> web.StreamResponse:
        app_id, token, *rest = parts
        source = self._interactions.get(token)
        if app_id != self.application_id or source is None:
            return _error(404, 10015, "Unknown Webhook")
        if method == "POST" and not rest:
            problem = message_limit_problem(body)
            if problem:
                return _error(400, 50035, f"Invalid Form Body: {problem}")
            return _json(self._store_posted(source["channel_id"], body, interaction=source))
        if method == "DELETE":
            return web.Response(status=204)
        if method == "PATCH" and len(rest) == 2 and rest[0] == "messages" and rest[1] in self.messages:
            return self._edit(rest[1], body)  # a follow-up edited
        if method == "PATCH":
            return _json(self._store_posted(source["channel_id"], body, interaction=source))
        return _error(404, 0, "404: Not Found")

    def _edit(self, message_id: str, body: dict[str, Any]) -> web.StreamResponse:
        """Change a stored message as Discord does: the fields given replace the old ones; same id."""
        found = self.messages.get(message_id)
        if found is None:
            return _error(404, 10008, "Unknown Message")
        changed: dict[str, Any] = {k: body[k] for k in ("content", "embeds", "components", "flags") if k in body}
        edited: dict[str, Any] = {**found, **changed, "edited_timestamp": now_iso()}
        edited["content"] = edited.get("content") or ""
        problem = message_limit_problem(edited)
        if problem:
            return _error(400, 50035, f"Invalid Form Body: {problem}")
        self.messages[message_id] = edited
        return _json(edited)

    def _store_posted(self, channel_id: str, body: dict[str, Any], *,
                      interaction: dict[str, Any] | None = None) -> dict[str, Any]:
        """The message Discord would create from a send: what the library will parse back."""
        in_dm = channel_id == self.dm_channel_id
        msg: dict[str, Any] = {
            "id": snowflake(), "channel_id": channel_id, "author": self.bot.user(),
            "content": body.get("content") or "", "timestamp": now_iso(), "edited_timestamp": None, "tts": False,
            "mention_everyone": False, "mentions": [], "mention_roles": [], "attachments": [],
            "embeds": body.get("embeds") or [], "pinned": False, "type": 0, "flags": body.get("flags") or 0,
            "components": body.get("components") or [],
        }
        if not in_dm:
            msg["guild_id"] = self.guild_id
        ref = body.get("message_reference")
        if ref:
            msg["type"] = 19
            ref_id = str(ref["message_id"])
            msg["message_reference"] = {"type": 0, "message_id": ref_id, "channel_id": channel_id}
            if ref_id in self.messages:
                msg["referenced_message"] = _one_level(self.messages[ref_id])
        if interaction is not None:
            user = interaction.get("member", {}).get("user") or interaction.get("user")
            msg.update(type=20, webhook_id=self.application_id, application_id=self.application_id,
                       interaction_metadata={"id": interaction["id"], "type": 2, "user": user,
                                             "authorizing_integration_owners":
                                                 interaction["authorizing_integration_owners"]})
        self.messages[msg["id"]] = msg
        return msg

    def _application(self) -> dict[str, Any]:
        return {"id": self.application_id, "name": "ragbot", "icon": None, "description": "", "rpc_origins": [],
                "bot_public": True, "bot_require_code_grant": False, "owner": self.alice.user(), "team": None,
                "verify_key": "0" * 64, "flags": 0, "summary": "", "interactions_endpoint_url": None,
                "bot": self.bot.user()}


def message_limit_problem(body: dict[str, Any]) -> str | None:
    """What Discord would refuse in a message body (its documented limits), or None."""
    content = body.get("content") or ""
    embeds = body.get("embeds") or []
    if len(content) > 2000:
        return f"content is {len(content)} characters (max 2000)"
    if not content and not embeds and not body.get("components"):
        return "cannot send an empty message"
    if len(embeds) > 10:
        return f"{len(embeds)} embeds (max 10)"
    total = 0
    for e in embeds:
        description, title = e.get("description") or "", e.get("title") or ""
        footer = (e.get("footer") or {}).get("text") or ""
        if len(description) > 4096 or len(title) > 256 or len(footer) > 2048:
            return "embed field too long"
        total += len(description) + len(title) + len(footer)
        total += sum(len(f.get("name", "")) + len(f.get("value", "")) for f in e.get("fields", []))
    if total > 6000:
        return f"embeds total {total} characters (max 6000)"
    return None


async def connect(client: discord.Client, fake: FakeDiscord) -> None:
    """Log in over the fake REST API (runs ``setup_hook``) and deliver the guild, as the gateway would."""
    await client.login(TOKEN)
    client._connection.parse_guild_create(fake.guild_create())


_LIBRARY_TASKS = ("discord.py:", "CommandTree-invoker", "discord-ui-")


async def drain() -> None:
    """Wait until discord.py's event, command and view tasks (and what they started) are done."""
    me = asyncio.current_task()
    while True:
        pending = [t for t in asyncio.all_tasks() if t is not me and not t.done()
                   and t.get_name().startswith(_LIBRARY_TASKS)]
        if not pending:
            return
        await asyncio.gather(*pending, return_exceptions=True)


def _one_level(message: dict[str, Any]) -> dict[str, Any]:
    """Discord nests the replied-to message one level deep only (its own reference stays an id)."""
    return {k: v for k, v in message.items() if k != "referenced_message"}


def _strip_user(member: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in member.items() if k != "user"}


def _json(data: Any, status: int = 200) -> web.Response:
    # exactly "application/json", no charset: discord.py compares the header verbatim, as Discord sends it
    return web.Response(body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json"})


def _error(status: int, code: int, message: str) -> web.Response:
    return _json({"code": code, "message": message}, status=status)


def action_rows_custom_ids(message: dict[str, Any]) -> list[str]:
    return [c["custom_id"] for row in message.get("components", []) for c in row.get("components", [])
            if "custom_id" in c]
