"""Issue 15 item 12: no secret in stored fallback reasons or any other stored or logged free text.

A generator error quoting ``https://user:password@host/v1?api-key=…`` used to reach the interaction log
as is. Now one function (``rag_engine.redact.redact_secrets``) masks URL passwords, credential query
parameters, bearer tokens and every configured secret (``openai_base_url``'s credentials included)
before the interaction log, the job table, the audit trail, log lines or a reply get the text.
"""

from __future__ import annotations

import io
import logging

import pytest
from sqlalchemy import select

from app.configs import bot_config, engine_config
from bot.types import Actor, AskRequest, Location
from rag_engine.redact import MASK, redact_secrets, secret_values
from rag_engine.store import Store
from rag_engine.store import schema as t
from tests.conftest import make_settings

PASSWORD = "hunter2-pa55word"
API_KEY = "SECRETKEY0123456789"
BASE_URL = f"https://svc-user:{PASSWORD}@llm.internal:8443/v1?api-key={API_KEY}"
SECRETS = (PASSWORD, API_KEY)
WHERE = Location("slack", "T1", "C1")


def _leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


class _LeakyModel:
    """Fails like an HTTP client does: the request URL in the message, then the server's echo of the key."""

    name = "leaky-test-model"

    def generate(self, question, hits, history):
        raise ConnectionError(f"POST {BASE_URL}/chat/completions: 401 Unauthorized (bad password {PASSWORD})")


@pytest.fixture()
def logs(settings):
    from app.logging_setup import configure_logging

    stream, root = io.StringIO(), logging.getLogger()
    level = root.level
    configure_logging(settings.model_copy(update={"log_json": True, "openai_base_url": BASE_URL}), stream=stream)
    yield stream
    for handler in [h for h in root.handlers if getattr(h, "_ragbot_handler", False)]:
        root.removeHandler(handler)
    root.setLevel(level)


async def test_a_generator_error_with_credentials_leaves_no_secret_in_the_row_the_logs_or_the_reply(
        db, embedder, tmp_path, logs):
    from bot.core import BotCore
    from rag_engine.engine import RagEngine

    settings = make_settings(tmp_path, openai_base_url=BASE_URL)
    engine = RagEngine(engine_config(settings), db=db, embedder=embedder, generator=_LeakyModel(), reranker=None)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "vpn.md").write_text("# VPN\n\nRequest VPN access in the self-service portal; IT approves it "
                                 "within a day.\n")
    engine.ingest([docs], "default")
    core = BotCore(bot_config(settings), engine)
    reply = await core.ask(AskRequest(Actor("slack", "U1"), WHERE, "How do I get VPN access?"))

    assert "self-service portal" in reply.text  # answered, from the documents
    assert not _leaks(repr(reply)), reply
    with db.connect() as conn:
        (reason,) = conn.execute(select(t.interactions.c.fallback_reason)).scalars().all()
    assert not _leaks(reason), reason
    assert "llm.internal" in reason and MASK in reason  # still says where it failed
    output = logs.getvalue()
    assert "leaky-test-model failed" in output and not _leaks(output), output


def test_job_errors_audit_rows_and_failed_asks_are_stored_redacted(db, settings):
    from bot.audit import write_audit
    from rag_engine import jobs
    from rag_engine.interactions import InteractionContext, log_interaction

    error = f"RuntimeError: could not reach {BASE_URL}"
    job = jobs.enqueue(db, "echo").job_id
    jobs.claim(db, "w1", kinds=["echo"])
    jobs.fail(db, job, "w1", error)
    write_audit(Store(db), Actor("slack", "UADMIN"), "ingest", {"args": [BASE_URL]}, ok=False, result=error)
    log_interaction(db, InteractionContext("slack", "T1", "C1", None, "slack:T1:U1"), "q", None, [], error=error)

    with db.connect() as conn:
        stored = [jobs.get(db, job).error,
                  *map(str, conn.execute(select(t.audit_log.c.args, t.audit_log.c.result)).one()),
                  conn.execute(select(t.interactions.c.fallback_reason)).scalar_one()]
    for text in stored:
        assert "llm.internal" in text and not _leaks(text), text


def test_feedback_text_is_stored_redacted(db):
    from rag_engine.feedback import record_correction, record_vote
    from rag_engine.interactions import InteractionContext, log_interaction

    interaction = log_interaction(db, InteractionContext("slack", "T1", "C1", None, "slack:T1:U1"), "q", None, [],
                                  error="failed")
    record_vote(db, interaction, "slack:T1:U1", -1, f"it should link {BASE_URL}")
    record_correction(db, interaction, "slack:T1:U2", f"Use {BASE_URL} instead.", is_admin=False)
    with db.connect() as conn:
        stored = [conn.execute(select(t.feedback.c.reason)).scalar_one(),
                  conn.execute(select(t.corrections.c.text)).scalar_one()]
    for text in stored:
        assert "llm.internal" in text and not _leaks(text), text


@pytest.mark.parametrize("text, kept", [
    (f"GET {BASE_URL}", "GET https://svc-user:***@llm.internal:8443/v1?api-key=***"),
    (f"https://h/v1?model=x&access_token={API_KEY}&lang=en", "https://h/v1?model=x&access_token=***&lang=en"),
    (f"https://h/?Token={API_KEY}#top", "https://h/?Token=***#top"),
    (f"https://h/?key={API_KEY}", "https://h/?key=***"),
    (f"https://h/?client_secret={API_KEY}&password={PASSWORD}", "https://h/?client_secret=***&password=***"),
    (f"https://blob/x?sig={API_KEY}&X-Amz-Signature={API_KEY}", "https://blob/x?sig=***&X-Amz-Signature=***"),
    (f"Authorization: Bearer {API_KEY}", "Authorization: Bearer ***"),
])
def test_credential_shapes_in_urls_and_headers_are_masked(text, kept):
    assert redact_secrets(text) == kept


def test_ordinary_urls_and_words_are_left_alone():
    for text in ("https://docs.example.com/handbook?section=2&lang=en#vpn", "keys to the office: ask Dana",
                 "the password policy is in section 4"):
        assert redact_secrets(text) == text


def test_openai_base_url_credentials_count_as_secrets(tmp_path):
    settings = make_settings(tmp_path, openai_base_url=BASE_URL)
    assert {PASSWORD, API_KEY} <= set(secret_values(settings))
    assert redact_secrets(f"server said: wrong password {PASSWORD}", settings) == "server said: wrong password ***"
    assert secret_values(make_settings(tmp_path, openai_base_url="http://vllm:8000/v1")) == []
