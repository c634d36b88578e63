"""Secrets (tokens, signing secrets, database passwords) never appear in what the
bot posts, in error messages, in the audit or interaction logs, or in log output."""

from __future__ import annotations

import io
import logging

import pytest
from pydantic import SecretStr
from sqlalchemy import select
from typer.testing import CliRunner

from app.configs import bot_config, store_config
from app.settings import Settings
from bot.sanitize import redact_secrets, sanitize_output, secret_values
from bot.types import Actor, AskRequest, Location
from rag_engine import collections as cols
from rag_engine.store import Store
from rag_engine.store import schema as t
from tests.conftest import make_settings
from tests.support.security import core_for

SLACK_TOKEN = "xoxb-2718281828-3141592653-AbCdEfGhIjKlMnOpQrStUvWx"
APP_TOKEN = "xapp-1-A0123456789-1234567890123-abcdef0123456789abcdef"
SIGNING = "8f14e45fceea167a5a36dedd4bea2543"
DISCORD = "MTA5ODc2NTQzMjEwOTg3NjU0Mw.GhIjKl.abcdefghijklmnopqrstuvwxyz0123456789AB"
OPENAI = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"
DB_PASSWORD = "Tr0ub4dor-and-3"
SECRETS = (SLACK_TOKEN, APP_TOKEN, SIGNING, DISCORD, OPENAI, DB_PASSWORD)
WHERE = Location("slack", "T1", "C1")


def secret_settings(tmp_path, **overrides) -> Settings:
    return make_settings(tmp_path, slack_bot_token=SLACK_TOKEN, slack_app_token=APP_TOKEN,
                         slack_signing_secret=SIGNING, discord_token=DISCORD, openai_api_key=OPENAI, **overrides)


def _leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


def test_every_secret_looking_setting_is_a_secret_str():
    fields = Settings.model_fields
    sensitive = [n for n in fields if any(w in n for w in ("token", "secret", "password", "api_key", "database_url"))
                 and not n.endswith(("_tokens", "tokens"))]
    assert set(sensitive) >= {"slack_bot_token", "slack_app_token", "slack_signing_secret", "discord_token",
                              "openai_api_key", "database_url"}
    for name in sensitive:
        assert "SecretStr" in str(fields[name].annotation), name


def test_secret_values_and_redaction(tmp_path):
    settings = secret_settings(tmp_path, database_url=f"postgresql://ragbot:{DB_PASSWORD}@db.internal:5432/ragbot")
    values = secret_values(settings)
    assert set(SECRETS) <= set(values)
    text = f"boom: {SIGNING} at postgresql://ragbot:{DB_PASSWORD}@db.internal/ragbot with Bearer {OPENAI}"
    assert not _leaks(redact_secrets(text, values))
    assert SIGNING in redact_secrets(text)  # an arbitrary hex string has no shape: it needs the exact value
    assert not _leaks(repr(settings)) and not _leaks(str(settings.model_dump()))


@pytest.mark.parametrize("pasted", [SLACK_TOKEN, APP_TOKEN, DISCORD, OPENAI,
                                    f"postgresql://admin:{DB_PASSWORD}@db.internal/prod"])
def test_credential_shapes_are_never_posted(pasted):
    assert not _leaks(sanitize_output(f"The deploy bot uses {pasted} for now.", limit=500))


async def test_a_token_pasted_into_a_document_is_not_posted(engine, db, tmp_path):
    (tmp_path / "bot.md").write_text(f"# Deploy bot\n\nThe deploy bot authenticates with the token {SLACK_TOKEN} "
                                     f"and reads the database postgresql://deploy:{DB_PASSWORD}@db.internal/app "
                                     "every morning.\n")
    engine.ingest([tmp_path / "bot.md"], "default")
    core = core_for(engine, tmp_path)
    reply = await core.ask(AskRequest(Actor("slack", "U1"), WHERE, "Which token does the deploy bot use?"))
    assert reply.kind == "answer" and "deploy bot" in reply.text
    assert not _leaks(reply.text), reply.text


