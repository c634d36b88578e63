"""Local generation with transformers (causal or seq2seq) and hot-swappable PEFT adapters.

The model loads lazily on first use (or explicitly with :meth:`load`), so a
broken model surfaces as a ``GenerationError`` at answer time, which the engine
turns into an extractive fallback. Adapters are loaded into one ``PeftModel``
over the same base weights; switching is a flag flip, not a reload.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from rag_engine.generation.base import GenerationError, ModelUnavailable
from rag_engine.generation.models import SMOLLM2_DIRNAME, resolve_generator_model
from rag_engine.generation.prompting import (
    PROMPT_VERSION,
    BuiltPrompt,
    Message,
    TokenCounter,
    build_prompt,
    render_plain,
)
from rag_engine.generation.rwlock import ReadWriteLock
from rag_engine.settings import DEFAULT_GENERATOR_MODEL, Settings
from rag_engine.types import GeneratedText, SearchHit, Turn

log = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_POSITION_ATTRS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length")


def pick_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise GenerationError("generator_device is 'cuda' but no CUDA device is available")
    return torch.device(requested)


def pick_dtype(requested: str, device: torch.device) -> torch.dtype:
    if requested != "auto":
        return _DTYPES[requested]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32  # half precision on CPU is slower, not faster


class _TokenizerCounter:
    """Counts and cuts text in the model's own tokens (``TokenCounter`` protocol)."""

    def __init__(self, backend: TransformersGenerator) -> None:
        self._backend = backend

    def count(self, messages: list[Message]) -> int:
        return len(self._backend._encode(self._backend.render(messages)))

    def truncate(self, text: str, max_tokens: int) -> str:
        if max_tokens <= 0:
            return ""
        tok = self._backend.tokenizer
        enc = tok(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        offsets = enc["offset_mapping"]
        if len(offsets) <= max_tokens:
            return text
        return text[: offsets[max_tokens - 1][1]]  # an exact prefix of the original text


class TransformersGenerator:
    """A ``Generator`` running a transformers model in-process.

    Thread-safe: generations share the model (readers); loading or switching
    adapters waits for them (writer).
    """

    name = "transformers"

    def __init__(
        self,
        settings: Settings,
        *,
        model: str | Path | None = None,
        adapter: tuple[str, Path] | None = None,
    ) -> None:
        self.settings = settings
        self._model_ref = model  # None: resolve settings.generator_model on load
        self._initial_adapter = adapter
        self._load_lock = threading.Lock()
        self._rw = ReadWriteLock()
        self._model: Any = None  # the PreTrainedModel, or the PeftModel wrapping it
        self._tokenizer: Any = None
        self._load_error: ModelUnavailable | None = None
        self._ready = False  # model, tokenizer and initial adapter in place
        self.adapter_error: str | None = None
        self._adapters: dict[str, str] = {}  # version -> peft adapter name
        self._active: str | None = None
        self._prompt_learning = False
        self.device: torch.device | None = None
        self.model_name = self._display_name(model if model is not None else settings.generator_model)
        self.load_seconds: float | None = None

    # -- loading ---------------------------------------------------------------
    @staticmethod
    def _display_name(ref: str | Path) -> str:
        if str(ref) == DEFAULT_GENERATOR_MODEL:
            return SMOLLM2_DIRNAME
        return Path(ref).name if Path(ref).expanduser().exists() else str(ref)

    @property
    def loaded(self) -> bool:
        return self._ready

    def load(self, *, retry: bool = False) -> None:
        """Load model, tokenizer and the initial adapter now (idempotent). Raises ``ModelUnavailable``.

        A failed load is remembered and re-raised on every call, so a broken
        model costs one attempt, not one per question; ``retry=True`` tries again.
        An initial adapter that fails to load is logged and the base model
        answers (``GeneratedText.adapter_version`` is then ``None``).
        """
        if self._ready:
            return
        with self._load_lock:
            if self._ready:
                return
            if self._load_error is not None and not retry:
                raise self._load_error
            try:
                self._load()
                self._load_error = None
            except GenerationError as exc:  # the answer says "the model could not be loaded"
                self._load_error = ModelUnavailable(str(exc))
                raise self._load_error from exc
            except Exception as exc:  # noqa: BLE001 - any loader failure means "cannot use this model"
                ref = self._model_ref or self.settings.generator_model
                self._load_error = ModelUnavailable(
                    f"cannot load generator model {str(ref)!r}: {type(exc).__name__}: {exc}"
                )
                raise self._load_error from exc
            if self._initial_adapter is not None:
                version, path = self._initial_adapter
                try:
                    self._load_adapter(version, Path(path))
                    self.set_active_adapter(version)
                except GenerationError as exc:
                    self.adapter_error = str(exc)
                    log.error("%s; answering with the base model", exc)
            self._ready = True

    def _load(self) -> None:
        from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

        started = time.perf_counter()
        ref = self._model_ref if self._model_ref is not None else resolve_generator_model(self.settings)
        local = Path(ref).expanduser().exists()
        if isinstance(ref, Path) and not local:
            raise GenerationError(f"generator model path does not exist: {ref}")
        device = pick_device(self.settings.generator_device)
        dtype = pick_dtype(self.settings.generator_dtype, device)
        # A local directory never needs the network; a hub id may.
        config = AutoConfig.from_pretrained(ref, local_files_only=local)
        model_cls = AutoModelForSeq2SeqLM if getattr(config, "is_encoder_decoder", False) else AutoModelForCausalLM
        tokenizer = AutoTokenizer.from_pretrained(ref, local_files_only=local)
        model = model_cls.from_pretrained(ref, config=config, dtype=dtype, local_files_only=local)
        model.to(device).eval()
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self._tokenizer, self.device = tokenizer, device
        self._model = model
        self.load_seconds = time.perf_counter() - started
        log.info("loaded generator %s (%s) on %s/%s in %.1f s", self.model_name, model_cls.__name__,
                 device, dtype, self.load_seconds)

    def _require(self) -> None:
        if not self._ready:
            self.load()

    @property
    def model(self) -> Any:
        """The torch module (a ``PeftModel`` once an adapter is loaded)."""
        self._require()
        return self._model

    @property
    def tokenizer(self) -> Any:
        self._require()
        return self._tokenizer

    @property
    def is_seq2seq(self) -> bool:
        return bool(getattr(self.model.config, "is_encoder_decoder", False))

    # -- adapters --------------------------------------------------------------
    @property
    def active_adapter(self) -> str | None:
        return self._active

    @property
    def adapters(self) -> list[str]:
        return list(self._adapters)

    def load_adapter(self, version: str, path: Path | str, *, activate: bool = False) -> None:
        """Load a saved PEFT adapter under ``version``, over the already-loaded base weights."""
        self._require()
        self._load_adapter(version, Path(path))
        if activate:
            self.set_active_adapter(version)

    def _load_adapter(self, version: str, path: Path) -> None:
        if not (path / "adapter_config.json").is_file():
            raise GenerationError(f"not a PEFT adapter directory (no adapter_config.json): {path}")
        internal = _adapter_name(version)
        with self._rw.exclusive():
            if version in self._adapters or internal in self._adapters.values():
                raise GenerationError(f"adapter {version!r} is already loaded")
            try:
                if not _is_peft(self._model):
                    from peft import PeftModel

                    self._model = PeftModel.from_pretrained(
                        self._model, path, adapter_name=internal, is_trainable=False
                    )
                else:
                    self._model.load_adapter(path, adapter_name=internal, is_trainable=False)
            except Exception as exc:  # noqa: BLE001
                raise GenerationError(
                    f"cannot load adapter {version!r} from {path}: {type(exc).__name__}: {exc}"
                ) from exc
            self._model.eval()
            self._adapters[version] = internal
            self._prompt_learning = bool(self._model.peft_config[internal].is_prompt_learning)
            self._apply_active(self._active)  # loading must not change which adapter answers
        log.info("loaded adapter %s from %s", version, path)

    def set_active_adapter(self, version: str | None) -> None:
        """Answer with adapter ``version``, or with the base model when ``None``."""
        if version is not None and version not in self._adapters:
            raise GenerationError(f"adapter {version!r} is not loaded (loaded: {self.adapters})")
        if self._model is None:  # nothing loaded yet: the base model is what will answer
            self._active = None
            return
        with self._rw.exclusive():
            self._apply_active(version)
            self._active = version

    def unload_adapter(self, version: str) -> None:
        """Free an adapter's weights (the base model answers if it was active)."""
        if version not in self._adapters:
            return
        with self._rw.exclusive():
            if self._active == version:
                self._apply_active(None)
                self._active = None
            internal = self._adapters.pop(version)
            if self._adapters:
                if self._model.active_adapter == internal:  # peft would pick another with a warning
                    self._model.set_adapter(next(iter(self._adapters.values())), inference_mode=True)
                    self._apply_active(self._active)
                self._model.delete_adapter(internal)
            else:  # peft refuses to delete the last adapter: drop the wrapper instead
                self._model = self._model.unload()
                self._model.eval()

    def _apply_active(self, version: str | None) -> None:
        # Caller holds the exclusive lock.
        if not _is_peft(self._model):
            return
        if version is None:
            if not self._prompt_learning:  # prompt-learning adapters are bypassed per call instead
                self._model.base_model.disable_adapter_layers()
            return
        self._model.set_adapter(self._adapters[version], inference_mode=True)
        if not self._prompt_learning:
            self._model.base_model.enable_adapter_layers()

    @contextmanager
    def _using_model(self) -> Iterator[Any]:
        """Hold the model for one forward/generate call with the active adapter applied."""
        self._require()
        if self._active is None and self._prompt_learning and _is_peft(self._model):
            # disable_adapter() patches the model's forward, which concurrent calls
            # would see: run these alone.
            with self._rw.exclusive(), self._model.disable_adapter(), torch.inference_mode():
                yield self._model
            return
        with self._rw.shared(), torch.inference_mode():
            yield self._model

    # -- prompts ---------------------------------------------------------------
    @property
    def max_positions(self) -> int | None:
        """The model's context length, when the config or tokenizer states one."""
        config = self.model.config
        for attr in _POSITION_ATTRS:
            value = getattr(config, attr, None)
            if isinstance(value, int) and value > 0:
                return value
        limit = getattr(self.tokenizer, "model_max_length", None)
        return limit if isinstance(limit, int) and 0 < limit < 1_000_000 else None

    def prompt_budget(self) -> int:
        """Tokens the prompt may use so that prompt + max_new_tokens fits the context."""
        max_new = self.settings.max_new_tokens
        limit = self.max_positions
        if self.is_seq2seq:  # encoder input and decoder output have separate lengths
            return min(self.settings.max_input_tokens, limit or self.settings.max_input_tokens)
        total = self.settings.max_input_tokens + max_new
        if limit is not None:
            total = min(total, limit)
        budget = total - max_new
        if budget <= 0:
            raise GenerationError(f"max_new_tokens={max_new} leaves no room for a prompt in a {total}-token context")
        return budget

    def render(self, messages: list[Message]) -> str:
        """The prompt text: chat template when the tokenizer has one, plain otherwise."""
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return render_plain(messages)

    def _encode(self, text: str) -> list[int]:
        # A chat template writes its own special tokens; a plain prompt gets the tokenizer's (e.g. BOS).
        templated = bool(getattr(self.tokenizer, "chat_template", None))
        # verbose=False: measuring an over-long prompt is how trimming works, not an error
        return list(self.tokenizer(text, add_special_tokens=not templated, verbose=False)["input_ids"])

    def encode_prompt(self, text: str) -> list[int]:
        """Token ids of rendered prompt text, encoded exactly as generation and scoring do."""
        return self._encode(text)

    def token_counter(self) -> TokenCounter:
        """A ``TokenCounter`` in this model's tokens, for ``prompting.build_prompt``."""
        return _TokenizerCounter(self)

    def build_prompt(self, question: str, hits: list[SearchHit], history: list[Turn]) -> BuiltPrompt:
        return build_prompt(
            question, hits, history,
            counter=self.token_counter(),
            budget=self.prompt_budget(),
            history_turns=self.settings.history_turns,
        )

    def prompt_text(self, question: str, hits: list[SearchHit], history: Sequence[Turn] = ()) -> str:
        """The exact text the model sees for this question (for training on the same template)."""
        return self.render(self.build_prompt(question, hits, list(history)).messages)

    # -- generation ------------------------------------------------------------
    def generation_kwargs(self) -> dict[str, Any]:
        s = self.settings
        kwargs: dict[str, Any] = {"max_new_tokens": s.max_new_tokens}
        # small models loop ("You should not panic. You should not panic. ...") without these
        if s.repetition_penalty != 1.0:
            kwargs["repetition_penalty"] = s.repetition_penalty
        if s.no_repeat_ngram_size:
            kwargs["no_repeat_ngram_size"] = s.no_repeat_ngram_size
        if s.decoding == "sample":
            kwargs.update(do_sample=True, temperature=s.temperature, top_p=s.top_p, num_beams=1)
        elif s.decoding == "beam":
            kwargs.update(do_sample=False, num_beams=s.num_beams, early_stopping=True)
        else:
            kwargs.update(do_sample=False, num_beams=1)
        return kwargs

    def generate(self, question: str, hits: list[SearchHit], history: list[Turn]) -> GeneratedText:
        self._require()
        prompt = self.build_prompt(question, hits, history)
        prompt_ids, new_ids, adapter = self._generate(self.render(prompt.messages))
        text, new_tokens = self._decode(new_ids)
        return GeneratedText(
            text=text,
            model=self.model_name,
            adapter_version=adapter,
            prompt_version=PROMPT_VERSION,
            prompt_tokens=len(prompt_ids),
            completion_tokens=new_tokens,
            passages=prompt.passages,
        )

    def generate_from_text(self, prompt_text: str, **overrides: Any) -> tuple[str, int, int]:
        """Generate from an already-rendered prompt: (text, prompt tokens, new visible tokens)."""
        prompt_ids, new_ids, _ = self._generate(prompt_text, **overrides)
        text, n_new = self._decode(new_ids)
        return text, len(prompt_ids), n_new

    def generate_ids(self, prompt_text: str, **overrides: Any) -> tuple[list[int], list[int]]:
        """Token ids of the prompt and of the generated continuation (``overrides`` go to ``generate``)."""
        prompt_ids, new_ids, _ = self._generate(prompt_text, **overrides)
        return prompt_ids, new_ids

    def _decode(self, new_ids: list[int]) -> tuple[str, int]:
        tok = self.tokenizer
        special = set(tok.all_special_ids)
        visible = sum(1 for t in new_ids if t not in special)
        return tok.decode(new_ids, skip_special_tokens=True).strip(), visible

    def _generate(self, prompt_text: str, **overrides: Any) -> tuple[list[int], list[int], str | None]:
        prompt_ids = self._encode(prompt_text)
        ids = torch.tensor([prompt_ids], device=self.device)
        kwargs = {**self.generation_kwargs(), **overrides}
        try:
            with self._using_model() as model:
                adapter = self._active  # stable while we hold the model
                output = model.generate(
                    input_ids=ids,
                    attention_mask=torch.ones_like(ids),
                    pad_token_id=self.tokenizer.pad_token_id,
                    **kwargs,
                )
        except GenerationError:
            raise
        except Exception as exc:  # noqa: BLE001 - e.g. CUDA OOM: the engine falls back
            raise GenerationError(f"generation failed: {type(exc).__name__}: {exc}") from exc
        new = output[0] if self.is_seq2seq else output[0, ids.shape[1]:]
        return prompt_ids, new.tolist(), adapter

    # -- scoring hooks (tests, training, eval gate) ------------------------------
    def next_token_logits(self, prompt_text: str) -> torch.Tensor:
        """Logits over the vocabulary for the first token after ``prompt_text`` (float32, CPU)."""
        ids = torch.tensor([self._encode(prompt_text)], device=self.device)
        with self._using_model() as model:
            if self.is_seq2seq:
                start = torch.tensor([[model.config.decoder_start_token_id]], device=self.device)
                logits = model(input_ids=ids, decoder_input_ids=start).logits
            else:
                logits = model(input_ids=ids).logits
        return logits[0, -1].float().cpu()

    def score_nll(self, prompt: str, answer: str, *, add_eos: bool = True) -> float:
        """Mean negative log-likelihood per answer token given the rendered ``prompt``.

        ``prompt`` is prompt text as from :meth:`prompt_text`; the answer's tokens
        (plus the end-of-sequence token when ``add_eos``, so stopping counts too)
        are scored with the active adapter. Lower is better.
        """
        tok = self.tokenizer
        prompt_ids = self._encode(prompt)
        answer_ids = list(tok(answer, add_special_tokens=False)["input_ids"])
        if add_eos and tok.eos_token_id is not None and (not answer_ids or answer_ids[-1] != tok.eos_token_id):
            answer_ids.append(tok.eos_token_id)
        if not answer_ids:
            raise ValueError("empty answer: nothing to score")
        with self._using_model() as model:
            if self.is_seq2seq:
                out = model(
                    input_ids=torch.tensor([prompt_ids], device=self.device),
                    labels=torch.tensor([answer_ids], device=self.device),
                )
            else:
                ids = torch.tensor([prompt_ids + answer_ids], device=self.device)
                labels = ids.clone()
                labels[0, : len(prompt_ids)] = -100  # score the answer only
                out = model(input_ids=ids, labels=labels)
        return float(out.loss)


def _is_peft(model: Any) -> bool:
    return hasattr(model, "peft_config")


def _adapter_name(version: str) -> str:
    # peft keeps adapters in ModuleDicts, whose keys may not contain dots.
    return "v_" + re.sub(r"\W", "_", version)
