"""Load benchmark: concurrent asks through the bot core against the embedded database.

    python benchmarks/load.py                          # concurrency 1, 10, 50; 60 asks each
    python benchmarks/load.py --concurrency 1,50 --requests 100 --outage
    python benchmarks/load.py --concurrency 50 --requests 50 --generator transformers --max-new-tokens 32

For each concurrency level N it runs ``--requests`` asks (unique users, handbook
questions) with at most N in flight, and reports throughput, p50/p95/p99 latency,
the longest event-loop stall, measured by a heartbeat task that sleeps 10 ms and
records how late it wakes up, and the process' peak RSS so far (the embedded
Postgres runs in other processes and is not counted). The first level is the
baseline: the other rows show their throughput and p50 as a ratio to it.
Answers are extractive unless ``--generator transformers`` (the configured
model, SmolLM2-135M by default); ``RAGBOT_GENERATION_CONCURRENCY`` and
``RAGBOT_GENERATION_QUEUE_TIMEOUT_S`` are read from the environment as usual.
``--outage`` also stops the database and measures how long users wait for
"temporarily unavailable" (then starts it again).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.configs import bot_config, engine_config
from app.settings import Settings
from bot.core import UNAVAILABLE, BotCore
from bot.types import Actor, AskRequest, Location
from rag_engine.engine import RagEngine

HEARTBEAT_S = 0.010
console = Console(width=180)


@dataclass
class LevelResult:
    concurrency: int
    requests: int
    seconds: float
    throughput: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_stall_ms: float
    peak_rss_mb: float
    peak_generations: int | None  # the most generation-pool slots held at once so far (None: no pool)
    kinds: dict[str, int]
    fallbacks: dict[str, int]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def peak_rss_mb() -> float:
    """This process' peak resident set size so far (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_questions() -> list[str]:
    questions = [q["question"] for q in json.loads((ROOT / "examples" / "questions.json").read_text())]
    feedback = ROOT / "benchmarks" / "data" / "handbook_feedback.jsonl"
    if feedback.exists():
        questions += [json.loads(line)["question"] for line in feedback.read_text().splitlines() if line.strip()]
    return questions


class Heartbeat:
    """Measures event-loop lag: how late a 10 ms sleep wakes up."""

    def __init__(self) -> None:
        self.max_lag = 0.0
        self._task: asyncio.Task | None = None

    async def _beat(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(HEARTBEAT_S)
            self.max_lag = max(self.max_lag, loop.time() - start - HEARTBEAT_S)

    def __enter__(self) -> Heartbeat:
        self._task = asyncio.get_running_loop().create_task(self._beat())
        return self

    def __exit__(self, *exc) -> None:
        assert self._task is not None
        self._task.cancel()


async def run_level(core: BotCore, questions: list[str], concurrency: int, requests: int, tag: str) -> LevelResult:
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    kinds: dict[str, int] = {}
    fallbacks: dict[str, int] = {}
    where = Location("slack", "TLOAD", f"C-{tag}")

    async def one(i: int) -> None:
        async with gate:
            req = AskRequest(Actor("slack", f"U{tag}-{i}"), where, questions[i % len(questions)],
                             event_id=f"{tag}-{i}-{time.time_ns()}")
            start = time.perf_counter()
            reply = await core.ask(req)
            latencies.append(time.perf_counter() - start)
            kinds[reply.kind] = kinds.get(reply.kind, 0) + 1
            code = reply.meta.get("fallback", "-")  # "-": the model's own answer (or not found / ask back)
            fallbacks[code] = fallbacks.get(code, 0) + 1

    with Heartbeat() as beat:
        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(requests)))
        seconds = time.perf_counter() - started
    return LevelResult(concurrency, requests, seconds, requests / seconds, percentile(latencies, 50) * 1000,
                       percentile(latencies, 95) * 1000, percentile(latencies, 99) * 1000, beat.max_lag * 1000,
                       peak_rss_mb(), pool.peak_in_use if (pool := core.engine.generation_pool) else None,
                       kinds, fallbacks)


async def run_outage(core: BotCore, questions: list[str], asks: int) -> dict[str, float]:
    db = core.db
    if db.embedded is None:
        raise SystemExit("--outage needs the embedded database")
    await asyncio.to_thread(db.embedded.stop)
    try:
        latencies: list[float] = []
        unavailable = 0

        async def one(i: int) -> None:
            nonlocal unavailable
            start = time.perf_counter()
            reply = await core.ask(AskRequest(Actor("slack", f"UOUT{i}"), Location("slack", "TLOAD", "C-outage"),
                                              questions[i % len(questions)]))
            latencies.append(time.perf_counter() - start)
            unavailable += reply.text == UNAVAILABLE

        with Heartbeat() as beat:
            await asyncio.gather(*(one(i) for i in range(asks)))
    finally:
        await asyncio.to_thread(db.embedded.start)
    recovered = await core.ask(AskRequest(Actor("slack", "UBACK"), Location("slack", "TLOAD", "C-outage"),
                                          questions[0]))
    return {"asks": asks, "unavailable": unavailable, "p50_ms": percentile(latencies, 50) * 1000,
            "max_ms": max(latencies) * 1000, "max_stall_ms": beat.max_lag * 1000,
            "recovered": float(recovered.kind in ("answer", "not_found", "ask_back"))}


