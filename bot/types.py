"""Platform-neutral values exchanged between the adapters and the bot core."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

ReplyKind = Literal["answer", "not_found", "ask_back", "usage", "refused", "rate_limited", "error", "duplicate"]


@dataclass(frozen=True, slots=True)
class Location:
    """Where a message was posted: platform + workspace/guild + channel (DMs: is_dm)."""

    platform: str  # "slack" | "discord" | "cli"
    workspace_id: str  # Slack team id / Discord guild id ("" for DMs)
    channel_id: str
    is_dm: bool = False


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts. ``is_platform_admin`` and ``role_ids`` come from the adapter's own checks
    (Slack workspace admin/owner, Discord Manage Server permission and role ids).
    ``is_external``: a member of another organisation (a Slack Connect outsider in a
    shared channel): never an admin, and reads only what that channel was granted."""

    platform: str
    user_id: str
    display_name: str | None = None
    is_platform_admin: bool = False
    role_ids: tuple[str, ...] = ()
    is_external: bool = False

    @property
    def user_key(self) -> str:
        """Stable key for feedback and rate limits (one vote per user per interaction)."""
        return f"{self.platform}:{self.user_id}"


@dataclass(frozen=True, slots=True)
class AskRequest:
    actor: Actor
    location: Location
    text: str
    thread_id: str | None = None  # conversation the question belongs to (its earlier turns are context)
    event_id: str | None = None  # platform delivery id: a re-delivery is answered at most once
    ephemeral: bool = False  # the answer is shown to the asker only: it never becomes others' thread history


@dataclass(frozen=True, slots=True)
class SourceRef:
    n: int
    title: str
    location: str  # path relative to the folder it was ingested from (never the server's absolute path)
    url: str | None  # a link when one is known (front matter, RAGBOT_SOURCE_URL_BASE, a web source)
    heading_path: str = ""  # the sections cited from this document, "; "-separated


@dataclass(slots=True)
class Reply:
    """A rendered-enough answer: adapters only translate it to their platform's format."""

    kind: ReplyKind
    text: str  # sanitized; Markdown with [n] citation markers
    sources: list[SourceRef] = field(default_factory=list)
    interaction_id: int | None = None  # for the buttons only: users are shown answer_code
    answer_code: str | None = None  # the short id users see and quote (bot.answer_codes)
    retry_after_s: float | None = None
    feedback_enabled: bool = False
    meta: dict[str, str] = field(default_factory=dict)
    fallback_note: str | None = None  # why the answer quotes the documents, in plain words (for the footer)
    # answer-first replies: ``refine()`` waits for the model's answer and returns it as the Reply that replaces
    # this one (``refined`` set, same interaction), or None when this one stays (the model failed or was overruled)
    refine: Callable[[], Awaitable[Reply | None]] | None = field(default=None, repr=False, compare=False)
    refined: bool = False
    # stream replies (RAGBOT_REPLY_MODE=stream): ``stream()`` gives the model's text as it is written, then the
    # final Reply; ``text`` is empty until then (an adapter that cannot stream awaits ``bot.streaming.final``)
    stream: Callable[[], AsyncIterator[LiveText | FinalReply]] | None = field(default=None, repr=False,
                                                                            compare=False)


@dataclass(frozen=True, slots=True)
class LiveText:
    """Stream replies: the model's text so far, safe to show (sanitized) but not yet checked or cited."""

    delta: str  # what is new since the previous LiveText
    text: str  # everything so far


@dataclass(frozen=True, slots=True)
class FinalReply:
    """Stream replies: the answer to leave in place of the live text (sources, code, feedback buttons)."""

    reply: Reply
    replaced: bool  # the live text is void (the model failed or was overruled): show ``reply`` instead of it


@dataclass(slots=True)
class ActionResult:
    """Outcome of a feedback or admin action, with a message for the user."""

    ok: bool
    message: str
    detail_lines: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
