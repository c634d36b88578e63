"""``ragbot discord``: run the Discord bot."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.common import err_console, friendly_errors, open_engine, settings, stopped_while_starting
from app.configs import discord_config


def register(app: typer.Typer) -> None:
    app.command("discord")(discord_bot)


@friendly_errors
def discord_bot(
    sync_commands: Annotated[bool, typer.Option(
        "--sync-commands/--no-sync-commands",
        help="Register /ask and /ragbot-admin with Discord at start-up (needed once, and after upgrades).")] = True,
    guild: Annotated[int | None, typer.Option(
        help="Register the commands in this guild only: they appear at once (global ones can take a while).")]
    = None,
) -> None:
    """Run the Discord bot: @mentions, DMs, /ask, 👍/👎 and corrections, /ragbot-admin."""
    from adapters.discord import DiscordConfigError, RagbotClient, check_credentials, serve  # lazy: discord.py
    from app.runtime import BotRuntime  # lazy: pulls the bot core and the engine
    from bot.lifecycle import serve_until_stopped, sigterm_interrupts  # lazy: pulls prometheus_client

    s = settings()
    try:
        token = check_credentials(discord_config(s))
    except DiscordConfigError as exc:
        err_console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    try:
        with sigterm_interrupts():
            runtime = BotRuntime.start(s, open_engine(s))
    except KeyboardInterrupt:
        raise stopped_while_starting(s) from None
    client = RagbotClient(runtime.core, discord_config(s), sync_commands=sync_commands, sync_guild_id=guild)
    try:
        serve_until_stopped(runtime, lambda: serve(client, token))
    except DiscordConfigError as exc:
        err_console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None

