"""generator_quantize=int8: base linear layers run int8, LoRA adapters still load over them and stay float."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from app.configs import engine_config
from app.settings import Settings
from rag_engine.generation.quantize import Int8Linear
from rag_engine.generation.transformers_backend import TransformersGenerator
from rag_engine.testing.tiny_models import make_lora_adapter, make_tiny_llama

PROMPT = "Instructions: answer.\n\nUser: How many vacation days do I get?\n\nAssistant:"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny")
    llama = make_tiny_llama(root / "llama", max_positions=512)
    return {"llama": llama, "lora": make_lora_adapter(llama, root / "lora", seed=1)}


def _gen(models: dict[str, Path], tmp_path: Path, quantize: str) -> TransformersGenerator:
    settings = Settings(data_dir=tmp_path, generator_device="cpu", generator_dtype="float32", max_new_tokens=8,
                        generator_quantize=quantize)
    return TransformersGenerator(engine_config(settings).generation, model=models["llama"])


def test_int8_replaces_the_base_linears_and_keeps_the_logits_close(models: dict[str, Path], tmp_path: Path) -> None:
    plain, int8 = _gen(models, tmp_path, "none"), _gen(models, tmp_path, "int8")
    assert not any(isinstance(m, Int8Linear) for m in plain.model.modules())
    linears = {n: m for n, m in int8.model.named_modules() if isinstance(m, torch.nn.Linear)}
    assert all(isinstance(m, Int8Linear) for n, m in linears.items() if n != "lm_head")
    assert not isinstance(linears["lm_head"], Int8Linear)  # the output projection stays float
    a, b = plain.handle.next_token_logits(PROMPT), int8.handle.next_token_logits(PROMPT)
    assert not torch.equal(a, b)  # int8 arithmetic is not the float one ...
    assert torch.nn.functional.cosine_similarity(a, b, dim=0) > 0.99  # ... but close to it


def test_a_lora_adapter_loads_over_int8_layers_and_changes_the_answer(models: dict[str, Path], tmp_path: Path) -> None:
    gen = _gen(models, tmp_path, "int8")
    base = gen.handle.next_token_logits(PROMPT)
    gen.load_adapter("v1", models["lora"], activate=True)
    lora_layers = [m for n, m in gen.model.named_modules() if "lora_A" in n and isinstance(m, torch.nn.Linear)]
    assert lora_layers and not any(isinstance(m, Int8Linear) for m in lora_layers)  # the adapter stays float
    adapted = gen.handle.next_token_logits(PROMPT)
    assert not torch.allclose(adapted, base)
    gen.set_active_adapter(None)
    # back to the base model (int8 kernels need not repeat bit for bit after the adapter ran: nearest, not equal)
    restored = gen.handle.next_token_logits(PROMPT)
    assert (restored - base).abs().max() < (adapted - base).abs().max()
    assert torch.nn.functional.cosine_similarity(restored, base, dim=0) > 0.99
