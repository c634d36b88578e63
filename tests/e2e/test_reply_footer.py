"""Issue 20 item 1: an answer quoted from the documents says why, in plain words, on Slack and Discord,
and the interaction log keeps the machine-readable reason (``interactions.fallback_reason`` starts with
the ``FallbackCode``).

The model is the real OpenAI-compatible backend talking to a local fake model server, scripted to
answer unsupported text, fail, be busy (503, as a full vLLM queue answers) or be unreachable.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.configs import engine_config
from rag_engine.engine import RagEngine
from rag_engine.store import schema as t
from rag_engine.values import FallbackCode
from tests.conftest import make_settings
from tests.support.replies import PLATFORMS, ask
from tests.unit.rag_engine import test_generation_openai as openai_tests
from tests.unit.rag_engine.test_generation_openai import FakeServer

server = openai_tests.server  # the fake model server fixture, shared with test_generation_openai

VPN = ("# VPN access\n\nTo get VPN access, open the IT self-service portal and request the Remote Access role. "
       "Your manager approves the request within one business day.\n")
QUESTION = "How do I get VPN access for working from home?"

CASES = {  # code: (the fake model server's scripted HTTP statuses, settings, the footer's plain words)
    FallbackCode.NOT_SUPPORTED: ((), {}, "Quoted from the documents: the generated answer was not supported by them."),
    FallbackCode.GENERATOR_ERROR: ((400,), {}, "Quoted from the documents: the model failed while answering."),
    FallbackCode.QUEUE_TIMEOUT: ((503,), {}, "Quoted from the documents: the model was busy."),
    FallbackCode.MODEL_UNAVAILABLE: ((), {"openai_base_url": "http://127.0.0.1:9/v1"},
                                     "Quoted from the documents: the model could not be loaded."),
    FallbackCode.NO_GENERATOR: ((), {"generator_backend": "extractive"},
                                "Quoted from the documents: no model is configured."),
}


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("code", list(CASES), ids=str)
async def test_the_footer_says_why_the_answer_is_quoted_and_the_log_keeps_the_code(
        platform, code, server: FakeServer, db, embedder, scratch_dir, tmp_path):
    statuses, overrides, words = CASES[code]
    server.statuses = list(statuses)
    settings = make_settings(scratch_dir, **{"generator_backend": "openai", "openai_base_url": server.url,
                                             "openai_max_retries": 0, "openai_timeout_s": 5.0, **overrides})
    engine = RagEngine(engine_config(settings), db=db, embedder=embedder, reranker=None)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "vpn.md").write_text(VPN)
    engine.ingest([tmp_path / "docs"], "default")

    seen = await ask(platform, engine, tmp_path, QUESTION)

    assert "self-service portal" in seen.text  # still answered, from the documents
    assert words in seen.footer
    assert "unavailable" not in seen.footer and "extractive fallback" not in seen.footer
    with db.connect() as conn:
        (row,) = conn.execute(select(t.interactions.c.status, t.interactions.c.fallback_reason)).all()
    assert row.fallback_reason.split(":")[0] == code.value
    assert row.status == ("answered" if code is FallbackCode.NO_GENERATOR else "fallback")

