"""Structured logging: JSON off a TTY, readable on one, interaction ids, redaction."""

from __future__ import annotations

import asyncio
import contextvars
import io
import json
import logging
import threading

import pytest
import structlog

from app.logging_setup import _NOISY_LOGGERS, MASK, bind_interaction, configure_logging
from tests.conftest import make_settings

SLACK_BOT = "xoxb-2222222222-3333333333-AbCdEfGhIjKlMnOpQrStUvWx"
SLACK_APP = "xapp-1-A0123456789-1234567890123-abcdef0123456789"
DISCORD = "MTA5ODc2NTQzMjEwOTg3NjU0Mw.GAbCdE.aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789ab"
OPENAI = "local-vllm-key-5f3c2a"
SIGNING = "8f742231b10e8888abcd99yyyzzz85a5"
DB_PASSWORD = 'p@ss"w0rd'


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _restore_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    library_levels = {name: logging.getLogger(name).level for name in _NOISY_LOGGERS}
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
    root.setLevel(level)
    for name, lib_level in library_levels.items():
        logging.getLogger(name).setLevel(lib_level)
    logging.captureWarnings(False)
    structlog.reset_defaults()


def lines(stream: io.StringIO) -> list[str]:
    return [line for line in stream.getvalue().splitlines() if line.strip()]


def records(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in lines(stream)]


def test_json_lines_when_not_a_tty(tmp_path):
    out = io.StringIO()
    configure_logging(make_settings(tmp_path), stream=out)
    logging.getLogger("rag_engine.retrieval").info("searched %d collections", 2)
    structlog.get_logger("bot.core").warning("rate limited", user="U1", wait_s=3.5)
    first, second = records(out)
    assert first["event"] == "searched 2 collections"
    assert (first["level"], first["logger"]) == ("info", "rag_engine.retrieval")
    assert first["timestamp"].endswith("Z")
    assert second | {"timestamp": None} == {"event": "rate limited", "user": "U1", "wait_s": 3.5,
                                            "level": "warning", "logger": "bot.core", "timestamp": None}


def test_readable_lines_on_a_tty_and_the_setting_overrides_detection(tmp_path):
    tty = Tty()
    configure_logging(make_settings(tmp_path), stream=tty)
    logging.getLogger("bot").warning("hello there")
    assert "hello there" in tty.getvalue()
    with pytest.raises(json.JSONDecodeError):
        json.loads(lines(tty)[0])

    forced = Tty()
    configure_logging(make_settings(tmp_path, log_json=True), stream=forced)
    logging.getLogger("bot").warning("as json")
    assert records(forced)[0]["event"] == "as json"

    plain = io.StringIO()
    configure_logging(make_settings(tmp_path, log_json=False), stream=plain)
    logging.getLogger("bot").warning("as text")
    assert "as text" in plain.getvalue() and not plain.getvalue().lstrip().startswith("{")


def test_level_filters_and_reconfiguring_does_not_duplicate_lines(tmp_path):
    out = io.StringIO()
    configure_logging(make_settings(tmp_path, log_level="warning"), stream=out)
    configure_logging(make_settings(tmp_path, log_level="WARNING"), stream=out)
    logging.getLogger("x").info("dropped")
    structlog.get_logger("x").info("dropped too")
    logging.getLogger("x").error("kept")
    assert [r["event"] for r in records(out)] == ["kept"]


def test_a_bad_level_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="RAGBOT_LOG_LEVEL must be one of DEBUG, INFO"):
        configure_logging(make_settings(tmp_path, log_level="loud"), stream=io.StringIO())


def test_interaction_id_on_every_line_inside_the_block_only(tmp_path):
    out = io.StringIO()
    configure_logging(make_settings(tmp_path), stream=out)
    log = logging.getLogger("bot.core")
    log.info("before")
    with bind_interaction(41):
        log.info("received")
        structlog.get_logger("bot.core").info("answered", status="answered")
        with bind_interaction("nested"):
            log.info("inner")
        log.info("outer again")
    log.info("after")
    with bind_interaction(None):
        log.info("no id yet")
    got = [(r["event"], r.get("interaction_id")) for r in records(out)]
    assert got == [("before", None), ("received", 41), ("answered", 41), ("inner", "nested"),
                   ("outer again", 41), ("after", None), ("no id yet", None)]


