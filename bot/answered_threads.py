"""Answered threads: who may accept a human answer in a chat thread, and where it goes.

A platform adapter sees a reaction (Slack ``reaction_added``, Discord ``on_raw_reaction_add``),
fetches the thread and hands it here as an ``AnsweredThread``. The policy, the same on every
platform:

* The reaction is ``accept_reaction`` (Slack emoji name; on Discord the same emoji, or a custom
  emoji's name) on a **human** reply in a thread of a served workspace, never the question itself,
  never a bot's message (the bot's own answers have 👍/👎), never in a DM.
* It counts when ``accept_by`` allows its author: the thread's asker, a ragbot admin (global, or an
  admin of that workspace), or either. Outsiders (Slack Connect guests) never accept.
* A public channel's threads go to the collection ``answered_collection`` (created public if
  missing, so readable and trainable as any public collection); a private channel's (or a private
  Discord thread's) go to a private collection of that channel alone,
  ``<answered_collection>-<platform>-<channel id>``, granted to exactly that channel: what only its
  members could read stays there, and is not trained on unless an admin allows it.
* The engine (``rag_engine.answered``) stores the document and, where the collection allows
  training, the curated example; accepting twice changes nothing.
* Removing the reaction **withdraws** the acceptance (document and example) when it was removed by
  someone who may accept and no one else who may still has it on the message: an accidental ✅ is
  undone the way it was given. Accepting and withdrawing are written to the audit log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from bot import access
from bot.audit import write_audit
from bot.config import BotConfig
from bot.core import BotCore
from bot.messages import UNAVAILABLE
from bot.permissions import admin_scope
from bot.sanitize import redact_secrets, strip_control
from bot.tenants import tenant_allowed
from bot.types import ActionResult, Actor, Location
from rag_engine import collections as cols
from rag_engine.answered import AcceptedAnswer, accept_answer, withdraw_answer
from rag_engine.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

# Slack emoji names and the characters Discord reports for them
EMOJI = {"white_check_mark": "✅", "heavy_check_mark": "✔️", "ballot_box_with_check": "☑️", "+1": "👍",
         "thumbsup": "👍", "star": "⭐"}
ACCEPTED_ACTION = "accept answer"
WITHDRAWN_ACTION = "withdraw answer"


@dataclass(frozen=True, slots=True)
class ThreadMessage:
    id: str  # the platform's message id (Slack ts, Discord snowflake)
    author_id: str
    text: str
    is_bot: bool = False


@dataclass(frozen=True, slots=True)
class AnsweredThread:
    """A thread as the adapter fetched it: its question and the message the reaction is on."""

    location: Location  # the channel (a Discord thread: its parent channel, whose access applies)
    thread_id: str  # Slack thread ts, Discord thread id (or the question's id for a reply)
    question: ThreadMessage  # the thread's first message
    answer: ThreadMessage  # the reacted-to message
    url: str | None  # the answer's permalink / jump URL
    private: bool  # only the channel's members can read it (Slack private channel, hidden Discord channel/thread)
    label: str = ""  # where it is from, for readers without a link ("Slack thread in #help")

    @property
    def uri(self) -> str:
        loc = self.location
        return f"{loc.platform}://{loc.workspace_id}/{loc.channel_id}/{self.thread_id}/{self.answer.id}"


def is_accept_reaction(config: BotConfig, emoji: str) -> bool:
    """Whether ``emoji`` (a Slack name, ``:name:``, or a Discord character/custom name) is the accept reaction."""
    wanted = config.accept_reaction.strip().strip(":")
    if not wanted or not emoji:
        return False
    name = emoji.strip(":").split("::")[0]  # Slack skin tones: thumbsup::skin-tone-2
    return name == wanted or emoji == EMOJI.get(wanted) or emoji.rstrip("\ufe0f") == EMOJI.get(wanted, "\0")


def answered_collection(config: BotConfig, thread: AnsweredThread) -> str:
    """The collection ``thread`` goes to (see the module docstring)."""
    if not thread.private:
        return config.answered_collection
    return f"{config.answered_collection}-{thread.location.platform}-{thread.location.channel_id}".lower()[:100]


def may_accept(config: BotConfig, actor: Actor, thread: AnsweredThread) -> bool:
    """Whether ``actor``'s reaction accepts (or withdraws) an answer in ``thread``."""
    if actor.is_external or not actor.user_id:
        return False
    asker = config.accept_by != "admin" and actor.user_id == thread.question.author_id
    admin = config.accept_by != "asker" and admin_scope(actor, thread.location, config) is not None
    return asker or admin


