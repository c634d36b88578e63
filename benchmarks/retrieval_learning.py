"""Retrieval that learns from feedback: a query adapter trained, gated and applied, before / after.

    .venv/bin/python benchmarks/retrieval_learning.py [--data-dir /tmp/retrieval_learning/data]
        [--sets tts-handbook msmarco-5k] [--ingest-only]

Everything runs through the product path: documents are ingested by ``RagEngine`` (the
data directory is reused, so a second run embeds nothing: the embedded PostgreSQL
holds the vectors), pairs go through ``rag_engine.training.retrieval_pairs``, the
candidate through ``train_retrieval`` (hard negatives mined from the index, the gate
on held-out *training* questions, registration, activation), and "after" is
``Retriever.search`` with the active version applied. Nothing is tuned on a test split.

Sets:
- ``tts-handbook``: the pages of ``docs/`` ingested as files; ``qa-train.jsonl`` is
  imported as curated Q&A (its ``source`` page is the positive: the page's chunk
  sharing most words with the answer), ``qa-test.jsonl`` is the test. Judged per
  page: a question's one relevant document is its ``source`` page.
- ``msmarco-5k``: BEIR layout; the 43 queries split by a seeded shuffle (seed 13)
  into train / test halves. Train queries' judged passages (grade >= 1) are the
  positives (graded); test queries are scored with graded nDCG@10.

Per set, before (raw queries) and after (the trained version applied: its query adapter and
the fusion weight it learned, ``rag_engine.training.fusion_weights``), on the test
questions: nDCG@10, hit@1, hit@5, in vector mode and in the default hybrid mode, and the
two learned parts apart;
training time on this CPU; the gate's verdict on the held-out training questions.
Each set runs with the other set's version switched off (one version is active per
deployment). Writes ``benchmarks/results/retrieval_learning.md`` (and ``.json``).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHARED = ROOT.parent / "shared" / "eval"
RESULTS = ROOT / "benchmarks" / "results"
SEED = 13
DEPTH = 50  # chunks retrieved per test question (mapped to documents, best chunk first)


def open_engine(data_dir: Path) -> Any:
    from app.configs import engine_config
    from app.settings import Settings
    from rag_engine.engine import RagEngine

    settings = Settings(_env_file=None, data_dir=data_dir, generator_backend="extractive", reranker_model=None,
                        database_url=None)
    return RagEngine(engine_config(settings), generator=None, reranker=None)


def ingest(engine: Any, name: str) -> str:
    from rag_engine.eval.beir import load_beir

    collection = f"rl-{name}"
    t0 = time.perf_counter()
    if name == "msmarco-5k":
        report = engine.ingest_records(list(load_beir(SHARED / "msmarco-5k").records()), collection)
    else:
        report = engine.ingest([SHARED / "tts-handbook" / "docs"], collection)
    print(f"{name}: ingested ({report.embedded} embedded, {time.perf_counter() - t0:.0f}s)", flush=True)
    return collection


def doc_ranking(hits: list[Any]) -> list[str]:
    """Documents in the engine's order, each at its best chunk."""
    seen: dict[str, None] = {}
    for hit in hits:
        seen.setdefault(hit.source_uri, None)
    return list(seen)


def score(engine: Any, scope: Any, questions: list[tuple[str, dict[str, int]]], mode: str,
          unit: str = "page") -> dict[str, float]:
    """Mean nDCG@10 / hit@1 / hit@5; ``unit`` "page" ranks documents (best chunk first), "section" chunks."""
    from rag_engine.training.retrieval_gate import score_rankings

    rankings: list[list[int]] = []
    judgments: list[dict[int, int]] = []
    ids: dict[str, int] = {}
    for question, judged in questions:
        hits = engine.retriever.search(question, scope, DEPTH, mode, rerank=False)
        docs = doc_ranking(hits) if unit == "page" else [str(h.chunk_id) for h in hits]
        rankings.append([ids.setdefault(d, len(ids)) for d in docs])
        judgments.append({ids.setdefault(d, len(ids)): g for d, g in judged.items()})
    s = score_rankings(rankings, judgments)
    return {"ndcg10": s.ndcg10, "hit1": s.hit1, "hit5": s.hit5, "questions": s.questions}


