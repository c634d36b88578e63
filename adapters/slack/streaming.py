"""Stream replies in Slack (``RAGBOT_REPLY_MODE=stream``): the model's text through ``chat_stream``.

``chat.startStream`` opens the answer in the thread with the first text, ``chat.appendStream``
adds the rest in batches (at most one call per ``APPEND_INTERVAL_S``, well inside the method's
rate limit), and ``chat.stopStream`` ends it with the answer's sources, code and feedback buttons
as blocks under the text. When the final answer is not the streamed text (the model was overruled
by the grounding check and the documents are quoted, or citations were renumbered), the stream
is stopped and the message is replaced with ``chat.update`` by the final answer, with its note.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_chat_stream import AsyncChatStream
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.blocks import SlackMessage, reply_messages
from bot.types import FinalReply, Reply

log = logging.getLogger(__name__)

APPEND_INTERVAL_S = 1.0  # at most one chat.appendStream per this many seconds (read at call time: tests shorten it)


async def stream_reply(client: AsyncWebClient, channel: str, thread_ts: str, reply: Reply, *, team_id: str | None,
                       user_id: str | None, clock: Callable[[], float] = time.monotonic) -> tuple[Reply, list[str]]:
    """Show ``reply.stream`` in thread ``thread_ts``; the final reply and the ts of the messages it is in.

    With no live text at all (the model failed before writing), nothing is streamed: the final reply
    is posted as usual.
    """
    if reply.stream is None:
        raise ValueError("not a stream reply")
    streamer: AsyncChatStream | None = None
    pending, sent = "", ""
    last_flush = float("-inf")
    final: FinalReply | None = None
    broken = False  # Slack refused a stream call: no more live text
    async for update in reply.stream():
        if isinstance(update, FinalReply):
            final = update
            break
        pending += update.delta
        if clock() - last_flush < APPEND_INTERVAL_S:
            continue
        if broken:
            continue
        if streamer is None:  # buffer_size=1: every append we make is one call (we batch by time instead)
            streamer = await client.chat_stream(channel=channel, thread_ts=thread_ts, buffer_size=1,
                                                recipient_team_id=team_id, recipient_user_id=user_id)
        try:
            await streamer.append(markdown_text=pending)
        except SlackApiError as exc:  # live text is a courtesy: the final answer is posted or put in place
            log.info("streaming stopped (%s); the answer follows when final", exc.response.get("error"))
            broken = True
            continue
        sent, pending, last_flush = sent + pending, "", clock()
    if final is None:
        raise RuntimeError("the stream ended without a final reply")
    done = final.reply
    messages = reply_messages(done)
    if streamer is None or streamer.ts is None:
        return done, [await _post(client, channel, thread_ts, m) for m in messages]
    ts = streamer.ts
    streamed = sent + pending
    if not broken and not final.replaced and len(messages) == 1 and streamed.strip() == done.text.strip():
        await streamer.stop(markdown_text=pending or None, blocks=_under_text(messages[0].blocks))
        return done, [ts]
    # the streamed text must not stand: end the stream as it is and put the final answer in its place
    if not broken:
        await streamer.stop()
    await client.chat_update(channel=channel, ts=ts, **messages[0].payload())
    return done, [ts] + [await _post(client, channel, thread_ts, m) for m in messages[1:]]


def _under_text(blocks: list[dict]) -> list[dict]:
    """The blocks after the answer's text sections: sources, the answer code and note, the feedback buttons."""
    i = 0
    while i < len(blocks) and blocks[i].get("type") == "section":
        i += 1
    return blocks[i:]


async def _post(client: AsyncWebClient, channel: str, thread_ts: str, message: SlackMessage) -> str:
    sent = await client.chat_postMessage(channel=channel, thread_ts=thread_ts, unfurl_links=False,
                                         unfurl_media=False, **message.payload())
    return str(sent["ts"])
