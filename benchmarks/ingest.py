"""Ingestion throughput: ``examples/handbook`` into a fresh embedded database, next to
the raw embedding throughput of the same chunks, in one run.

    .venv/bin/python benchmarks/ingest.py [--backend torch|onnx-int8] [--repeats 2]

The ratio says how much of ingestion is embedding (near 1.0) and how much is
parsing, chunking and writing (the rest).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import text

from app.configs import engine_config
from app.settings import Settings
from rag_engine.embedding import build_embedder
from rag_engine.engine import RagEngine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=Path, default=ROOT / "examples" / "handbook")
    parser.add_argument("--backend", choices=["torch", "onnx-int8"], default="torch")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    args = parser.parse_args()

    cache = ROOT / "benchmarks" / "out" / "data"  # reuse the cached ONNX export
    embedder = build_embedder(engine_config(Settings(data_dir=cache, embedding_backend=args.backend)).embedding)
    embedder.embed_documents(["warm-up"])
    ingest_rates, embed_rates = [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="ragbot-ingest-bench-") as tmp:
            settings = Settings(data_dir=Path(tmp), embedding_backend=args.backend, generator_backend="extractive")
            engine = RagEngine(engine_config(settings), embedder=embedder, generator=None, reranker=None)
            report = engine.ingest([args.docs], "handbook")
            ingest_rates.append(report.chunks_written / report.seconds)
            with engine.db.connect() as conn:
                rows = conn.execute(text("SELECT context, text FROM chunks ORDER BY id")).all()
            texts = [f"{c}\n\n{t}" if c else t for c, t in rows]  # ChunkDraft.embedding_text
            t0 = time.perf_counter()
            embedder.embed_documents(texts)
            embed_rates.append(len(texts) / (time.perf_counter() - t0))
            engine.close()
            engine.db.embedded.stop()
    best_ingest, best_embed = max(ingest_rates), max(embed_rates)

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Ingestion of {args.docs.name} ({report.files} files, {report.chunks_written} chunks, "
                        f"{args.backend}, best of {args.repeats})")
    for col in ("stage", "chunks/s", "ratio to raw embedding"):
        table.add_column(col, justify="right")
    table.add_row("ingest (parse+chunk+embed+write)", f"{best_ingest:.1f}", f"{best_ingest / best_embed:.2f}")
    table.add_row("raw embedding of the same chunks", f"{best_embed:.1f}", "1.00")
    Console(width=120).print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"ingest-{args.backend}.json").write_text(json.dumps({
        "files": report.files, "chunks": report.chunks_written, "backend": args.backend,
        "ingest_chunks_per_s": ingest_rates, "embed_chunks_per_s": embed_rates,
        "ratio": best_ingest / best_embed}, indent=2))


if __name__ == "__main__":
    main()