def tts_sets(engine: Any, collection: str) -> tuple[Any, list[tuple[str, dict[str, int]]],
                                                    list[tuple[str, dict[str, int]]]]:
    """Pairs mined from the curated import of qa-train; test questions judged by source page, and by section:
    the page's chunk sharing most words with the answer (the rule that picks a curated pair's positive)."""
    from app.configs import engine_config
    from app.settings import Settings
    from rag_engine.eval.answer_eval import load_qa
    from rag_engine.store.retrieval_pairs import RetrievalPairRepo
    from rag_engine.training.curated import import_jsonl
    from rag_engine.training.retrieval_pairs import best_chunk, mine_pairs

    report = import_jsonl(engine.db, SHARED / "tts-handbook" / "qa-train.jsonl", collection=collection)
    print(f"tts-handbook: curated import {report.added} added, {report.duplicates} already there", flush=True)
    config = engine_config(Settings(_env_file=None, data_dir=engine.config.data_dir)).training
    pairs = mine_pairs(engine.db, config)
    uris = _uris_by_suffix(engine, collection)
    items = load_qa(SHARED / "tts-handbook" / "qa-test.jsonl")
    test = [(it.question, {uris[str(it.source)]: 1}) for it in items]
    repo = RetrievalPairRepo(engine.db)
    cid = engine.collection_ids([collection])[0]
    sections = []
    for it in items:
        rows = repo.document_chunks(str(it.source), [cid])
        best = rows[best_chunk(it.answer, it.question, [(r.heading_path, r.text) for r in rows])]
        sections.append((it.question, {str(best.chunk_id): 1}))
    return pairs, test, sections


def answer_items(engine: Any, pairs: Any) -> dict[str, list[Any]]:
    """What users receive is judged on two sets nothing was fitted on: the test questions, and the training
    questions the gate held out (with their reference answers)."""
    from rag_engine.eval.answer_eval import load_qa

    heldout = {p.question for p in pairs.heldout}
    train = [it for it in load_qa(SHARED / "tts-handbook" / "qa-train.jsonl") if it.question in heldout]
    return {"test": load_qa(SHARED / "tts-handbook" / "qa-test.jsonl"), "gate held-out": train}


def answers(engine: Any, items: list[Any], collection: str) -> dict[str, float]:
    """The extractive answers (the default path's fallback, and what a retrieval change moves first) scored
    against the references: token-F1 and citation hit, hybrid retrieval as configured."""
    from rag_engine.eval.answer_eval import evaluate_answers

    summary = evaluate_answers(engine, items, [collection]).summary
    return {"token_f1": summary["token_f1"], "citation_hit": summary["citation_hit_rate"],
            "questions": summary["questions"]}


def _uris_by_suffix(engine: Any, collection: str) -> dict[str, str]:
    from rag_engine.store.training_examples import TrainingExampleRepo

    cid = engine.collection_ids([collection])[0]
    rows = TrainingExampleRepo(engine.db).trainable_chunks([cid])
    return {r.source_uri.split("/docs/", 1)[1]: r.source_uri for r in rows if "/docs/" in r.source_uri}


