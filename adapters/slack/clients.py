"""Slack Web API and ``response_url`` clients, both retrying rate limits and dropped connections.

A 429 is retried after the ``Retry-After`` Slack sends; a refused or reset
connection is retried with backoff. Nothing here logs a token.
"""

from __future__ import annotations

import logging

from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from adapters.slack.config import SlackConfig

log = logging.getLogger(__name__)

RATE_LIMIT_RETRIES = 3
CONNECTION_RETRIES = 2
TIMEOUT_S = 30


def retry_handlers() -> list[AsyncRetryHandler]:
    return [
        AsyncConnectionErrorRetryHandler(max_retry_count=CONNECTION_RETRIES),
        AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES),
    ]


def web_client(config: SlackConfig) -> AsyncWebClient:
    """The bot's Web API client (``config.slack_api_url`` lets tests point it at a local server)."""
    token = config.slack_bot_token.get_secret_value() if config.slack_bot_token else None
    base_url = config.slack_api_url if config.slack_api_url.endswith("/") else config.slack_api_url + "/"
    return AsyncWebClient(token=token, base_url=base_url, timeout=TIMEOUT_S, retry_handlers=retry_handlers())


async def post_to_response_url(response_url: str, message: dict) -> bool:
    """Send a message through a slash command's / button's ``response_url``; False if Slack refused it."""
    client = AsyncWebhookClient(url=response_url, timeout=TIMEOUT_S, retry_handlers=retry_handlers())
    response = await client.send_dict(message)
    if response.status_code != 200:  # e.g. expired_url (30 minutes, 5 uses): the user will not see it
        log.warning("response_url refused the message: HTTP %s %s", response.status_code, response.body[:200])
        return False
    return True
