"""Console sessions: opened by a spent sign-in link, held in memory, expiring, each with its CSRF token.

In memory on purpose: one console process serves a handful of admins, and a restart signing
everyone out is the safe failure. The session id travels in an HttpOnly cookie; the CSRF token
is rendered into every form and checked on every POST.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.console_token import LinkClaims
from bot.types import Actor

MAX_SESSIONS = 1000


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    csrf: str
    claims: LinkClaims
    expires_at: float

    @property
    def actor(self) -> Actor:
        """The platform identity every console action is audited as."""
        return Actor(self.claims.platform, self.claims.user_id, self.claims.display_name or None)

    def csrf_ok(self, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(self.csrf.encode(), (given or "").encode())


class SessionStore:
    """Open sessions by id; expired ones are dropped when met."""

    def __init__(self, ttl_s: float, now: Callable[[], float] = time.time) -> None:
        self.ttl_s = ttl_s
        self._now = now  # a test's clock moves sessions past their expiry
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def open(self, claims: LinkClaims) -> Session:
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), claims, self._now() + self.ttl_s)
        with self._lock:
            self._drop_expired()
            while len(self._sessions) >= MAX_SESSIONS:  # the oldest go first
                self._sessions.pop(next(iter(self._sessions)))
            self._sessions[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        with self._lock:
            session = self._sessions.get(session_id)
            if session is not None and session.expires_at <= self._now():
                del self._sessions[session_id]
                return None
            return session

    def close(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)

    def _drop_expired(self) -> None:
        now = self._now()
        for key in [k for k, s in self._sessions.items() if s.expires_at <= now]:
            del self._sessions[key]
