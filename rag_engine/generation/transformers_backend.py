"""Local generation with transformers (causal or seq2seq) and hot-swappable PEFT adapters.

A thin ``Generator``: it builds the prompt, generates and decodes. The loaded
model, its tokenizer, prompt rules and scoring live in :class:`ModelHandle`
(``generator.handle``, shared with the trainer and the promotion gate); the
adapters in :class:`LoraSet` (``generator.lora``).
The model loads lazily on first use (or explicitly with :meth:`load`), so a
broken model surfaces as a ``GenerationError`` at answer time, which the engine
turns into an extractive fallback.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import torch
from transformers import LogitsProcessorList, StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

from rag_engine.config import GenerationConfig
from rag_engine.generation.base import GenerationError
from rag_engine.generation.lora_set import LoraSet
from rag_engine.generation.model_handle import ModelHandle
from rag_engine.generation.no_repeat import AnswerNoRepeatNGram
from rag_engine.generation.prefix_cache import PrefixCache
from rag_engine.generation.prompting import PROMPT_VERSION, BuiltPrompt, Message, serving_prompt
from rag_engine.generation.streaming import TextDelta
from rag_engine.values import GeneratedText, SearchHit, Turn

log = logging.getLogger(__name__)


_STREAM_STALL_S = 600.0  # a decoding that hands out no token for this long is given up (GenerationError)


class _StopWhenSet(StoppingCriteria):
    """Stops ``model.generate`` once ``event`` is set (a streamed answer nobody reads any more)."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
        flag = torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)
        return cast(torch.BoolTensor, flag)


