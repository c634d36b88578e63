"""Discord mention-to-reply latency: 50 concurrent @mentions, answered from the handbook.

    python benchmarks/discord_reply.py                       # 50 concurrent mentions, extractive answers
    python benchmarks/discord_reply.py --concurrency 100 --single 20

Everything is real except Discord itself: MESSAGE_CREATE payloads go through
discord.py's own parser and dispatch to the adapter, which answers via the bot
core from the sample handbook on an embedded Postgres, and posts through
discord.py's HTTP client to a local fake of Discord's REST API
(``tests/discord_fakes.py``). Latency = event dispatched → reply POST received
by the fake (so it includes the typing indicator, rendering and the HTTP send).

Baselines measured in the same run, same process and database:
  * ``core.ask x1`` — the bot core's ``ask`` alone, one at a time (no Discord at all);
  * ``mention x1`` — one mention at a time on an idle bot.
The figures that matter: ``mention xN`` p50/p95 against ``mention x1`` (queueing
under load) and ``mention x1`` against ``core.ask x1`` (what the adapter adds).
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

from adapters.discord import RagbotClient
from adapters.testing.discord_gateway import FakeDiscord, Person, connect, drain, snowflake
from app.configs import bot_config, discord_config, engine_config
from app.settings import Settings
from bot.core import BotCore
from bot.types import Actor, AskRequest, Location
from rag_engine.engine import RagEngine

HANDBOOK = ROOT / "examples" / "handbook"
QUESTIONS = ROOT / "benchmarks" / "data" / "handbook_feedback.jsonl"
console = Console(width=120)  # keep the table readable in logs and pipes


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def load_questions(limit: int) -> list[str]:
    lines = [json.loads(line) for line in QUESTIONS.read_text().splitlines() if line.strip()]
    return [row["question"] for row in lines[:limit]]


async def core_alone(core: BotCore, questions: list[str], n: int) -> list[float]:
    """The baseline without Discord: ``BotCore.ask`` awaited one at a time."""
    took = []
    for i in range(n):
        req = AskRequest(Actor("discord", f"base{i}"), Location("discord", "g", "c"), questions[i % len(questions)],
                         thread_id=None, event_id=f"baseline:{snowflake()}")
        started = time.perf_counter()
        reply = await core.ask(req)
        took.append(time.perf_counter() - started)
        if reply.kind in ("error", "rate_limited"):
            raise RuntimeError(f"baseline ask failed: {reply.text}")
    return took


async def mentions(client: RagbotClient, fake: FakeDiscord, questions: list[str], n: int,
                   *, at_once: bool) -> list[float]:
    """Seconds from each MESSAGE_CREATE dispatch to the fake receiving its reply."""
    people = [Person(snowflake(), f"user{i}") for i in range(n)]
    payloads = [fake.message_create(people[i], f"<@{fake.bot.id}> {questions[i % len(questions)]}")
                for i in range(n)]
    started: dict[int, float] = {}
    for payload in payloads:
        started[int(payload["id"])] = time.perf_counter()
        client._connection.parse_message_create(payload)
        if not at_once:
            await drain()
    await drain()
    replies = {}
    for call in fake.find("POST", fake.channel_messages_path()):
        ref = (call.body or {}).get("message_reference", {}).get("message_id")
        if ref in started and ref not in replies:
            replies[ref] = call.at  # the first part of the answer
    missing = set(started) - set(replies)
    if missing:
        raise RuntimeError(f"{len(missing)} mentions got no reply")
    return [replies[mid] - started[mid] for mid in started]


async def run(args: argparse.Namespace) -> None:
    fake = await FakeDiscord().start()
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="ragbot-discord-bench-"))
    settings = Settings(_env_file=None, data_dir=data_dir, database_url=None, generator_backend=args.generator,
                        discord_api_base=fake.base_url, rate_limit_user_per_min=1e6, rate_limit_user_burst=10**6,
                        rate_limit_channel_per_min=1e6, rate_limit_channel_burst=10**6)
    with console.status("Embedded Postgres, embedder, ingesting the handbook…"):
        engine = RagEngine(engine_config(settings))
        engine.ingest([HANDBOOK], "handbook")
    core = BotCore(bot_config(settings), engine)
    client = RagbotClient(core, discord_config(settings))
    await connect(client, fake)
    questions = load_questions(args.questions)
    try:
        await core_alone(core, questions, 3)  # warm-up: embedder, pools, caches
        rows = []
        base = await core_alone(core, questions, args.single)
        rows.append(("core.ask x1 (no Discord)", base))
        single = await mentions(client, fake, questions, args.single, at_once=False)
        rows.append(("mention x1 (one at a time)", single))
        wall = time.perf_counter()
        burst = await mentions(client, fake, questions, args.concurrency, at_once=True)
        wall = time.perf_counter() - wall
        rows.append((f"mention x{args.concurrency} (at once)", burst))
    finally:
        await client.close()
        core.writes.close()
        await fake.stop()
        engine.close()

    base_p50 = statistics.median(base)
    single_p50 = statistics.median(single)
    table = Table(title=f"Discord mention → reply ({args.generator} answers, handbook, "
                        f"{settings.search_mode} search)")
    for col in ("scenario", "n", "p50 s", "p95 s", "max s", "p50 / core.ask x1", "p50 / mention x1"):
        table.add_column(col, justify="right" if col != "scenario" else "left")
    for name, values in rows:
        p50 = statistics.median(values)
        table.add_row(name, str(len(values)), f"{p50:.3f}", f"{percentile(values, 0.95):.3f}", f"{max(values):.3f}",
                      f"{p50 / base_p50:.2f}×", f"{p50 / single_p50:.2f}×")
    console.print(table)
    console.print(f"{args.concurrency} mentions answered in {wall:.2f} s wall "
                  f"({args.concurrency / wall:.1f} answers/s); one at a time they'd take ≈ "
                  f"{single_p50 * args.concurrency:.2f} s.")
    if args.json:
        Path(args.json).write_text(json.dumps({name: sorted(v) for name, v in rows}, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=50, help="mentions fired at once")
    parser.add_argument("--single", type=int, default=10, help="one-at-a-time samples for the baselines")
    parser.add_argument("--questions", type=int, default=50, help="distinct handbook questions to cycle through")
    parser.add_argument("--generator", default="extractive", choices=["extractive", "transformers", "openai"],
                        help="answer generator (extractive keeps the figure about the bot, not the model)")
    parser.add_argument("--data-dir", help="where the embedded Postgres lives (default: a fresh temp dir)")
    parser.add_argument("--json", help="also write the raw latencies here")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
