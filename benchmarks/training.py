"""Retraining benchmark: does a LoRA retrain on feedback help, and what does training cost?

    python benchmarks/training.py                     # SmolLM2-135M-Instruct (default), CPU
    python benchmarks/training.py --epochs 2 --generate 12 --full-steps 4

1. The 94 handbook Q&A pairs (``benchmarks/data/handbook_feedback.jsonl``) are
   imported as curated examples into a fresh embedded database with
   ``examples/handbook`` ingested; the product's training-set builder retrieves
   their passages and splits train / held-out by question hash.
2. Before and after a LoRA retrain on the train split: held-out reference NLL
   per answer token, and token-F1 / ROUGE-L of generated answers.
3. Training cost, each in its own subprocess (so peak memory is its own): LoRA
   vs full fine-tuning of the same model on the same batches: tokens/s, peak
   RSS, RSS growth over the loaded model, tracemalloc peak (Python heap only;
   tensors live outside it) and CUDA peak when on a GPU.

The baseline of each ratio is measured in the same run: the base model for
quality, full fine-tuning for speed and memory.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

from app.configs import engine_config

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_DATA = ROOT / "benchmarks" / "data" / "handbook_feedback.jsonl"
DEFAULT_DOCS = ROOT / "examples" / "handbook"


def _settings(args: argparse.Namespace, **extra):
    from app.settings import Settings

    return Settings(
        _env_file=None, data_dir=Path(args.data_dir), database_url=None, generator_backend="transformers",
        generator_model=args.model, generator_device=args.device, max_new_tokens=args.max_new_tokens,
        train_epochs=args.epochs, train_max_steps=args.max_steps, train_learning_rate=args.lr,
        train_batch_size=args.batch_size, train_max_tokens=args.max_train_tokens, search_k=args.search_k,
        max_input_tokens=args.max_input_tokens, eval_generate_max=args.generate,
        adapter_dir=Path(args.data_dir) / "bench-adapters", **extra,
    )


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


class _RssSampler(threading.Thread):
    """Samples this process's RSS every 20 ms; ``peak_mb`` is the largest seen."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_mb = _rss_mb()
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(0.02):
            self.peak_mb = max(self.peak_mb, _rss_mb())

    def stop(self) -> None:
        self._halt.set()
        self.join()
        self.peak_mb = max(self.peak_mb, _rss_mb())


# -- the training subprocess ---------------------------------------------------------
def train_child(args: argparse.Namespace) -> None:
    """Train with one method and print one JSON line of measurements."""
    import torch

    from rag_engine.generation.transformers_backend import TransformersGenerator
    from rag_engine.training.dataset import read_jsonl
    from rag_engine.training.trainer import train_adapter

    if args.threads:
        torch.set_num_threads(args.threads)
    settings = _settings(args)
    examples = read_jsonl(Path(args.examples)).train
    # the loaded model's own footprint, to separate it from what training adds
    gen = TransformersGenerator(engine_config(settings).generation)
    gen.load()
    loaded_rss = _rss_mb()
    sampler = _RssSampler()
    sampler.start()
    tracemalloc.start()
    started = time.perf_counter()
    result = train_adapter(examples, engine_config(settings), Path(args.out) if args.method != "full" else None,
                           handle=gen.handle, method=args.method, show_progress=args.progress)
    wall = time.perf_counter() - started
    _, py_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    sampler.stop()
    peak_rss = sampler.peak_mb  # sampled while training: ru_maxrss would include import-time peaks
    print(json.dumps({
        "method": args.method, "steps": result.steps, "tokens": result.tokens, "seconds": result.seconds,
        "wall_s": wall, "tokens_per_s": result.tokens_per_s, "first_loss": result.first_loss,
        "final_loss": result.final_loss, "trainable_params": result.trainable_params,
        "total_params": result.total_params, "peak_rss_mb": peak_rss, "loaded_rss_mb": loaded_rss,
        "tracemalloc_peak_mb": py_peak / 2**20, "peak_cuda_mb": result.peak_cuda_mb, "device": result.device,
        "path": str(result.path) if result.path else None,
    }), flush=True)


