"""Generation A/B on real retrieval: prompt size, latency per answer and answer quality of setting variants.

    python benchmarks/generation_ab.py --variants before,after --questions 15
    python benchmarks/generation_ab.py --variants after,after+int8 --adapter zero

``benchmarks/generation.py`` times the model on short synthetic passages; this
times the generator as the engine calls it, on the passages the retriever finds
for questions of a Q&A file (train questions only: never the test file), with
the settings of each variant. Variants run alternately on each question (A, B,
A, B, ... with the order rotating), so other load on the machine hits them
alike; medians and p95 come from the same run. Token-F1 is against the file's
reference answers (citations stripped).

The retrieved hits are cached in ``--data-dir`` (first run ingests ``--docs``
into an embedded database there). ``--adapter zero`` loads a LoRA adapter with
the trainer's settings whose update is zero (peft's default init): the adapter
path's compute cost with the base model's answers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.configs import engine_config
from app.settings import Settings
from rag_engine.values import SearchHit

SHARED = ROOT.parent / "shared" / "eval" / "tts-handbook"
# name -> settings overrides (on top of the defaults); a "/noprefix" suffix switches the prefix cache off
VARIANTS: dict[str, dict[str, Any]] = {
    "before": {"generation_passages": 0, "passage_max_tokens": 0, "max_new_tokens": 200},
    "after": {},
    "after200": {"max_new_tokens": 200},
    "after+int8": {"generator_quantize": "int8"},
}


def _settings(data_dir: Path, **overrides: Any) -> Settings:
    return Settings(_env_file=None, data_dir=data_dir, database_url=None, generator_backend="transformers",
                    generator_device="cpu", **overrides)


def _hits(args: argparse.Namespace, questions: list[str]) -> list[list[SearchHit]]:
    cache = args.data_dir / f"hits-{args.qa.stem}-{len(questions)}.json"
    if cache.is_file():
        return [[SearchHit(**h) for h in row] for row in json.loads(cache.read_text())]
    from rag_engine.engine import RagEngine

    engine = RagEngine(engine_config(_settings(args.data_dir)), generator=None, reranker=None)
    if "bench" not in engine.store.collections.names():
        print(f"ingesting {args.docs} …", flush=True)
        engine.ingest([args.docs], "bench")
    scope = engine.scope_for(["bench"])
    hits = [engine.search(q, scope, k=5) for q in questions]
    cache.write_text(json.dumps([[_hit_json(h) for h in row] for row in hits]))
    engine.close()
    return hits


def _hit_json(hit: SearchHit) -> dict[str, Any]:
    from dataclasses import asdict

    return {k: v for k, v in asdict(hit).items() if k in SearchHit.__dataclass_fields__}


def _zero_adapter(data_dir: Path, generator: Any) -> Path:
    path = data_dir / "zero-adapter"
    if not (path / "adapter_config.json").is_file():
        from peft import get_peft_model

        from rag_engine.training.trainer import peft_config

        config = engine_config(_settings(data_dir)).training
        net = get_peft_model(generator.handle.model, peft_config(config, generator.handle.model, "lora"))
        net.save_pretrained(path)
        generator.handle.replace_model(net.unload())  # leave the base model as it was
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="before,after")
    parser.add_argument("--questions", type=int, default=15)
    parser.add_argument("--qa", type=Path, default=SHARED / "qa-train.jsonl")
    parser.add_argument("--docs", type=Path, default=SHARED / "docs")
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/ragbot-generation-ab"))
    parser.add_argument("--adapter", choices=["none", "zero"], default="zero")
    parser.add_argument("--out", type=Path, default=None, help="write the table here too")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    args = parser.parse_args()
    if "qa-test" in args.qa.name:
        parser.error("never tune on the test file: use a train file")
    args.data_dir.mkdir(parents=True, exist_ok=True)

    import torch

    from rag_engine.eval.answer_eval import strip_citations
    from rag_engine.eval.scores import token_f1
    from rag_engine.generation.transformers_backend import TransformersGenerator

    if args.threads:
        torch.set_num_threads(args.threads)
    lines = [json.loads(x) for x in args.qa.read_text().splitlines() if x.strip()][: args.questions]
    questions = [x["question"] for x in lines]
    hits = _hits(args, questions)
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    gens: dict[str, TransformersGenerator] = {}
    for name in names:
        base, _, flag = name.partition("/")
        overrides = dict(VARIANTS[base])
        gen = TransformersGenerator(engine_config(_settings(args.data_dir, **overrides)).generation)
        gen.load()
        if flag == "noprefix":
            gen.prefix_cache_enabled = False
        if flag == "all":  # int8 for the output projection too
            from rag_engine.generation import quantize

            quantize.KEEP_FLOAT = ()
            gen._quantize()
            quantize.KEEP_FLOAT = ("lm_head",)
        if args.adapter == "zero":
            gen.load_adapter("zero", _zero_adapter(args.data_dir, gen), activate=True)
        gens[name] = gen
    for gen in gens.values():  # warm-up: allocator, kernels, the prefix cache
        gen.generate(questions[0], hits[0], [])

    rows: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for i, (q, line, found) in enumerate(zip(questions, lines, hits, strict=True)):
        order = names[i % len(names):] + names[: i % len(names)]
        for name in order:
            t0 = time.perf_counter()
            out = gens[name].generate(q, found, [])
            seconds = time.perf_counter() - t0
            rows[name].append({"q": q, "s": seconds, "prompt": out.prompt_tokens, "new": out.completion_tokens,
                               "f1": token_f1(strip_citations(out.text), line["answer"]), "text": out.text})
        print(f"{i + 1}/{len(questions)} " + " ".join(f"{n}={rows[n][-1]['s']:.1f}s" for n in names), flush=True)

    def pct(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]

    head = (f"generation A/B: {len(questions)} questions of {args.qa.name}, adapter={args.adapter}, "
            f"torch threads={torch.get_num_threads()}, variants alternate per question")
    table = [head, f"{'variant':<16}{'prompt tok p50':>15}{'new tok p50':>12}{'new=max':>8}{'p50 s':>8}"
                   f"{'p95 s':>8}{'max s':>8}{'token-F1':>9}{'same text as 1st':>17}"]
    first = rows[names[0]]
    for name in names:
        r = rows[name]
        cap = gens[name].config.max_new_tokens
        same = sum(a["text"] == b["text"] for a, b in zip(r, first, strict=True))
        table.append(f"{name:<16}{statistics.median(x['prompt'] for x in r):>15.0f}"
                     f"{statistics.median(x['new'] for x in r):>12.0f}{sum(x['new'] >= cap for x in r):>8}"
                     f"{pct([x['s'] for x in r], 0.5):>8.2f}{pct([x['s'] for x in r], 0.95):>8.2f}"
                     f"{max(x['s'] for x in r):>8.2f}{statistics.mean(x['f1'] for x in r):>9.3f}"
                     f"{same:>13}/{len(r)}")
    text = "\n".join(table)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
        args.out.with_suffix(".json").write_text(json.dumps(rows, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
