"""Generation through an OpenAI-compatible ``/chat/completions`` server (e.g. vLLM).

Adapters are served by name: with vLLM multi-LoRA serving, an adapter
registered as ``v7`` (``--lora-modules v7=/path`` or ``/v1/load_lora_adapter``)
answers requests sent with ``model="v7"``. With no active adapter, requests go
to ``config.openai_model``. ``openai_base_url`` includes the API prefix,
e.g. ``http://localhost:8000/v1``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from rag_engine.config import GenerationConfig
from rag_engine.generation.base import GenerationError, GeneratorBusy, ModelUnavailable
from rag_engine.generation.prompting import PROMPT_VERSION, ApproxTokenCounter, serving_prompt
from rag_engine.generation.streaming import TextDelta
from rag_engine.values import GeneratedText, SearchHit, Turn

log = logging.getLogger(__name__)

# Failures worth another attempt: nothing reached the model, or the server said
# "later". A read timeout is not retried: the server is likely busy generating,
# and another attempt would multiply the user's wait.
_RETRY_TRANSPORT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError, httpx.ReadError)
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


class _RetryableStatus(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}: {response.text[:200]}")
        self.status_code = response.status_code
        self.retry_after = _retry_after(response)


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None  # absent, or an HTTP date: fall back to backoff


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, (_RetryableStatus, *_RETRY_TRANSPORT))


class OpenAIGenerator:
    """A ``Generator`` calling an OpenAI-compatible chat completions endpoint."""

    name = "openai"

    def __init__(
        self,
        config: GenerationConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        backoff_s: float = 0.5,
        backoff_max_s: float = 8.0,
    ) -> None:
        if not config.openai_base_url:
            raise GenerationError("generator_backend is 'openai' but RAGBOT_OPENAI_BASE_URL is not set")
        self.config = config
        self.base_url = config.openai_base_url.rstrip("/")
        headers = {"Content-Type": "application/json"}
        if config.openai_api_key is not None:
            headers["Authorization"] = f"Bearer {config.openai_api_key.get_secret_value()}"
        timeout = httpx.Timeout(config.openai_timeout_s, connect=min(10.0, config.openai_timeout_s))
        self._client = httpx.Client(headers=headers, timeout=timeout, transport=transport)
        self._backoff = wait_exponential_jitter(multiplier=backoff_s, max=backoff_max_s, jitter=backoff_s)
        self._backoff_max_s = backoff_max_s
        self._adapters: dict[str, Path | None] = {}
        self._active: str | None = None

    # -- adapters (served by name) ----------------------------------------------
    @property
    def active_adapter(self) -> str | None:
        return self._active

    @property
    def model_name(self) -> str:
        return self._active or self.config.openai_model

    def load_adapter(self, version: str, path: Path | str | None = None, *, activate: bool = False) -> None:
        """Make ``version`` selectable; registers it with the server when ``openai_register_adapters``.

        Without registration the server must already serve the adapter under
        this name. ``path`` must be readable by the server, not just by us.
        """
        if self.config.openai_register_adapters:
            if path is None:
                raise GenerationError("registering an adapter needs its path")
            self._post("/load_lora_adapter", {"lora_name": version, "lora_path": str(path)})
        self._adapters[version] = Path(path) if path is not None else None
        if activate:
            self.set_active_adapter(version)

    @property
    def adapters(self) -> list[str]:
        return list(self._adapters)

    def set_active_adapter(self, version: str | None) -> None:
        # Any name is accepted: the server is the judge of what it serves.
        self._active = version

    def unload_adapter(self, version: str) -> None:
        """Forget ``version`` (and unregister it from the server when ``openai_register_adapters``)."""
        if version not in self._adapters:
            return
        del self._adapters[version]
        if self._active == version:
            self._active = None
        if self.config.openai_register_adapters:
            self._post("/unload_lora_adapter", {"lora_name": version})

    # -- generation ------------------------------------------------------------
    def _sampling(self) -> dict[str, Any]:
        s = self.config
        if s.decoding == "sample":
            return {"temperature": s.temperature, "top_p": s.top_p}
        # Beam search is not part of the OpenAI API; beam is sent as greedy.
        return {"temperature": 0.0}

    def generate(self, question: str, hits: list[SearchHit], history: list[Turn]) -> GeneratedText:
        prompt = serving_prompt(self.config, question, hits, history, counter=ApproxTokenCounter(),
                                budget=self.config.max_input_tokens)
        model = self.model_name
        body = {
            "model": model,
            "messages": prompt.messages,
            "max_tokens": self.config.max_new_tokens,
            "stream": False,
            **self._sampling(),
        }
        data = self._post("/chat/completions", body)
        try:
            text = data["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError) as exc:
            raise GenerationError(f"unexpected response from {self.base_url}: {str(data)[:200]}") from exc
        usage = data.get("usage") or {}
        return GeneratedText(
            text=text.strip(),
            model=model,
            adapter_version=self._active,
            prompt_version=PROMPT_VERSION,
            prompt_tokens=int(usage.get("prompt_tokens") or prompt.prompt_tokens),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            passages=prompt.passages,
        )

    def stream(self, question: str, hits: list[SearchHit], history: list[Turn]) -> Iterator[TextDelta | GeneratedText]:
        """``generate`` with ``stream=True``: the server's server-sent events as ``TextDelta``s, then the
        complete ``GeneratedText``. Not retried: once text was shown, another attempt would repeat it."""
        prompt = serving_prompt(self.config, question, hits, history, counter=ApproxTokenCounter(),
                                budget=self.config.max_input_tokens)
        model = self.model_name
        body = {"model": model, "messages": prompt.messages, "max_tokens": self.config.max_new_tokens,
                "stream": True, "stream_options": {"include_usage": True}, **self._sampling()}
        url = self.base_url + "/chat/completions"
        parts: list[str] = []
        usage: dict[str, Any] = {}
        try:
            with self._client.stream("POST", url, json=body) as response:
                if response.is_error:
                    response.read()
                    raise _status_error(url, response, model)
                for event in _sse_events(response.iter_lines()):
                    usage = event.get("usage") or usage
                    piece = _delta_text(event, url)
                    if piece:
                        parts.append(piece)
                        yield TextDelta(piece)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:  # nothing reached the model
            raise ModelUnavailable(f"cannot reach {url}: {type(exc).__name__}") from exc
        except httpx.TimeoutException as exc:
            raise GeneratorBusy(f"{url} timed out after {self.config.openai_timeout_s:g} s "
                                f"({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise GenerationError(f"{url}: the stream broke: {type(exc).__name__}: {exc}") from exc
        yield GeneratedText(
            text="".join(parts).strip(), model=model, adapter_version=self._active, prompt_version=PROMPT_VERSION,
            prompt_tokens=int(usage.get("prompt_tokens") or prompt.prompt_tokens),
            completion_tokens=int(usage.get("completion_tokens") or 0), passages=prompt.passages,
        )

    # -- HTTP ------------------------------------------------------------------
    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _RetryableStatus) and exc.retry_after is not None:
            return min(exc.retry_after, self._backoff_max_s)
        return self._backoff(state)

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        url = self.base_url + path
        retrying = Retrying(
            retry=retry_if_exception(_is_retryable),
            stop=stop_after_attempt(1 + max(0, self.config.openai_max_retries)),
            wait=self._wait,
            before_sleep=lambda s: log.warning("retrying %s after %s", url, s.outcome and s.outcome.exception()),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    response = self._client.post(url, json=body)
                    if response.status_code in _RETRY_STATUS:
                        raise _RetryableStatus(response)
        except httpx.ConnectTimeout as exc:
            raise ModelUnavailable(f"cannot reach {url}: {type(exc).__name__}") from exc
        except httpx.TimeoutException as exc:  # connected, but no answer in time: the server is busy
            raise GeneratorBusy(
                f"{url} timed out after {self.config.openai_timeout_s:g} s ({type(exc).__name__})"
            ) from exc
        except _RetryableStatus as exc:
            attempts = retrying.statistics.get("attempt_number", 1)
            error = GeneratorBusy if exc.status_code in (429, 503) else GenerationError
            raise error(f"{url} failed after {attempts} attempts: {exc}") from exc
        except httpx.HTTPError as exc:
            raise ModelUnavailable(f"cannot reach {url}: {type(exc).__name__}: {exc}") from exc
        if response.status_code == 404 and body.get("model"):
            raise ModelUnavailable(
                f"{url}: HTTP 404 for model {body['model']!r} (is it served / the adapter registered?)"
            )
        if response.is_error:
            raise GenerationError(f"{url}: HTTP {response.status_code}: {response.text[:300]}")
        try:
            data: dict[str, Any] = response.json()
            return data
        except ValueError as exc:
            raise GenerationError(f"{url}: response is not JSON: {response.text[:200]}") from exc

    def close(self) -> None:
        self._client.close()


def _sse_events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """The JSON payloads of ``data:`` lines, up to ``data: [DONE]`` (comments and other fields skipped)."""
    for line in lines:
        if not line.startswith("data:"):
            continue
        data = line[len("data:"):].strip()
        if data == "[DONE]":
            return
        try:
            event = json.loads(data)
        except ValueError as exc:
            raise GenerationError(f"a streamed event is not JSON: {data[:200]}") from exc
        if isinstance(event, dict):
            yield event


def _delta_text(event: dict[str, Any], url: str) -> str:
    """The text piece of one streamed chunk ("" for role-only, usage-only or final chunks)."""
    if "error" in event:
        raise GenerationError(f"{url}: the stream reported an error: {str(event['error'])[:300]}")
    choices = event.get("choices") or []
    if not choices:
        return ""
    delta = choices[0].get("delta") or {}
    text = delta.get("content") if isinstance(delta, dict) else None
    return text if isinstance(text, str) else ""


def _status_error(url: str, response: httpx.Response, model: str) -> GenerationError:
    """The error a failed streaming request raises (the same kinds ``_post`` raises, without its retries)."""
    status = response.status_code
    if status in (429, 503):
        return GeneratorBusy(f"{url}: HTTP {status}: {response.text[:200]}")
    if status == 404:
        return ModelUnavailable(f"{url}: HTTP 404 for model {model!r} (is it served / the adapter registered?)")
    return GenerationError(f"{url}: HTTP {status}: {response.text[:300]}")