def _run_child(args: argparse.Namespace, method: str, examples: Path, out: Path, max_steps: int) -> dict:
    cmd = [sys.executable, __file__, "_train", "--method", method, "--examples", str(examples), "--out", str(out),
           "--max-steps", str(max_steps)]
    for name in ("data_dir", "model", "device", "epochs", "lr", "batch_size", "max_train_tokens", "search_k",
                 "max_input_tokens", "max_new_tokens", "generate", "threads"):
        cmd += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    if args.progress:
        cmd.append("--progress")
    print(f"[{time.strftime('%H:%M:%S')}] training {method} ...", flush=True)
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- the main run ----------------------------------------------------------------------
def main(args: argparse.Namespace) -> None:
    import torch
    from rich.console import Console
    from rich.table import Table

    from rag_engine.engine import RagEngine
    from rag_engine.generation.transformers_backend import TransformersGenerator
    from rag_engine.scope import CollectionScope
    from rag_engine.training.curated import import_jsonl
    from rag_engine.training.dataset import build_training_set, write_jsonl
    from rag_engine.training.gate import score

    if args.threads:
        torch.set_num_threads(args.threads)
    console = Console()
    work = Path(args.data_dir)
    work.mkdir(parents=True, exist_ok=True)
    settings = _settings(args)
    t0 = time.perf_counter()
    engine = RagEngine(engine_config(settings), generator=None)
    with engine.db.begin() as conn:  # a fresh set each run; documents stay (unchanged files are skipped)
        conn.exec_driver_sql("TRUNCATE curated_examples, adapters RESTART IDENTITY")
    report = engine.ingest([Path(args.docs)], "handbook")
    imported = import_jsonl(engine.db, Path(args.data), collection="handbook")
    training_set = build_training_set(
        engine.db, engine_config(settings).training,
        retrieve=lambda q, ids: engine.retriever.search(q, CollectionScope.of(ids), settings.search_k, None))
    examples = work / "examples.jsonl"
    write_jsonl(training_set, examples)
    console.print(f"data: {report.documents_written + report.documents_unchanged} documents, "
                  f"{imported.added} Q&A imported, {len(training_set.train)} train / {len(training_set.heldout)} "
                  f"held-out (excluded: {dict(training_set.excluded) or 'none'}) in {time.perf_counter() - t0:.0f} s")

    trained = _run_child(args, "lora", examples, work / "bench-adapters" / "lora", args.max_steps)
    # cost: LoRA and full fine-tuning over the same first batches, each in a fresh process
    lora = _run_child(args, "lora", examples, work / "bench-adapters" / "lora-cost", args.cost_steps)
    full = _run_child(args, "full", examples, work / "unused", args.cost_steps) if args.cost_steps > 0 else None

    print(f"[{time.strftime('%H:%M:%S')}] evaluating on {len(training_set.heldout)} held-out examples ...",
          flush=True)
    gen = TransformersGenerator(engine_config(settings).generation)
    gen.load_adapter("lora", Path(trained["path"]))
    t1 = time.perf_counter()
    before = score(gen, None, training_set.heldout, generate_max=args.generate)
    after = score(gen, "lora", training_set.heldout, generate_max=args.generate)
    eval_s = time.perf_counter() - t1

    quality = Table(title=f"Held-out quality ({len(training_set.heldout)} examples; "
                          f"F1/ROUGE-L on {before.generated} generated answers)")
    for col in ("metric", "base model", "LoRA retrain", "after / before"):
        quality.add_column(col, justify="right")
    quality.add_row("reference NLL / token (lower is better)", f"{before.nll:.3f}", f"{after.nll:.3f}",
                    f"{after.nll / before.nll:.3f}")
    quality.add_row("token F1", f"{before.token_f1:.3f}", f"{after.token_f1:.3f}", _ratio(after.token_f1,
                                                                                          before.token_f1))
    quality.add_row("ROUGE-L", f"{before.rouge_l:.3f}", f"{after.rouge_l:.3f}", _ratio(after.rouge_l, before.rouge_l))
    console.print(quality)

    cost = Table(title=f"Training cost on {lora['device']}: the first {args.cost_steps} steps (batch "
                       f"{args.batch_size}, max {args.max_train_tokens} tokens/example, "
                       f"{args.threads or torch.get_num_threads()} threads)")
    for col in ("", "LoRA", "full fine-tune", "LoRA / full"):
        cost.add_column(col, justify="right")
    rows = [
        ("steps", "steps", "{:.0f}"), ("tokens", "tokens", "{:.0f}"), ("training tokens/s", "tokens_per_s", "{:.1f}"),
        ("trainable params", "trainable_params", "{:,.0f}"), ("peak RSS while training (MB)", "peak_rss_mb", "{:.0f}"),
        ("RSS growth over loaded model (MB)", "growth", "{:.0f}"),
        ("gradient + AdamW state, computed (MB)", "state_mb", "{:.1f}"),
        ("tracemalloc peak, Python heap (MB)", "tracemalloc_peak_mb", "{:.1f}"),
        ("loss: first step -> mean of the run", None, ""),
    ]
    for run in (lora, full):
        if run:
            run["growth"] = run["peak_rss_mb"] - run["loaded_rss_mb"]
            # fp32 gradient + AdamW's two moments per trainable parameter: the state that stays
            # allocated between steps (activations come and go within a step)
            run["state_mb"] = run["trainable_params"] * 12 / 2**20
    if lora.get("peak_cuda_mb") is not None:
        rows.append(("CUDA peak (MB)", "peak_cuda_mb", "{:.0f}"))
    for label, key, fmt in rows:
        if key is None:
            cells = [f"{r['first_loss']:.2f} -> {r['final_loss']:.2f}" if r else "-" for r in (lora, full)]
            cost.add_row(label, *cells, "")
            continue
        cells = [fmt.format(r[key]) if r and r.get(key) is not None else "-" for r in (lora, full)]
        cost.add_row(label, *cells, _ratio(lora.get(key), full.get(key) if full else None))
    console.print(cost)
    console.print(f"LoRA retrain: {trained['steps']} steps, {trained['tokens']} tokens in {trained['seconds']:.0f} s "
                  f"= {trained['tokens_per_s']:.1f} tokens/s, loss {trained['first_loss']:.3f} (first step) -> "
                  f"{trained['final_loss']:.3f} (mean of the last epoch); evaluation {eval_s:.0f} s; "
                  f"total {time.perf_counter() - t0:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"before": _asdict(before), "after": _asdict(after), "trained": trained,
                                               "lora": lora, "full": full}, indent=2))


