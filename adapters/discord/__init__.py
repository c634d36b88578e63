"""The Discord adapter (discord.py): mentions, DMs, ``/ask``, ``/ragbot-admin``, feedback buttons.

It translates Discord events into ``BotCore`` calls and renders the results;
every rule (limits, access, admin rights, logging) lives in the core.
"""

from adapters.discord.client import (
    REQUIRED_PERMISSIONS,
    DiscordConfigError,
    RagbotClient,
    check_credentials,
    intents,
    invite_url,
    serve,
)

__all__ = ["REQUIRED_PERMISSIONS", "DiscordConfigError", "RagbotClient", "check_credentials", "intents",
           "invite_url", "serve"]
