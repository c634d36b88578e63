"""The system prefix's attention cache: same answers as without it, less prefill, one entry per adapter."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.configs import engine_config
from app.settings import Settings
from rag_engine.generation.transformers_backend import TransformersGenerator
from rag_engine.testing.tiny_models import make_lora_adapter, make_tiny_llama
from rag_engine.values import SearchHit

QUESTION = "How many vacation days do I get?"
HITS = [SearchHit(chunk_id=i, document_id=i, collection_id=1, title=f"Handbook {i}", source_uri="", heading_path="",
                  text=f"Passage {i}. Every employee gets twenty five days.", score=1.0 / i) for i in (1, 2)]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny")
    llama = make_tiny_llama(root / "llama", max_positions=512)
    return {"llama": llama, "lora_a": make_lora_adapter(llama, root / "lora_a", seed=1),
            "lora_b": make_lora_adapter(llama, root / "lora_b", seed=2)}


def _gen(models: dict[str, Path], tmp_path: Path, cached: bool, **overrides: object) -> TransformersGenerator:
    settings = Settings(data_dir=tmp_path, generator_device="cpu", max_new_tokens=12, no_repeat_ngram_size=0,
                        **overrides)
    gen = TransformersGenerator(engine_config(settings).generation, model=models["llama"])
    gen.prefix_cache_enabled = cached
    return gen


def _prefill_lengths(gen: TransformersGenerator) -> list[int]:
    """Token counts of each forward pass's input, recorded at the embedding layer."""
    seen: list[int] = []
    gen.model.get_input_embeddings().register_forward_pre_hook(lambda _m, args: seen.append(args[0].shape[1]))
    return seen


def test_cached_prefix_gives_the_same_answers_with_less_prefill(models: dict[str, Path], tmp_path: Path) -> None:
    plain, cached = _gen(models, tmp_path, False), _gen(models, tmp_path, True)
    prompt = cached.prompt_text(QUESTION, HITS)
    prefix = cached.prefix_cache.prefix_ids()
    assert len(prefix) >= 8 and cached.handle.encode(prompt)[: len(prefix)] == prefix
    seen = _prefill_lengths(cached)
    first = cached.generate_ids(prompt)
    assert seen[:2] == [len(prefix), len(first[0]) - len(prefix)]  # the prefix once, then only the rest
    seen.clear()
    assert cached.generate_ids(prompt) == first and seen[0] == len(first[0]) - len(prefix)  # reused
    assert plain.generate_ids(prompt) == first
    assert plain.generate(QUESTION, HITS, []).text == cached.generate(QUESTION, HITS, []).text


def test_each_adapter_gets_its_own_prefix(models: dict[str, Path], tmp_path: Path) -> None:
    plain, cached = _gen(models, tmp_path, False), _gen(models, tmp_path, True)
    prompt = cached.prompt_text(QUESTION, HITS)
    base = cached.generate_ids(prompt)
    for gen in (plain, cached):
        gen.load_adapter("a", models["lora_a"], activate=True)
        gen.load_adapter("b", models["lora_b"])
    for version in ("a", "b", None, "a"):
        plain.set_active_adapter(version)
        cached.set_active_adapter(version)
        assert cached.generate_ids(prompt) == plain.generate_ids(prompt), version
    assert cached.generate_ids(prompt) != base  # the adapter's own keys and values, not the base model's


def test_beam_search_generates_without_the_cache(models: dict[str, Path], tmp_path: Path) -> None:
    gen = _gen(models, tmp_path, True, decoding="beam", num_beams=2)
    seen = _prefill_lengths(gen)
    ids, _ = gen.generate_ids(gen.prompt_text(QUESTION, HITS))
    assert seen[0] == len(ids)
