"""A local stand-in for Slack: its Web API and ``response_url`` endpoints, and a signed request sender.

``MockSlackApi`` is a real aiohttp server on 127.0.0.1 that records every call
(method, payload, headers) and answers like Slack does; ``fail_next`` makes the
next call to a method fail (e.g. 429 with ``Retry-After``). ``SlackSender``
posts commands, events and interactivity payloads to the Bolt app over HTTP,
signed with the signing secret exactly as Slack signs them.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web
from pydantic import SecretStr
from slack_sdk.signature import SignatureVerifier

from adapters.slack import build_app
from adapters.slack.config import SlackConfig
from adapters.slack.server import EVENTS_PATH, bound_port, start_http
from adapters.testing.slack_history import HISTORY_METHODS, SlackHistory

if TYPE_CHECKING:
    from bot.core import BotCore

TEAM = "T0TEST"
BOT_USER = "UBOT"
BOT_ID = "BBOT"
APP_ID = "A0TEST"


@dataclass
class Call:
    method: str  # Web API method, or "response_url"
    payload: dict[str, Any]
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)
    response: dict[str, Any] = field(default_factory=dict)  # what a Web API call was answered (its ts, say)


@dataclass
class _Failure:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


class MockSlackApi:
    def __init__(self, users: dict[str, dict[str, Any]] | None = None) -> None:
        self.users = users or {}
        self.conversations: dict[str, dict[str, Any]] = {}  # conversations.info; others: channel_not_found
        self.not_member: dict[str, str] = {}  # channel -> the error chat.postMessage gets there (bot not in it)
        self.history = SlackHistory()  # channels and their messages, for the history sync's methods
        self.calls: list[Call] = []
        self.streams: dict[str, str] = {}  # ts of a chat.startStream message -> "open" | "stopped"
        self._failures: dict[str, list[_Failure]] = defaultdict(list)
        self._ts = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # -- lifecycle -----------------------------------------------------------------
    async def start(self) -> MockSlackApi:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/response/{key}", self._response_url)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/"

    def response_url(self, key: str = "r1") -> str:
        return f"{self.base_url}/response/{key}"

    # -- scripting and inspection ------------------------------------------------------
    def fail_next(self, method: str, *, status: int = 429, retry_after: int | None = 1,
                  body: dict[str, Any] | None = None) -> None:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        self._failures[method].append(_Failure(status, body or {"ok": False, "error": "ratelimited"}, headers))

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def all_payloads_text(self) -> str:
        return "\n".join(json.dumps(c.payload, ensure_ascii=False) for c in self.calls)

    async def wait_for(self, predicate: Callable[[MockSlackApi], bool], *, timeout: float = 60.0,
                       what: str = "the expected Slack calls") -> None:
        """Wait until ``predicate(self)`` holds (the bot works after acking, so its calls come later)."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() > deadline:
                seen = [(c.method, c.payload.get("text", "")[:80]) for c in self.calls]
                raise AssertionError(f"timed out waiting for {what}; calls so far: {seen}")
            await asyncio.sleep(0.02)

    # -- handlers ------------------------------------------------------------------
    async def _payload(self, request: web.Request) -> dict[str, Any]:
        payload: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                payload.update(await request.json())
            else:
                payload.update(dict(await request.post()))
        for key in ("blocks", "view"):  # form-encoded calls send these as JSON strings
            if isinstance(payload.get(key), str):
                payload[key] = json.loads(payload[key])
        return payload

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        self.calls.append(Call(method, await self._payload(request), dict(request.headers)))
        if self._failures[method]:
            failure = self._failures[method].pop(0)
            return web.json_response(failure.body, status=failure.status, headers=failure.headers)
        self.calls[-1].response = self._answer(method, self.calls[-1].payload)
        return web.json_response(self.calls[-1].response)

    async def _response_url(self, request: web.Request) -> web.Response:
        payload = await request.json()
        payload["_key"] = request.match_info["key"]
        self.calls.append(Call("response_url", payload, dict(request.headers)))
        if self._failures["response_url"]:
            failure = self._failures["response_url"].pop(0)
            return web.Response(text=failure.body.get("error", "error"), status=failure.status,
                                headers=failure.headers)
        return web.Response(text="ok")

    def _answer(self, method: str, payload: dict[str, Any]) -> dict[str, Any]:
        if method in HISTORY_METHODS:
            return self.history.answer(method, payload) or {"ok": False, "error": "unknown_method"}
        if method == "auth.test":
            return {"ok": True, "url": "https://test.slack.com/", "team": "Test", "user": "ragbot",
                    "team_id": TEAM, "user_id": BOT_USER, "bot_id": BOT_ID}
        if method == "users.info":
            user_id = payload.get("user", "")
            user = {"id": user_id, "is_admin": False, "is_owner": False, **self.users.get(user_id, {})}
            return {"ok": True, "user": user}
        if method == "chat.postMessage":
            if payload.get("channel") in self.not_member:
                return {"ok": False, "error": self.not_member[payload["channel"]]}
            ts = f"1700000{next(self._ts):03d}.000100"
            return {"ok": True, "channel": payload.get("channel"), "ts": ts,
                    "message": {"text": payload.get("text", ""), "ts": ts}}
        if method == "chat.update":  # answer-first replies replace their quoted answer in place
            return {"ok": True, "channel": payload.get("channel"), "ts": payload.get("ts"),
                    "text": payload.get("text", ""), "message": {"text": payload.get("text", "")}}
        if method == "chat.startStream":  # stream replies: a message in the thread, grown by appendStream
            if not payload.get("thread_ts"):
                return {"ok": False, "error": "invalid_arguments"}
            ts = f"1700000{next(self._ts):03d}.000100"
            self.streams[ts] = "open"
            return {"ok": True, "channel": payload.get("channel"), "ts": ts}
        if method in ("chat.appendStream", "chat.stopStream"):
            if self.streams.get(payload.get("ts", "")) != "open":
                return {"ok": False, "error": "message_not_in_streaming_state"}
            if method == "chat.stopStream":
                self.streams[payload["ts"]] = "stopped"
            return {"ok": True, "channel": payload.get("channel"), "ts": payload.get("ts")}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": f"1700001{next(self._ts):03d}.000100"}
        if method == "conversations.info":
            channel = self.conversations.get(payload.get("channel", ""))
            return {"ok": True, "channel": channel} if channel else {"ok": False, "error": "channel_not_found"}
        if method == "views.open":
            return {"ok": True, "view": {"id": "V1", **(payload.get("view") or {})}}
        return {"ok": True}


