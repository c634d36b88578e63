"""One loaded transformers model and its tokenizer: what serving, training and the promotion gate share.

The handle loads lazily (or explicitly with :meth:`ModelHandle.load`), renders and
encodes prompts exactly one way, budgets them against the model's context, and
scores answers. Every forward pass goes through :meth:`ModelHandle.using_model`,
which holds the read-write lock shared with the adapter set: passes run
together (readers); loading or switching adapters waits for them (writer).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from rag_engine.config import DEFAULT_GENERATOR_MODEL, GenerationConfig
from rag_engine.generation.base import GenerationError, ModelUnavailable
from rag_engine.generation.models import SMOLLM2_DIRNAME, resolve_generator_model
from rag_engine.generation.prompting import Message, TokenCounter, render_plain
from rag_engine.generation.rwlock import ReadWriteLock

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


def display_name(ref: str | Path) -> str:
    """How answers and logs name a model: the bundled default by its directory name, a local path by its last part."""
    if str(ref) == DEFAULT_GENERATOR_MODEL:
        return SMOLLM2_DIRNAME
    return Path(ref).name if Path(ref).expanduser().exists() else str(ref)


class TokenizerCounter:
    """Counts and cuts text in the model's own tokens (``TokenCounter`` protocol)."""

    def __init__(self, handle: ModelHandle) -> None:
        self._handle = handle

    def count(self, messages: list[Message]) -> int:
        return len(self._handle.encode(self._handle.render(messages)))

    def truncate(self, text: str, max_tokens: int) -> str:
        if max_tokens <= 0:
            return ""
        enc = self._handle.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        offsets = enc["offset_mapping"]
        if len(offsets) <= max_tokens:
            return text
        return text[: offsets[max_tokens - 1][1]]  # an exact prefix of the original text


