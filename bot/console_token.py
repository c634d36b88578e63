"""The sign-in token of the admin console: signed by the bot, verified by ``ragbot console``.

``/ragbot-admin console`` gives an admin a link that carries who it is for, until when, and a
random nonce, signed with HMAC-SHA256 under ``RAGBOT_CONSOLE_SECRET``. The console checks the
signature and the expiry here and spends the nonce once (single use), so a link that leaks from a
chat log or a proxy log is worthless after its first use or a few minutes. Both sides import this
module, so it lives in ``bot/`` (``app/`` may import ``bot``; the reverse is forbidden).

Format: ``v1.<base64url(JSON claims)>.<base64url(MAC)>``; the MAC covers a purpose label and the
first two parts, so a MAC made with the same key for anything else never verifies as a link.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

VERSION = "v1"
PURPOSE = b"ragbot-console-link\n"
MAX_TOKEN_CHARS = 2000
MAX_TTL_S = 3600.0  # a link valid longer than this is refused, whatever it says
MIN_SECRET_CHARS = 16


class LinkRefused(ValueError):
    """A token that does not open a session; the message is safe to show."""


class LinkExpired(LinkRefused):
    """A genuine token whose time is up."""


@dataclass(frozen=True, slots=True)
class LinkClaims:
    """Who a link is for (a platform identity that passed the bot's admin check) and until when."""

    platform: str
    user_id: str
    display_name: str
    grounds: str  # why the bot counted them an admin: "user id" | "role"
    expires_at: int  # unix seconds
    nonce: str  # random; spent when the link is used

    @property
    def user_key(self) -> str:
        return f"{self.platform}:{self.user_id}"


def check_secret(secret: str) -> bytes:
    """The key as bytes; a short key is refused (a guessable key would let anyone mint links)."""
    if len(secret or "") < MIN_SECRET_CHARS:
        raise ValueError(f"RAGBOT_CONSOLE_SECRET must be at least {MIN_SECRET_CHARS} characters")
    return secret.encode("utf-8")


def issue(secret: str, *, platform: str, user_id: str, display_name: str, grounds: str, ttl_s: float,
          now: float | None = None) -> tuple[str, LinkClaims]:
    """A fresh token for one platform user, valid ``ttl_s`` seconds; and its claims."""
    if not platform or not user_id:
        raise ValueError("a console link needs a platform and a user id")
    if not 0 < ttl_s <= MAX_TTL_S:
        raise ValueError(f"a console link lives between 0 and {MAX_TTL_S:g} seconds")
    at = time.time() if now is None else now
    claims = LinkClaims(platform, user_id, display_name[:100], grounds, int(at + ttl_s), secrets.token_urlsafe(18))
    return sign(secret, claims), claims


def sign(secret: str, claims: LinkClaims) -> str:
    body = json.dumps({"p": claims.platform, "u": claims.user_id, "n": claims.display_name, "g": claims.grounds,
                       "exp": claims.expires_at, "nonce": claims.nonce}, separators=(",", ":"), sort_keys=True)
    payload = _b64(body.encode("utf-8"))
    return f"{VERSION}.{payload}.{_b64(_mac(check_secret(secret), payload))}"


def verify(secret: str, token: str, now: float | None = None) -> LinkClaims:
    """The claims of a genuine, unexpired token; else ``LinkRefused`` (``LinkExpired`` when only late).

    Does not spend the nonce: the console does that once it opens the session."""
    key = check_secret(secret)
    parts = (token or "").strip().split(".")
    if len(token or "") > MAX_TOKEN_CHARS or len(parts) != 3 or parts[0] != VERSION:
        raise LinkRefused("this is not a console sign-in link")
    _, payload, mac = parts
    try:
        given = _unb64(mac)
    except (binascii.Error, ValueError):
        raise LinkRefused("this sign-in link is damaged") from None
    if not hmac.compare_digest(given, _mac(key, payload)):
        raise LinkRefused("this sign-in link was not issued by this ragbot (or it was changed)")
    claims = _claims(payload)
    at = time.time() if now is None else now
    if claims.expires_at <= at:
        raise LinkExpired("this sign-in link has expired: run `/ragbot-admin console` again")
    if claims.expires_at - at > MAX_TTL_S:
        raise LinkRefused("this sign-in link claims too long a life")
    return claims


def _claims(payload: str) -> LinkClaims:
    try:
        data = json.loads(_unb64(payload))
        claims = LinkClaims(str(data["p"]), str(data["u"]), str(data["n"]), str(data["g"]), int(data["exp"]),
                            str(data["nonce"]))
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise LinkRefused("this sign-in link is damaged") from None
    if not claims.platform or not claims.user_id or len(claims.nonce) < 16:
        raise LinkRefused("this sign-in link is damaged")
    return claims


def _mac(key: bytes, payload: str) -> bytes:
    return hmac.new(key, PURPOSE + f"{VERSION}.{payload}".encode("ascii"), hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not text.isascii():
        raise ValueError("not base64")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
