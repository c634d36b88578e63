"""OpenAI-compatible backend against a local /v1/chat/completions server started here."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from app.configs import engine_config
from app.settings import Settings
from rag_engine.generation.base import AdapterSwitching, GenerationError, GeneratorBusy, ModelUnavailable
from rag_engine.generation.factory import build_generator
from rag_engine.generation.openai_backend import OpenAIGenerator
from rag_engine.generation.prompting import PROMPT_VERSION
from rag_engine.values import SearchHit, Turn

HITS = [
    SearchHit(chunk_id=1, document_id=1, collection_id=1, title="Vacation", source_uri="file:///v.md",
              heading_path="", text="Every employee gets 25 days of paid vacation.", score=0.9),
    SearchHit(chunk_id=2, document_id=2, collection_id=1, title="Deploys", source_uri="file:///d.md",
              heading_path="", text="Production deploys happen on Tuesday.", score=0.5),
]


@dataclass
class FakeServer:
    """Scripted behaviour: ``statuses`` are returned first (one per request), then 200s."""

    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    delay_s: float = 0.0
    served_models: set[str] | None = None  # None: any model name is served


def _handler(state: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

        def _reply(self, status: int, payload: dict[str, Any]) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.paths.append(self.path)
            state.requests.append(body)
            state.headers.append(dict(self.headers))
            if state.statuses:
                status = state.statuses.pop(0)
                self._reply(status, {"error": {"message": f"scripted {status}"}})
                return
            if state.delay_s:
                time.sleep(state.delay_s)
            if self.path in ("/v1/load_lora_adapter", "/v1/unload_lora_adapter"):
                self._reply(200, {})
                return
            if self.path != "/v1/chat/completions":
                self._reply(404, {"error": "no such path"})
                return
            if state.served_models is not None and body["model"] not in state.served_models:
                self._reply(404, {"error": {"message": f"The model `{body['model']}` does not exist."}})
                return
            self._reply(200, {
                "id": "cmpl-1", "object": "chat.completion", "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": f"25 days [1] ({body['model']})"}}],
                "usage": {"prompt_tokens": 123, "completion_tokens": 7, "total_tokens": 130},
            })

    return Handler


@pytest.fixture
def server() -> Iterator[FakeServer]:
    state = FakeServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    yield state
    httpd.shutdown()
    httpd.server_close()


def _gen(server: FakeServer, **overrides: Any) -> OpenAIGenerator:
    fields: dict[str, Any] = {"openai_base_url": server.url, "openai_api_key": "sk-test",
                              "openai_model": "ragbot-base", "openai_timeout_s": 2.0, "openai_max_retries": 2,
                              "max_new_tokens": 64}
    settings = Settings(**{**fields, **overrides})
    return OpenAIGenerator(engine_config(settings).generation, backoff_s=0.01, backoff_max_s=0.05)


def test_base_model_request_shape(server: FakeServer) -> None:
    gen = _gen(server)
    out = gen.generate("How many vacation days?", HITS, [Turn("user", "hi"), Turn("assistant", "hello")])
    assert out.text == "25 days [1] (ragbot-base)" and out.model == "ragbot-base" and out.adapter_version is None
    assert (out.prompt_tokens, out.completion_tokens, out.prompt_version) == (123, 7, PROMPT_VERSION)
    assert out.passages == tuple(h.text for h in HITS)
    body = server.requests[0]
    assert body["model"] == "ragbot-base" and body["max_tokens"] == 64 and body["temperature"] == 0.0
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user"]
    assert '<passage n="2" title="Deploys">' in body["messages"][-1]["content"]
    assert server.headers[0]["Authorization"] == "Bearer sk-test"


def test_active_adapter_is_sent_as_model(server: FakeServer) -> None:
    server.served_models = {"ragbot-base", "v7"}
    gen = _gen(server)
    assert isinstance(gen, AdapterSwitching)
    gen.load_adapter("v7", activate=True)
    out = gen.generate("q?", HITS, [])
    assert server.requests[-1]["model"] == "v7" and out.adapter_version == "v7" and out.model == "v7"
    gen.set_active_adapter(None)
    gen.generate("q?", HITS, [])
    assert server.requests[-1]["model"] == "ragbot-base"


def test_unknown_adapter_gives_clear_error(server: FakeServer) -> None:
    server.served_models = {"ragbot-base"}
    gen = _gen(server)
    gen.set_active_adapter("v9")
    with pytest.raises(GenerationError, match=r"404 for model 'v9'.*adapter registered"):
        gen.generate("q?", HITS, [])


def test_adapter_registration_posts_to_load_lora_adapter(server: FakeServer) -> None:
    gen = _gen(server, openai_register_adapters=True)
    gen.load_adapter("v8", "/srv/adapters/v8", activate=True)
    assert server.paths[0] == "/v1/load_lora_adapter"
    assert server.requests[0] == {"lora_name": "v8", "lora_path": "/srv/adapters/v8"}
    assert gen.adapters == ["v8"] and gen.active_adapter == "v8"
    gen.unload_adapter("v8")
    assert server.paths[-1] == "/v1/unload_lora_adapter" and server.requests[-1] == {"lora_name": "v8"}
    assert gen.adapters == [] and gen.active_adapter is None


def test_retries_after_503_and_429(server: FakeServer) -> None:
    server.statuses = [503, 429]
    out = _gen(server).generate("q?", HITS, [])
    assert out.text.startswith("25 days [1]")
    assert len(server.requests) == 3


def test_gives_up_after_max_retries(server: FakeServer) -> None:
    server.statuses = [503, 503, 503, 503]
    with pytest.raises(GenerationError, match="failed after 3 attempts: HTTP 503"):
        _gen(server).generate("q?", HITS, [])
    assert len(server.requests) == 3  # 1 + openai_max_retries


def test_client_errors_are_not_retried(server: FakeServer) -> None:
    server.statuses = [400]
    with pytest.raises(GenerationError, match="HTTP 400"):
        _gen(server).generate("q?", HITS, [])
    assert len(server.requests) == 1


def test_timeout_raises_generation_error_without_retrying(server: FakeServer) -> None:
    server.delay_s = 1.0
    gen = _gen(server, openai_timeout_s=0.2)
    started = time.perf_counter()
    with pytest.raises(GeneratorBusy, match=r"timed out after 0\.2 s"):  # answered as "the model was busy"
        gen.generate("q?", HITS, [])
    assert time.perf_counter() - started < 0.9 and len(server.requests) == 1


def test_connection_refused_is_retried_then_reported() -> None:
    settings = Settings(openai_base_url="http://127.0.0.1:9/v1", openai_max_retries=1, openai_timeout_s=1.0)
    with pytest.raises(ModelUnavailable, match="cannot reach"):
        OpenAIGenerator(engine_config(settings).generation, backoff_s=0.01).generate("q?", HITS, [])


def test_factory_builds_openai_backend_with_adapter(server: FakeServer) -> None:
    from pathlib import Path

    settings = Settings(generator_backend="openai", openai_base_url=server.url)
    gen = build_generator(engine_config(settings).generation, adapter=("v3", Path("/srv/v3")))
    assert isinstance(gen, OpenAIGenerator) and gen.active_adapter == "v3"
