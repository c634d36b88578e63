"""Issue 15 item 4 and issue 20 item 11: stopping a bot loses no acknowledged write, and stops its
embedded PostgreSQL.

The real ``ragbot slack --http`` process runs against a local stand-in for Slack's Web API. Two votes
are acknowledged ("I'll save it as soon as my database is back") while its database is down, so they
wait in the write queue; the process gets SIGTERM, the database comes back during the grace period,
and the process must exit 0 in time with both votes stored and its embedded server stopped.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from adapters.testing.slack_server import TEAM, MockSlackApi, SlackSender
from app.configs import bot_config, engine_config, store_config
from app.settings import Settings
from rag_engine.store import schema as t
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parents[3]
SIGNING_SECRET = "item04-signing-secret"
GRACE_S = 15.0
VPN = "# VPN access\n\nRequest VPN access in the self-service portal; IT approves it within a day.\n"


class _Process:
    """A CLI process whose stderr (JSON log lines) is collected by a thread, so its pipe never fills."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", "from app.cli import app; app()", *args], cwd=ROOT,
                                     env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line)

    def log(self) -> str:
        return "".join(self.lines)

    def kill_if_running(self) -> None:
        """Clean-up after a failed test: never leave a bot (and its database) behind."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def events(self) -> list[str]:
        found = []
        for line in list(self.lines):
            try:
                found.append(json.loads(line)["event"])
            except (ValueError, KeyError, TypeError):
                continue
        return found

    async def wait_for_log(self, text: str, timeout: float) -> None:
        """Wait without blocking the loop: the Slack stand-in runs on it and the bot talks to it meanwhile."""
        deadline = time.monotonic() + timeout
        while not any(text in e for e in self.events()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no log line with {text!r}; exit {self.proc.poll()}; log:\n{self.log()[-4000:]}")
            await asyncio.sleep(0.05)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_ctl(pgdata: Path, *args: str) -> None:
    from pgserver import pg_ctl

    as_root = os.geteuid() == 0
    if as_root:  # pgserver runs Postgres as its own user: keep the path open to it (another session may not)
        from pgserver.utils import ensure_prefix_permissions

        ensure_prefix_permissions(pgdata)
    pg_ctl(list(args), pgdata=pgdata, user="pgserver" if as_root else None, timeout=30)


def _prepare_database(data_dir: Path, embedder, docs: Path) -> None:
    """The bot's data directory with one document ingested; the server stopped again afterwards."""
    from rag_engine.engine import RagEngine
    from rag_engine.store.database import Database

    settings = make_settings(data_dir)
    db = Database.from_config(store_config(settings))
    engine = RagEngine(engine_config(settings), db=db, embedder=embedder, generator=None, reranker=None)
    engine.ingest([docs], "default")
    assert db.close(), "the only user of the embedded server must stop it when it lets go"
    assert not (data_dir / "pgdata" / "postmaster.pid").exists()


def _votes(data_dir: Path) -> list[tuple[int, str, int]]:
    from rag_engine.store.database import Database

    db = Database.from_config(store_config(make_settings(data_dir)))
    try:
        with db.connect() as conn:
            return [tuple(r) for r in conn.execute(select(t.feedback.c.interaction_id, t.feedback.c.user_key,
                                                          t.feedback.c.vote).order_by(t.feedback.c.vote))]
    finally:
        db.close()


def _vote_button(api: MockSlackApi, which: str) -> str:
    """The value of the ``which`` (positive / negative) feedback button on the bot's answer."""
    for call in api.calls_to("chat.postMessage"):
        for block in call.payload.get("blocks") or []:
            for element in block.get("elements", []) if block.get("type") == "context_actions" else []:
                if element.get("type") == "feedback_buttons":
                    return element[f"{which}_button"]["value"]
    raise AssertionError(f"no feedback buttons in {[c.payload.get('text') for c in api.calls]}")


