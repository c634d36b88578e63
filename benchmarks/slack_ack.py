"""Slack ack latency: how fast ``/ask`` is acknowledged while the bot is busy answering.

    python benchmarks/slack_ack.py                    # 50 concurrent /ask, extractive answers
    python benchmarks/slack_ack.py --concurrency 100 --rounds 3

Everything is real except Slack itself: signed HTTP requests go to the Bolt app's
HTTP endpoint (signature check, auth, listener, ack) on a local port; the bot
core answers from the sample handbook on an embedded Postgres; answers go to a
local mock of Slack's Web API and ``response_url`` (``tests/slack_fakes.py``).

Baselines measured in the same run, on the same server and event loop:
  * ``noop`` — a trivial Bolt app on the same port setup whose handler acks and does nothing,
    hit with the same number of concurrent requests;
  * ``/ask x1`` — one request at a time on an idle bot.
Slack's limit is 3 s; the figure that matters is ``/ask xN`` p95 against ``noop``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console
from rich.table import Table
from slack_bolt.async_app import AsyncApp

from adapters.slack import build_app
from adapters.slack.clients import web_client
from adapters.slack.server import EVENTS_PATH, bound_port, start_http
from adapters.testing.slack_server import MockSlackApi, SlackSender
from app.configs import bot_config, engine_config, slack_config
from app.settings import Settings
from bot.core import BotCore
from rag_engine.engine import RagEngine

SECRET = "benchmark-signing-secret"
SLACK_ACK_LIMIT_S = 3.0
console = Console()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def burst(sender: SlackSender, command: str, questions: list[str], n: int) -> list[float]:
    """Fire ``n`` signed slash commands at once; seconds until each HTTP ack came back."""
    bodies = [sender.command_body(command, questions[i % len(questions)], user=f"U{i:03d}", channel=f"C{i % 5}")
              for i in range(n)]

    async def one(body: str) -> float:
        started = time.perf_counter()
        status, _ = await sender.post(body, "application/x-www-form-urlencoded")
        if status != 200:
            raise RuntimeError(f"request refused with HTTP {status}")
        return time.perf_counter() - started

    return list(await asyncio.gather(*(one(b) for b in bodies)))


def noop_app(settings: Settings) -> AsyncApp:
    """The baseline: same Bolt middleware (signature, auth), a handler that only acks."""
    app = AsyncApp(client=web_client(slack_config(settings)), signing_secret=SECRET)

    @app.command("/noop")
    async def noop(ack) -> None:
        await ack()

    return app


async def run(args: argparse.Namespace) -> None:
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="ragbot-slack-ack-"))
    questions = [q["question"] for q in json.loads((ROOT / "examples" / "questions.json").read_text())]
    api = await MockSlackApi().start()
    settings = Settings(_env_file=None, data_dir=data_dir, database_url=None, generator_backend="extractive",
                        slack_bot_token="xoxb-benchmark", slack_signing_secret=SECRET, slack_api_url=api.api_url,
                        rate_limit_user_per_min=1e6, rate_limit_user_burst=10**6,
                        rate_limit_channel_per_min=1e6, rate_limit_channel_burst=10**6)
    with console.status("Opening the embedded database, loading the embedder, ingesting the handbook…"):
        engine = RagEngine(engine_config(settings), generator=None, reranker=None)
        engine.ingest([ROOT / "examples" / "handbook"], "handbook")
    runners = [await start_http(build_app(BotCore(bot_config(settings), engine), slack_config(settings)),
                                host="127.0.0.1", port=0),
               await start_http(noop_app(settings), host="127.0.0.1", port=0)]
    ask = SlackSender(f"http://127.0.0.1:{bound_port(runners[0])}{EVENTS_PATH}", SECRET, api)
    noop = SlackSender(f"http://127.0.0.1:{bound_port(runners[1])}{EVENTS_PATH}", SECRET, api)

    def answered() -> int:  # each /ask ends with one response_url call: a private reply, or the note's deletion
        return len(api.calls_to("response_url"))

    try:
        await burst(ask, "/ask", questions, 2)  # warm-up: auth.test, first queries, JIT-ish caches
        await api.wait_for(lambda _: answered() >= 2, timeout=120, what="warm-up answers")
        await burst(noop, "/noop", questions, 2)

        results: dict[str, list[float]] = {"noop": [], "/ask x1": [], f"/ask x{args.concurrency}": []}
        answer_s: list[float] = []
        for _ in range(args.rounds):
            results["noop"] += await burst(noop, "/noop", questions, args.concurrency)
            for _ in range(args.single):
                before = answered()
                results["/ask x1"] += await burst(ask, "/ask", questions, 1)
                await api.wait_for(lambda _, before=before: answered() > before, timeout=120, what="the answer")
            before, started = answered(), time.perf_counter()
            results[f"/ask x{args.concurrency}"] += await burst(ask, "/ask", questions, args.concurrency)
            await api.wait_for(lambda _, before=before: answered() >= before + args.concurrency, timeout=600,
                               what="all answers")
            answer_s.append(time.perf_counter() - started)
    finally:
        for runner in runners:
            await runner.cleanup()
        await api.stop()
        engine.close()

    base_p95 = percentile(results["noop"], 0.95)
    table = Table(title=f"Slack /ask ack latency ({args.rounds} round(s), {args.concurrency} concurrent)")
    for column in ("scenario", "requests", "p50 ms", "p95 ms", "max ms", "p95 / noop p95", "all < 3 s"):
        table.add_column(column, justify="right")
    for name, values in results.items():
        p95 = percentile(values, 0.95)
        table.add_row(name, str(len(values)), f"{statistics.median(values) * 1000:.1f}", f"{p95 * 1000:.1f}",
                      f"{max(values) * 1000:.1f}", f"{p95 / base_p95:.2f}x",
                      "yes" if max(values) < SLACK_ACK_LIMIT_S else "NO")
    console.print(table)
    console.print(f"All {args.concurrency} answers delivered after (s): "
                  + ", ".join(f"{s:.1f}" for s in answer_s)
                  + f"  →  {args.concurrency / statistics.median(answer_s):.1f} answers/s (extractive)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--single", type=int, default=10, help="sequential /ask requests per round (idle baseline)")
    parser.add_argument("--data-dir", help="where the embedded database lives (default: a new temp dir)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
