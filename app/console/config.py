"""``ConsoleConfig``: what ``ragbot console`` itself is configured with (built from ``Settings``)."""

from __future__ import annotations

from dataclasses import dataclass

from app.settings import Settings
from bot.console_token import check_secret


@dataclass(frozen=True, slots=True)
class ConsoleConfig:
    """What the console itself is configured with (from ``Settings``)."""

    secret: str
    public_url: str
    session_ttl_s: float
    promotion_margin: float = 0.02

    @property
    def secure_cookie(self) -> bool:
        """Served over https (directly or behind a proxy): the cookie is never sent in clear."""
        return self.public_url.lower().startswith("https://")

    @classmethod
    def from_settings(cls, settings: Settings) -> ConsoleConfig:
        secret = settings.console_secret.get_secret_value() if settings.console_secret else ""
        if not secret:
            raise ValueError("set RAGBOT_CONSOLE_SECRET (the same key the bots sign `/ragbot-admin console` "
                             "links with) to run the console")
        check_secret(secret)  # a short key is refused here, at start-up, not at the first sign-in
        return cls(secret, settings.console_url, settings.console_session_ttl_s, settings.promotion_margin)
