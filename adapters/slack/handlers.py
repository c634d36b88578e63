"""Slack listeners: turn commands, mentions, DMs, buttons and the modal into bot-core calls.

Bolt runs each listener as a task and answers Slack's HTTP request as soon as
``ack()`` is called, so every listener acks first (events are acked by Bolt
before the listener starts) and only then does the slow work. Failures are
logged with a short reference the user is shown; no listener lets one escape.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.blocks import (
    ACTION_CORRECT,
    ACTION_FEEDBACK,
    ACTION_VOTE_DOWN,
    ACTION_VOTE_UP,
    CORRECTION_BLOCK,
    CORRECTION_INPUT,
    CORRECTION_VIEW,
    SlackMessage,
    action_result_messages,
    correction_metadata,
    correction_modal,
    feedback_vote,
    notice,
    reply_messages,
)
from adapters.slack.clients import post_to_response_url
from adapters.slack.identity import SlackIdentity
from adapters.slack.status import ThreadStatus
from adapters.slack.streaming import stream_reply
from bot.core import BotCore
from bot.messages import ASK_USAGE, UNKNOWN_BUTTON, failed
from bot.sanitize import clean_question
from bot.streaming import final as final_reply
from bot.types import AskRequest, Reply

log = logging.getLogger(__name__)

ASK_COMMAND = "/ask"
ADMIN_COMMAND = "/ragbot-admin"
WORKING_REACTION = "eyes"
WORKING_TEXT = ":mag: Looking through the documents…"
PUBLIC_KINDS = frozenset({"answer", "not_found", "ask_back"})  # everything else goes to the asker only
RETRY_HEADER = "x-slack-retry-num"
# chat.postMessage errors meaning the bot may not post there, though the response_url may
NOT_POSTABLE = frozenset({"not_in_channel", "channel_not_found"})

Notify = Callable[[SlackMessage], Awaitable[Any]]


class SlackHandlers:
    def __init__(self, core: BotCore) -> None:
        self.core = core
        self.config = core.config  # the core's: tenants, admins, ephemeral answers
        self.identity = SlackIdentity(self.config)

    def register(self, app: AsyncApp) -> None:
        app.command(ASK_COMMAND)(self.ask_command)
        app.command(ADMIN_COMMAND)(self.admin_command)
        app.event("app_mention")(self.mention)
        app.event("message")(self.direct_message)
        app.action(ACTION_FEEDBACK)(self.feedback)
        app.action(ACTION_VOTE_UP)(self.vote_up)  # answers posted before the feedback_buttons
        app.action(ACTION_VOTE_DOWN)(self.vote_down)
        app.action(ACTION_CORRECT)(self.open_correction)
        app.view(CORRECTION_VIEW)(self.save_correction)
        app.error(self.on_error)

    # -- /ask --------------------------------------------------------------------
    async def ask_command(self, ack: AsyncAck, command: dict, client: AsyncWebClient,
                          context: AsyncBoltContext) -> None:
        question = command.get("text") or ""
        if not clean_question(question):
            await ack(text=ASK_USAGE, response_type="ephemeral")
            return
        await ack(text=WORKING_TEXT, response_type="ephemeral")
        replies = _InPlaceOfWorkingNote(command.get("response_url", ""))
        try:
            async with _reporting_failures("/ask", replies.send):
                actor, location = await self.identity.command(client, command, context, check_admin=False)
                reply = await self.core.ask(AskRequest(actor, location, question,
                                                       ephemeral=self.config.answer_ephemeral))
                reply = await final_reply(reply)  # stream mode: /ask has no message of the user's to stream under
                public = reply.kind in PUBLIC_KINDS
                messages = reply_messages(reply, question=question if public else None,
                                          reference=_reference_for(reply, "/ask"))
                if public and not self.config.answer_ephemeral:
                    thread = await _post_in_channel(client, location.channel_id, messages, replies)
                    if thread:  # a mention in the answer's thread gets this ask as history
                        await self.core.start_thread(reply, location, thread)
                        if len(messages) == 1:  # the answer is that one message: it can be replaced
                            await replies.remove_note()
                            await _refine_in_place(client, location.channel_id, thread, reply, question)
                else:
                    for message in messages:
                        await replies.send(message)
        finally:
            await replies.remove_note()

    # -- mentions and direct messages ----------------------------------------------
    async def mention(self, body: dict, event: dict, client: AsyncWebClient, context: AsyncBoltContext,
                      request: AsyncBoltRequest) -> None:
        await self._answer_event(body, event, client, context, request)

    async def direct_message(self, body: dict, event: dict, client: AsyncWebClient, context: AsyncBoltContext,
                             request: AsyncBoltRequest) -> None:
        # Bolt hands us every message event; only plain messages in the bot's DMs are questions
        if event.get("channel_type") != "im" or event.get("subtype") or event.get("bot_id"):
            return
        await self._answer_event(body, event, client, context, request)

    async def _answer_event(self, body: dict, event: dict, client: AsyncWebClient, context: AsyncBoltContext,
                            request: AsyncBoltRequest) -> None:
        user, channel, ts = event.get("user"), event.get("channel"), event.get("ts")
        if not user or not channel or not ts:
            return
        thread = event.get("thread_ts") or ts  # the answer goes into (and its context comes from) this thread
        retried = bool(request.headers.get(RETRY_HEADER))

        async def notify(message: SlackMessage) -> None:
            await client.chat_postEphemeral(channel=channel, user=user, thread_ts=thread, **message.payload())

        # a re-delivery leaves the reaction to the first delivery, which removes it when done
        reacted = not retried and await _try(client.reactions_add(channel=channel, timestamp=ts,
                                                                    name=WORKING_REACTION))
        # answer-first replies also show Slack's loading state, the retrieval's progress, until the answer is posted
        status = ThreadStatus(client, channel, thread) if not retried and self.config.reply_mode != "final" else None
        posted: list[str] = []  # ts of the messages posted in the thread
        try:
            async with _reporting_failures("event", notify):
                actor, location = await self.identity.event(client, body, event, context)
                reply = await self.core.ask(AskRequest(actor, location, event.get("text") or "", thread_id=thread,
                                                       event_id=body.get("event_id")),
                                            on_progress=status.show if status else None)
                if reply.kind == "duplicate":
                    return
                if reply.stream is not None:  # RAGBOT_REPLY_MODE=stream: the model's text as it is written
                    posted += (await stream_reply(client, channel, thread, reply, team_id=body.get("team_id"),
                                                  user_id=user))[1]
                    return
                messages = reply_messages(reply, reference=_reference_for(reply, "event"))
                for message in messages:
                    if reply.kind in PUBLIC_KINDS or location.is_dm:
                        sent = await client.chat_postMessage(channel=channel, thread_ts=thread, unfurl_links=False,
                                                             unfurl_media=False, **message.payload())
                        posted.append(sent["ts"])
                    else:
                        await notify(message)
                if len(posted) == 1:  # the answer is that one message: it can be replaced
                    await _refine_in_place(client, channel, posted[0], reply)
        finally:
            if status is not None and not posted:  # posting in the thread clears it; otherwise it would stay 2 min
                await status.clear()
            if reacted:
                await _try(client.reactions_remove(channel=channel, timestamp=ts, name=WORKING_REACTION))

    # -- feedback buttons and the correction modal ----------------------------------
    async def feedback(self, ack: AsyncAck, body: dict, action: dict, client: AsyncWebClient,
                       context: AsyncBoltContext) -> None:
        """Slack's feedback_buttons: the clicked button's value says which vote, on which answer."""
        vote, interaction_id = feedback_vote(action.get("value") or "") or (0, None)
        await self._vote(ack, body, interaction_id, client, context, vote)

    async def vote_up(self, ack: AsyncAck, body: dict, action: dict, client: AsyncWebClient,
                      context: AsyncBoltContext) -> None:
        await self._vote(ack, body, _interaction_id(action), client, context, +1)

    async def vote_down(self, ack: AsyncAck, body: dict, action: dict, client: AsyncWebClient,
                        context: AsyncBoltContext) -> None:
        await self._vote(ack, body, _interaction_id(action), client, context, -1)

    async def _vote(self, ack: AsyncAck, body: dict, interaction_id: int | None, client: AsyncWebClient,
                    context: AsyncBoltContext, vote: int) -> None:
        await ack()
        notify = _action_notifier(body, client)
        async with _reporting_failures("vote", notify):
            if interaction_id is None:
                await notify(notice(UNKNOWN_BUTTON))
                return
            actor, location = await self.identity.action(client, body, context, check_admin=False)
            result = await self.core.vote(actor, interaction_id, vote, location=location)
            await notify(notice(result.message))

    async def open_correction(self, ack: AsyncAck, body: dict, action: dict, client: AsyncWebClient) -> None:
        await ack()
        notify = _action_notifier(body, client)
        async with _reporting_failures("correction button", notify):
            interaction_id = _interaction_id(action)
            if interaction_id is None:
                await notify(notice(UNKNOWN_BUTTON))
                return
            channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id", "")
            thread = (body.get("message") or {}).get("thread_ts")
            # the trigger_id expires 3 s after the click: open the modal before anything else
            await client.views_open(trigger_id=body["trigger_id"], view=correction_modal(interaction_id, channel,
                                                                                         thread))

    async def save_correction(self, ack: AsyncAck, body: dict, view: dict, client: AsyncWebClient,
                              context: AsyncBoltContext) -> None:
        text = (((view.get("state") or {}).get("values") or {}).get(CORRECTION_BLOCK) or {}) \
            .get(CORRECTION_INPUT, {}).get("value") or ""
        if not text.strip():
            await ack(response_action="errors", errors={CORRECTION_BLOCK: "Please write what the answer should say."})
            return
        try:
            meta = correction_metadata(view.get("private_metadata", ""))
        except ValueError as exc:
            await ack(response_action="errors", errors={CORRECTION_BLOCK: f"{exc}; please use the button again."})
            return
        await ack()
        user = body["user"]["id"]

        async def notify(message: SlackMessage) -> None:
            await _tell_user(client, user, meta.get("channel_id"), meta.get("thread_ts"), message)

        async with _reporting_failures("correction", notify):
            actor, location = await self.identity.action(client, body, context, check_admin=False,
                                                         channel=meta.get("channel_id"))
            result = await self.core.correct(actor, meta["interaction_id"], text, location=location)
            message = result.message
            if not result.ok:  # give the text back so nothing the user wrote is lost
                message += "\n\nHere is what you wrote, so you can try again:\n\n" + text
            await notify(notice(message))

    # -- /ragbot-admin ---------------------------------------------------------------
    async def admin_command(self, ack: AsyncAck, command: dict, client: AsyncWebClient,
                            context: AsyncBoltContext) -> None:
        await ack()
        response_url = command.get("response_url", "")

        async def notify(message: SlackMessage) -> None:
            await post_to_response_url(response_url, {**message.payload(), "response_type": "ephemeral"})

        async with _reporting_failures(ADMIN_COMMAND, notify):
            actor, location = await self.identity.command(client, command, context, check_admin=True)
            result = await self.core.admin(actor, location, command.get("text") or "")
            title = "ragbot status" if result.ok and "status" in result.data else None
            for message in action_result_messages(result, title=title):
                await notify(message)

    async def on_error(self, error: Exception, body: object) -> None:
        log.error("unhandled Slack request error (%s): %s", body.get("type") if isinstance(body, dict) else "?",
                  error, exc_info=error)


# -- helpers ------------------------------------------------------------------------
class _InPlaceOfWorkingNote:
    """``/ask`` replies through the response_url that leave no "Looking…" note behind: the first
    private reply replaces the note; a public answer cannot replace a private note, so the note
    is deleted after it (best effort: a leftover note is cosmetic)."""

    def __init__(self, response_url: str) -> None:
        self.response_url = response_url
        self.note_shown = True

    async def send(self, message: SlackMessage, response_type: str = "ephemeral") -> None:
        replace = self.note_shown and response_type == "ephemeral"
        await post_to_response_url(self.response_url, {**message.payload(), "response_type": response_type,
                                                       "replace_original": replace, "unfurl_links": False,
                                                       "unfurl_media": False})
        self.note_shown = self.note_shown and not replace

    async def remove_note(self) -> None:
        if self.note_shown:
            self.note_shown = not await _try(post_to_response_url(self.response_url, {"delete_original": True}))


async def _post_in_channel(client: AsyncWebClient, channel: str, messages: list[SlackMessage],
                           replies: _InPlaceOfWorkingNote) -> str | None:
    """Post a public ``/ask`` answer as the bot, so it has a ts that follow-ups can thread on; the ts,
    or None if the bot cannot post there (not a member) and the answer went through the response_url."""
    first, *rest = messages
    try:
        posted = await client.chat_postMessage(channel=channel, unfurl_links=False, unfurl_media=False,
                                               **first.payload())
    except SlackApiError as exc:
        if exc.response.get("error") not in NOT_POSTABLE:
            raise
        log.info("/ask answer in %s goes through the response_url: %s", channel, exc.response.get("error"))
        for message in messages:
            await replies.send(message, "in_channel")
        return None
    thread = posted["ts"]
    for message in rest:  # the rest of a long answer stays in its thread
        await client.chat_postMessage(channel=channel, thread_ts=thread, unfurl_links=False, unfurl_media=False,
                                      **message.payload())
    return thread


async def _refine_in_place(client: AsyncWebClient, channel: str, ts: str, reply: Reply,
                           question: str | None = None) -> None:
    """Answer-first: replace the posted answer (message ``ts``) by the model's, if it gives one that passes
    the grounding check; otherwise the quoted answer stays (the core logged why)."""
    if reply.refine is None:
        return
    refined = await reply.refine()
    if refined is None:
        return
    messages = reply_messages(refined, question=question)
    if len(messages) != 1:  # one message can only become one message
        log.info("the refined answer %s needs %d messages: the quoted one stays", refined.interaction_id,
                 len(messages))
        return
    await _try(client.chat_update(channel=channel, ts=ts, **messages[0].payload()))


@asynccontextmanager
async def _reporting_failures(where: str, notify: Notify) -> AsyncIterator[None]:
    """Log an unexpected failure with a short reference, and tell the user that reference."""
    try:
        yield
    except Exception as exc:
        ref = _new_reference()
        log.error("Slack %s failed (reference %s)", where, ref, exc_info=exc)
        await _try(notify(notice(failed(ref))))


def _reference_for(reply: Reply, where: str) -> str | None:
    """Errors the core could not log (database down) still get an id to quote."""
    if reply.kind != "error" or reply.interaction_id is not None:
        return None
    ref = _new_reference()
    log.warning("Slack %s answered with an error (reference %s): %s", where, ref, reply.text)
    return ref


def _new_reference() -> str:
    return uuid.uuid4().hex[:8]


def _interaction_id(action: dict) -> int | None:
    try:
        value = int(action.get("value") or "")
    except ValueError:
        return None
    return value if value > 0 else None


def _action_notifier(body: dict, client: AsyncWebClient) -> Notify:
    """Answer a button click to the clicker only: via its response_url, else an ephemeral message."""
    response_url = body.get("response_url")
    user = (body.get("user") or {}).get("id", "")
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    thread = (body.get("message") or {}).get("thread_ts")

    async def notify(message: SlackMessage) -> None:
        if response_url:
            await post_to_response_url(response_url, {**message.payload(), "response_type": "ephemeral",
                                                      "replace_original": False})
        else:
            await _tell_user(client, user, channel, thread, message)

    return notify


async def _tell_user(client: AsyncWebClient, user: str, channel: str | None, thread_ts: str | None,
                     message: SlackMessage) -> None:
    """An ephemeral note in the channel; a DM when the bot cannot post there (not a member, say)."""
    if channel:
        try:
            await client.chat_postEphemeral(channel=channel, user=user, thread_ts=thread_ts, **message.payload())
            return
        except SlackApiError as exc:
            log.info("ephemeral message in %s failed (%s); sending a DM", channel, exc.response.get("error"))
    await client.chat_postMessage(channel=user, **message.payload())


async def _try(call: Awaitable[Any]) -> bool:
    """Await a best-effort Slack call (reactions, failure notes); False if it failed."""
    try:
        await call
        return True
    except Exception as exc:  # noqa: BLE001 - cosmetic calls must never break the answer
        log.debug("best-effort Slack call failed: %s", exc)
        return False
