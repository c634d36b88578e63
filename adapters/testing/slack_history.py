"""Channel history for the Slack wire double: ``conversations.list``, ``conversations.history``,
``conversations.replies`` and ``chat.getPermalink``, answered as Slack documents them (newest first
in history, the parent first in replies, ``reply_count`` / ``latest_reply`` on a parent, ``edited``
on an edited message, a ``tombstone`` left where a parent with replies was deleted, cursor
pagination with ``response_metadata.next_cursor``, ``not_in_channel`` where the bot is not a member).

Tests script it: ``add_channel``, ``post`` (a reply when ``thread_ts`` is given), ``edit``, ``delete``.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

HISTORY_METHODS = frozenset({"conversations.list", "conversations.history", "conversations.replies",
                             "chat.getPermalink"})


class SlackHistory:
    def __init__(self, workspace_url: str = "https://test.slack.com/") -> None:
        self.workspace_url = workspace_url
        self.channels: dict[str, dict[str, Any]] = {}
        self.messages: dict[str, list[dict[str, Any]]] = {}  # channel -> every message, replies too
        self._bump = itertools.count(1)

    # -- scripting -------------------------------------------------------------------
    def add_channel(self, channel_id: str, name: str, *, private: bool = False, member: bool = True) -> None:
        self.channels[channel_id] = {"id": channel_id, "name": name, "is_channel": True, "is_private": private,
                                     "is_member": member, "is_archived": False, "is_im": False, "is_mpim": False}
        self.messages.setdefault(channel_id, [])

    def post(self, channel: str, text: str, *, user: str = "U1", thread_ts: str | None = None,
             ts: str | None = None, **fields: Any) -> str:
        """A message (a reply in ``thread_ts``); ``ts`` defaults to now (unique, increasing)."""
        ts = ts or f"{time.time() + next(self._bump) * 1e-4:.6f}"
        message: dict[str, Any] = {"type": "message", "user": user, "text": text, "ts": ts, **fields}
        if thread_ts:
            message["thread_ts"] = thread_ts
            message["parent_user_id"] = self._find(channel, thread_ts).get("user", "")
        self.messages[channel].append(message)
        return ts

    def edit(self, channel: str, ts: str, text: str) -> None:
        message = self._find(channel, ts)
        message["text"] = text
        message["edited"] = {"user": message.get("user", ""), "ts": f"{time.time():.6f}"}

    def delete(self, channel: str, ts: str) -> None:
        """Deleted as Slack does: a parent that has replies becomes a tombstone, anything else is gone."""
        message = self._find(channel, ts)
        if message.get("thread_ts") == ts and self._replies(channel, ts):
            message.clear()
            message.update(type="message", subtype="tombstone", text="This message was deleted.", ts=ts,
                           thread_ts=ts, hidden=True, user="USLACKBOT")
        else:
            self.messages[channel].remove(message)

    # -- the Web API -----------------------------------------------------------------
    def answer(self, method: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        """The reply to a history method, or None for a method this does not serve."""
        if method not in HISTORY_METHODS:
            return None
        if method == "conversations.list":
            types = str(payload.get("types") or "public_channel").split(",")
            found = [c for c in self.channels.values()
                     if ("private_channel" if c["is_private"] else "public_channel") in types]
            return self._page(found, payload, "channels")
        channel = str(payload.get("channel", ""))
        if channel not in self.channels:
            return {"ok": False, "error": "channel_not_found"}
        if method == "chat.getPermalink":
            ts = str(payload.get("message_ts", ""))
            return {"ok": True, "channel": channel,
                    "permalink": f"{self.workspace_url}archives/{channel}/p{ts.replace('.', '')}"}
        if not self.channels[channel]["is_member"]:
            return {"ok": False, "error": "not_in_channel"}
        if method == "conversations.history":
            oldest, inclusive = float(payload.get("oldest") or 0), str(payload.get("inclusive")) in ("true", "1")
            shown = [self._with_thread(channel, m) for m in self.messages[channel]
                     if m.get("thread_ts", m["ts"]) == m["ts"] or m.get("subtype") == "thread_broadcast"]
            shown = [m for m in shown if float(m["ts"]) > oldest or (inclusive and float(m["ts"]) == oldest)]
            shown.sort(key=lambda m: float(m["ts"]), reverse=True)
            return self._page(shown, payload, "messages")
        ts = str(payload.get("ts", ""))
        try:
            parent = self._find(channel, ts)
        except KeyError:
            return {"ok": False, "error": "thread_not_found"}
        thread = [self._with_thread(channel, parent), *self._replies(channel, ts)]
        return self._page(thread, payload, "messages")

    # -- helpers ---------------------------------------------------------------------
    def _find(self, channel: str, ts: str) -> dict[str, Any]:
        for m in self.messages.get(channel, []):
            if m.get("ts") == ts:
                return m
        raise KeyError(f"no message {ts} in {channel}")

    def _replies(self, channel: str, ts: str) -> list[dict[str, Any]]:
        return sorted((m for m in self.messages[channel] if m.get("thread_ts") == ts and m["ts"] != ts),
                      key=lambda m: float(m["ts"]))

    def _with_thread(self, channel: str, message: dict[str, Any]) -> dict[str, Any]:
        replies = self._replies(channel, message["ts"])
        if not replies:
            return dict(message)
        return {**message, "thread_ts": message["ts"], "reply_count": len(replies),
                "reply_users": sorted({r.get("user", "") for r in replies}), "latest_reply": replies[-1]["ts"]}

    @staticmethod
    def _page(items: list[dict[str, Any]], payload: dict[str, Any], key: str) -> dict[str, Any]:
        start = int(payload.get("cursor") or 0)
        limit = max(1, min(int(payload.get("limit") or 100), 1000))
        rest = items[start + limit:]
        return {"ok": True, key: items[start:start + limit], "has_more": bool(rest),
                "response_metadata": {"next_cursor": str(start + limit) if rest else ""}}
