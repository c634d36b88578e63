"""The console sign-in token: genuine links verify until they expire; changed, foreign or stretched ones never do."""

from __future__ import annotations

import base64
import json

import pytest
from pydantic import SecretStr

from bot import console_token as ct
from bot.commands import CommandError, parse_admin_command
from bot.console_link import ConsoleNotConfigured, console_link
from bot.types import Actor
from tests.conftest import make_bot_config

KEY = "k" * 32
NOW = 1_800_000_000.0


def _issue(**kw):
    args = {"platform": "slack", "user_id": "UADMIN", "display_name": "Ada", "grounds": "user id", "ttl_s": 300,
            "now": NOW, **kw}
    return ct.issue(KEY, **args)


def test_a_fresh_link_verifies_to_its_claims_until_it_expires():
    token, claims = _issue()
    assert ct.verify(KEY, token, now=NOW) == claims
    assert claims.user_key == "slack:UADMIN" and claims.expires_at == int(NOW + 300)
    assert ct.verify(KEY, token, now=NOW + 299).nonce == claims.nonce
    with pytest.raises(ct.LinkExpired, match="expired"):
        ct.verify(KEY, token, now=NOW + 300)


def test_every_link_has_its_own_nonce():
    assert _issue()[1].nonce != _issue()[1].nonce


def _swap_payload(token: str, **changes) -> str:
    version, payload, mac = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data.update(changes)
    raw = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return f"{version}.{raw}.{mac}"


@pytest.mark.parametrize("change", [{"u": "UOTHER"}, {"p": "discord"}, {"exp": int(NOW + 3000)}, {"g": "role"}])
def test_a_changed_claim_breaks_the_signature(change):
    token, _ = _issue()
    with pytest.raises(ct.LinkRefused, match="not issued by this ragbot"):
        ct.verify(KEY, _swap_payload(token, **change), now=NOW)


def test_another_key_a_flipped_mac_and_junk_are_refused():
    token, _ = _issue()
    with pytest.raises(ct.LinkRefused):
        ct.verify("x" * 32, token, now=NOW)
    version, payload, mac = token.split(".")
    flipped = mac[:-2] + ("AA" if mac[-2:] != "AA" else "BB")
    for bad in (f"{version}.{payload}.{flipped}", f"v0.{payload}.{mac}", f"{version}.{payload}", "", "a.b.c",
                f"{version}.{payload}.{mac}.x", f"{version}.{payload}.é", token + "A" * ct.MAX_TOKEN_CHARS):
        with pytest.raises(ct.LinkRefused):
            ct.verify(KEY, bad, now=NOW)


def test_a_signed_link_claiming_too_long_a_life_is_refused():
    claims = ct.LinkClaims("slack", "U1", "", "user id", int(NOW + ct.MAX_TTL_S + 60), "n" * 24)
    with pytest.raises(ct.LinkRefused, match="too long"):
        ct.verify(KEY, ct.sign(KEY, claims), now=NOW)


def test_short_keys_and_bad_lifetimes_are_refused():
    with pytest.raises(ValueError, match="at least 16"):
        ct.issue("short", platform="slack", user_id="U1", display_name="", grounds="user id", ttl_s=60)
    for ttl in (0, -1, ct.MAX_TTL_S + 1):
        with pytest.raises(ValueError):
            _issue(ttl_s=ttl)
    with pytest.raises(ValueError):
        _issue(user_id="")


def test_the_bot_side_link_points_at_the_console_and_needs_a_key():
    config = make_bot_config(console_secret=SecretStr(KEY), console_url="https://console.example/")
    link = console_link(config, Actor("discord", "42", "Ada"), "role")
    assert link.url.startswith("https://console.example/login?token=v1.")
    claims = ct.verify(KEY, link.url.split("token=", 1)[1])
    assert (claims.user_key, claims.grounds, claims.display_name) == ("discord:42", "role", "Ada")
    assert "single use" in link.message and "5 min" in link.message and link.url not in link.message
    with pytest.raises(ConsoleNotConfigured, match="RAGBOT_CONSOLE_SECRET"):
        console_link(make_bot_config(), Actor("discord", "42"), "role")


def test_the_console_command_parses_and_takes_no_arguments():
    assert parse_admin_command("console").action == "console"
    with pytest.raises(CommandError, match="takes no arguments"):
        parse_admin_command("console now")
