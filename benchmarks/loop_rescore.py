"""Re-score an ``eval loop`` run offline under the invented-term grounding rule (``attribution.invents``).

A kept answer that names a name, number or term no passage shown holds is replaced by the extractive answer to
the same question, which is what the engine now does; the extractive fallback is deterministic, so its row of the
same run gives that answer's scores. Needs the run's data directory (for the passages as shown):

    RAGBOT_DATA_DIR=DIR .venv/bin/python benchmarks/loop_rescore.py DIR_OUT/loop.json COLLECTION
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from app.cli.common import open_engine
from rag_engine.invented import invented_terms


def main() -> None:
    loop: dict[str, Any] = json.loads(Path(sys.argv[1]).read_text())
    engine = open_engine()
    scope = engine.scope_for([sys.argv[2]])
    generator: Any = engine.generator
    rows = {r["name"]: r for r in loop["rows"]}
    extractive = {a["question"]: a for a in rows["extractive"]["answers"]}
    print("| row | token-F1 then → now | generated+kept then → now | replaced | kept F1 vs extractive, same q |")
    print("|---|---|---|---:|---|")
    for name, row in rows.items():
        if name == "extractive":
            continue
        scores: list[float] = []
        kept: list[tuple[float, float]] = []
        replaced = 0
        for answer in row["answers"]:
            if answer["kept"]:
                hits = engine.search(answer["question"], scope)
                passages = list(generator.build_prompt(answer["question"], hits, []).passages)
                if invented_terms(answer["answer"], passages, answer["question"]):
                    replaced += 1
                    scores.append(extractive[answer["question"]]["token_f1"])
                    continue
                kept.append((answer["token_f1"], extractive[answer["question"]]["token_f1"]))
            scores.append(answer["token_f1"])
        n = len(row["answers"])
        mine = sum(k for k, _ in kept) / len(kept) if kept else 0.0
        theirs = sum(e for _, e in kept) / len(kept) if kept else 0.0
        print(f"| {name} | {row['token_f1']:.3f} → {sum(scores) / n:.3f} | {row['kept_rate']:.1%} → "
              f"{len(kept) / n:.1%} | {replaced} | {mine:.3f} vs {theirs:.3f} ({len(kept)}) |")


if __name__ == "__main__":
    main()
