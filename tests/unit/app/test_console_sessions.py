"""Console sessions expire, are looked up only by their id, and check CSRF tokens exactly."""

from __future__ import annotations

from app.console.sessions import SessionStore
from bot.console_token import LinkClaims

CLAIMS = LinkClaims("slack", "UADMIN", "Ada", "user id", 0, "n" * 24)


def test_a_session_lasts_its_ttl_and_then_is_gone():
    now = [1000.0]
    sessions = SessionStore(60, now=lambda: now[0])
    s = sessions.open(CLAIMS)
    assert sessions.get(s.id) == s and s.actor.user_key == "slack:UADMIN"
    now[0] += 59
    assert sessions.get(s.id) == s
    now[0] += 1
    assert sessions.get(s.id) is None
    assert sessions.get(s.id) is None  # and stays gone


def test_unknown_ids_and_closed_sessions_find_nothing():
    sessions = SessionStore(60)
    s = sessions.open(CLAIMS)
    assert sessions.get(None) is None and sessions.get("") is None and sessions.get(s.csrf) is None
    sessions.close(s.id)
    assert sessions.get(s.id) is None


def test_csrf_tokens_are_per_session_and_checked_exactly():
    sessions = SessionStore(60)
    a, b = sessions.open(CLAIMS), sessions.open(CLAIMS)
    assert a.id != b.id and a.csrf != b.csrf
    assert a.csrf_ok(a.csrf)
    assert not a.csrf_ok(b.csrf) and not a.csrf_ok("") and not a.csrf_ok(None) and not a.csrf_ok(a.csrf[:-1])