async def test_errors_replies_audit_and_logs_hold_no_secrets(engine, db, tmp_path, caplog):
    from app.logging_setup import configure_logging

    settings = secret_settings(tmp_path, admin_user_ids=["slack:UADMIN"], ingest_roots=[str(tmp_path)])
    cols.create(Store(db).collections, "default")  # chat ingestion fills existing collections only
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    configure_logging(settings.model_copy(update={"log_json": True, "log_level": "DEBUG"}), stream=stream)
    try:
        from bot.core import BotCore

        core = BotCore(bot_config(settings), engine)
        bad = tmp_path / f"notes-{SLACK_TOKEN}"
        bad.mkdir()
        (bad / "broken.pdf").write_bytes(b"%PDF-1.4 truncated")
        admin = Actor("slack", "UADMIN")
        commands = [(admin, f"ingest {bad}"),
                    (admin, f"ingest /nonexistent/{OPENAI}.md --collection team"),
                    (admin, f"collections grant missing-{SLACK_TOKEN}"),
                    (Actor("slack", "UX"), f"ingest /x/{APP_TOKEN}.md"),
                    (admin, f"nonsense {SLACK_TOKEN}")]
        results = [(text, await core.admin(actor, WHERE, text)) for actor, text in commands]
        replies = [await core.ask(AskRequest(Actor("slack", "U1"), WHERE, f"is {OPENAI} valid for {DISCORD}?")),
                   await core.ask(AskRequest(Actor("slack", "U1"), WHERE, "x" * 5000 + SLACK_TOKEN))]
        logging.getLogger("ragbot.test").error("request failed with header Authorization: Bearer %s", OPENAI)
    finally:
        for handler in [h for h in root.handlers if getattr(h, "_ragbot_handler", False)]:
            root.removeHandler(handler)
        root.setLevel(level)
    for r in replies:
        assert not _leaks(r.text), r.text
    for text, result in results:  # a reply may echo what its admin typed, never another secret
        shown = result.message + " ".join(result.detail_lines)
        assert not [s for s in SECRETS if s in shown and s not in text], shown
    with db.connect() as conn:
        audit = conn.execute(select(t.audit_log.c.args, t.audit_log.c.result)).all()
        interactions = conn.execute(select(t.interactions.c.question, t.interactions.c.answer,
                                           t.interactions.c.fallback_reason)).all()
    assert len(audit) == 4  # the unparsable command never reached the audit
    assert not _leaks(str(audit)), audit
    assert len(interactions) == 1 and not _leaks(str(interactions)), interactions
    output = stream.getvalue()
    assert "request failed" in output and "broken.pdf" in output
    assert not _leaks(output), [s for s in SECRETS if s in output]


async def test_a_failed_answer_is_stored_with_its_secrets_masked(engine, db, tmp_path, monkeypatch):
    """An exception's text is redacted once, where the interaction is stored (``rag_engine.interactions``),
    not again in the write queue: the stored row still holds no secret, shaped or only configured."""
    from bot.core import BotCore

    settings = secret_settings(tmp_path)
    # the store config carries every secret of the process (platform tokens too), as app/configs.py builds it
    monkeypatch.setattr(db, "config", store_config(settings))
    cols.create(Store(db).collections, "default")

    def boom(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError(f"upstream refused {SIGNING} via postgresql://deploy:{DB_PASSWORD}@db.internal/app "
                           f"with Bearer {OPENAI}")

    monkeypatch.setattr(engine, "answer", boom)
    core = BotCore(bot_config(settings), engine)
    reply = await core.ask(AskRequest(Actor("slack", "U1"), WHERE, "which token is it?"))
    assert reply.kind == "error" and reply.interaction_id is not None
    with db.connect() as conn:
        (reason,) = conn.execute(select(t.interactions.c.fallback_reason)).scalars().all()
    assert reason.startswith("RuntimeError: upstream refused") and not _leaks(reason), reason


def test_the_cli_never_prints_the_database_password(tmp_path, monkeypatch):
    from app.cli import app

    monkeypatch.setenv("RAGBOT_DATABASE_URL", f"postgresql://ragbot:{DB_PASSWORD}@127.0.0.1:1/ragbot")
    monkeypatch.setenv("RAGBOT_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["collections", "list"])
    assert result.exit_code == 1
    out = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert "unreachable" in out or "error" in out
    assert DB_PASSWORD not in out


def test_secret_str_is_not_revealed_by_accident():
    value = SecretStr(SLACK_TOKEN)
    assert SLACK_TOKEN not in f"{value} {value!r}"