class SlackSender:
    """Posts Slack-shaped, Slack-signed requests to the Bolt app's endpoint."""

    def __init__(self, url: str, signing_secret: str, api: MockSlackApi) -> None:
        self.url = url
        self.verifier = SignatureVerifier(signing_secret)
        self.api = api
        self._ids = itertools.count(1)

    async def post(self, body: str, content_type: str, *, retry_num: int | None = None,
                   signature: str | None = None) -> tuple[int, str]:
        timestamp = str(int(time.time()))
        # generate_signature returns None only for a missing timestamp, and ours is always set
        signed = signature or self.verifier.generate_signature(timestamp=timestamp, body=body) or ""
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": signed,
        }
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.url, data=body.encode(), headers=headers) as response,
        ):
            return response.status, await response.text()

    # -- slash commands --------------------------------------------------------------
    def command_body(self, command: str, text: str, *, user: str = "U1", channel: str = "C1",
                     response_key: str | None = None, **fields: str) -> str:
        """``fields`` add or replace payload fields (e.g. ``team_id``/``user_team`` of a Slack Connect guest)."""
        n = next(self._ids)
        return urlencode({
            "token": "legacy", "team_id": TEAM, "team_domain": "test", "channel_id": channel,
            "channel_name": "directmessage" if channel.startswith("D") else "general",
            "user_id": user, "user_name": user.lower(), "command": command, "text": text,
            "api_app_id": APP_ID, "is_enterprise_install": "false",
            "response_url": self.api.response_url(response_key or f"cmd{n}"), "trigger_id": f"trig.{n}",
            **fields,
        })

    async def command(self, command: str, text: str, **kwargs: Any) -> tuple[int, str]:
        return await self.post(self.command_body(command, text, **kwargs), "application/x-www-form-urlencoded")

    # -- events --------------------------------------------------------------------
    def event_body(self, event: dict[str, Any], event_id: str | None = None) -> str:
        return json.dumps({
            "token": "legacy", "team_id": TEAM, "api_app_id": APP_ID, "type": "event_callback",
            "event": event, "event_id": event_id or f"Ev{next(self._ids):06d}", "event_time": int(time.time()),
            "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}],
        })

    async def event(self, event: dict[str, Any], *, event_id: str | None = None,
                    retry_num: int | None = None) -> tuple[int, str]:
        return await self.post(self.event_body(event, event_id), "application/json", retry_num=retry_num)

    @staticmethod
    def mention(text: str, *, ts: str, user: str = "U1", channel: str = "C1", thread_ts: str | None = None) -> dict:
        event = {"type": "app_mention", "user": user, "text": f"<@{BOT_USER}> {text}", "ts": ts,
                 "channel": channel, "event_ts": ts}
        if thread_ts:
            event["thread_ts"] = thread_ts
        return event

    @staticmethod
    def reaction(message_ts: str, *, user: str = "U1", channel: str = "C1", name: str = "white_check_mark",
                 item_user: str = "U2", removed: bool = False) -> dict:
        """A ``reaction_added`` event (``removed``: ``reaction_removed``) for ``name`` on a message."""
        return {"type": "reaction_removed" if removed else "reaction_added", "user": user, "reaction": name,
                "item_user": item_user, "item": {"type": "message", "channel": channel, "ts": message_ts},
                "event_ts": f"{time.time():.6f}"}

    @staticmethod
    def direct_message(text: str, *, ts: str, user: str = "U1", channel: str = "D1") -> dict:
        return {"type": "message", "channel_type": "im", "user": user, "text": text, "ts": ts, "channel": channel,
                "event_ts": ts}

    # -- interactivity ------------------------------------------------------------
    async def interaction(self, payload: dict[str, Any]) -> tuple[int, str]:
        return await self.post(urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded")

    async def click(self, action_id: str, value: str, *, user: str = "U1", channel: str = "C1",
                    message_ts: str = "1700000001.000100", thread_ts: str | None = None,
                    user_team: str = TEAM) -> tuple[int, str]:
        n = next(self._ids)
        message = {"type": "message", "ts": message_ts, "text": "answer", **({"thread_ts": thread_ts} if thread_ts
                                                                            else {})}
        return await self.interaction({
            "type": "block_actions", "api_app_id": APP_ID, "token": "legacy",
            "user": {"id": user, "username": user.lower(), "team_id": user_team},
            "team": {"id": TEAM, "domain": "test"}, "channel": {"id": channel, "name": "general"},
            "container": {"type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": False},
            "trigger_id": f"trig.{n}", "message": message, "response_url": self.api.response_url(f"act{n}"),
            "actions": [{"type": "button", "action_id": action_id, "block_id": "ragbot_feedback", "value": value,
                         "action_ts": str(time.time())}],
        })

    async def feedback(self, value: str, *, action_id: str = "ragbot_feedback", user: str = "U1",
                       channel: str = "C1", message_ts: str = "1700000001.000100",
                       thread_ts: str | None = None) -> tuple[int, str]:
        """A click on a ``feedback_buttons`` element: ``value`` is the clicked (positive or negative) button's."""
        n = next(self._ids)
        message = {"type": "message", "ts": message_ts, "text": "answer", **({"thread_ts": thread_ts} if thread_ts
                                                                            else {})}
        return await self.interaction({
            "type": "block_actions", "api_app_id": APP_ID, "token": "legacy",
            "user": {"id": user, "username": user.lower(), "team_id": TEAM},
            "team": {"id": TEAM, "domain": "test"}, "channel": {"id": channel, "name": "general"},
            "container": {"type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": False},
            "trigger_id": f"trig.{n}", "message": message, "response_url": self.api.response_url(f"act{n}"),
            "actions": [{"type": "feedback_buttons", "action_id": action_id, "block_id": "ragbot_votes",
                         "value": value, "action_ts": str(time.time())}],
        })

    # -- the Assistant container ----------------------------------------------------
    @staticmethod
    def assistant_thread_started(*, user: str = "U1", channel: str = "D1", thread_ts: str = "1700000500.000100",
                                 viewing: str | None = None, changed: bool = False) -> dict:
        """The user opened the split view (``changed``: switched the channel beside it to ``viewing``)."""
        context = {"channel_id": viewing, "team_id": TEAM} if viewing else {}
        return {"type": "assistant_thread_context_changed" if changed else "assistant_thread_started",
                "assistant_thread": {"user_id": user, "channel_id": channel, "thread_ts": thread_ts,
                                     "context": context},
                "event_ts": thread_ts}

    @staticmethod
    def assistant_message(text: str, *, ts: str, thread_ts: str = "1700000500.000100", user: str = "U1",
                          channel: str = "D1") -> dict:
        """A question typed in the container: a DM in the assistant thread."""
        return {"type": "message", "channel_type": "im", "user": user, "text": text, "ts": ts,
                "thread_ts": thread_ts, "channel": channel, "event_ts": ts}

    async def submit_view(self, view: dict[str, Any], values: dict[str, dict[str, Any]], *,
                          user: str = "U1", user_team: str = TEAM) -> tuple[int, str]:
        state = {"values": {block: {action: {"type": "plain_text_input", "value": value}
                                    for action, value in actions.items()} for block, actions in values.items()}}
        return await self.interaction({
            "type": "view_submission", "api_app_id": APP_ID, "token": "legacy",
            "team": {"id": TEAM, "domain": "test"},
            "user": {"id": user, "username": user.lower(), "team_id": user_team},
            "trigger_id": f"trig.{next(self._ids)}",
            "view": {**view, "id": "V1", "team_id": TEAM, "state": state},
        })


@asynccontextmanager
async def serving(core: BotCore, api: MockSlackApi, signing_secret: str, *,
                  bot_token: str = "xoxb-test-token") -> AsyncIterator[SlackSender]:
    """The real Bolt app for ``core`` on a local port, talking to ``api``, and a sender that signs with
    ``signing_secret``."""
    config = SlackConfig(slack_bot_token=SecretStr(bot_token), slack_app_token=None,
                         slack_signing_secret=SecretStr(signing_secret), slack_api_url=api.api_url)
    runner = await start_http(build_app(core, config), host="127.0.0.1", port=0)
    try:
        yield SlackSender(f"http://127.0.0.1:{bound_port(runner)}{EVENTS_PATH}", signing_secret, api)
    finally:
        await runner.cleanup()
