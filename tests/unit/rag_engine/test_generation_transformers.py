"""Transformers backend on tiny random models loaded by path, like a real checkpoint."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch

from app.configs import engine_config
from app.settings import Settings
from rag_engine.config import GenerationConfig
from rag_engine.generation.base import AdapterSwitching, GenerationError, Generator
from rag_engine.generation.factory import build_generator
from rag_engine.generation.prompting import PROMPT_VERSION
from rag_engine.generation.transformers_backend import TransformersGenerator
from rag_engine.testing.tiny_models import make_lora_adapter, make_tiny_llama, make_tiny_t5
from rag_engine.values import SearchHit, Turn

QUESTION = "How many vacation days do I get?"


def _hits(n: int = 3, words: int = 12) -> list[SearchHit]:
    return [
        SearchHit(chunk_id=i, document_id=i, collection_id=1, title=f"Handbook {i}", source_uri=f"file:///{i}.md",
                  heading_path="", text=f"Passage {i}. " + "Every employee gets twenty five days. " * words,
                  score=1.0 / i)
        for i in range(1, n + 1)
    ]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny")
    llama = make_tiny_llama(root / "llama", max_positions=512)
    return {
        "llama": llama,
        "t5": make_tiny_t5(root / "t5", max_positions=512),
        "lora_a": make_lora_adapter(llama, root / "lora_a", seed=1),
        "lora_b": make_lora_adapter(llama, root / "lora_b", seed=2),
    }


def _config(tmp_path: Path, **overrides: object) -> GenerationConfig:
    # repetition constraints off: these tests compare raw decoding strategies
    base = {"data_dir": tmp_path, "max_new_tokens": 8, "generator_device": "cpu", "num_beams": 3,
            "no_repeat_ngram_size": 0}
    return engine_config(Settings(**{**base, **overrides})).generation


@pytest.mark.parametrize("kind", ["llama", "t5"])
@pytest.mark.parametrize("decoding", ["greedy", "beam", "sample"])
def test_load_by_path_and_generate(models: dict[str, Path], tmp_path: Path, kind: str, decoding: str) -> None:
    gen = TransformersGenerator(_config(tmp_path, decoding=decoding), model=models[kind])
    assert isinstance(gen, Generator) and not gen.loaded  # lazy
    out = gen.generate(QUESTION, _hits(2), [Turn("user", "hi"), Turn("assistant", "hello")])
    assert gen.handle.is_seq2seq is (kind == "t5")
    assert isinstance(out.text, str) and 1 <= out.completion_tokens <= 8
    assert out.prompt_version == PROMPT_VERSION and out.model == kind and out.adapter_version is None
    assert len(out.passages) == 2 and out.prompt_tokens > 0
    if decoding != "sample":  # deterministic decoding is reproducible
        assert gen.generate(QUESTION, _hits(2), []).text == gen.generate(QUESTION, _hits(2), []).text


def test_chat_template_used_when_present_plain_prompt_otherwise(models: dict[str, Path], tmp_path: Path) -> None:
    llama = TransformersGenerator(_config(tmp_path), model=models["llama"])
    t5 = TransformersGenerator(_config(tmp_path), model=models["t5"])
    assert llama.prompt_text(QUESTION, _hits(1)).endswith("<|im_start|>assistant\n")
    assert t5.prompt_text(QUESTION, _hits(1)).endswith("Assistant:")


def _sequence_logprob(gen: TransformersGenerator, prompt_ids: list[int], new_ids: list[int]) -> float:
    ids = torch.tensor([prompt_ids + new_ids])
    with torch.no_grad():
        logp = torch.log_softmax(gen.model(input_ids=ids).logits[0].float(), -1)
    return sum(logp[len(prompt_ids) - 1 + i, t].item() for i, t in enumerate(new_ids))


def test_beam_search_is_used_and_finds_a_likelier_sequence(models: dict[str, Path], tmp_path: Path) -> None:
    greedy_gen = TransformersGenerator(_config(tmp_path, max_new_tokens=6), model=models["llama"])
    beam_gen = TransformersGenerator(_config(tmp_path, max_new_tokens=6, decoding="beam", num_beams=4),
                                     model=models["llama"])
    assert beam_gen.generation_kwargs() == {"max_new_tokens": 6, "do_sample": False, "num_beams": 4,
                                            "early_stopping": True}
    prompt = greedy_gen.prompt_text(QUESTION, _hits(1))
    p_ids, greedy = greedy_gen.generate_ids(prompt)
    _, beam = beam_gen.generate_ids(prompt)
    assert len(greedy) == len(beam) == 6 and greedy != beam
    # on this fixed model beam search escapes greedy's locally-best path
    assert _sequence_logprob(beam_gen, p_ids, beam) > _sequence_logprob(greedy_gen, p_ids, greedy)


def test_repetition_constraints_reach_generate(models: dict[str, Path], tmp_path: Path) -> None:
    gen = TransformersGenerator(_config(tmp_path, no_repeat_ngram_size=2, repetition_penalty=1.3),
                                model=models["llama"])
    kwargs = gen.generation_kwargs()
    assert kwargs["no_repeat_ngram_size"] == 2 and kwargs["repetition_penalty"] == 1.3
    _, new_ids = gen.generate_ids(gen.prompt_text(QUESTION, _hits(1)), max_new_tokens=24)
    pairs = list(itertools.pairwise(new_ids))
    assert len(pairs) == len(set(pairs))  # no bigram twice


def test_prompt_fits_context_with_long_passages(models: dict[str, Path], tmp_path: Path) -> None:
    # every passage, whole: the budget alone decides what is shown
    config = _config(tmp_path, max_input_tokens=4096, max_new_tokens=40, generation_passages=0, passage_max_tokens=0)
    gen = TransformersGenerator(config, model=models["llama"])
    assert gen.handle.max_positions == 512 and gen.prompt_budget() == 512 - 40
    hits = _hits(5, words=20)
    built = gen.build_prompt(QUESTION, hits, [])
    real_tokens = len(gen.tokenizer(gen.render(built.messages), add_special_tokens=False)["input_ids"])
    assert real_tokens == built.prompt_tokens
    assert real_tokens + config.max_new_tokens <= 512
    assert built.dropped_passages >= 1 and len(built.passages) >= 1
    # kept passages are the top-ranked ones, in order; only the last may be cut
    for shown, hit in zip(built.passages[:-1], hits, strict=False):
        assert shown == hit.text
    assert hits[len(built.passages) - 1].text.startswith(built.passages[-1])
    out = gen.generate(QUESTION, hits, [])
    assert out.prompt_tokens + config.max_new_tokens <= 512


def test_passages_shown_are_the_top_ones_cut_in_model_tokens(models: dict[str, Path], tmp_path: Path) -> None:
    config = _config(tmp_path, max_input_tokens=4096, max_new_tokens=40, generation_passages=2, passage_max_tokens=12)
    gen = TransformersGenerator(config, model=models["llama"])
    built = gen.build_prompt(QUESTION, _hits(5, words=20), [])
    assert len(built.passages) == 2 and built.dropped_passages == 3
    assert all(len(gen.tokenizer(p, add_special_tokens=False)["input_ids"]) <= 12 for p in built.passages)
    assert gen.generate(QUESTION, _hits(5, words=20), []).passages == built.passages


def test_settings_budget_wins_when_smaller_than_model_context(models: dict[str, Path], tmp_path: Path) -> None:
    gen = TransformersGenerator(_config(tmp_path, max_input_tokens=200, max_new_tokens=8), model=models["llama"])
    assert gen.prompt_budget() == 200
    assert gen.build_prompt(QUESTION, _hits(5, words=20), []).prompt_tokens <= 200


def test_adapter_changes_logits_and_base_is_restored_exactly(models: dict[str, Path], tmp_path: Path) -> None:
    gen = TransformersGenerator(_config(tmp_path), model=models["llama"])
    assert isinstance(gen, AdapterSwitching)
    prompt = gen.prompt_text(QUESTION, _hits(1))
    base = gen.handle.next_token_logits(prompt)

    gen.load_adapter("v1", models["lora_a"])
    # loading is not activating
    assert gen.active_adapter is None and torch.equal(gen.handle.next_token_logits(prompt), base)
    gen.set_active_adapter("v1")
    with_a = gen.handle.next_token_logits(prompt)
    assert not torch.allclose(with_a, base, atol=1e-3)
    assert gen.generate(QUESTION, _hits(1), []).adapter_version == "v1"

    gen.set_active_adapter(None)
    assert torch.equal(gen.handle.next_token_logits(prompt), base)


def test_switch_between_two_adapters_without_reloading_base(models: dict[str, Path], tmp_path: Path) -> None:
    gen = TransformersGenerator(_config(tmp_path), model=models["llama"])
    prompt = gen.prompt_text(QUESTION, _hits(1))
    base = gen.handle.next_token_logits(prompt)
    gen.load_adapter("2024.06.01-a", models["lora_a"], activate=True)  # dots are fine in versions
    peft_model = gen.model
    base_weight = peft_model.get_base_model().model.embed_tokens.weight
    logits_a = gen.handle.next_token_logits(prompt)
    gen.load_adapter("b", models["lora_b"], activate=True)
    logits_b = gen.handle.next_token_logits(prompt)
    assert not torch.allclose(logits_a, logits_b, atol=1e-3)

    gen.set_active_adapter("2024.06.01-a")
    assert torch.equal(gen.handle.next_token_logits(prompt), logits_a)
    assert gen.model is peft_model and gen.model.get_base_model().model.embed_tokens.weight is base_weight
    assert sorted(gen.adapters) == ["2024.06.01-a", "b"]

    gen.unload_adapter("2024.06.01-a")  # active one: falls back to base
    assert gen.active_adapter is None and torch.equal(gen.handle.next_token_logits(prompt), base)
    gen.set_active_adapter("b")
    assert torch.equal(gen.handle.next_token_logits(prompt), logits_b)
    with pytest.raises(GenerationError, match="not loaded"):
        gen.set_active_adapter("2024.06.01-a")


def test_unloading_the_last_adapter_restores_the_plain_base_model(models: dict[str, Path], tmp_path: Path) -> None:
    gen = TransformersGenerator(_config(tmp_path), model=models["llama"])
    prompt = gen.prompt_text(QUESTION, _hits(1))
    plain = gen.model
    base = gen.handle.next_token_logits(prompt)
    gen.load_adapter("a", models["lora_a"], activate=True)
    assert gen.model is not plain and gen.adapters == ["a"]
    gen.unload_adapter("a")
    assert gen.adapters == [] and gen.active_adapter is None
    assert not hasattr(gen.model, "peft_config")  # the PeftModel wrapper is gone, not just disabled
    assert torch.equal(gen.handle.next_token_logits(prompt), base)
    gen.load_adapter("a", models["lora_a"], activate=True)  # and it can be loaded again
    assert not torch.allclose(gen.handle.next_token_logits(prompt), base, atol=1e-3)


def test_score_nll_is_mean_answer_nll_under_the_active_adapter(models: dict[str, Path], tmp_path: Path) -> None:
    gen = TransformersGenerator(_config(tmp_path), model=models["llama"])
    prompt = gen.prompt_text(QUESTION, _hits(1))
    answer = "Twenty five days [1]."
    ids = gen.tokenizer(answer, add_special_tokens=False)["input_ids"] + [gen.tokenizer.eos_token_id]
    prompt_ids = gen.tokenizer(prompt, add_special_tokens=False)["input_ids"]  # templated: no extra BOS
    reference = -_sequence_logprob(gen, prompt_ids, ids) / len(ids)
    assert gen.handle.score_nll(prompt, answer) == pytest.approx(reference, rel=1e-4)
    gen.load_adapter("a", models["lora_a"], activate=True)
    assert gen.handle.score_nll(prompt, answer) != pytest.approx(reference, rel=1e-3)
    gen.set_active_adapter(None)
    assert gen.handle.score_nll(prompt, answer) == pytest.approx(reference, rel=1e-4)


def test_broken_model_path_raises_generation_error_at_answer_time(tmp_path: Path) -> None:
    gen = build_generator(_config(tmp_path, generator_model=str(tmp_path / "no" / "such" / "model")))
    assert gen is not None  # building never loads
    with pytest.raises(GenerationError, match="does not exist"):
        gen.generate(QUESTION, _hits(1), [])
    with pytest.raises(GenerationError, match="does not exist"):  # remembered, re-raised
        gen.generate(QUESTION, _hits(1), [])


def test_unloadable_model_dir_raises_generation_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    gen = TransformersGenerator(_config(tmp_path), model=broken)
    with pytest.raises(GenerationError, match="cannot load generator model"):
        gen.load()


def test_bad_adapter_dir_raises_generation_error(models: dict[str, Path], tmp_path: Path) -> None:
    gen = TransformersGenerator(_config(tmp_path), model=models["llama"])
    with pytest.raises(GenerationError, match="not a PEFT adapter"):
        gen.load_adapter("x", tmp_path)


def test_build_generator_backends(tmp_path: Path) -> None:
    assert build_generator(_config(tmp_path, generator_backend="extractive")) is None
    assert isinstance(build_generator(_config(tmp_path)), TransformersGenerator)
    with pytest.raises(GenerationError, match="OPENAI_BASE_URL"):
        build_generator(_config(tmp_path, generator_backend="openai"))


def test_initial_adapter_is_active_after_lazy_load(models: dict[str, Path], tmp_path: Path) -> None:
    plain = TransformersGenerator(_config(tmp_path), model=models["llama"])
    gen = TransformersGenerator(_config(tmp_path), model=models["llama"], adapter=("v1", models["lora_a"]))
    prompt = plain.prompt_text(QUESTION, _hits(1))
    assert gen.active_adapter is None and not gen.loaded
    assert gen.generate(QUESTION, _hits(1), []).adapter_version == "v1"  # first use loads model + adapter
    logits = gen.handle.next_token_logits(prompt)
    assert gen.active_adapter == "v1" and not torch.allclose(logits, plain.handle.next_token_logits(prompt), atol=1e-3)


def test_broken_initial_adapter_falls_back_to_base_model(models: dict[str, Path], tmp_path: Path) -> None:
    gen = TransformersGenerator(_config(tmp_path), model=models["llama"], adapter=("v1", tmp_path / "missing"))
    out = gen.generate(QUESTION, _hits(1), [])
    assert out.adapter_version is None and gen.adapter_error and "not a PEFT adapter" in gen.adapter_error


def test_no_repeat_ngrams_counts_the_answer_only_so_passages_can_be_quoted() -> None:
    from rag_engine.generation.no_repeat import AnswerNoRepeatNGram  # the processor alone, on made-up ids

    prompt = [5, 6, 7, 8, 9]  # the passage holds the 3-gram 6 7 8
    quoting = torch.tensor([[*prompt, 6, 7]])
    scores = AnswerNoRepeatNGram(3, start=len(prompt))(quoting, torch.zeros(1, 12))
    assert scores[0, 8] == 0  # quoting the passage's "6 7 8" stays allowed (transformers' own rule bans it)
    looping = torch.tensor([[*prompt, 6, 7, 8, 1, 6, 7]])
    scores = AnswerNoRepeatNGram(3, start=len(prompt))(looping, torch.zeros(1, 12))
    assert scores[0, 8] == float("-inf") and torch.isfinite(scores[0, torch.arange(12) != 8]).all()
