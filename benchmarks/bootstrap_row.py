"""One answer path on held-out questions, next to the extractive answer to the same questions: the "bootstrap"
row of ``ragbot eval loop --bootstrap`` without the loop's Q&A retrain (or the base model's row, when no
adapter is active).

    RAGBOT_DATA_DIR=... python benchmarks/bootstrap_row.py COLLECTION QA_TEST.jsonl OUT.json

Run it after ``ragbot ingest DOCS -c COLLECTION`` (base model) and again after ``ragbot lora bootstrap
--collection COLLECTION`` (the day-one adapter). Results of this stop: ``benchmarks/results/bootstrap/``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.cli.common import open_engine, settings
from app.eval_loop import answer_all, served_by
from rag_engine.eval.answer_eval import load_qa
from rag_engine.eval.loop_report import BOOTSTRAP, EXTRACTIVE, kept_vs_extractive, summarize_row


def main() -> None:
    collection, qa, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    s = settings()
    engine = open_engine(s)
    extractive = open_engine(s, db=engine.db, embedder=engine.embedder, generator=None,
                             reranker=engine.retriever.reranker)
    test = load_qa(qa)
    scope = engine.scope_for([collection])
    engine.adapter_watcher.check_once()
    row = summarize_row(BOOTSTRAP, served_by(engine), answer_all(engine, test, scope))
    quoted = summarize_row(EXTRACTIVE, "extractive", answer_all(extractive, test, scope))
    kept = kept_vs_extractive(row, quoted)
    out.write_text(json.dumps({"rows": [asdict(row), asdict(quoted)], "kept_vs_extractive": asdict(kept)}, indent=2))
    for r in (row, quoted):
        print(f"{r.name} | {r.model} | F1 {r.token_f1:.3f} | citation {r.citation_hit_rate} | abstention "
              f"{r.abstention_rate:.3f} | kept {r.kept_rate:.3f} | invented {r.invented_rate} | "
              f"p50 {r.p50_ms / 1000:.2f} s | p95 {r.p95_ms / 1000:.2f} s | {r.fallbacks}")
    print(asdict(kept))


if __name__ == "__main__":
    main()
