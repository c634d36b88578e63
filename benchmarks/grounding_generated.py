"""The grounding check calibrated on answers the default generator really wrote.

``grounding_calibration.py`` measures the check on hand-written answers; this
one measures it on SmolLM2-135M-Instruct's own answers to the tts-handbook
*train* questions (never ``qa-test.jsonl``, the reported test set), so the
default ``min_grounded_fraction`` can be chosen from false-reject and
false-keep rates on the outputs users would actually get.

    .venv/bin/python benchmarks/grounding_generated.py generate [--limit 80] [--passages 1] [--offset N]
    .venv/bin/python benchmarks/grounding_generated.py controls [--count 12]
    .venv/bin/python benchmarks/grounding_generated.py label --labels LABELS.jsonl
    .venv/bin/python benchmarks/grounding_generated.py score

``generate`` ingests the handbook into a scratch ``RAGBOT_DATA_DIR`` (embedded
Postgres) and, per question, retrieves as the engine does, skips questions the
engine would not generate for (not found, ask-back) and calls the engine's own
generator directly on those hits (so the check decides nothing), appending one
row per answer: the passages as shown to the model, the hit texts the check
compares with (``check_passages``), the answer, the model and the seconds.
``generate --passages 1`` is a second source: the same model and settings,
shown only the top passage (short prompts; more answers that copy it).
``controls`` adds unsupported controls: an answer labelled supported paired
with the passages of another question (``source`` = ``control_swapped``).
``label`` merges hand labels (``{"id", "label", "kind", "reason"}`` per line)
into the rows. ``score`` runs the engine's check (``attribution.support`` then
``attribution.rejection``, default embedder) at thresholds 0.0..1.0 and writes
``benchmarks/out/grounding_generated.json``.

Label rules (a reader's judgement of the answer against ``passages``, made
without looking at the check's verdict):

- **supported**: every claim a user would act on is stated in (or follows
  directly from) the passages shown, and the answer addresses the question. A
  partial answer is supported if what it says is right; ``[n]`` markers and
  style do not matter. Kinds: ``verbatim`` (copies passage text),
  ``paraphrase_ok`` (rewords it faithfully), ``says_not_found`` (correctly
  says the passages do not answer).
- **unsupported**: any claim a user would act on is absent from or contradicts
  the passages, or the answer does not answer. Kinds: ``invented_fact`` (a
  name, step, rule or term no passage states), ``wrong_number`` (a changed
  amount, date or unit), ``distorted`` (passage words recombined into a claim
  they do not make, e.g. a qualifier dropped or the subject swapped),
  ``restates_question`` (repeats the question or says nothing beyond it),
  ``off_topic`` (true to a passage but not an answer to the question),
  ``empty_garbled`` (empty, truncated mid-claim into nonsense, repetition
  loops), ``false_not_found`` (says the documents do not say when they do),
  ``unrelated_passages`` (controls: the passages shown are another question's).
- A correct answer with one minor unsupported aside is supported only if the
  aside would not mislead (then ``paraphrase_ok``); otherwise unsupported.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from app.configs import engine_config

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

EVAL = ROOT.parent / "shared" / "eval" / "tts-handbook"
DATA = ROOT / "benchmarks" / "data" / "grounding_generated.jsonl"
OUT = ROOT / "benchmarks" / "out" / "grounding_generated.json"
COLLECTION = "tts-handbook"
THRESHOLDS = [round(0.1 * i, 1) for i in range(11)]


def _settings(**overrides: Any) -> Any:
    """The settings the CLI builds (``Settings()``)."""
    from app.settings import Settings

    settings = Settings()
    return settings.model_copy(update=overrides) if overrides else settings


def _read(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    tmp.replace(path)


# -- (a) generate ------------------------------------------------------------------------------------------
def generate(args: argparse.Namespace) -> None:
    from app.cli.common import open_engine
    from rag_engine.generation.ask_back import clarifying_question

    overrides: dict[str, Any] = {"decoding": args.decoding} if args.decoding != "default" else {}
    engine = open_engine(_settings(**overrides))
    variant = "" if args.decoding == "default" else args.decoding
    variant += f"top{args.passages}" if args.passages else ""
    suffix = f"#{variant}" if variant else ""
    source = f"generated_{variant}" if variant else "generated"
    try:
        if COLLECTION not in engine.store.collections.names():
            report = engine.ingest([EVAL / "docs"], COLLECTION)
            print(f"ingested: {report}", flush=True)
        scope = engine.scope_for([COLLECTION])
        generator = engine.generator
        if generator is None:
            raise SystemExit(f"no generator: {engine.generator_error}")
        questions = _read(EVAL / "qa-train.jsonl")[args.offset:]
        done = {r["id"] for r in _read(args.data)}
        made = 0
        for qa in questions:
            if made >= args.limit:
                break
            row_id = qa["id"] + suffix
            if row_id in done:
                made += 1
                continue
            hits = engine.search(qa["question"], scope)
            best = max((h.vector_score or 0.0 for h in hits), default=0.0)
            if not hits or best < engine.config.retrieval.min_relevance:
                print(f"skip (not found): {qa['question']}", flush=True)
                continue
            if clarifying_question(qa["question"], hits) is not None:
                print(f"skip (ask-back): {qa['question']}", flush=True)
                continue
            started = time.perf_counter()
            if args.passages:  # a second source: the same model shown only the top passage(s)
                hits = hits[: args.passages]
            result = generator.generate(qa["question"], hits, [])
            seconds = time.perf_counter() - started
            shown = len(result.passages) or len(hits)
            row = {"id": row_id, "source": source, "question": qa["question"], "gold": qa["answer"],
                   "passages": list(result.passages), "check_passages": [h.text for h in hits[:shown]],
                   "answer": result.text, "generator": result.model, "adapter_version": result.adapter_version,
                   "decoding": engine.config.generation.decoding,
                   "max_new_tokens": engine.config.generation.max_new_tokens,
                   "completion_tokens": result.completion_tokens, "seconds": round(seconds, 2)}
            with args.data.open("a") as f:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
            made += 1
            print(f"{made:3d} {seconds:5.1f}s {result.completion_tokens:3d} tok  {qa['question']}", flush=True)
    finally:
        engine.close()


def controls(args: argparse.Namespace) -> None:
    """Pair up to ``count`` answers labelled supported (they state facts) with the passages of the generated row
    half the file away: the answer stays fluent and factual, but nothing shown supports it."""
    rows = _read(args.data)
    generated = [r for r in rows if r["source"].startswith("generated")]
    chosen = [r for r in generated if r.get("label") == "supported"][: args.count]
    have = {r["id"] for r in rows}
    added = []
    for row in chosen:
        other = generated[(generated.index(row) + len(generated) // 2) % len(generated)]
        control = {**row, "id": row["id"] + "#swapped", "source": "control_swapped", "passages": other["passages"],
                   "check_passages": other["check_passages"], "passages_from": other["id"]}
        for key in ("label", "kind", "reason"):
            control.pop(key, None)
        if control["id"] not in have:
            added.append(control)
    _write(args.data, rows + added)
    print(f"added {len(added)} controls")


# -- (b) labels --------------------------------------------------------------------------------------------
def label(args: argparse.Namespace) -> None:
    labels = {r["id"]: r for r in _read(args.labels)}
    rows = _read(args.data)
    for row in rows:
        found = labels.get(row["id"])
        if found:
            if found["label"] not in ("supported", "unsupported"):
                raise SystemExit(f"{row['id']}: label must be supported/unsupported, not {found['label']!r}")
            row.update({k: found[k] for k in ("label", "kind", "reason")})
    _write(args.data, rows)
    print(f"{sum('label' in r for r in rows)} of {len(rows)} rows labelled")


# -- (c) score ---------------------------------------------------------------------------------------------
def candidate_rejection(answer: str, question: str, passages: list[str]) -> str | None:
    """The cheap rules measured next to the similarity check (now the engine's ``attribution.content_rejection``)."""
    from rag_engine.attribution import content_rejection  # lazy: as the other engine imports here

    return content_rejection(answer, question, passages)


def score(args: argparse.Namespace) -> None:
    from rag_engine.attribution import rejection, support
    from rag_engine.embedding import build_embedder
    from rag_engine.values import SearchHit

    settings = _settings()
    embedder = build_embedder(engine_config(settings).embedding)
    rows = [r for r in _read(args.data) if "label" in r]
    found, extra = {}, {}
    for row in rows:
        hits = [SearchHit(chunk_id=i, document_id=i, collection_id=1, title="", source_uri="", heading_path="",
                          text=t, score=1.0) for i, t in enumerate(row["check_passages"], start=1)]
        found[row["id"]] = support(row["answer"], hits, len(hits), embedder)
        extra[row["id"]] = candidate_rejection(row["answer"], row["question"], row["check_passages"])
    default = settings.min_grounded_fraction
    thresholds = sorted({*THRESHOLDS, default})
    report: dict[str, Any] = {
        "default_threshold": default, "sets": {},
        "rows": {r["id"]: {"fraction": round(found[r["id"]].fraction, 3), "wrong_amounts": list(
            found[r["id"]].wrong_amounts), "candidate_rule": extra[r["id"]], "label": r["label"], "kind": r["kind"],
                           "source": r["source"]} for r in rows}}
    sets = {"generated, engine's passages (greedy)": [r for r in rows if r["source"] == "generated"],
            "generated, top passage only": [r for r in rows if r["source"] == "generated_top1"],
            "all generated": [r for r in rows if r["source"].startswith("generated")],
            "generated + controls": rows}
    seen: list[list[str]] = []
    for name, chosen in sets.items():
        if not chosen or [r["id"] for r in chosen] in seen:
            continue
        seen.append([r["id"] for r in chosen])
        check = {t: {r["id"]: rejection(found[r["id"]], t) is None for r in chosen} for t in thresholds}
        both = {t: {i: k and (not t or extra[i] is None) for i, k in check[t].items()} for t in thresholds}
        table = [_cell(t, chosen, check[t]) for t in thresholds]
        with_rules = [_cell(t, chosen, both[t]) for t in thresholds]
        kinds = _kinds(chosen, {t: check[t] for t in (default, *THRESHOLDS)})
        report["sets"][name] = {"n": len(chosen), "kinds": kinds, "table": table,
                                "check_plus_candidate_rules": with_rules}
        print(f"\n{name}: {len(chosen)} rows ({sum(r['label'] == 'supported' for r in chosen)} supported)")
        for title, cells in (("the engine's check", table), ("the check + candidate rules", with_rules)):
            print(f"\n{title}\n| threshold | false reject | false keep | kept share | supported kept/n "
                  "| unsupported kept/n |\n|---:|---:|---:|---:|---:|---:|")
            for c in cells:
                print(f"| {c['threshold']:.1f}{' (now)' if c['threshold'] == default else ''} "
                      f"| {_pct(c['false_reject'])} | {_pct(c['false_keep'])} | {_pct(c['kept_share'])} "
                      f"| {c['supported_kept']}/{c['supported']} | {c['unsupported_kept']}/{c['unsupported']} |")
        print(f"\n| kind | n | supported | kept at 0.1 / 0.3 / {default:g} (now) / 0.7 / 1.0 |\n|---|---:|---:|---|")
        for kind, cell in kinds.items():
            print(f"| {kind} | {cell['n']} | {cell['supported']} | "
                  + " / ".join(str(cell['kept'][str(t)]) for t in (0.1, 0.3, default, 0.7, 1.0)) + " |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {args.out}")


def _cell(threshold: float, rows: list[dict[str, Any]], kept: dict[str, bool]) -> dict[str, Any]:
    good = [r for r in rows if r["label"] == "supported"]
    bad = [r for r in rows if r["label"] == "unsupported"]
    good_kept, bad_kept = sum(kept[r["id"]] for r in good), sum(kept[r["id"]] for r in bad)
    return {"threshold": threshold, "n": len(rows), "supported": len(good), "unsupported": len(bad),
            "supported_kept": good_kept, "unsupported_kept": bad_kept,
            "false_reject": (len(good) - good_kept) / len(good) if good else None,
            "false_keep": bad_kept / len(bad) if bad else None,
            "kept_share": (good_kept + bad_kept) / len(rows)}


def _kinds(rows: list[dict[str, Any]], kept: dict[float, dict[str, bool]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        cell = out.setdefault(r["kind"], {"n": 0, "supported": 0, "kept": {str(t): 0 for t in kept}})
        cell["n"] += 1
        cell["supported"] += r["label"] == "supported"
        for t, verdicts in kept.items():
            cell["kept"][str(t)] += verdicts[r["id"]]
    return dict(sorted(out.items(), key=lambda kv: -kv[1]["n"]))


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v:.0%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    sub = parser.add_subparsers(dest="step", required=True)
    gen = sub.add_parser("generate", help="generate answers to qa-train questions (appends, resumes)")
    gen.add_argument("--limit", type=int, default=80)
    gen.add_argument("--offset", type=int, default=0, help="start at this qa-train row")
    gen.add_argument("--decoding", choices=["default", "greedy", "sample", "beam"], default="default")
    gen.add_argument("--passages", type=int, default=0, help="show only the top N hits (0: as the engine does)")
    ctl = sub.add_parser("controls", help="add answers paired with another question's passages")
    ctl.add_argument("--count", type=int, default=12)
    lab = sub.add_parser("label", help="merge hand labels into the rows")
    lab.add_argument("--labels", type=Path, required=True)
    sco = sub.add_parser("score", help="false reject / false keep per threshold")
    sco.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    {"generate": generate, "controls": controls, "label": label, "score": score}[args.step](args)


if __name__ == "__main__":
    main()
