"""Streaming generators: the pieces add up to what ``generate`` returns, and failures raise the usual errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.configs import engine_config
from app.settings import Settings
from rag_engine.generation.base import GenerationError, GeneratorBusy, ModelUnavailable
from rag_engine.generation.openai_backend import OpenAIGenerator
from rag_engine.generation.streaming import StreamingGenerator, TextDelta
from rag_engine.generation.transformers_backend import TransformersGenerator
from rag_engine.testing.tiny_models import make_tiny_llama
from rag_engine.values import GeneratedText, SearchHit

HITS = [SearchHit(chunk_id=1, document_id=1, collection_id=1, title="Vacation", source_uri="file:///v.md",
                  heading_path="", text="Every employee gets 25 days of paid vacation.", score=0.9)]


def _split(items: list[TextDelta | GeneratedText]) -> tuple[list[str], GeneratedText]:
    *pieces, last = items
    assert all(isinstance(p, TextDelta) for p in pieces) and isinstance(last, GeneratedText)
    return [p.text for p in pieces if isinstance(p, TextDelta)], last


# -- transformers ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_llama(tmp_path_factory.mktemp("tiny") / "llama", max_positions=512)


def _local(tmp_path: Path, llama: Path, **overrides: Any) -> TransformersGenerator:
    settings = Settings(**{"data_dir": tmp_path, "max_new_tokens": 12, "generator_device": "cpu",
                           "no_repeat_ngram_size": 0, "decoding": "greedy", **overrides})
    return TransformersGenerator(engine_config(settings).generation, model=llama)


def test_transformers_stream_adds_up_to_generate(tmp_path: Path, llama: Path) -> None:
    gen = _local(tmp_path, llama)
    assert isinstance(gen, StreamingGenerator)
    pieces, last = _split(list(gen.stream("How many vacation days?", HITS, [])))
    whole = gen.generate("How many vacation days?", HITS, [])
    assert len(pieces) >= 2  # handed out as decoded, not at once
    assert "".join(pieces).strip() == last.text == whole.text and last.completion_tokens == whole.completion_tokens
    assert last.passages == whole.passages and last.model == whole.model


def test_transformers_beam_search_is_handed_out_at_once(tmp_path: Path, llama: Path) -> None:
    gen = _local(tmp_path, llama, decoding="beam", num_beams=2)
    pieces, last = _split(list(gen.stream("How many vacation days?", HITS, [])))
    assert pieces == ([last.text] if last.text else []) and last.text == gen.generate("How many vacation days?",
                                                                                        HITS, []).text


def test_transformers_stream_stops_when_closed_early(tmp_path: Path, llama: Path) -> None:
    gen = _local(tmp_path, llama, max_new_tokens=60)
    decoded: list[int] = []  # tokens each decoding produced
    original = gen._generate

    def counting(*args: Any, **kwargs: Any) -> tuple[list[int], list[int], str | None]:
        out = original(*args, **kwargs)
        decoded.append(len(out[1]))
        return out

    gen._generate = counting  # type: ignore[method-assign]  # counts what the real decoding produced
    full = len(list(gen.stream("How many vacation days?", HITS, [])))
    stream = gen.stream("How many vacation days?", HITS, [])
    assert isinstance(next(stream), TextDelta)
    stream.close()  # joins the decoding thread, which stops at its next token
    assert full > 5 and decoded[1] < decoded[0] // 2, decoded


def test_transformers_stream_raises_generation_errors(tmp_path: Path, llama: Path) -> None:
    gen = _local(tmp_path, llama)
    gen.load()
    gen.generation_kwargs = lambda: {"max_new_tokens": 4, "num_beams": 0}  # type: ignore[method-assign]  # broken
    with pytest.raises(GenerationError, match="generation failed"):
        list(gen.stream("q?", HITS, []))


# -- OpenAI-compatible ------------------------------------------------------------------------------

def _sse(*events: dict[str, Any] | str) -> bytes:
    lines = [f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n" for e in events]
    return (": keep-alive\n\n" + "".join(lines)).encode()


def _chunk(text: str | None, **extra: Any) -> dict[str, Any]:
    delta = {"content": text} if text is not None else {"role": "assistant"}
    return {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}], **extra}


def _remote(handler: Any) -> OpenAIGenerator:
    settings = Settings(openai_base_url="http://llm.test/v1", openai_model="big", max_new_tokens=64)
    return OpenAIGenerator(engine_config(settings).generation, transport=httpx.MockTransport(handler))


def test_openai_stream_reads_server_sent_events() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        body = _sse(_chunk(None), _chunk("25 "), _chunk("days "), _chunk("[1]"),
                    {"choices": [], "usage": {"prompt_tokens": 50, "completion_tokens": 3}}, "[DONE]")
        return httpx.Response(200, content=body, headers={"Content-Type": "text/event-stream"})

    pieces, last = _split(list(_remote(handler).stream("How many days?", HITS, [])))
    assert pieces == ["25 ", "days ", "[1]"] and last.text == "25 days [1]" and last.model == "big"
    assert (last.prompt_tokens, last.completion_tokens) == (50, 3) and last.passages == (HITS[0].text,)
    assert seen[0]["stream"] is True and seen[0]["model"] == "big" and seen[0]["max_tokens"] == 64


@pytest.mark.parametrize(("status", "error"), [(503, GeneratorBusy), (404, ModelUnavailable),
                                               (400, GenerationError)])
def test_openai_stream_maps_http_errors(status: int, error: type[Exception]) -> None:
    gen = _remote(lambda request: httpx.Response(status, json={"error": {"message": "scripted"}}))
    with pytest.raises(error):
        list(gen.stream("q?", HITS, []))


def test_openai_stream_error_event_and_broken_json() -> None:
    gen = _remote(lambda r: httpx.Response(200, content=_sse(_chunk("a"), {"error": {"message": "overloaded"}})))
    with pytest.raises(GenerationError, match="overloaded"):
        list(gen.stream("q?", HITS, []))
    gen = _remote(lambda r: httpx.Response(200, content=b"data: {not json\n\n"))
    with pytest.raises(GenerationError, match="not JSON"):
        list(gen.stream("q?", HITS, []))


def test_openai_stream_unreachable_server() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(ModelUnavailable):
        list(_remote(refuse).stream("q?", HITS, []))