class ModelHandle:
    """A transformers model (causal or seq2seq) loaded once, with its tokenizer and prompt rules.

    ``model`` is the torch module; the adapter set replaces it with a
    ``PeftModel`` wrapping the same weights (under the exclusive lock).
    """

    def __init__(self, config: GenerationConfig, *, model: str | Path | None = None) -> None:
        self.config = config
        self._model_ref = model  # None: resolve config.generator_model on load
        self._load_lock = threading.Lock()
        self.rw = ReadWriteLock()
        self._model: Any = None  # the PreTrainedModel, or the PeftModel wrapping it
        self._tokenizer: Any = None
        self._load_error: ModelUnavailable | None = None
        # set by the adapter set while the base model must answer past prompt-learning adapters, which
        # cannot be switched off layer-wise: each pass then bypasses them, alone (see using_model)
        self.bypass_adapters = False
        self.device: torch.device | None = None
        self.model_name = display_name(model if model is not None else config.generator_model)
        self.load_seconds: float | None = None
        self.model_epoch = 0  # bumped whenever the weights may change: caches of model outputs key on it

    # -- loading ---------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self, *, retry: bool = False) -> None:
        """Load model and tokenizer now (idempotent). Raises ``ModelUnavailable``.

        A failed load is remembered and re-raised on every call, so a broken
        model costs one attempt, not one per question; ``retry=True`` tries again.
        """
        if self._model is not None:
            return
        with self._load_lock:
            if self._model is not None:
                return
            if self._load_error is not None and not retry:
                raise self._load_error
            try:
                self._load()
                self._load_error = None
            except GenerationError as exc:  # the answer says "the model could not be loaded"
                self._load_error = ModelUnavailable(str(exc))
                raise self._load_error from exc
            except Exception as exc:  # any loader failure means "cannot use this model"
                ref = self._model_ref or self.config.generator_model
                self._load_error = ModelUnavailable(
                    f"cannot load generator model {str(ref)!r}: {type(exc).__name__}: {exc}"
                )
                raise self._load_error from exc

    def _load(self) -> None:
        # lazy: transformers takes seconds to import and only this backend needs it
        from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

        started = time.perf_counter()
        ref = self._model_ref if self._model_ref is not None else resolve_generator_model(self.config)
        local = Path(ref).expanduser().exists()
        if isinstance(ref, Path) and not local:
            raise GenerationError(f"generator model path does not exist: {ref}")
        device = pick_device(self.config.generator_device)
        dtype = pick_dtype(self.config.generator_dtype, device)
        # A local directory never needs the network; a hub id may.
        config = AutoConfig.from_pretrained(ref, local_files_only=local)
        model_cls = AutoModelForSeq2SeqLM if getattr(config, "is_encoder_decoder", False) else AutoModelForCausalLM
        tokenizer = AutoTokenizer.from_pretrained(ref, local_files_only=local)
        model: Any = model_cls.from_pretrained(ref, config=config, dtype=dtype, local_files_only=local)
        model.to(device).eval()
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self._tokenizer, self.device = tokenizer, device
        self._model = model
        self.load_seconds = time.perf_counter() - started
        log.info("loaded generator %s (%s) on %s/%s in %.1f s", self.model_name, model_cls.__name__,
                 device, dtype, self.load_seconds)

    @property
    def model(self) -> Any:
        """The torch module (a ``PeftModel`` once an adapter is loaded)."""
        self.load()
        return self._model

    def replace_model(self, model: Any) -> None:
        """Swap in a wrapper of the same weights (the adapter set, holding the exclusive lock)."""
        self._model = model
        self.model_epoch += 1

    @property
    def tokenizer(self) -> Any:
        self.load()
        return self._tokenizer

    @property
    def is_seq2seq(self) -> bool:
        return bool(getattr(self.model.config, "is_encoder_decoder", False))

    @contextmanager
    def using_model(self) -> Iterator[Any]:
        """Hold the model for one forward/generate call with the active adapter applied."""
        self.load()
        if self.bypass_adapters:
            # disable_adapter() patches the model's forward, which concurrent calls would see: run these alone.
            with self.rw.exclusive(), self._model.disable_adapter(), torch.inference_mode():
                yield self._model
            return
        with self.rw.shared(), torch.inference_mode():
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
        max_new = self.config.max_new_tokens
        limit = self.max_positions
        if self.is_seq2seq:  # encoder input and decoder output have separate lengths
            return min(self.config.max_input_tokens, limit or self.config.max_input_tokens)
        total = self.config.max_input_tokens + max_new
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
            return str(tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
        return render_plain(messages)

    def encode(self, text: str) -> list[int]:
        """Token ids of rendered prompt text, encoded exactly as generation, training and scoring do."""
        # A chat template writes its own special tokens; a plain prompt gets the tokenizer's (e.g. BOS).
        templated = bool(getattr(self.tokenizer, "chat_template", None))
        # verbose=False: measuring an over-long prompt is how trimming works, not an error
        return list(self.tokenizer(text, add_special_tokens=not templated, verbose=False)["input_ids"])

    def answer_ids(self, answer: str, *, add_eos: bool = True) -> list[int]:
        """Token ids of an answer as the model should produce it (plus end of sequence when ``add_eos``)."""
        tok = self.tokenizer
        ids = list(tok(answer, add_special_tokens=False)["input_ids"])
        if add_eos and tok.eos_token_id is not None and (not ids or ids[-1] != tok.eos_token_id):
            ids.append(tok.eos_token_id)
        return ids

    def token_counter(self) -> TokenCounter:
        """A ``TokenCounter`` in this model's tokens, for ``prompting.build_prompt``."""
        return TokenizerCounter(self)

    def decode(self, new_ids: list[int]) -> tuple[str, int]:
        """Visible text of generated ids and how many of them are not special tokens."""
        tok = self.tokenizer
        special = set(tok.all_special_ids)
        visible = sum(1 for t in new_ids if t not in special)
        return str(tok.decode(new_ids, skip_special_tokens=True)).strip(), visible

    # -- scoring (tests, training, eval gate) ----------------------------------
    def next_token_logits(self, prompt_text: str) -> torch.Tensor:
        """Logits over the vocabulary for the first token after ``prompt_text`` (float32, CPU)."""
        ids = torch.tensor([self.encode(prompt_text)], device=self.device)
        with self.using_model() as model:
            if self.is_seq2seq:
                start = torch.tensor([[model.config.decoder_start_token_id]], device=self.device)
                logits = model(input_ids=ids, decoder_input_ids=start).logits
            else:
                logits = model(input_ids=ids).logits
        result: torch.Tensor = logits[0, -1].float().cpu()
        return result

    def score_nll(self, prompt: str, answer: str, *, add_eos: bool = True) -> float:
        """Mean negative log-likelihood per answer token given the rendered ``prompt``.

        The answer's tokens (plus the end-of-sequence token when ``add_eos``, so
        stopping counts too) are scored with the active adapter. Lower is better.
        """
        prompt_ids = self.encode(prompt)
        answer_ids = self.answer_ids(answer, add_eos=add_eos)
        if not answer_ids:
            raise ValueError("empty answer: nothing to score")
        with self.using_model() as model:
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
