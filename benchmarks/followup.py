"""Retrieval for follow-up questions in a thread: the question as asked, the
previous rule (last user turn + question), the standalone rewrite of
``rag_engine.followup`` and a hand-written standalone question (upper bound).

    .venv/bin/python benchmarks/followup.py [--data benchmarks/data/followups.jsonl]

Each row of the data set is a thread from ``examples/handbook``: earlier user
questions, a follow-up, a hand-written standalone version of it, and where the
answer is (document, section, a phrase of the passage). A hit is a retrieved
chunk of that document whose heading path contains the section and whose text
contains the phrase. The earlier questions are answered by the engine
(extractive) to build the thread as the bot would see it. Rows are split in
half: ``design`` rows were used to write the rule, ``heldout`` rows were not;
``topic_switch`` rows are new questions asked inside a thread (the rule must
leave them alone). Embedded Postgres + the default embedder, default search
settings (hybrid, k=5, no reranker); the handbook is ingested into a persistent
data directory (``benchmarks/out/followup-data``). Writes
``benchmarks/out/followup.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.configs import engine_config
from app.settings import Settings
from rag_engine.engine import RagEngine
from rag_engine.followup import standalone_question
from rag_engine.scope import CollectionScope
from rag_engine.values import SearchHit, Turn

COLLECTION = "handbook"


def last_user_turn(question: str, history: list[Turn]) -> str:
    """The rule before the rewrite: the last user turn is searched together with the question."""
    earlier = [t.text for t in history if t.role == "user"][-1:]
    return " ".join([*earlier, question])


METHODS: dict[str, Callable[[dict, list[Turn]], str]] = {
    "raw follow-up": lambda row, history: row["followup"],
    "last user turn + follow-up (before)": lambda row, history: last_user_turn(row["followup"], history),
    "rewritten (followup.py)": lambda row, history: standalone_question(row["followup"], history),
    "hand-written standalone": lambda row, history: row["standalone"],
}


def is_gold(hit: SearchHit, row: dict) -> bool:
    return (hit.source_uri.endswith("/" + row["doc"]) and row["section"] in hit.heading_path
            and row["evidence"].casefold() in hit.text.casefold())


def thread(engine: RagEngine, scope: CollectionScope, questions: list[str]) -> list[Turn]:
    """The earlier turns as the bot stores them: each question with the engine's answer."""
    turns: list[Turn] = []
    for question in questions:
        answer = engine.answer(question, scope, turns)
        turns += [Turn("user", question), Turn("assistant", answer.text)]
    return turns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "benchmarks" / "data" / "followups.jsonl")
    parser.add_argument("--docs", type=Path, default=ROOT / "examples" / "handbook")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "benchmarks" / "out" / "followup-data")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "followup.json")
    args = parser.parse_args()
    rows = [json.loads(line) for line in args.data.read_text().splitlines() if line.strip()]
    settings = Settings(_env_file=None, data_dir=args.data_dir, database_url=None, generator_backend="extractive",
                        reranker_model=None)
    engine = RagEngine(engine_config(settings), generator=None, reranker=None)
    engine.ingest([args.docs], COLLECTION)
    scope = engine.scope_for([COLLECTION])

    results: list[dict] = []
    rewrite_s: list[float] = []
    for row in rows:
        history = thread(engine, scope, row["history"])
        result = {"id": row["id"], "split": row["split"], "kind": row["kind"], "ranks": {}, "queries": {}}
        for name, method in METHODS.items():
            t0 = time.perf_counter()
            query = method(row, history)
            if name.startswith("rewritten"):
                rewrite_s.append(time.perf_counter() - t0)
            hits = engine.search(query, scope, k=5)
            rank = next((i for i, h in enumerate(hits, start=1) if is_gold(h, row)), None)
            result["ranks"][name], result["queries"][name] = rank, query
        results.append(result)

    groups = [("follow-ups, design half", "followup", "design"), ("follow-ups, held-out half", "followup", "heldout"),
              ("follow-ups, all", "followup", None), ("topic switches in a thread", "topic_switch", None)]
    table = []
    print("| rows | n | " + " | ".join(f"{m} hit@1 / hit@5" for m in METHODS) + " |")
    print("|---|---:|" + "---:|" * len(METHODS))
    for label, kind, split in groups:
        chosen = [r for r in results if r["kind"] == kind and (split is None or r["split"] == split)]
        if not chosen:
            continue
        cells = {}
        for name in METHODS:
            ranks = [r["ranks"][name] for r in chosen]
            cells[name] = {k: sum(1 for x in ranks if x is not None and x <= k) / len(ranks) for k in (1, 5)}
        table.append({"rows": label, "n": len(chosen), **cells})
        print(f"| {label} | {len(chosen)} | " + " | ".join(f"{cells[m][1]:.2f} / {cells[m][5]:.2f}" for m in METHODS)
              + " |")
    rewrite_us = sorted(s * 1e6 for s in rewrite_s)
    print(f"\nrewrite time per question: median {rewrite_us[len(rewrite_us) // 2]:.0f} µs, "
          f"max {rewrite_us[-1]:.0f} µs")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"table": table, "rows": results}, indent=2))
    engine.close()


if __name__ == "__main__":
    main()
