"""Abuse limits: token-bucket rate limits per user and per channel, the question
length limit (refused with the limit, never truncated silently) and the answer
length limit."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from bot.ratelimit import AskLimits, TokenBucketLimiter
from bot.types import Actor, AskRequest, Location
from rag_engine.store import schema as t
from tests.support.security import core_for

WHERE = Location("slack", "T1", "C1")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_a_burst_then_refills_at_the_rate():
    clock = Clock()
    limiter = TokenBucketLimiter(6, 3, clock=clock)  # 6 per minute = one every 10 s
    assert [limiter.try_acquire("u") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.try_acquire("u") == pytest.approx(10.0)
    clock.now += 4
    assert limiter.try_acquire("u") == pytest.approx(6.0)  # a refused try takes nothing
    clock.now += 6
    assert limiter.try_acquire("u") == 0.0
    assert limiter.try_acquire("someone else") == 0.0  # buckets are per key


def test_bucket_never_exceeds_its_burst_and_ignores_a_clock_stepping_back():
    clock = Clock()
    limiter = TokenBucketLimiter(60, 2, clock=clock)
    clock.now += 3600  # an idle hour refills to the burst, not beyond
    assert [limiter.try_acquire("u") > 0 for _ in range(3)] == [False, False, True]
    clock.now -= 500
    assert limiter.try_acquire("u") > 0  # no tokens minted by going back in time
    assert limiter.try_acquire("u") < 60


def test_bucket_memory_is_bounded_and_evicts_least_recently_used():
    clock = Clock()
    limiter = TokenBucketLimiter(1, 1, clock=clock, max_keys=3)
    for key in ("a", "b", "c"):
        limiter.try_acquire(key)
    limiter.try_acquire("a")  # "a" used again: "b" is now the least recently used
    limiter.try_acquire("d")
    assert len(limiter) == 3
    assert limiter.try_acquire("a") > 0 and limiter.try_acquire("c") > 0  # still limited: not evicted
    assert limiter.try_acquire("b") == 0.0  # evicted, so it starts afresh


@pytest.mark.parametrize("rate, burst", [(0, 1), (-1, 3), (float("inf"), 1), (float("nan"), 1), (5, 0)])
def test_nonsense_limits_are_refused(rate, burst):
    with pytest.raises(ValueError, match="rate limit"):
        TokenBucketLimiter(rate, burst)


def test_a_channel_refusal_refunds_the_user_and_waits_are_whole_seconds():
    clock = Clock()
    limits = AskLimits(TokenBucketLimiter(60, 1, clock=clock), TokenBucketLimiter(0.5, 1, clock=clock))
    assert limits.check("u1", "c") == 0.0
    wait = limits.check("u2", "c")
    assert wait == 120.0  # the channel is the limit: one ask per two minutes
    clock.now += 59.5
    assert limits.check("u2", "c2") == 0.0  # u2's own token was refunded
    assert limits.check("u3", "c") == 61.0  # 60.5 s rounded up


def _interactions(db) -> int:
    with db.connect() as conn:
        return conn.execute(select(func.count()).select_from(t.interactions)).scalar_one()


async def test_user_and_channel_limits_in_the_bot(engine, db, tmp_path):
    (tmp_path / "d.md").write_text("# VPN\n\nRequest VPN access in the it-help channel within one day.\n")
    engine.ingest([tmp_path / "d.md"], "default")
    core = core_for(engine, tmp_path, rate_limit_user_per_min=2, rate_limit_user_burst=2,
                    rate_limit_channel_per_min=6, rate_limit_channel_burst=3)
    alice, bob = Actor("slack", "UA"), Actor("slack", "UB")
    first = [await core.ask(AskRequest(alice, WHERE, "How do I get VPN access?")) for _ in range(3)]
    assert [r.kind for r in first] == ["answer", "answer", "rate_limited"]
    limited = first[2]
    assert limited.retry_after_s and limited.retry_after_s >= 1
    seconds = int(re.search(r"Try again in (\d+) s", limited.text).group(1))
    assert seconds == int(limited.retry_after_s) and seconds <= 30  # says when: one token per 30 s
    assert (await core.ask(AskRequest(bob, WHERE, "How do I get VPN access?"))).kind == "answer"
    # the channel has had 3 asks now (its burst): a fresh user is limited by the channel
    carol = await core.ask(AskRequest(Actor("slack", "UC"), WHERE, "How do I get VPN access?"))
    assert carol.kind == "rate_limited" and carol.retry_after_s <= 10
    elsewhere = await core.ask(AskRequest(Actor("slack", "UC"), Location("slack", "T1", "C2"), "VPN?"))
    assert elsewhere.kind != "rate_limited"  # carol's token was given back when the channel refused
    assert _interactions(db) == 4  # refused asks are not logged as answered questions


async def test_a_long_question_is_refused_with_the_limit_not_truncated(engine, db, tmp_path):
    _readable_collection(engine, tmp_path)
    core = core_for(engine, tmp_path, max_question_chars=100, rate_limit_user_burst=1, rate_limit_user_per_min=1)
    actor = Actor("slack", "UA")
    too_long = "why " * 26  # 104 characters, 103 after whitespace is normalised
    reply = await core.ask(AskRequest(actor, WHERE, too_long))
    assert reply.kind == "refused"
    assert "103" in reply.text and "100" in reply.text
    huge = await core.ask(AskRequest(actor, WHERE, "x" * 1_000_000))
    assert huge.kind == "refused" and "1,000,000" in huge.text
    assert _interactions(db) == 0
    # refusals cost no rate-limit token: the one allowed ask still goes through, at exactly the limit
    ok = await core.ask(AskRequest(actor, WHERE, "w" * 100))
    assert ok.kind in ("answer", "not_found", "ask_back")


async def test_mentions_and_whitespace_do_not_count_towards_the_limit(engine, db, tmp_path):
    _readable_collection(engine, tmp_path)
    core = core_for(engine, tmp_path, max_question_chars=20)
    reply = await core.ask(AskRequest(Actor("slack", "UA"), WHERE, "<@U0BOT>     what   is\n\n  the VPN?   "))
    assert reply.kind != "refused"


def _readable_collection(engine, tmp_path) -> None:
    """Something to read here: a channel that reads no collection is refused for that reason."""
    (tmp_path / "vpn.md").write_text("# VPN\n\nRequest VPN access in the IT portal.\n")
    engine.ingest([tmp_path / "vpn.md"], "default")


async def test_answers_are_cut_to_the_answer_limit(engine, db, tmp_path):
    sentences = " ".join(f"Rule {n} says the VPN profile must be renewed after {n} days of use." for n in range(40))
    (tmp_path / "long.md").write_text(f"# VPN rules\n\n{sentences}\n")
    engine.ingest([tmp_path / "long.md"], "default")
    core = core_for(engine, tmp_path, max_answer_chars=80)
    reply = await core.ask(AskRequest(Actor("slack", "UA"), WHERE, "When must the VPN profile be renewed?"))
    assert reply.kind == "answer"
    assert len(reply.text) <= 80 and reply.text.endswith("…")
    with db.connect() as conn:
        stored = conn.execute(select(t.interactions.c.answer)).scalar_one()
    assert len(stored) > 80  # the log keeps the whole answer; only the posted text is cut
