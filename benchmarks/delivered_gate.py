"""What the generator's gate would decide if it judged the *delivered* answer (issue 14 follow-up).

The gate promotes on held-out NLL. Users receive the generated answer only when the grounding check keeps it, else
the extractive answer. This scores, on the gate's own held-out examples (reviewed Q&A, never the test file), each
model's delivered answer: generate from the example's passages, run the engine's grounding check (which falls back
to the extractive answer), token-F1 against the reference. Run on an ``eval loop`` data directory after its retrain:

    RAGBOT_DATA_DIR=DIR .venv/bin/python benchmarks/delivered_gate.py VERSION
"""

from __future__ import annotations

import sys
from typing import Any

from app.cli.common import open_engine
from rag_engine.eval.scores import token_f1
from rag_engine.scope import CollectionScope
from rag_engine.training.dataset import build_training_set
from rag_engine.values import GeneratedText, SearchHit


def main() -> None:
    version = sys.argv[1]
    engine = open_engine()
    config = engine.config
    k = config.retrieval.search_k

    def retrieve(question: str, collection_ids: list[int]) -> list[SearchHit]:
        return engine.retriever.search(question, CollectionScope.of(collection_ids), k, None)

    heldout = build_training_set(engine.db, config.training, retrieve=retrieve,
                                 shown_passages=config.generation.generation_passages).heldout
    generator: Any = engine.generator
    print(f"{len(heldout)} held-out examples")
    print("| model | generated F1 | delivered F1 | kept |\n|---|---:|---:|---:|")
    for adapter in (None, version):
        generator.set_active_adapter(adapter)
        raw: list[float] = []
        delivered: list[float] = []
        kept = 0
        for example in heldout:
            hits = example.hits()
            prompt = generator.build_prompt(example.question, hits, [])
            text, _, _ = generator.generate_from_text(generator.render(prompt.messages))
            result = GeneratedText(text=text, model=generator.model_name, passages=prompt.passages)
            final, why = engine._check_grounding(example.question, result, hits, [])
            kept += why is None
            raw.append(token_f1(text, example.answer))
            delivered.append(token_f1(final.text, example.answer))
        n = len(heldout)
        print(f"| {adapter or 'base'} | {sum(raw) / n:.3f} | {sum(delivered) / n:.3f} | {kept}/{n} |")


if __name__ == "__main__":
    main()