def _asdict(obj) -> dict:
    from dataclasses import asdict

    return asdict(obj)


def _ratio(a, b) -> str:
    return f"{a / b:.2f}" if a is not None and b else "-"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", nargs="?", default="run", choices=["run", "_train"], help=argparse.SUPPRESS)
    p.add_argument("--data", default=str(DEFAULT_DATA), help="Q&A JSONL (question, answer, source)")
    p.add_argument("--docs", default=str(DEFAULT_DOCS), help="documents the answers come from")
    p.add_argument("--data-dir", default="/tmp/ragbot-bench-training", help="embedded database, model cache")
    p.add_argument("--model", default="default", help="generator model (default: SmolLM2-135M-Instruct)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--max-steps", type=int, default=0, help="cap LoRA steps (0 = epochs decide)")
    p.add_argument("--cost-steps", type=int, default=3, help="steps of LoRA and of full fine-tuning to compare cost")
    p.add_argument("--lr", type=float, default=1e-3, help="LoRA learning rate")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--max-train-tokens", type=int, default=384, help="tokens per training example (prompt+answer)")
    p.add_argument("--search-k", type=int, default=2, help="passages per prompt (short prompts train faster)")
    p.add_argument("--max-input-tokens", type=int, default=512, help="serving prompt budget at evaluation")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--generate", type=int, default=12, help="held-out answers generated per model for F1")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--progress", action="store_true", help="training progress bar (stderr)")
    p.add_argument("--json", default=None, help="also write the numbers here")
    p.add_argument("--examples", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--method", default="lora", help=argparse.SUPPRESS)
    return p


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parsed = _parser().parse_args()
    if parsed.mode == "_train":
        train_child(parsed)
    else:
        main(parsed)
