"""Dynamic int8 for the base model's linear layers on CPU (``generator_quantize = "int8"``).

Decoding one token at a time on a CPU is bound by reading weights; int8 weights
are a quarter of the bytes. Each ``nn.Linear`` is replaced by :class:`Int8Linear`,
still an ``nn.Linear`` (so PEFT wraps it as a LoRA base layer exactly as
before, and LoRA's own layers, added later, stay float) whose forward runs
PyTorch's dynamically quantized kernel. Serving only: training loads its own
float model.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

log = logging.getLogger(__name__)


class Int8Linear(torch.nn.Linear):
    """An ``nn.Linear`` that multiplies with an int8 copy of its weight (activations quantized per call).

    The float weight stays (PEFT reads its shape, dtype and device); the packed
    int8 copy is a plain attribute, not a submodule, so module names and state
    dicts are unchanged.
    """

    _int8: Any

    @classmethod
    def from_linear(cls, linear: torch.nn.Linear) -> Int8Linear:
        from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear  # lazy: torch.ao loads only to convert
        from torch.ao.quantization import default_dynamic_qconfig  # lazy: as above

        new = cls.__new__(cls)
        new.__dict__.update(linear.__dict__)  # same parameters, hooks and flags: a re-typed module
        linear.qconfig = default_dynamic_qconfig  # type: ignore[assignment] # read by from_float
        object.__setattr__(new, "_int8", DynamicLinear.from_float(linear))
        del linear.qconfig
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        result: torch.Tensor = self._int8(x)
        return result


# the output projection picks every token from the whole vocabulary: int8 there changes answers most
KEEP_FLOAT: tuple[str, ...] = ("lm_head",)


def quantize_linears(model: torch.nn.Module, keep_float: tuple[str, ...] | None = None) -> int:
    """Replace the plain float32 ``nn.Linear`` layers of ``model`` by :class:`Int8Linear`; returns how many.

    Layers named in ``keep_float`` (default :data:`KEEP_FLOAT`) stay as they are.
    """
    keep = KEEP_FLOAT if keep_float is None else keep_float
    swaps: list[tuple[torch.nn.Module, str, torch.nn.Linear]] = []
    for module in model.modules():
        for name, child in module.named_children():
            if type(child) is torch.nn.Linear and child.weight.dtype == torch.float32 and name not in keep:
                swaps.append((module, name, child))
    for parent, name, child in swaps:
        setattr(parent, name, Int8Linear.from_linear(child))
    return len(swaps)
