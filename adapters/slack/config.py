"""``SlackConfig``: the Slack credentials and endpoint (built in ``app/configs.py``).

Which workspaces are served, and whether their admins administer the bot, is the
core's business (``bot.config.BotConfig``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, SecretStr


class SlackConfig(BaseModel):
    """Field names match ``app.settings.Settings`` (defaults, descriptions and validation live there)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    slack_bot_token: SecretStr | None
    slack_app_token: SecretStr | None
    slack_signing_secret: SecretStr | None
    slack_api_url: str
