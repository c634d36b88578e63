"""The Bolt app: one ``AsyncApp`` wired to the bot core, for Socket Mode and HTTP alike."""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.answered import AnsweredThreadListener
from adapters.slack.assistant import build_assistant
from adapters.slack.clients import web_client
from adapters.slack.config import SlackConfig
from adapters.slack.handlers import SlackHandlers
from adapters.slack.verification import QuietRequestVerification
from bot.core import BotCore
from bot.tenants import warn_if_unbound


class SlackConfigError(ValueError):
    """A token or secret the chosen mode needs is missing or malformed."""


def check_credentials(config: SlackConfig, *, http: bool) -> None:
    """Fail early, naming the setting (never its value), when a credential is missing."""
    problems = []
    bot_token = config.slack_bot_token.get_secret_value() if config.slack_bot_token else ""
    if not bot_token.startswith("xoxb-"):
        problems.append("RAGBOT_SLACK_BOT_TOKEN must be set to the bot token (xoxb-…)")
    if http:
        if not (config.slack_signing_secret and config.slack_signing_secret.get_secret_value()):
            problems.append("RAGBOT_SLACK_SIGNING_SECRET must be set for HTTP mode (Basic Information → "
                            "Signing Secret)")
    else:
        app_token = config.slack_app_token.get_secret_value() if config.slack_app_token else ""
        if not app_token.startswith("xapp-"):
            problems.append("RAGBOT_SLACK_APP_TOKEN must be set to an app-level token (xapp-…) with "
                            "connections:write for Socket Mode, or run with --http")
    if problems:
        raise SlackConfigError("; ".join(problems))


def build_app(core: BotCore, config: SlackConfig, *, client: AsyncWebClient | None = None) -> AsyncApp:
    """An ``AsyncApp`` whose listeners call ``core``.

    Every HTTP request's signature is checked with ``slack_signing_secret``
    (Socket Mode requests need none) by our middleware in place of Bolt's, which
    would log a rejected request's body; Bolt learns the bot's own user id
    through ``auth.test`` so it ignores its own messages.
    """
    client = client or web_client(config)
    if not client.token:
        raise SlackConfigError("RAGBOT_SLACK_BOT_TOKEN must be set to the bot token (xoxb-…)")
    secret = config.slack_signing_secret.get_secret_value() if config.slack_signing_secret else ""
    app = AsyncApp(
        name="ragbot",
        client=client,
        signing_secret=secret,  # passed explicitly: Bolt would otherwise read the environment
        request_verification_enabled=False,
        before_authorize=QuietRequestVerification(secret),  # where Bolt's check would run
        logger=logging.getLogger("adapters.slack.bolt"),
        process_before_response=False,  # ack first, work after: Slack's 3-second limit
    )
    handlers = SlackHandlers(core)
    app.assistant(build_assistant(handlers))  # the split-view container: suggested prompts, its questions
    handlers.register(app)
    AnsweredThreadListener(core, handlers.identity).register(app)  # ✅ on a reply: an answered thread
    warn_if_unbound(core.config, "slack")
    return app