class TransformersGenerator:
    """A ``Generator`` (and ``AdapterSwitching``) running a transformers model in-process.

    Thread-safe: generations share the model (readers); loading or switching
    adapters waits for them (writer).
    """

    name = "transformers"

    def __init__(
        self,
        config: GenerationConfig,
        *,
        model: str | Path | None = None,
        adapter: tuple[str, Path] | None = None,
    ) -> None:
        self.config = config
        self.handle = ModelHandle(config, model=model)
        self.lora = LoraSet(self.handle)
        self.prefix_cache = PrefixCache(self.handle)
        self.prefix_cache_enabled = True  # off only to measure what it saves
        self._initial_adapter = adapter
        self._ready_lock = threading.Lock()
        self._ready = False  # model, tokenizer and initial adapter in place
        self.adapter_error: str | None = None

    # -- loading ---------------------------------------------------------------
    @property
    def model_name(self) -> str:
        return self.handle.model_name

    @property
    def device(self) -> torch.device | None:
        return self.handle.device

    @property
    def loaded(self) -> bool:
        return self._ready

    def load(self, *, retry: bool = False) -> None:
        """Load model, tokenizer and the initial adapter now (idempotent). Raises ``ModelUnavailable``.

        A failed load is remembered and re-raised on every call (``retry=True``
        tries again). An initial adapter that fails to load is logged and the
        base model answers (``GeneratedText.adapter_version`` is then ``None``).
        """
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            self.handle.load(retry=retry)
            if self.config.generator_quantize == "int8":
                self._quantize()
            if self._initial_adapter is not None:
                version, path = self._initial_adapter
                try:
                    self.lora.load(version, Path(path))
                    self.lora.activate(version)
                except GenerationError as exc:
                    self.adapter_error = str(exc)
                    log.error("%s; answering with the base model", exc)
            self._ready = True

    def _quantize(self) -> None:
        """int8 base weights, before any adapter wraps them (see ``rag_engine.generation.quantize``)."""
        handle = self.handle
        if handle.device is None or handle.device.type != "cpu":
            log.warning("generator_quantize=int8 applies on CPU only; %s keeps its weights", handle.device)
            return
        from rag_engine.generation.quantize import quantize_linears  # lazy: only generator_quantize=int8 needs it

        with handle.rw.exclusive():
            n = quantize_linears(handle.model)
            handle.replace_model(handle.model)  # new weights: caches of the old ones are stale
        log.info("generator %s: %d linear layers now int8", self.model_name, n)

    @property
    def model(self) -> Any:
        """The torch module (a ``PeftModel`` once an adapter is loaded)."""
        self.load()
        return self.handle.model

    @property
    def tokenizer(self) -> Any:
        self.load()
        return self.handle.tokenizer

    # -- adapters (the AdapterSwitching protocol) --------------------------------
    @property
    def active_adapter(self) -> str | None:
        return self.lora.active

    @property
    def adapters(self) -> list[str]:
        return self.lora.loaded

    def load_adapter(self, version: str, path: Path | str, *, activate: bool = False) -> None:
        """Load a saved PEFT adapter under ``version``, over the already-loaded base weights."""
        self.load()
        self.lora.load(version, Path(path))
        if activate:
            self.lora.activate(version)

    def set_active_adapter(self, version: str | None) -> None:
        """Answer with adapter ``version``, or with the base model when ``None``."""
        self.lora.activate(version)

    def unload_adapter(self, version: str) -> None:
        """Free an adapter's weights (the base model answers if it was active)."""
        self.lora.unload(version)

    # -- prompts ---------------------------------------------------------------
    def prompt_budget(self) -> int:
        """Tokens the prompt may use (see ``ModelHandle.prompt_budget``)."""
        self.load()
        return self.handle.prompt_budget()

    def render(self, messages: list[Message]) -> str:
        self.load()
        return self.handle.render(messages)

    def build_prompt(self, question: str, hits: list[SearchHit], history: list[Turn]) -> BuiltPrompt:
        return serving_prompt(self.config, question, hits, history, counter=self.handle.token_counter(),
                              budget=self.prompt_budget())

    def prompt_text(self, question: str, hits: list[SearchHit], history: Sequence[Turn] = ()) -> str:
        """The exact text the model sees for this question (for training on the same template)."""
        return self.render(self.build_prompt(question, hits, list(history)).messages)

    # -- generation ------------------------------------------------------------
    def generation_kwargs(self) -> dict[str, Any]:
        s = self.config
        kwargs: dict[str, Any] = {"max_new_tokens": s.max_new_tokens}
        # small models loop ("You should not panic. You should not panic. ...") without these
        if s.repetition_penalty != 1.0:
            kwargs["repetition_penalty"] = s.repetition_penalty
        if s.no_repeat_ngram_size:  # applied to the answer only (``AnswerNoRepeatNGram``), in ``_generate``
            kwargs["no_repeat_ngram_size"] = s.no_repeat_ngram_size
        if s.decoding == "sample":
            kwargs.update(do_sample=True, temperature=s.temperature, top_p=s.top_p, num_beams=1)
        elif s.decoding == "beam":
            kwargs.update(do_sample=False, num_beams=s.num_beams, early_stopping=True)
        else:
            kwargs.update(do_sample=False, num_beams=1)
        return kwargs

    def generate(self, question: str, hits: list[SearchHit], history: list[Turn]) -> GeneratedText:
        self.load()
        prompt = self.build_prompt(question, hits, history)
        prompt_ids, new_ids, adapter = self._generate(self.render(prompt.messages))
        text, new_tokens = self.handle.decode(new_ids)
        return GeneratedText(
            text=text,
            model=self.model_name,
            adapter_version=adapter,
            prompt_version=PROMPT_VERSION,
            prompt_tokens=len(prompt_ids),
            completion_tokens=new_tokens,
            passages=prompt.passages,
        )

    def stream(self, question: str, hits: list[SearchHit], history: list[Turn]) -> Iterator[TextDelta | GeneratedText]:
        """``generate``, handing out the text as it is decoded (``TextIteratorStreamer``); the complete
        ``GeneratedText`` comes last. Closing the iterator early stops the decoding."""
        if self.generation_kwargs().get("num_beams", 1) > 1:  # transformers cannot stream beam search: all at once
            whole = self.generate(question, hits, history)
            if whole.text:
                yield TextDelta(whole.text)
            yield whole
            return
        self.load()
        prompt = self.build_prompt(question, hits, history)
        streamer = TextIteratorStreamer(self.handle.tokenizer, skip_prompt=True, skip_special_tokens=True,
                                        timeout=_STREAM_STALL_S)
        stop = threading.Event()
        done: list[tuple[list[int], list[int], str | None]] = []
        failed: list[BaseException] = []

        def run() -> None:
            try:
                done.append(self._generate(self.render(prompt.messages), streamer=streamer,
                                           stopping_criteria=StoppingCriteriaList([_StopWhenSet(stop)])))
            except BaseException as exc:  # noqa: BLE001 - handed to the reading thread, which raises it
                failed.append(exc)
                streamer.end()  # the reader stops waiting for text that will not come

        worker = threading.Thread(target=run, name="ragbot-stream", daemon=True)
        worker.start()
        try:
            for piece in streamer:
                if piece:
                    yield TextDelta(piece)
        finally:
            stop.set()  # a consumer that stopped early: decoding stops at the next token
            worker.join()
        if failed:
            raise failed[0]
        prompt_ids, new_ids, adapter = done[0]
        text, new_tokens = self.handle.decode(new_ids)
        yield GeneratedText(text=text, model=self.model_name, adapter_version=adapter, prompt_version=PROMPT_VERSION,
                            prompt_tokens=len(prompt_ids), completion_tokens=new_tokens, passages=prompt.passages)

    def generate_from_text(self, prompt_text: str, **overrides: Any) -> tuple[str, int, int]:
        """Generate from an already-rendered prompt: (text, prompt tokens, new visible tokens)."""
        prompt_ids, new_ids, _ = self._generate(prompt_text, **overrides)
        text, n_new = self.handle.decode(new_ids)
        return text, len(prompt_ids), n_new

    def generate_ids(self, prompt_text: str, **overrides: Any) -> tuple[list[int], list[int]]:
        """Token ids of the prompt and of the generated continuation (``overrides`` go to ``generate``)."""
        prompt_ids, new_ids, _ = self._generate(prompt_text, **overrides)
        return prompt_ids, new_ids

    def _generate(self, prompt_text: str, **overrides: Any) -> tuple[list[int], list[int], str | None]:
        self.load()
        handle = self.handle
        prompt_ids = handle.encode(prompt_text)
        ids = torch.tensor([prompt_ids], device=handle.device)
        kwargs = {**self.generation_kwargs(), **overrides}
        no_repeat = kwargs.pop("no_repeat_ngram_size", 0)
        if no_repeat:
            start = 0 if handle.is_seq2seq else len(prompt_ids)  # a decoder's ids start at its own start token
            kwargs["logits_processor"] = LogitsProcessorList(
                [*kwargs.get("logits_processor", []), AnswerNoRepeatNGram(no_repeat, start)])
        try:
            with handle.using_model() as model:
                adapter = self.lora.active  # stable while we hold the model
                past = self._prefix_past(model, adapter, prompt_ids, kwargs)
                if past is not None:
                    kwargs["past_key_values"] = past
                output = model.generate(
                    input_ids=ids,
                    attention_mask=torch.ones_like(ids),
                    pad_token_id=handle.tokenizer.pad_token_id,
                    **kwargs,
                )
        except GenerationError:
            raise
        except Exception as exc:  # e.g. CUDA OOM: the engine falls back
            raise GenerationError(f"generation failed: {type(exc).__name__}: {exc}") from exc
        new = output[0] if handle.is_seq2seq else output[0, ids.shape[1]:]
        return prompt_ids, list(new.tolist()), adapter

    def _prefix_past(self, model: Any, adapter: str | None, prompt_ids: list[int], kwargs: dict[str, Any]) -> Any:
        """The system prefix's cached keys/values for this generation, when they apply (None otherwise)."""
        if (not self.prefix_cache_enabled or self.handle.is_seq2seq or self.handle.bypass_adapters
                or kwargs.get("num_beams", 1) > 1 or "past_key_values" in kwargs):
            return None
        peft_config = getattr(model, "active_peft_config", None)
        if peft_config is not None and peft_config.is_prompt_learning:  # these adapters bring their own past
            return None
        return self.prefix_cache.past_for(model, adapter, prompt_ids)
