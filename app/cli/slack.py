"""``ragbot slack``: run the Slack bot (Socket Mode, or HTTP with ``--http``)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from app.cli.common import err_console, friendly_errors, open_engine, settings, stopped_while_starting
from app.configs import slack_config


def register(app: typer.Typer) -> None:
    app.command("slack")(slack)


@friendly_errors
def slack(
    http: Annotated[bool, typer.Option("--http", help="Receive events over HTTP (needs the signing secret) "
                                                      "instead of Socket Mode (needs the app token).")] = False,
    port: Annotated[int, typer.Option(help="HTTP mode: port to listen on.")] = 3000,
    host: Annotated[str, typer.Option(help="HTTP mode: address to bind.")] = "0.0.0.0",
    path: Annotated[str, typer.Option(help="HTTP mode: request path (the app manifest's URLs end with it).")]
    = "/slack/events",
) -> None:
    """Run the Slack bot: /ask, @mentions, DMs, 👍/👎 and corrections, /ragbot-admin."""
    from adapters.slack import SlackConfigError, build_app, check_credentials  # lazy: slack_bolt and aiohttp
    from adapters.slack.clients import web_client  # lazy: slack_sdk
    from adapters.slack.server import check_token, serve_http, serve_socket_mode  # lazy: slack_bolt and aiohttp
    from app.logging_setup import configure_logging  # lazy: structlog only for commands that log
    from app.runtime import BotRuntime  # lazy: pulls the bot core and the engine
    from bot.lifecycle import serve_until_stopped, sigterm_interrupts  # lazy: pulls prometheus_client

    s = settings()
    slack = slack_config(s)
    try:
        check_credentials(slack, http=http)
        configure_logging(s)
        asyncio.run(check_token(web_client(slack)))  # before the slow part: the engine
    except SlackConfigError as exc:
        err_console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    try:
        with sigterm_interrupts():
            runtime = BotRuntime.start(s, open_engine(s))
    except KeyboardInterrupt:
        raise stopped_while_starting(s) from None
    app = build_app(runtime.core, slack)
    if http:
        serve_until_stopped(runtime, lambda: serve_http(app, host=host, port=port, path=path))
    else:
        # check_credentials has refused a missing or malformed app token already
        token = slack.slack_app_token.get_secret_value() if slack.slack_app_token else ""
        serve_until_stopped(runtime, lambda: serve_socket_mode(app, token))

