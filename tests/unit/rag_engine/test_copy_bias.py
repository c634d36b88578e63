"""Copy bias on a tiny random model: a large bias keeps decoding inside the passages' tokens, none leaves it free."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from app.configs import engine_config
from app.settings import Settings
from rag_engine.config import GenerationConfig
from rag_engine.generation.copy_bias import CopyBias, copy_token_ids
from rag_engine.generation.transformers_backend import TransformersGenerator
from rag_engine.testing.tiny_models import make_tiny_llama
from rag_engine.values import SearchHit

QUESTION = "How many vacation days do I get?"
PASSAGE = "Every employee gets twenty five vacation days per year."


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_llama(tmp_path_factory.mktemp("tiny") / "llama", max_positions=512)


def _config(tmp_path: Path, bias: float) -> GenerationConfig:
    return engine_config(Settings(data_dir=tmp_path, max_new_tokens=12, generator_device="cpu",
                                  no_repeat_ngram_size=0, copy_bias=bias)).generation


def _hit() -> SearchHit:
    return SearchHit(chunk_id=1, document_id=1, collection_id=1, title="Handbook", source_uri="file:///h.md",
                     heading_path="", text=PASSAGE, score=1.0)


def test_processor_adds_the_bias_to_listed_ids_only() -> None:
    scores = torch.zeros(1, 10)
    out = CopyBias([2, 5, 99], 3.0, vocab_size=10)(torch.zeros(1, 1, dtype=torch.long), scores)
    assert out[0].tolist() == [0, 0, 3.0, 0, 0, 3.0, 0, 0, 0, 0]


def test_token_ids_cover_words_at_a_sentence_start(llama: Path, tmp_path: Path) -> None:
    tokenizer = TransformersGenerator(_config(tmp_path, 0.0), model=llama).handle.tokenizer
    ids = copy_token_ids(tokenizer, [PASSAGE])
    assert set(tokenizer.encode(PASSAGE, add_special_tokens=False)) <= ids
    assert set(tokenizer.encode(" Employee", add_special_tokens=False)) <= ids  # capitalised, mid-text


def test_large_bias_writes_only_passage_tokens_and_zero_bias_does_not(llama: Path, tmp_path: Path) -> None:
    free = TransformersGenerator(_config(tmp_path, 0.0), model=llama)
    biased = TransformersGenerator(_config(tmp_path, 1000.0), model=llama)
    prompt = biased.build_prompt(QUESTION, [_hit()], [])
    tokenizer = biased.handle.tokenizer
    allowed = copy_token_ids(tokenizer, [*prompt.passages, QUESTION], [tokenizer.eos_token_id])
    _, free_ids = free.generate_ids(free.render(prompt.messages))
    _, biased_ids = biased.generate_ids(biased.render(prompt.messages), **biased.copy_bias(QUESTION, prompt))
    assert free_ids and not set(free_ids) <= allowed  # the random model wanders off the passage by itself
    assert biased_ids and set(biased_ids) <= allowed
    assert biased.generate(QUESTION, [_hit()], []).completion_tokens >= 1  # the serving path applies it too
    assert free.copy_bias(QUESTION, prompt) == {}
