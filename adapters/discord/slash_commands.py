"""Application (slash) commands: ``/ask`` and ``/ragbot-admin``.

They are thin: each one hands over to :mod:`adapters.discord.handlers`.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands

from adapters.discord import handlers

if TYPE_CHECKING:
    from adapters.discord.client import RagbotClient

ASK_MAX_CHARS = 4000  # Discord's cap is 6,000; the core refuses past its own limit with a clear message


def register(tree: app_commands.CommandTree) -> None:
    """Add fresh command objects to ``tree`` (one set per client: trees don't share commands)."""

    @app_commands.command(name="ask", description="Ask a question about your team's documents")
    @app_commands.describe(question="What do you want to know?")
    async def ask(interaction: discord.Interaction[RagbotClient],
                  question: app_commands.Range[str, 1, ASK_MAX_CHARS]) -> None:
        await handlers.on_ask_command(interaction, question)

    admin = app_commands.Group(name="ragbot-admin", description="ragbot administration (admins only)")

    @admin.command(name="status", description="Queue, last runs, active adapter, feedback since the last training")
    async def status(interaction: discord.Interaction[RagbotClient]) -> None:
        await handlers.on_admin_command(interaction, "status")

    @admin.command(name="retrain", description="Queue a retraining on the collected feedback")
    async def retrain(interaction: discord.Interaction[RagbotClient]) -> None:
        await handlers.on_admin_command(interaction, "retrain")

    @admin.command(name="rollback", description="Go back to the previous adapter")
    async def rollback(interaction: discord.Interaction[RagbotClient]) -> None:
        await handlers.on_admin_command(interaction, "rollback")

    @admin.command(name="console", description="A single-use sign-in link to the admin console (only you see it)")
    async def console(interaction: discord.Interaction[RagbotClient]) -> None:
        await handlers.on_admin_command(interaction, "console")

    @admin.command(name="sources", description="Synced sources (list), or queue a sync of one (sync + its name)")
    @app_commands.describe(action="list, or sync one source", name="The source to sync (see list)")
    async def sources(interaction: discord.Interaction[RagbotClient], action: Literal["list", "sync"],
                      name: app_commands.Range[str, 1, 63] | None = None) -> None:
        await handlers.on_admin_command(interaction, f"sources {action} {shlex.quote(name) if name else ''}".strip())

    @admin.command(name="run", description="Any admin command, e.g. `collections grant handbook here` or `help`")
    @app_commands.describe(command="The command line (see `help`)")
    async def run(interaction: discord.Interaction[RagbotClient],
                  command: app_commands.Range[str, 1, 1000]) -> None:
        await handlers.on_admin_command(interaction, command)

    tree.add_command(ask)
    tree.add_command(admin)
    tree.error(_on_tree_error)


async def _on_tree_error(interaction: discord.Interaction, error: app_commands.AppCommandError, /) -> None:
    cause = getattr(error, "original", error)
    await handlers.report_interaction_error(interaction, cause)
