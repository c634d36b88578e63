"""Generation benchmark: load time, time to first token, tokens/s and answer latency.

    python benchmarks/generation.py                  # SmolLM2 default, CPU (+ CUDA when available)
    python benchmarks/generation.py --model PATH --device cpu --questions 8

Baselines in the same run: the one-off GGUF conversion vs the cached load (when
the default model had to be converted), and beam search vs greedy tokens/s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from app.configs import engine_config
from app.settings import Settings
from rag_engine.config import DEFAULT_GENERATOR_MODEL
from rag_engine.generation.models import default_model_dir, is_converted, resolve_generator_model
from rag_engine.generation.transformers_backend import TransformersGenerator
from rag_engine.values import SearchHit

_HANDBOOK = {
    "Vacation policy": [
        "Every employee gets 25 days of paid vacation per calendar year, accrued monthly.",
        "Up to 5 unused vacation days carry over to the next year; the rest expire on March 31.",
        "Vacation requests go to your manager in the HR portal at least two weeks ahead.",
    ],
    "Remote work": [
        "Staff may work remotely up to two days a week; Tuesdays are office days for everyone.",
        "Working from abroad is allowed for up to 20 days a year with your manager's approval.",
        "A home-office allowance of 300 euros is paid once, in your second month.",
    ],
    "Expenses": [
        "Submit receipts in the finance portal within 30 days; reimbursement follows with the next salary.",
        "Hotels up to 150 euros per night are approved without review; above that needs a director's sign-off.",
        "Client dinners are capped at 60 euros per person including drinks.",
    ],
    "Deploys": [
        "Production deploys happen on Tuesday and Thursday mornings after the release checklist.",
        "Every change needs one approving review and a green pipeline before merging to main.",
        "Roll back with `deploy rollback` and the previous release tag; tell #incidents first.",
    ],
    "On-call": [
        "On-call engineers acknowledge pages within 15 minutes, day or night.",
        "The on-call week starts Monday at 10:00; swaps are agreed in #oncall and added to the rota.",
        "Each on-call week is compensated with one extra day off.",
    ],
    "Security": [
        "Passwords live in the company password manager; never paste secrets into chat.",
        "Report a lost laptop to security@acme.example within one hour.",
        "Two-factor authentication is mandatory for email, code hosting and the VPN.",
    ],
}
QUESTIONS = [
    ("How many vacation days do I get per year?", "Vacation policy"),
    ("Can I carry unused vacation over?", "Vacation policy"),
    ("How many days a week can I work from home?", "Remote work"),
    ("What is the hotel limit per night?", "Expenses"),
    ("When do production deploys happen?", "Deploys"),
    ("How do I roll back a release?", "Deploys"),
    ("How fast must on-call answer a page?", "On-call"),
    ("What do I do if I lose my laptop?", "Security"),
]


def _hits(topic: str) -> list[SearchHit]:
    return [
        SearchHit(chunk_id=i, document_id=hash(topic) % 10_000, collection_id=1, title=topic,
                  source_uri=f"handbook/{topic.lower().replace(' ', '-')}.md", heading_path="", text=text,
                  score=1.0 - i / 10)
        for i, text in enumerate(_HANDBOOK[topic])
    ]


@dataclass
class Row:
    device: str
    load_s: float
    ttft_s: float
    greedy_tps: float
    beam_tps: float
    p50_s: float
    p95_s: float
    sample: str


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def bench_device(settings: Settings, model: str | Path, device: str, n_questions: int, num_beams: int) -> Row:
    settings = settings.model_copy(update={"generator_device": device})
    gen = TransformersGenerator(engine_config(settings).generation, model=model)
    started = time.perf_counter()
    gen.load()
    load_s = time.perf_counter() - started
    questions = [QUESTIONS[i % len(QUESTIONS)] for i in range(n_questions)]
    prompts = [gen.prompt_text(q, _hits(topic)) for q, topic in questions]
    gen.generate_ids(prompts[0], max_new_tokens=4)  # warm-up (allocator, kernels)

    def timed(fn, *args, **kwargs):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        result = fn(*args, **kwargs)
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0, result

    # time to first token = prompt prefill + one decoding step
    ttft = statistics.median(timed(gen.generate_ids, p, max_new_tokens=1)[0] for p in prompts)

    latencies, greedy_tokens, greedy_time, sample = [], 0, 0.0, ""
    for q, topic in questions:  # the full answer path: prompt building, generation, decoding
        seconds, out = timed(gen.generate, q, _hits(topic), [])
        latencies.append(seconds)
        greedy_tokens += out.completion_tokens
        greedy_time += seconds
        sample = sample or out.text
    beam_tokens, beam_time = 0, 0.0
    for p in prompts:
        seconds, (_, new) = timed(gen.generate_ids, p, num_beams=num_beams, do_sample=False, early_stopping=True)
        beam_tokens += len(new)
        beam_time += seconds
    return Row(device, load_s, ttft, greedy_tokens / greedy_time, beam_tokens / beam_time,
               _percentile(latencies, 0.5), _percentile(latencies, 0.95), sample)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_GENERATOR_MODEL, help="'default' (SmolLM2), a path or hub id")
    parser.add_argument("--device", choices=["all", "cpu", "cuda"], default="all",
                        help="'all' = CPU, plus CUDA when available")
    parser.add_argument("--questions", type=int, default=len(QUESTIONS))
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--num-beams", type=int, default=4)
    parser.add_argument("--data-dir", type=Path, default=None, help="where the converted default model is cached")
    args = parser.parse_args()

    console = Console(width=None if sys.stdout.isatty() else 120)  # keep the table readable in logs
    overrides: dict[str, object] = {"generator_model": args.model, "max_new_tokens": args.max_new_tokens}
    if args.data_dir is not None:
        overrides["data_dir"] = args.data_dir
    settings = Settings(**overrides)
    generation = engine_config(settings).generation

    conversion_s = None
    if args.model == DEFAULT_GENERATOR_MODEL and not is_converted(default_model_dir(generation)):
        console.print(f"converting the GGUF default into {default_model_dir(generation)} (one-off)…")
        started = time.perf_counter()
        resolve_generator_model(generation)
        conversion_s = time.perf_counter() - started
    model = resolve_generator_model(generation)

    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    devices = [d for d in devices if d == "cpu" or torch.cuda.is_available()]
    rows = [bench_device(settings, model, d, args.questions, args.num_beams) for d in devices]

    table = Table(title=f"generation: {Path(str(model)).name}, {args.questions} questions × 3 passages, "
                        f"max_new_tokens={args.max_new_tokens}, torch threads={torch.get_num_threads()}")
    for col in ("device", "load s", "TTFT s", "greedy tok/s", f"beam{args.num_beams} tok/s", "greedy/beam",
                "latency p50 s", "latency p95 s"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(r.device, f"{r.load_s:.2f}", f"{r.ttft_s:.3f}", f"{r.greedy_tps:.1f}", f"{r.beam_tps:.1f}",
                      f"{r.greedy_tps / r.beam_tps:.2f}×", f"{r.p50_s:.2f}", f"{r.p95_s:.2f}")
    console.print(table)
    if conversion_s is not None:
        cached = rows[0].load_s
        console.print(f"first load (GGUF conversion + save): {conversion_s:.1f} s; cached load: {cached:.2f} s "
                      f"({conversion_s / cached:.0f}× faster)")
    console.print(f"sample answer ({rows[0].device}): {rows[0].sample!r}")


if __name__ == "__main__":
    main()
