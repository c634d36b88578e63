"""Reuse the attention cache of the prompt's fixed start (the system message) across answers.

Every prompt starts with the same system message, so its keys and values are
the same for every answer of one model and adapter: computed once, copied into
each generation, they save that part of the prefill (the part of the CPU time
that grows with the prompt). The prefix is found by rendering two prompts that
differ only in the user message and keeping their common token ids; a prompt
whose ids do not start with it generates without the cache, as does anything
the cache does not fit (seq2seq models, prompt-learning adapters, beam search).
"""

from __future__ import annotations

import copy
import threading
from typing import Any

import torch

from rag_engine.generation.model_handle import ModelHandle
from rag_engine.generation.prompting import SYSTEM_PROMPT

_MIN_PREFIX = 8  # shorter prefixes are not worth a copy of the cache


class PrefixCache:
    """Past keys/values of the system prefix, one entry per (model state, adapter)."""

    def __init__(self, handle: ModelHandle) -> None:
        self._handle = handle
        self._lock = threading.Lock()
        self._prefix: list[int] | None = None
        self._entries: dict[tuple[int, str | None], Any] = {}

    def prefix_ids(self) -> list[int]:
        """Token ids every rendered prompt starts with (the last common one dropped: it may merge)."""
        if self._prefix is None:
            handle = self._handle
            a, b = (handle.encode(handle.render([{"role": "system", "content": SYSTEM_PROMPT},
                                                 {"role": "user", "content": text}])) for text in ("A?", "Z!"))
            common = 0
            while common < min(len(a), len(b)) and a[common] == b[common]:
                common += 1
            self._prefix = a[: max(0, common - 1)]
        return self._prefix

    def past_for(self, model: Any, adapter: str | None, prompt_ids: list[int]) -> Any | None:
        """A fresh copy of the prefix's cache for this prompt, or None when it does not apply.

        Call with the model held (``handle.using_model()``), ``adapter`` the one active.
        """
        prefix = self.prefix_ids()
        if len(prefix) < _MIN_PREFIX or len(prompt_ids) <= len(prefix) or prompt_ids[: len(prefix)] != prefix:
            return None
        key = (self._handle.model_epoch, adapter)
        with self._lock:
            past = self._entries.get(key)
        if past is None:
            from transformers import DynamicCache  # lazy, like the rest of transformers

            ids = torch.tensor([prefix], device=self._handle.device)
            past = model(input_ids=ids, past_key_values=DynamicCache(), use_cache=True).past_key_values
            with self._lock:  # entries of an older model state are of no further use
                self._entries = {k: v for k, v in self._entries.items() if k[0] == key[0]}
                self._entries[key] = past
        return copy.deepcopy(past)
