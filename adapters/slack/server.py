"""Running the Bolt app: Socket Mode (outbound WebSocket) or HTTP (Events API endpoint)."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.app import SlackConfigError

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"


async def start_http(app: AsyncApp, *, host: str = "0.0.0.0", port: int = 3000,
                     path: str = EVENTS_PATH) -> web.AppRunner:
    """Serve ``app`` (commands, events, interactivity all on ``path``); port 0 picks a free one."""
    runner = web.AppRunner(app.web_app(path=path, port=port), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


def bound_port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        return int(address[1])
    raise RuntimeError("the HTTP server is not listening")


async def check_token(client: AsyncWebClient) -> None:
    """Fail at start-up, not on the first question, when Slack rejects the bot token or is out of reach."""
    try:
        who = await client.auth_test()
    except SlackApiError as exc:
        raise SlackConfigError(f"Slack rejected RAGBOT_SLACK_BOT_TOKEN ({exc.response.get('error')})") from None
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise SlackConfigError(f"cannot reach Slack's Web API at {client.base_url} "
                               f"({type(exc).__name__}); check the network or RAGBOT_SLACK_API_URL") from None
    log.info("signed in to Slack workspace %s as %s", who.get("team"), who.get("user"))


async def serve_http(app: AsyncApp, *, host: str, port: int, path: str = EVENTS_PATH) -> None:
    runner = await start_http(app, host=host, port=port, path=path)
    log.info("Slack HTTP endpoint on http://%s:%d%s", host, bound_port(runner), path)
    try:
        await asyncio.Event().wait()  # until cancelled (Ctrl-C)
    finally:
        await runner.cleanup()


async def serve_socket_mode(app: AsyncApp, app_token: str) -> None:
    handler = AsyncSocketModeHandler(app, app_token)
    log.info("connecting to Slack in Socket Mode")
    try:
        await handler.start_async()
    finally:
        await handler.close_async()
