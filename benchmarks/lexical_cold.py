"""BM25 at scale from a cold start: the covering postings key (migration 0008) vs the key before it.

    nice -n 5 .venv/bin/python benchmarks/lexical_scale.py --n 1000000 --bulk --load-only --data-dir /tmp/lex1m
    .venv/bin/python benchmarks/lexical_cold.py --data-dir /tmp/lex1m  # as root: it drops the OS page cache

The database ``benchmarks/lexical_scale.py`` loaded (same synthetic corpus and questions) is timed in two
states, one after the other in the same run:

- ``covering``: as migrated (key ``(chunk_id, term) INCLUDE (tf_body, tf_context, doc_len)``, the shipped
  query, whose exact rescoring reads only that key);
- ``uncovered``: the key rebuilt as migration 0006 made it and the query as it was before 0008 (the
  rescoring reads tf from the postings' heap and the length from ``chunks``).

Before every timed pass the embedded server is stopped, the OS page cache dropped
(``/proc/sys/vm/drop_caches``) and the server started again, so each pass starts with nothing in memory
and each question's first run is what a first touch costs. Each class: 5 + 40 questions, lexical SQL round
trips, then (cold again) hybrid ``Retriever.search`` with the query vector precomputed; then the same
questions once more without a restart (pages in memory). The two states must return the same top 10.

Writes ``benchmarks/out/lexical_cold.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import text

import rag_engine.store.chunks as chunks_sql
from benchmarks.lexical_scale import CAP, CLASSES, QUESTIONS, WARMUP, Corpus, open_db, pct, time_hybrid, time_lexical
from rag_engine.store.database import Database

COVERED_SQL = chunks_sql.BM25_SQL
# the query before migration 0008: the chunk's length from ``chunks``, not from its postings
UNCOVERED_SQL = COVERED_SQL.replace("ct.doc_len", "c.token_count").replace(
    "FROM candidates\n", "FROM candidates\nJOIN chunks c ON c.id = candidates.chunk_id\n")
assert UNCOVERED_SQL != COVERED_SQL and "c.token_count" in UNCOVERED_SQL

KEYS = {
    "covering": "PRIMARY KEY (chunk_id, term) INCLUDE (tf_body, tf_context, doc_len)",
    "uncovered": "PRIMARY KEY (chunk_id, term)",
}


def set_key(db: Database, state: str) -> float:
    """Rebuild the postings key as ``state`` has it (unless it is already so); returns the seconds."""
    with db.connect() as conn:
        now = conn.execute(text("SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                                "WHERE conname = 'chunk_terms_pkey'")).scalar_one()
    if now == KEYS[state]:
        return 0.0
    t0 = time.perf_counter()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("SET maintenance_work_mem = '1GB'"))
        conn.execute(text("ALTER TABLE chunk_terms DROP CONSTRAINT chunk_terms_pkey"))
        conn.execute(text(f"ALTER TABLE chunk_terms ADD CONSTRAINT chunk_terms_pkey {KEYS[state]}"))
        conn.execute(text("CHECKPOINT"))
    return time.perf_counter() - t0


def go_cold(db: Database) -> None:
    """Nothing of the database in memory: server stopped, OS page cache dropped, server started."""
    assert db.embedded is not None, "needs the embedded server (it is restarted)"
    db.engine.dispose()
    db.embedded.stop()
    subprocess.run(["sync"], check=True)
    Path("/proc/sys/vm/drop_caches").write_text("3\n")
    db.embedded.start()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=Path("/tmp/lex1m"))
    ap.add_argument("--n", type=int, default=1_000_000)
    args = ap.parse_args()
    settings, db, cid = open_db(args.data_dir / f"n{args.n}")
    corpus = Corpus()
    questions = {cls: corpus.questions(cls, QUESTIONS + WARMUP) for cls in CLASSES}
    out: dict[str, object] = {"n": args.n, "cap": CAP, "states": {}}
    tops: dict[str, dict[str, list[list[int]]]] = {}
    try:
        for state in ("covering", "uncovered"):
            rebuild_s = set_key(db, state)
            chunks_sql.BM25_SQL = COVERED_SQL if state == "covering" else UNCOVERED_SQL
            rows: dict[str, dict[str, float]] = {}
            tops[state] = {}
            with db.connect() as conn:
                key_mb = float(conn.execute(text("SELECT pg_relation_size('chunk_terms_pkey') / 2.0 ^ 20"))
                               .scalar_one())
            for cls, qs in questions.items():
                go_cold(db)
                load = [os.getloadavg()[0]]
                cold, tops[state][cls] = time_lexical(db, cid, qs, cap=CAP)
                go_cold(db)
                hybrid_cold = time_hybrid(db, settings, cid, qs, cap=CAP)
                warm, _ = time_lexical(db, cid, qs, cap=CAP)
                hybrid_warm = time_hybrid(db, settings, cid, qs, cap=CAP)
                load.append(os.getloadavg()[0])
                rows[cls] = {"cold_p50": pct(cold, 50), "cold_p95": pct(cold, 95),
                             "hybrid_cold_p50": pct(hybrid_cold, 50), "hybrid_cold_p95": pct(hybrid_cold, 95),
                             "warm_p50": pct(warm, 50), "warm_p95": pct(warm, 95),
                             "hybrid_warm_p95": pct(hybrid_warm, 95), "load_avg_1m": load}
                print(f"{state} {cls}: " + ", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}"
                                                     for k, v in rows[cls].items()), flush=True)
            out["states"][state] = {"key": KEYS[state], "key_mb": key_mb,  # type: ignore[index]
                                    "rebuild_s": rebuild_s, "classes": rows}
        out["same_top10"] = {cls: tops["covering"][cls] == tops["uncovered"][cls] for cls in CLASSES}
        print(f"restored the migrated key in {set_key(db, 'covering'):.0f} s")
    finally:
        chunks_sql.BM25_SQL = COVERED_SQL
        db.dispose()
    path = ROOT / "benchmarks" / "out" / "lexical_cold.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    print(json.dumps(out["same_top10"]), f"wrote {path}")


if __name__ == "__main__":
    main()