async def test_sigterm_flushes_acknowledged_writes_and_stops_the_embedded_database(tmp_path, embedder):
    data_dir = tmp_path / "data"
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "vpn.md").write_text(VPN)
    _prepare_database(data_dir, embedder, docs)
    pgdata = data_dir / "pgdata"
    # a process that used the server and was killed (SIGKILL) is still on pgserver's list of its users:
    # unless it is forgotten, no process ever counts as the last one and the server is never stopped
    killed = subprocess.Popen([sys.executable, "-c", "pass"])
    killed.wait()
    (pgdata / ".handle_pids.json").write_text(json.dumps([killed.pid]))

    api = await MockSlackApi().start()
    port = _free_port()
    bot = _Process(["slack", "--http", "--host", "127.0.0.1", "--port", str(port)], _bot_env(data_dir, api))
    send = SlackSender(f"http://127.0.0.1:{port}/slack/events", SIGNING_SECRET, api)
    try:
        await bot.wait_for_log("Slack HTTP endpoint on", timeout=90)
        socket_dir = (pgdata / "postmaster.pid").read_text().splitlines()[4]

        await send.event(SlackSender.mention("how do I get VPN access?", ts="1700000100.000100"))
        await api.wait_for(lambda a: a.calls_to("chat.postMessage"), what="the answer")
        up, down = _vote_button(api, "positive"), _vote_button(api, "negative")

        # the database goes away: the votes are acknowledged and wait in the queue
        await asyncio.to_thread(_pg_ctl, pgdata, "-w", "-m", "fast", "stop")
        for value, user in ((up, "U1"), (down, "U2")):
            status, _ = await send.feedback(value, user=user)
            assert status == 200
        await api.wait_for(lambda a: len([c for c in a.calls_to("response_url")
                                          if "as soon as my database is back" in c.payload.get("text", "")]) == 2,
                           what="both votes acknowledged as queued")

        stopped_at = time.monotonic()
        bot.proc.send_signal(signal.SIGTERM)
        # the database comes back while the bot is stopping: what it acknowledged must land
        await asyncio.to_thread(_pg_ctl, pgdata, "-w", "-o", '-h ""', "-o", f"-k {socket_dir}", "-l",
                                str(pgdata / "log"), "start")
        code = await asyncio.to_thread(bot.proc.wait, GRACE_S + 15)
        took = time.monotonic() - stopped_at
    finally:
        bot.kill_if_running()
        await api.stop()

    assert code == 0, bot.log()[-4000:]
    assert took < GRACE_S + 5, f"took {took:.1f} s to stop"
    events = bot.events()
    assert any(e.startswith("SIGTERM received") for e in events), events[-10:]
    done = [e for e in events if e.startswith("shutdown complete")]
    assert done and "2 queued write(s) flushed, 0 given up" in done[0] and "embedded PostgreSQL stopped" in done[0]
    assert not (pgdata / "postmaster.pid").exists(), "the embedded server still holds the data directory"

    votes = _votes(data_dir)  # both acknowledged votes, on the one answer
    assert [(user.rsplit(":", 1)[-1], vote) for _, user, vote in votes] == [("U2", -1), ("U1", 1)], votes
    assert len({interaction_id for interaction_id, _, _ in votes}) == 1


def _bot_env(data_dir: Path, api: MockSlackApi) -> dict[str, str]:
    env = {**os.environ, "RAGBOT_DATA_DIR": str(data_dir), "RAGBOT_GENERATOR_BACKEND": "extractive",
           "RAGBOT_SLACK_BOT_TOKEN": "xoxb-item04-test-token", "RAGBOT_SLACK_SIGNING_SECRET": SIGNING_SECRET,
           "RAGBOT_SLACK_API_URL": api.api_url, "RAGBOT_SLACK_TEAM_IDS": TEAM, "RAGBOT_LOG_JSON": "true",
           "RAGBOT_LOG_LEVEL": "INFO", "RAGBOT_SHUTDOWN_GRACE_S": str(GRACE_S), "RAGBOT_DB_CONNECT_TIMEOUT_S": "2",
           "RAGBOT_RATE_LIMIT_USER_BURST": "100", "RAGBOT_RATE_LIMIT_CHANNEL_BURST": "100"}
    env.pop("RAGBOT_DATABASE_URL", None)
    return env


