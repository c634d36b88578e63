"""``DiscordConfig``: the Discord credentials, endpoint and behaviour (built in ``app/configs.py``).

Which servers are served is the core's business (``bot.config.BotConfig``); this
config only says whether to leave the others.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, SecretStr


class DiscordConfig(BaseModel):
    """Field names match ``app.settings.Settings`` (defaults, descriptions and validation live there)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    discord_token: SecretStr | None
    discord_api_base: str | None
    discord_reply_in_thread: bool
    discord_leave_unlisted_guilds: bool
