"""``/ragbot-admin console``: the sign-in link an admin gets, ephemerally, for the browser console.

The caller (``BotCore``) has checked that the actor is a global admin; this module only signs
the link with the key in ``BotConfig`` and says how long it lives. The link itself is never
written to the audit table (the audit row names the nonce, enough to match it to the sign-in).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from bot import console_token
from bot.config import BotConfig
from bot.types import Actor

NOT_CONFIGURED = ("The admin console is not set up: set RAGBOT_CONSOLE_SECRET (and RAGBOT_CONSOLE_URL, where "
                  "admins reach `ragbot console`) and restart the bot.")


class ConsoleNotConfigured(ValueError):
    """No console key is configured: no link can be signed."""


@dataclass(frozen=True, slots=True)
class ConsoleLink:
    url: str
    claims: console_token.LinkClaims
    ttl_s: float

    @property
    def message(self) -> str:
        minutes = max(1, round(self.ttl_s / 60))
        return (f"Your admin console link (only for you, single use, valid {minutes} min). It opens a session "
                f"as {self.claims.user_key}:")


def console_link(config: BotConfig, actor: Actor, grounds: str) -> ConsoleLink:
    """A signed single-use link to the console's sign-in page for ``actor``."""
    if config.console_secret is None or not config.console_secret.get_secret_value():
        raise ConsoleNotConfigured(NOT_CONFIGURED)
    token, claims = console_token.issue(
        config.console_secret.get_secret_value(), platform=actor.platform, user_id=actor.user_id,
        display_name=actor.display_name or "", grounds=grounds, ttl_s=config.console_link_ttl_s)
    url = f"{config.console_url.rstrip('/')}/login?token={quote(token, safe='')}"
    return ConsoleLink(url, claims, config.console_link_ttl_s)
