"""Embedding backends: fp32 torch vs ONNX Runtime int8, speed and quality in one run.

    .venv/bin/python benchmarks/embedders.py [--n 512] [--repeats 3] [--data ../shared/eval/msmarco-5k]

Throughput: the same ``--n`` msmarco passages embedded by each backend, the two
interleaved ``--repeats`` times (best run kept: other processes only slow a run
down). Quality: cosine between the two backends' vectors, and nDCG@10 of vector
search on msmarco-5k for each backend's own collection (ingested on first use
into ``benchmarks/out/data``: slow once, cached after). The decision rule for
the default backend: int8 must be >= 2x faster and lose <= 0.01 nDCG@10.

Writes ``benchmarks/out/embedders.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.configs import engine_config
from app.settings import Settings
from rag_engine.embedding import build_embedder
from rag_engine.eval.beir import load_beir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "eval" / "msmarco-5k")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "benchmarks" / "out" / "data")
    parser.add_argument("--n", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-quality", action="store_true", help="skip the nDCG@10 runs")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    args = parser.parse_args()

    ds = load_beir(args.data)
    texts = [f"{t}\n\n{x}" if t else x for t, x in list(ds.corpus.values())[: args.n]]
    backends = ("torch", "onnx-int8")
    settings = {b: Settings(data_dir=args.data_dir, embedding_backend=b, generator_backend="extractive",
                            reranker_model=None) for b in backends}
    embedders = {b: build_embedder(engine_config(settings[b]).embedding) for b in backends}
    for e in embedders.values():
        e.embed_documents(texts[:32])  # warm-up
    speed: dict[str, list[float]] = {b: [] for b in backends}
    vectors = {}
    for _ in range(args.repeats):
        for b in backends:
            t0 = time.perf_counter()
            vectors[b] = embedders[b].embed_documents(texts)
            speed[b].append(len(texts) / (time.perf_counter() - t0))
    cos = (vectors["torch"] * vectors["onnx-int8"]).sum(axis=1)
    rows = {b: {"passages_per_s": max(speed[b]), "runs": speed[b]} for b in backends}
    rows["onnx-int8"]["cosine_to_fp32_min"] = float(cos.min())
    rows["onnx-int8"]["cosine_to_fp32_mean"] = float(cos.mean())
    if not args.no_quality:
        from rag_engine.engine import RagEngine
        from rag_engine.eval.retrieval_eval import evaluate_run, ingest_dataset, run_mode

        for b in backends:
            engine = RagEngine(engine_config(settings[b]), embedder=embedders[b], generator=None, reranker=None)
            name = f"eval-{ds.name}-{b}"
            ingest_dataset(engine, ds, name)
            run, seconds = run_mode(engine, ds, engine.scope_for([name]), "vector")
            rows[b]["ndcg@10"] = evaluate_run(ds.qrels, run)["ndcg@10"]
            rows[b]["query_p50_ms"] = float(np.percentile(seconds, 50) * 1000)
            engine.close()
    ratio = rows["onnx-int8"]["passages_per_s"] / rows["torch"]["passages_per_s"]
    loss = rows["torch"].get("ndcg@10", 0) - rows["onnx-int8"].get("ndcg@10", 0)
    verdict = ratio >= 2.0 and loss <= 0.01

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Embedding backends on {len(texts)} msmarco passages (best of {args.repeats})")
    for col in ("backend", "passages/s", "speed-up", "cosine to fp32 (min / mean)", "nDCG@10", "query p50 ms"):
        table.add_column(col, justify="right")
    for b in backends:
        r = rows[b]
        table.add_row(b, f"{r['passages_per_s']:.1f}", f"{r['passages_per_s'] / rows['torch']['passages_per_s']:.2f}x",
                      f"{r['cosine_to_fp32_min']:.4f} / {r['cosine_to_fp32_mean']:.4f}" if b != "torch" else "1",
                      f"{r['ndcg@10']:.4f}" if "ndcg@10" in r else "", f"{r.get('query_p50_ms', 0):.1f}")
    Console(width=150).print(table)
    print(f"int8 speed-up {ratio:.2f}x, nDCG@10 loss {loss:+.4f}: "
          f"{'meets' if verdict else 'does not meet'} the rule for the default (>= 2x, <= 0.01)")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "embedders.json").write_text(json.dumps({"n": len(texts), "rows": rows, "speedup": ratio,
                                                         "ndcg_loss": loss, "meets_rule": verdict}, indent=2))


if __name__ == "__main__":
    main()