def refusal(config: BotConfig, thread: AnsweredThread) -> str | None:
    """Why ``thread`` cannot be accepted whoever reacts, or None."""
    if not config.accept_reaction.strip():
        return "accepting answers is off (RAGBOT_ACCEPT_REACTION is empty)"
    if thread.location.is_dm or not thread.location.workspace_id:
        return "not in a direct message"
    if not tenant_allowed(thread.location, config):
        return "a workspace this deployment does not serve"
    if thread.answer.is_bot:
        return "a bot's message (rate the bot's answers with its buttons)"
    if thread.answer.id == thread.question.id:
        return "the question itself, not an answer to it"
    if not thread.question.text.strip() or not thread.answer.text.strip():
        return "an empty question or answer"
    return None


class ThreadAcceptance:
    """The core's side of answered threads; adapters call ``accept`` and ``withdraw``."""

    def __init__(self, core: BotCore) -> None:
        self.core = core
        self.config = core.config

    def is_accept_reaction(self, emoji: str) -> bool:
        return is_accept_reaction(self.config, emoji)

    async def accept(self, actor: Actor, thread: AnsweredThread) -> ActionResult:
        """Store the accepted answer; a refusal is ``ok=False`` with ``data["ignored"]`` (say nothing in chat)."""
        why = refusal(self.config, thread) or (None if may_accept(self.config, actor, thread) else
                                               f"{actor.user_key} is neither the asker nor an admin")
        if why is not None:
            log.info("reaction on %s ignored: %s", thread.uri, why)
            return ActionResult(False, why, data={"ignored": True})
        try:
            return await asyncio.to_thread(self._accept, actor, thread)
        except DatabaseUnavailable:
            return ActionResult(False, UNAVAILABLE)

    async def withdraw(self, actor: Actor, thread: AnsweredThread, still_reacting: Sequence[Actor]) -> ActionResult:
        """``actor`` removed the reaction; ``still_reacting``: who still has it on the answer."""
        if refusal(self.config, thread) is not None or not may_accept(self.config, actor, thread):
            return ActionResult(False, "not a reaction that accepts", data={"ignored": True})
        if any(may_accept(self.config, other, thread) for other in still_reacting if other.user_id != actor.user_id):
            return ActionResult(False, "still accepted by someone else", data={"ignored": True})
        try:
            return await asyncio.to_thread(self._withdraw, actor, thread)
        except DatabaseUnavailable:
            return ActionResult(False, UNAVAILABLE)

    def _accept(self, actor: Actor, thread: AnsweredThread) -> ActionResult:
        store = self.core.store
        name = answered_collection(self.config, thread)
        if thread.private:  # a private collection of this channel alone
            coll = cols.get_or_create(store.collections, name, visibility="private")
            loc = thread.location
            access.set_access(store, coll.id, loc.platform, loc.workspace_id, loc.channel_id, "grant")
        else:
            cols.get_or_create(store.collections, name, visibility="public")
        secrets = store.db.config.secrets
        accepted = AcceptedAnswer(thread.uri, thread.url, thread.label or f"{thread.location.platform} thread",
                                  _clean(thread.question.text, secrets), _clean(thread.answer.text, secrets))
        outcome = accept_answer(store, self.core.engine.ingestor, accepted, name)
        new = outcome.document == "written" or outcome.example == "added"
        training = {"added": "and as an example for the next training", "unchanged": "and as a training example",
                    "not_allowed": "(its collection is not used for training)"}[outcome.example]
        message = (f"Saved this answer for later questions in {name} {training}." if new
                   else "This answer was already saved.")
        write_audit(store, actor, ACCEPTED_ACTION, {"uri": thread.uri, "collection": name,
                                                    "document": outcome.document, "example": outcome.example},
                    ok=True, result=message)
        return ActionResult(True, message, data={"new": new, "collection": name, "example": outcome.example})

    def _withdraw(self, actor: Actor, thread: AnsweredThread) -> ActionResult:
        name = answered_collection(self.config, thread)
        removed = withdraw_answer(self.core.store, thread.uri, name)
        message = "Withdrawn: this answer is no longer used." if removed else "This answer was not saved."
        if removed:
            write_audit(self.core.store, actor, WITHDRAWN_ACTION, {"uri": thread.uri, "collection": name}, ok=True,
                        result=message)
        return ActionResult(removed, message, data={"removed": removed})


def _clean(text: str, secrets: tuple[str, ...]) -> str:
    """What is stored of a chat message: no control characters, no credentials someone pasted."""
    return redact_secrets(strip_control(text), secrets).strip()
