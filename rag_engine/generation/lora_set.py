"""PEFT adapters over one loaded base model: load, activate, unload, list.

All adapters live in one ``PeftModel`` over the handle's base weights, so
switching is a flag flip, not a reload. Every change takes the handle's
exclusive lock, so it waits for running generations and never shows them a
half-switched model.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from rag_engine.generation.base import GenerationError
from rag_engine.generation.model_handle import ModelHandle

log = logging.getLogger(__name__)


class LoraSet:
    """The adapters loaded over ``handle``'s model and which one answers (``None``: the base model)."""

    def __init__(self, handle: ModelHandle) -> None:
        self._handle = handle
        self._adapters: dict[str, str] = {}  # version -> peft adapter name
        self._active: str | None = None
        self._prompt_learning = False

    @property
    def active(self) -> str | None:
        return self._active

    @property
    def loaded(self) -> list[str]:
        return list(self._adapters)

    def load(self, version: str, path: Path) -> None:
        """Load a saved PEFT adapter under ``version`` (the active one does not change)."""
        if not (path / "adapter_config.json").is_file():
            raise GenerationError(f"not a PEFT adapter directory (no adapter_config.json): {path}")
        internal = _adapter_name(version)
        self._handle.load()
        with self._handle.rw.exclusive():
            if version in self._adapters or internal in self._adapters.values():
                raise GenerationError(f"adapter {version!r} is already loaded")
            model = self._handle.model
            try:
                if not self._adapters:  # the plain base model: wrap it
                    # lazy: peft is only needed once an adapter is loaded
                    from peft import PeftModel

                    model = PeftModel.from_pretrained(model, path, adapter_name=internal, is_trainable=False)
                else:
                    model.load_adapter(path, adapter_name=internal, is_trainable=False)
            except Exception as exc:  # any loader failure means "cannot use this adapter"
                raise GenerationError(
                    f"cannot load adapter {version!r} from {path}: {type(exc).__name__}: {exc}"
                ) from exc
            model.eval()
            self._handle.replace_model(model)
            self._adapters[version] = internal
            self._prompt_learning = bool(model.peft_config[internal].is_prompt_learning)
            self._apply(self._active)  # loading must not change which adapter answers
        log.info("loaded adapter %s from %s", version, path)

    def activate(self, version: str | None) -> None:
        """Answer with adapter ``version``, or with the base model when ``None``."""
        if version is not None and version not in self._adapters:
            raise GenerationError(f"adapter {version!r} is not loaded (loaded: {self.loaded})")
        if not self._handle.loaded:  # nothing loaded yet: the base model is what will answer
            self._active = None
            return
        with self._handle.rw.exclusive():
            self._apply(version)
            self._active = version

    def unload(self, version: str) -> None:
        """Free an adapter's weights (the base model answers if it was active)."""
        if version not in self._adapters:
            return
        with self._handle.rw.exclusive():
            if self._active == version:
                self._apply(None)
                self._active = None
            internal = self._adapters.pop(version)
            model = self._handle.model
            if self._adapters:
                if model.active_adapter == internal:  # peft would pick another with a warning
                    model.set_adapter(next(iter(self._adapters.values())), inference_mode=True)
                    self._apply(self._active)
                model.delete_adapter(internal)
            else:  # peft refuses to delete the last adapter: drop the wrapper instead
                base = model.unload()
                base.eval()
                self._handle.replace_model(base)
                self._prompt_learning = False
                self._handle.bypass_adapters = False

    def _apply(self, version: str | None) -> None:
        # Caller holds the exclusive lock.
        if not self._adapters:  # the plain base model: nothing to switch
            return
        model = self._handle.model
        # prompt-learning adapters cannot be switched off layer-wise: the base model bypasses them per call
        self._handle.bypass_adapters = version is None and self._prompt_learning
        if version is None:
            if not self._prompt_learning:
                model.base_model.disable_adapter_layers()
            return
        model.set_adapter(self._adapters[version], inference_mode=True)
        if not self._prompt_learning:
            model.base_model.enable_adapter_layers()


def _adapter_name(version: str) -> str:
    # peft keeps adapters in ModuleDicts, whose keys may not contain dots.
    return "v_" + re.sub(r"\W", "_", version)
