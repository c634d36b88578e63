"""The grounding check on a hand-labelled set: how often it rejects a supported
answer (false reject) and keeps an unsupported one (false keep), with numbers
held strictly (the check today) and by similarity only (the check before).

    .venv/bin/python benchmarks/grounding_calibration.py [--data benchmarks/data/grounding_calibration.jsonl]
        [--threshold 0.5]

Each row gives the passages an answer was generated from (copied from
``examples/handbook``), the answer, a label (supported / unsupported) and a
``kind`` (qualifier_dropped, qualifier_kept, wrong_number, wrong_unit,
paraphrase_ok, verbatim, restated_question, invented_name). The check is the
engine's: ``attribution.support`` then ``attribution.rejection`` at the
configured ``min_grounded_fraction`` (default 0.5), with the default embedder;
no database is needed. Writes ``benchmarks/out/grounding_calibration.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.configs import engine_config
from app.settings import Settings
from rag_engine.attribution import rejection, support
from rag_engine.embedding import build_embedder
from rag_engine.values import SearchHit

CHECKS = {"similarity only (before)": False, "amounts held strictly (now)": True}


def hits_of(passages: list[str]) -> list[SearchHit]:
    return [SearchHit(chunk_id=i, document_id=i, collection_id=1, title="", source_uri="", heading_path="", text=p,
                      score=1.0) for i, p in enumerate(passages, start=1)]


def rates(rows: list[dict], kept: dict[str, bool]) -> dict[str, float | int]:
    good = [r for r in rows if r["label"] == "supported"]
    bad = [r for r in rows if r["label"] == "unsupported"]
    return {"supported": len(good), "unsupported": len(bad),
            "false_reject": sum(not kept[r["id"]] for r in good) / len(good) if good else float("nan"),
            "false_keep": sum(kept[r["id"]] for r in bad) / len(bad) if bad else float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "benchmarks" / "data" / "grounding_calibration.jsonl")
    parser.add_argument("--threshold", type=float, default=None, help="min_grounded_fraction (default: settings)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "grounding_calibration.json")
    args = parser.parse_args()
    settings = Settings(_env_file=None)
    threshold = settings.min_grounded_fraction if args.threshold is None else args.threshold
    embedder = build_embedder(engine_config(settings).embedding)
    rows = [json.loads(line) for line in args.data.read_text().splitlines() if line.strip()]

    kept: dict[str, dict[str, bool]] = {name: {} for name in CHECKS}
    for row in rows:
        hits = hits_of(row["passages"])
        for name, strict in CHECKS.items():
            found = support(row["answer"], hits, len(hits), embedder, strict_amounts=strict)
            kept[name][row["id"]] = rejection(found, threshold) is None

    by_kind: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_kind[row["kind"]].append(row)
    print(f"Grounding check at min_grounded_fraction={threshold:g} on {len(rows)} labelled answers\n")
    print("| rows | supported | unsupported | " + " | ".join(f"{n}: false reject / false keep" for n in CHECKS) + " |")
    print("|---|---:|---:|" + "---:|" * len(CHECKS))
    table = []
    for label, chosen in [("all", rows), *sorted(by_kind.items())]:
        cells = {name: rates(chosen, kept[name]) for name in CHECKS}
        first = next(iter(cells.values()))
        table.append({"rows": label, **cells})
        print(f"| {label} | {first['supported']} | {first['unsupported']} | "
              + " | ".join(_pair(cells[n]) for n in CHECKS) + " |")
    changed = [r["id"] for r in rows if len({kept[n][r["id"]] for n in CHECKS}) > 1]
    print(f"\nverdict changed by the strict amounts: {', '.join(changed) or 'none'}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"threshold": threshold, "table": table, "kept": kept}, indent=2))


def _pair(cell: dict) -> str:
    return " / ".join("–" if v != v else f"{v:.2f}" for v in (cell["false_reject"], cell["false_keep"]))


if __name__ == "__main__":
    main()