def build_core(args: argparse.Namespace) -> BotCore:
    generation = {} if args.max_new_tokens is None else {"max_new_tokens": args.max_new_tokens}
    settings = Settings(_env_file=None, data_dir=args.data_dir, generator_backend=args.generator, **generation,
                        rate_limit_user_per_min=1e6, rate_limit_user_burst=1_000_000,
                        rate_limit_channel_per_min=1e6, rate_limit_channel_burst=1_000_000)
    with console.status("Opening the embedded database and loading the embedder…"):
        engine = RagEngine(engine_config(settings), reranker=None)
    with console.status(f"Ingesting {args.docs}…"):
        report = engine.ingest([args.docs], "handbook")
    console.print(f"handbook: {report.documents_written} written, {report.documents_unchanged} unchanged")
    return BotCore(bot_config(settings), engine)


async def main_async(args: argparse.Namespace) -> None:
    core = build_core(args)
    questions = load_questions()
    await run_level(core, questions, 2, 6, "warmup")
    levels = [int(x) for x in args.concurrency.split(",")]
    results = []
    for n in levels:
        with console.status(f"concurrency {n}: {args.requests} asks…"):
            results.append(await run_level(core, questions, n, args.requests, f"n{n}"))
    base = results[0]
    settings = core.engine.config.generation
    answers = ("extractive answers" if settings.generator_backend == "extractive" else
               f"{settings.generator_backend} {settings.generator_model}, {settings.max_new_tokens} new tokens, "
               f"generation concurrency {settings.generation_concurrency}, "
               f"queue timeout {settings.generation_queue_timeout_s:g} s")
    table = Table(title=f"Bot core load ({args.requests} asks per level, {answers}, embedded Postgres)")
    for col in ("concurrency", "asks/s", "p50 ms", "p95 ms", "p99 ms", "max loop stall ms", "peak RSS MB",
                "peak generations", f"asks/s vs N={base.concurrency}", f"p50 vs N={base.concurrency}", "replies",
                "fallback codes"):
        table.add_column(col, justify="right")
    for r in results:
        table.add_row(str(r.concurrency), f"{r.throughput:.2f}", f"{r.p50_ms:.0f}", f"{r.p95_ms:.0f}",
                      f"{r.p99_ms:.0f}", f"{r.max_stall_ms:.1f}", f"{r.peak_rss_mb:.0f}",
                      str(r.peak_generations or "-"), f"{r.throughput / base.throughput:.2f}x",
                      f"{r.p50_ms / base.p50_ms:.2f}x",
                      ", ".join(f"{k} {v}" for k, v in sorted(r.kinds.items())),
                      ", ".join(f"{k} {v}" for k, v in sorted(r.fallbacks.items())))
    console.print(table)
    stats = core.writes.queue.stats
    console.print(f"writes: {stats.written} direct, {stats.queued} queued, {stats.given_up} given up")
    output = {"levels": [asdict(r) for r in results]}
    if args.outage:
        outage = await run_outage(core, questions, args.outage_asks)
        out_table = Table(title="Database stopped: time to 'temporarily unavailable'")
        for col in ("asks", "unavailable replies", "p50 ms", "max ms", "max loop stall ms", "recovered after start"):
            out_table.add_column(col, justify="right")
        out_table.add_row(str(outage["asks"]), str(outage["unavailable"]), f"{outage['p50_ms']:.0f}",
                          f"{outage['max_ms']:.0f}", f"{outage['max_stall_ms']:.1f}",
                          "yes" if outage["recovered"] else "NO")
        console.print(out_table)
        output["outage"] = outage
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(output, indent=2))
    core.writes.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", default="1,10,50", help="comma-separated levels; the first is the baseline")
    parser.add_argument("--requests", type=int, default=60, help="asks per level")
    parser.add_argument("--docs", type=Path, default=ROOT / "examples" / "handbook")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "benchmarks" / "out" / "load-data")
    parser.add_argument("--outage", action="store_true", help="also measure replies while the database is down")
    parser.add_argument("--outage-asks", type=int, default=20)
    parser.add_argument("--generator", choices=("extractive", "transformers", "openai"), default="extractive",
                        help="answer backend (transformers/openai use the configured model)")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="override RAGBOT_MAX_NEW_TOKENS")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here as JSON")
    args = parser.parse_args()
    if args.requests < 1:
        parser.error("--requests must be at least 1")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