async def test_interaction_ids_stay_with_their_asyncio_tasks_and_threads(tmp_path):
    out = io.StringIO()
    configure_logging(make_settings(tmp_path), stream=out)
    log = logging.getLogger("adapters.discord")

    async def handle(interaction_id: int) -> None:
        with bind_interaction(interaction_id):
            await asyncio.sleep(0)  # interleave the two requests
            log.info("task step")
            await asyncio.to_thread(log.info, "worker thread step")
            context = contextvars.copy_context()
            t = threading.Thread(target=context.run, args=(log.info, "copied-context thread step"))
            t.start()
            t.join()

    await asyncio.gather(handle(1), handle(2))
    by_id: dict[int, list[str]] = {}
    for r in records(out):
        by_id.setdefault(r["interaction_id"], []).append(r["event"])
    assert sorted(by_id) == [1, 2]
    for events in by_id.values():
        assert sorted(events) == ["copied-context thread step", "task step", "worker thread step"]


def test_secrets_from_settings_and_token_shapes_never_reach_the_output(tmp_path):
    settings = make_settings(
        tmp_path, slack_bot_token=SLACK_BOT, slack_app_token=SLACK_APP, discord_token=DISCORD,
        openai_api_key=OPENAI, slack_signing_secret=SIGNING,
        database_url="postgresql://ragbot:p%40ss%22w0rd@db:5432/ragbot",
    )
    out = io.StringIO()
    configure_logging(settings, stream=out)
    log = logging.getLogger("adapters.slack")
    log.info("connecting with %s and %s", SLACK_BOT, SLACK_APP)
    log.warning("discord said 401 for Authorization: Bot %s", DISCORD)
    log.info("openai key %s, signing secret %s", OPENAI, SIGNING)
    log.info("db password %s", DB_PASSWORD)
    structlog.get_logger("bot").info("config", token="whatever-it-is", headers={"Authorization": "Bearer abc"})
    try:
        raise ConnectionError("could not reach postgresql://admin:hunter2-long@10.0.0.5/ragbot")
    except ConnectionError:
        log.exception("database unreachable")
    log.info("pasted a new token xoxp-1111-2222-abcdefabcdef in chat")

    text = out.getvalue()
    for secret in (SLACK_BOT, SLACK_APP, DISCORD, OPENAI, SIGNING, "p%40ss%22w0rd", "hunter2-long",
                   "xoxp-1111-2222-abcdefabcdef", "whatever-it-is", "Bearer abc"):
        assert secret not in text, secret
    assert json.dumps(DB_PASSWORD)[1:-1] not in text
    parsed = records(out)  # still valid JSON after masking
    assert parsed[4]["token"] == MASK and parsed[4]["headers"] == {"Authorization": MASK}
    assert "Bot ***" in parsed[1]["event"]
    assert "postgresql://admin:***@10.0.0.5/ragbot" in parsed[5]["exception"]
    assert parsed[6]["event"] == "pasted a new token *** in chat"


def test_redaction_leaves_ordinary_text_alone(tmp_path):
    out = io.StringIO()
    configure_logging(make_settings(tmp_path, slack_bot_token="abc"), stream=out)  # too short to mask safely
    logging.getLogger("bot").info("abc of the handbook: password policy, see section 4")
    assert records(out)[0]["event"] == "abc of the handbook: password policy, see section 4"


def test_per_request_library_chatter_shows_only_when_debugging(tmp_path):
    out = io.StringIO()
    configure_logging(make_settings(tmp_path, log_level="INFO"), stream=out)
    logging.getLogger("httpx").info("HTTP Request: POST https://slack.com/api/chat.postMessage")
    logging.getLogger("httpx").warning("retrying")
    assert [r["event"] for r in records(out)] == ["retrying"]

    out = io.StringIO()
    configure_logging(make_settings(tmp_path, log_level="DEBUG"), stream=out)
    logging.getLogger("httpx").info("HTTP Request: POST https://slack.com/api/chat.postMessage")
    assert [r["event"] for r in records(out)] == ["HTTP Request: POST https://slack.com/api/chat.postMessage"]