async def test_sigterm_while_starting_still_stops_the_embedded_database(tmp_path):
    """Issue 20 item 11: a bot stopped before it is ready leaves no server holding its data directory."""
    pgdata = tmp_path / "data" / "pgdata"
    api = await MockSlackApi().start()
    bot = _Process(["slack", "--http", "--host", "127.0.0.1", "--port", str(_free_port())],
                   _bot_env(tmp_path / "data", api))
    try:
        deadline = time.monotonic() + 60
        while not _server_ready(pgdata):  # started its database; migrations and the embedder come next
            assert bot.proc.poll() is None and time.monotonic() < deadline, bot.log()[-4000:]
            await asyncio.sleep(0.05)
        assert not any("Slack HTTP endpoint on" in e for e in bot.events())
        bot.proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(bot.proc.wait, 30)
    finally:
        bot.kill_if_running()
        await api.stop()
    assert code == 0, bot.log()[-4000:]
    assert not (pgdata / "postmaster.pid").exists(), bot.log()[-4000:]


def _server_ready(pgdata: Path) -> bool:
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
    except FileNotFoundError:
        return False
    return len(lines) > 7 and lines[7].strip() == "ready"


def test_the_container_runs_an_init_and_waits_longer_than_the_grace_period():
    """``docker stop`` must reach ragbot (tini as PID 1 forwards SIGTERM) and wait for its clean shutdown."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["tini", "--", "ragbot"]' in dockerfile and "install -y --no-install-recommends tini" in \
        dockerfile
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    grace = Settings.model_fields["shutdown_grace_s"].default
    for name in ("slack", "discord", "worker", "worker-gpu"):
        stop_after = compose["services"][name]["stop_grace_period"]
        assert stop_after.endswith("s") and float(stop_after[:-1]) >= grace + 5, (name, stop_after)


@pytest.mark.parametrize("method", ["ask", "vote", "admin"])
async def test_a_stopping_bot_refuses_new_requests_with_a_next_step(engine, tmp_path, method):
    from bot.core import BotCore
    from bot.lifecycle import SHUTTING_DOWN
    from bot.types import Actor, AskRequest, Location

    core = BotCore(bot_config(make_settings(tmp_path)), engine)
    core.in_flight.close()
    actor, where = Actor("slack", "U1"), Location("slack", TEAM, "C1")
    if method == "ask":
        result = await core.ask(AskRequest(actor, where, "how do I get VPN access?"))
        text = result.text
    elif method == "vote":
        text = (await core.vote(actor, 1, 1)).message
    else:
        text = (await core.admin(actor, where, "status")).message
    assert text == SHUTTING_DOWN and "try again" in text
    assert core.in_flight.count == 0


class _SlowModel:
    """A model still generating when SIGTERM arrives (it then fails, so the answer is quoted)."""

    name = "slow-test-model"

    def generate(self, question, hits, history):
        time.sleep(1.5)
        raise RuntimeError("the slow model gave up")


def test_in_flight_asks_finish_and_unwritable_writes_are_counted(tmp_path, embedder, caplog):
    """In process: the ask being answered at SIGTERM is answered and logged, a later one is refused, and a
    write that cannot reach the database by the deadline is given up, logged and counted."""
    from app.runtime import BotRuntime
    from bot.lifecycle import SHUTTING_DOWN, serve_until_stopped
    from bot.types import Actor, AskRequest, Location
    from bot.write_queue import GIVEN_UP
    from rag_engine.engine import RagEngine
    from rag_engine.store.database import Database, DatabaseUnavailable

    # the grace must outlast the ask (1.5 s of model, then the quote) on a loaded CI machine: 3 s once did not
    settings = make_settings(tmp_path / "data", shutdown_grace_s=6.0)
    db = Database.from_config(store_config(settings))  # a dedicated server: the shutdown stops it
    engine = RagEngine(engine_config(settings), db=db, embedder=embedder, generator=_SlowModel(), reranker=None)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "vpn.md").write_text(VPN)
    engine.ingest([docs], "default")
    runtime = BotRuntime.start(settings, engine)
    where, replies = Location("slack", TEAM, "C1"), {}
    given_up_before = GIVEN_UP.labels(kind="vote")._value.get()

    def never_written() -> None:
        raise DatabaseUnavailable("the database stays away")

    async def serve() -> None:
        answering = asyncio.ensure_future(runtime.core.ask(AskRequest(Actor("slack", "U1"), where,
                                                                      "how do I get VPN access?")))
        await asyncio.sleep(0.3)  # the model is working on it
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.sleep(0.1)
        replies["late"] = await runtime.core.ask(AskRequest(Actor("slack", "U2"), where, "and the VPN client?"))
        replies["answer"] = await answering
        runtime.core.writes.queue.submit("vote", never_written)
        await asyncio.Event().wait()  # the connection: cancelled by the shutdown

    started = time.monotonic()
    serve_until_stopped(runtime, serve)
    took = time.monotonic() - started

    assert replies["late"].text == SHUTTING_DOWN
    assert replies["answer"].kind == "answer" and "self-service portal" in replies["answer"].text
    assert took < 0.4 + 6.0 + 2.0 + 3.0, took  # grace, then at least MIN_FLUSH_S for writes, then the stop
    assert GIVEN_UP.labels(kind="vote")._value.get() == given_up_before + 1
    done = [m for m in caplog.messages if m.startswith("shutdown complete")]
    assert done == ["shutdown complete: 0 queued write(s) flushed, 1 given up, 0 request(s) abandoned; "
                    "embedded PostgreSQL stopped"], caplog.messages[-10:]
    assert not (tmp_path / "data" / "pgdata" / "postmaster.pid").exists()
    reopened = Database.from_config(store_config(settings))
    try:
        with reopened.connect() as conn:
            logged = conn.execute(select(t.interactions.c.user_key, t.interactions.c.status)).all()
    finally:
        reopened.close()
    assert [(user.rsplit(":", 1)[-1], status) for user, status in logged] == [("U1", "fallback")]


class _StuckModel:
    name = "stuck-test-model"

    def generate(self, question, hits, history):
        time.sleep(3.0)  # longer than the grace period
        raise RuntimeError("too late")


def test_a_request_still_running_at_the_deadline_is_abandoned_and_counted(tmp_path, embedder, caplog):
    from app.runtime import BotRuntime
    from bot.lifecycle import ABANDONED, serve_until_stopped
    from bot.types import Actor, AskRequest, Location
    from rag_engine.engine import RagEngine
    from rag_engine.store.database import Database

    settings = make_settings(tmp_path / "data", shutdown_grace_s=0.5)
    db = Database.from_config(store_config(settings))
    engine = RagEngine(engine_config(settings), db=db, embedder=embedder, generator=_StuckModel(), reranker=None)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "vpn.md").write_text(VPN)
    engine.ingest([docs], "default")
    runtime = BotRuntime.start(settings, engine)
    before, exits = ABANDONED._value.get(), []
    asking = []  # a reference keeps the running ask from being garbage-collected

    async def serve() -> None:
        asking.append(asyncio.ensure_future(runtime.core.ask(
            AskRequest(Actor("slack", "U1"), Location("slack", TEAM, "C1"), "how do I get VPN access?"))))
        await asyncio.sleep(0.3)
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.Event().wait()

    started = time.monotonic()
    serve_until_stopped(runtime, serve, hard_exit=exits.append)  # the process would end here, exit code 0
    assert exits == [0] and time.monotonic() - started < 3.0 + 2.0 + 3.0
    assert ABANDONED._value.get() == before + 1
    assert any(m.startswith("1 request(s) still running after 0.5 s: abandoned") for m in caplog.messages)
    assert [m for m in caplog.messages if m.startswith("shutdown complete")] == [
        "shutdown complete: 0 queued write(s) flushed, 0 given up, 1 request(s) abandoned; "
        "embedded PostgreSQL stopped"]