def msmarco_sets(engine: Any, collection: str) -> tuple[Any, list[tuple[str, dict[str, int]]], dict[str, int]]:
    """Train / test by a seeded query split; train queries' judged passages as graded positives."""
    from rag_engine.eval.beir import load_beir, source_uri
    from rag_engine.store.training_examples import TrainingExampleRepo
    from rag_engine.training.retrieval_pairs import PairSet, RetrievalPair, split_pairs

    ds = load_beir(SHARED / "msmarco-5k")
    qids = sorted(ds.qrels)
    random.Random(SEED).shuffle(qids)
    train_q, test_q = qids[: len(qids) // 2], qids[len(qids) // 2:]
    cid = engine.collection_ids([collection])[0]
    chunks_of: dict[str, list[int]] = {}
    for r in TrainingExampleRepo(engine.db).trainable_chunks([cid]):
        chunks_of.setdefault(r.source_uri, []).append(r.chunk_id)
    pairs: list[RetrievalPair] = []
    for q in train_q:
        judged = [(c, g) for doc, g in ds.qrels[q].items() if g > 0 for c in chunks_of.get(source_uri(doc), [])]
        pairs.append(RetrievalPair(ds.queries[q], tuple(c for c, _ in judged), "curated", 0, (cid,),
                                   tuple(g for _, g in judged)))
    fraction = engine.config.training.train_heldout_fraction
    train, heldout = split_pairs(pairs, fraction)
    test = [(ds.queries[q], {source_uri(d): g for d, g in ds.qrels[q].items() if g > 0}) for q in test_q]
    return PairSet(train, heldout, Counter()), test, {"train_queries": len(train_q), "test_queries": len(test_q)}


def run_set(engine: Any, name: str) -> dict[str, Any]:
    from rag_engine.training import retrieval_registry as registry
    from rag_engine.training.retrieval_pipeline import train_retrieval

    collection = ingest(engine, name)
    scope = engine.scope_for([collection])
    extra: dict[str, Any] = {}
    sections: list[tuple[str, dict[str, int]]] = []
    if name == "msmarco-5k":
        pairs, test, extra = msmarco_sets(engine, collection)
    else:
        pairs, test, sections = tts_sets(engine, collection)

    answer_sets = answer_items(engine, pairs) if name == "tts-handbook" else {}

    def measure() -> dict[str, Any]:
        found: dict[str, Any] = {mode: score(engine, scope, test, mode) for mode in ("vector", "hybrid")}
        found.update({f"{mode} (section)": score(engine, scope, sections, mode, "section")
                      for mode in ("vector", "hybrid") if sections})
        found["answers"] = {label: answers(engine, items, collection) for label, items in answer_sets.items()}
        return found

    registry.deactivate(engine.db)
    before = measure()
    t0 = time.perf_counter()
    result = train_retrieval(engine.db, engine.embedder, engine.store.chunks, engine.config.training,
                             retrieval=engine.config.retrieval, pairs=pairs)
    wall = time.perf_counter() - t0
    registry.activate(engine.db, result.version)  # "after" is the trained version, whatever the gate said
    after = measure()
    registry.deactivate(engine.db)
    parts = ablation(engine, registry.load(engine.db, result.version), test, sections, scope)
    out = {"set": name, "version": result.version, "status": result.status, "gate": result.verdict.reason,
           "gate_passed": result.verdict.passed, "heldout": result.candidate.questions,
           "heldout_baseline": result.baseline.as_dict(), "heldout_candidate": result.candidate.as_dict(),
           "pairs": result.snapshot, "train_seconds": round(result.stats.seconds, 1),
           "mine_train_judge_seconds": round(wall, 1), "steps": result.stats.steps,
           "test_questions": len(test), "before": before, "after": after, **extra,
           "vector_weights": {str(c): w for c, w in registry.load(engine.db, result.version).vector_weights.items()}}
    out["serving_mode"] = engine.config.retrieval.search_mode
    out["parts"] = parts
    # the controls are judged against raw queries, as the first candidate was (nothing active)
    out["gate_if_vector_served"] = vector_served_gate(engine, pairs)
    if name == "tts-handbook":
        out["shuffled_control"] = shuffled_control(engine, pairs)
    print(json.dumps(out, indent=1), flush=True)
    registry.deactivate(engine.db)
    if result.status == "active":  # leave the data directory as the gate decided
        registry.activate(engine.db, result.version)
    return out


def ablation(engine: Any, trained: Any, test: list[tuple[str, dict[str, int]]],
             sections: list[tuple[str, dict[str, int]]], scope: Any) -> dict[str, Any]:
    """The version's two learned parts apart, hybrid mode on the test questions: the adapter with the configured
    weights, and the learned weights with raw queries."""
    import numpy as np

    from rag_engine.query_transform import PinnedQueryAdapter, QueryAdapter

    parts = {"adapter only": QueryAdapter(trained.matrix, trained.rank),
             "fusion weight only": QueryAdapter(np.eye(trained.dim, dtype=np.float32),
                                                vector_weights=trained.vector_weights)}
    before = engine.retriever.query_adapter
    found: dict[str, Any] = {}
    try:
        for label, adapter in parts.items():
            engine.retriever.query_adapter = PinnedQueryAdapter(label, adapter)
            found[label] = {"hybrid": score(engine, scope, test, "hybrid")}
            if sections:
                found[label]["hybrid (section)"] = score(engine, scope, sections, "hybrid", "section")
    finally:
        engine.retriever.query_adapter = before
    return found


def vector_served_gate(engine: Any, pairs: Any) -> dict[str, Any]:
    """The same pairs trained and judged again as a deployment serving vector search alone would judge them
    (kept, never activated): the gate judges the ranking the serving mode gives."""
    from rag_engine.training.retrieval_pipeline import train_retrieval

    vector = engine.config.retrieval.model_copy(update={"search_mode": "vector"})
    result = train_retrieval(engine.db, engine.embedder, engine.store.chunks, engine.config.training,
                             retrieval=vector, pairs=pairs, activate=False)
    return {"version": result.version, "passed": result.verdict.passed, "gate": result.verdict.reason}


def shuffled_control(engine: Any, pairs: Any) -> dict[str, Any]:
    """A deliberately harmful set: every training question paired with another one's chunk (seeded). The gate,
    on the same held-out questions, must refuse it (registered as rejected, never activated)."""
    from dataclasses import replace

    from rag_engine.training.retrieval_pairs import PairSet
    from rag_engine.training.retrieval_pipeline import train_retrieval

    order = list(range(len(pairs.train)))
    random.Random(SEED).shuffle(order)
    shuffled = [replace(p, positives=pairs.train[j].positives, grades=pairs.train[j].grades)
                for p, j in zip(pairs.train, order, strict=True)]
    result = train_retrieval(engine.db, engine.embedder, engine.store.chunks, engine.config.training,
                             retrieval=engine.config.retrieval,
                             pairs=PairSet(shuffled, pairs.heldout, Counter()), activate=True)
    return {"version": result.version, "status": result.status, "gate": result.verdict.reason,
            "heldout_candidate": result.candidate.as_dict(), "heldout_baseline": result.baseline.as_dict()}


def write_markdown(rows: list[dict[str, Any]], settings: dict[str, Any]) -> str:
    lines = ["# Retrieval learning: query adapter before / after", "",
             "`benchmarks/retrieval_learning.py`; test questions only (never trained on, never tuned on). "
             f"Top {DEPTH} chunks; judged per document (tts-handbook: the source page; msmarco-5k: graded passages), "
             "and for tts-handbook also per section (\"(section)\": the page's chunk sharing most words with the "
             "answer, the rule that picks a curated pair's positive).", "",
             "| set | mode | nDCG@10 before | after | hit@1 before | after | hit@5 before | after | test q |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        for mode in (m for m in r["before"] if m != "answers"):
            b, a = r["before"][mode], r["after"][mode]
            lines.append(f"| {r['set']} | {mode} | {b['ndcg10']:.3f} | {a['ndcg10']:.3f} | {b['hit1']:.3f} | "
                         f"{a['hit1']:.3f} | {b['hit5']:.3f} | {a['hit5']:.3f} | {r['test_questions']} |")
    lines += ["", "What users receive: extractive answers (the default path's fallback) before / after, token-F1 and "
              "citation hit against the references.", "",
              "| set | questions | token-F1 before | after | citation hit before | after |",
              "|---|---|---|---|---|---|"]
    for r in rows:
        for label, b in r["before"]["answers"].items():
            a = r["after"]["answers"][label]
            lines.append(f"| {r['set']} {label} | {b['questions']} | {b['token_f1']:.3f} | {a['token_f1']:.3f} | "
                         f"{b['citation_hit']:.3f} | {a['citation_hit']:.3f} |")
    lines += ["", "The learned version's two parts apart (hybrid mode, test questions): the query adapter with the "
              "configured fusion weight, and the learned fusion weight with raw queries.", "",
              "| set | mode | part | nDCG@10 | hit@1 | hit@5 |", "|---|---|---|---|---|---|"]
    for r in rows:
        for label, modes in r["parts"].items():
            for mode, m in modes.items():
                lines.append(f"| {r['set']} | {mode} | {label} | {m['ndcg10']:.3f} | {m['hit1']:.3f} | "
                             f"{m['hit5']:.3f} |")
    lines += ["", "| set | pairs train / held-out | rows (question, chunk) | hard neg. | training time (CPU) | "
              "mine + train + judge | gate in the serving mode (held-out training questions) | status | "
              "fusion weight learned | gate if served by vector search |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        p = r["pairs"]
        lines.append(f"| {r['set']} | {p['train']} / {p['heldout']} | {p['rows']} | {p['hard_negatives']} | "
                     f"{r['train_seconds']:.1f} s ({r['steps']} steps) | {r['mine_train_judge_seconds']:.1f} s | "
                     f"{r['gate']} ({r['serving_mode']}) | {r['status']} | "
                     f"{', '.join(f'{w:.2f}' for w in r['vector_weights'].values()) or 'none (configured)'} | "
                     f"{r['gate_if_vector_served']['gate']} "
                     f"({'passes' if r['gate_if_vector_served']['passed'] else 'refused'}) |")
    for r in rows:
        if "shuffled_control" in r:
            c = r["shuffled_control"]
            lines += ["", f"Control ({r['set']}): the same training questions with their chunks shuffled among them "
                      f"-> version {c['version']} **{c['status']}** ({c['gate']})."]
    lines += ["", "Training times are wall times on this machine's CPU (2 cores, shared with whatever else runs)."]
    lines += ["", "Settings: " + ", ".join(f"`{k}={v}`" for k, v in settings.items()), ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/retrieval_learning/data"))
    parser.add_argument("--sets", nargs="+", default=["tts-handbook", "msmarco-5k"])
    parser.add_argument("--ingest-only", action="store_true")
    args = parser.parse_args()
    engine = open_engine(args.data_dir)
    try:
        if args.ingest_only:
            for name in args.sets:
                ingest(engine, name)
            return
        rows = [run_set(engine, name) for name in args.sets]
        t = engine.config.training
        settings = {"retrieval_adapter_rank": t.retrieval_adapter_rank, "retrieval_train_epochs":
                    t.retrieval_train_epochs, "retrieval_hard_negatives": t.retrieval_hard_negatives,
                    "retrieval_promotion_margin": t.retrieval_promotion_margin,
                    "train_heldout_fraction": t.train_heldout_fraction, "embedder": engine.embedder.model_name}
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "retrieval_learning.json").write_text(json.dumps({"rows": rows, "settings": settings}, indent=1))
        (RESULTS / "retrieval_learning.md").write_text(write_markdown(rows, settings))
        print(write_markdown(rows, settings))
    finally:
        engine.close()


if __name__ == "__main__":
    main()
