"""PEFT training of the generator (LoRA by default; prefix tuning and IA³ through the same path).

A plain torch loop: the loss covers the answer tokens only (plus the
end-of-turn token, so the model also learns where to stop), prompts come from
the generator's own prompt builder and chat template so training and serving
see identical text, and the base model loads through the serving ``ModelHandle``.
Checkpoints are written every ``train_checkpoint_steps`` steps and when the run
is interrupted (Ctrl-C, or ``should_stop`` returning true); a later run with
the same data and settings resumes from the checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from tqdm.auto import tqdm

from rag_engine.config import EngineConfig, TrainingConfig
from rag_engine.generation.model_handle import ModelHandle
from rag_engine.generation.prompting import serving_prompt
from rag_engine.training.dataset import TrainingExample

log = logging.getLogger(__name__)

Method = Literal["lora", "prefix", "ia3", "full"]

# LoRA on all attention projections learns noticeably more than peft's default
# (q and v only) for the same speed: the base forward/backward dominates.
_LORA_TARGETS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "olmo", "granite"),
                    ("q_proj", "k_proj", "v_proj", "o_proj")),
    "phi3": ("qkv_proj", "o_proj"),
    "gpt2": ("c_attn", "c_proj"),
    "gpt_neox": ("query_key_value", "dense"),
    "t5": ("q", "k", "v", "o"),
    "mt5": ("q", "k", "v", "o"),
    "bart": ("q_proj", "k_proj", "v_proj", "out_proj"),
}
STATE_FILE = "trainer_state.pt"
METRICS_FILE = "training_metrics.json"


class TrainingInterrupted(RuntimeError):
    """Training stopped early; a checkpoint to resume from was written."""

    def __init__(self, step: int, checkpoint: Path) -> None:
        super().__init__(f"training interrupted at step {step}; checkpoint saved in {checkpoint}")
        self.step = step
        self.checkpoint = checkpoint


@dataclass(frozen=True, slots=True)
class StepInfo:
    step: int
    total_steps: int
    loss: float
    tokens: int  # tokens processed so far (prompt + answer, no padding)


@dataclass(slots=True)
class TrainResult:
    path: Path | None  # adapter directory (None for a full fine-tune run, which is not saved)
    method: str
    steps: int
    epochs: float
    examples: int
    tokens: int  # prompt + answer tokens processed (no padding)
    answer_tokens: int  # tokens the loss was computed on
    seconds: float
    tokens_per_s: float
    first_loss: float
    final_loss: float  # mean loss of the last epoch's worth of steps (or fewer)
    trainable_params: int
    total_params: int
    device: str
    resumed_from_step: int = 0
    truncated_examples: int = 0
    peak_cuda_mb: float | None = None
    losses: list[float] = field(default_factory=list)

    def metrics(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = str(self.path) if self.path else None
        data["losses"] = [round(x, 4) for x in self.losses[-200:]]
        return data


@dataclass(slots=True)
class _Encoded:
    input_ids: list[int]
    labels: list[int]  # -100 where the loss is off (causal); answer ids for seq2seq
    answer_tokens: int


def lora_targets(config: TrainingConfig, model_type: str) -> list[str] | None:
    """Target modules: the configured list, else a per-architecture choice, else peft's default."""
    if config.lora_target_modules:
        return list(config.lora_target_modules)
    targets = _LORA_TARGETS.get(model_type)
    return list(targets) if targets is not None else None


def peft_config(config: TrainingConfig, model: Any, method: str) -> Any:
    """The PEFT config for ``method`` on ``model`` (same path for every method)."""
    from peft import IA3Config, LoraConfig, PrefixTuningConfig, TaskType  # lazy: peft pulls transformers (seconds)

    seq2seq = bool(getattr(model.config, "is_encoder_decoder", False))
    task = TaskType.SEQ_2_SEQ_LM if seq2seq else TaskType.CAUSAL_LM
    model_type = getattr(model.config, "model_type", "")
    if method == "lora":
        return LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                          target_modules=lora_targets(config, model_type), task_type=task)
    if method == "prefix":
        return PrefixTuningConfig(num_virtual_tokens=config.prefix_virtual_tokens, task_type=task)
    if method == "ia3":
        return IA3Config(task_type=task)  # peft's per-architecture targets (attention k/v + FFN down)
    raise ValueError(f"unknown peft_method {method!r} (lora, prefix or ia3)")


def train_adapter(
    examples: Sequence[TrainingExample],
    config: EngineConfig,
    out_dir: Path | None,
    *,
    model: str | Path | None = None,
    handle: ModelHandle | None = None,
    method: Method | None = None,
    checkpoint_dir: Path | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_step: Callable[[StepInfo], None] | None = None,
    show_progress: bool = False,
) -> TrainResult:
    """Train on ``examples`` and save the adapter to ``out_dir``.

    ``model`` overrides ``config.generation.generator_model``; ``handle`` is an already
    loaded model to train instead (its model is changed in place: do not answer
    with it afterwards); ``method`` overrides ``config.training.peft_method``
    (``"full"`` fine-tunes every weight, for benchmarks, and saves nothing).
    Raises ``TrainingInterrupted`` after saving a checkpoint when interrupted,
    ``ValueError`` when there is nothing to train on.
    """
    run = setup_training(examples, config.training, handle or ModelHandle(config.generation, model=model),
                         method or config.training.peft_method, checkpoint_dir)
    progress = run_training(run, should_stop=should_stop, on_step=on_step, show_progress=show_progress)
    return finish_training(run, progress, out_dir)


@dataclass(slots=True)
class TrainingRun:
    """Everything the loop needs, fixed before the first step (and restored from a checkpoint)."""

    config: TrainingConfig
    method: str
    checkpoint_dir: Path | None
    encoded: list[_Encoded]
    truncated: int
    net: Any  # the model being trained (a PeftModel, or the plain model for "full")
    trainable: list[torch.nn.Parameter]
    device: torch.device
    pad_id: int
    seq2seq: bool
    per_epoch: int
    total: int
    schedule: list[list[int]]
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    fingerprint: str
    start: int
    losses: list[float]

    @property
    def checkpoints(self) -> bool:
        return self.checkpoint_dir is not None and self.method != "full"

    def save_checkpoint(self, step: int) -> None:
        assert self.checkpoint_dir is not None
        _save_checkpoint(self.checkpoint_dir, self.fingerprint, self.net, self.optimizer, self.scheduler, step,
                         self.losses)


@dataclass(frozen=True, slots=True)
class LoopProgress:
    """What the loop measured (this run only: a resumed run does not count earlier steps' tokens)."""

    tokens: int
    answer_tokens: int
    seconds: float


def setup_training(examples: Sequence[TrainingExample], config: TrainingConfig, handle: ModelHandle, method: str,
                   checkpoint_dir: Path | None) -> TrainingRun:
    """Load the model, encode the examples, wrap the model for ``method``, fix the schedule, resume if possible."""
    if not examples:
        raise ValueError("the training set is empty: nothing to train on")
    handle.load()
    torch.manual_seed(config.train_seed)
    encoded, truncated = encode_examples(handle, examples, config.train_max_tokens)
    net = _trainable_model(handle.model, config, method)
    trainable = [p for p in net.parameters() if p.requires_grad]

    batch_size = max(1, config.train_batch_size)
    per_epoch = math.ceil(len(encoded) / batch_size)
    total = per_epoch * max(1, config.train_epochs)
    if config.train_max_steps > 0:
        total = min(total, config.train_max_steps) if config.train_epochs > 0 else config.train_max_steps

    optimizer = torch.optim.AdamW(trainable, lr=config.train_learning_rate, weight_decay=0.0)
    warmup = max(1, total // 20)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * max(0.05, 1 - s / max(1, total))
    )
    run = TrainingRun(
        config=config, method=method, checkpoint_dir=checkpoint_dir, encoded=encoded, truncated=truncated,
        net=net, trainable=trainable, device=handle.device or torch.device("cpu"),
        pad_id=handle.tokenizer.pad_token_id, seq2seq=bool(getattr(net.config, "is_encoder_decoder", False)),
        per_epoch=per_epoch, total=total,
        schedule=_batch_schedule(len(encoded), batch_size, total, config.train_seed),
        optimizer=optimizer, scheduler=scheduler,
        fingerprint=_fingerprint(examples, config, method, str(handle.model_name)), start=0, losses=[],
    )
    if run.checkpoints and checkpoint_dir is not None:
        run.start, run.losses = _resume(checkpoint_dir, run.fingerprint, net, optimizer, scheduler)
    return run


def run_training(run: TrainingRun, *, should_stop: Callable[[], bool] | None = None,
                 on_step: Callable[[StepInfo], None] | None = None, show_progress: bool = False) -> LoopProgress:
    """The optimisation steps from ``run.start`` to ``run.total``.

    Saves a checkpoint every ``train_checkpoint_steps`` steps; on Ctrl-C or
    ``should_stop`` it saves one and raises ``TrainingInterrupted``.
    """
    config, device = run.config, run.device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    run.net.train()
    tokens = answer_tokens = 0
    bar = _progress(run.total, run.start) if show_progress else None
    started = time.perf_counter()
    try:
        for step in range(run.start, run.total):
            batch = [run.encoded[i] for i in run.schedule[step]]
            loss = run.net(**_collate(batch, run.pad_id, device)).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(run.trainable, 1.0)
            run.optimizer.step()
            run.scheduler.step()
            run.optimizer.zero_grad(set_to_none=True)
            value = float(loss.detach())
            if not math.isfinite(value):
                raise RuntimeError(f"training diverged at step {step + 1} (loss {value}); lower the learning rate")
            run.losses.append(value)
            tokens += sum(len(e.input_ids) + (len(e.labels) if run.seq2seq else 0) for e in batch)
            answer_tokens += sum(e.answer_tokens for e in batch)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{value:.3f}")
            if on_step is not None:
                on_step(StepInfo(step + 1, run.total, value, tokens))
            done = step + 1
            if run.checkpoints and done < run.total and (
                    config.train_checkpoint_steps > 0 and done % config.train_checkpoint_steps == 0):
                run.save_checkpoint(done)
            if should_stop is not None and done < run.total and should_stop():
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        done = len(run.losses)
        if not run.checkpoints or run.checkpoint_dir is None:
            raise
        run.save_checkpoint(done)
        raise TrainingInterrupted(done, run.checkpoint_dir) from None
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - started
    run.net.eval()
    return LoopProgress(tokens=tokens, answer_tokens=answer_tokens, seconds=seconds)


def finish_training(run: TrainingRun, progress: LoopProgress, out_dir: Path | None) -> TrainResult:
    """The run's numbers; saves the adapter to ``out_dir`` (not for "full") and drops the checkpoint."""
    losses, seconds, device = run.losses, progress.seconds, run.device
    tail = losses[-run.per_epoch:] if losses else [float("nan")]
    result = TrainResult(
        path=None, method=run.method, steps=run.total, epochs=run.total / run.per_epoch, examples=len(run.encoded),
        tokens=progress.tokens, answer_tokens=progress.answer_tokens, seconds=seconds,
        tokens_per_s=progress.tokens / seconds if seconds > 0 else 0.0,
        first_loss=losses[0] if losses else float("nan"), final_loss=sum(tail) / len(tail),
        trainable_params=sum(p.numel() for p in run.trainable),
        total_params=sum(p.numel() for p in run.net.parameters()),
        device=str(device), resumed_from_step=run.start, truncated_examples=run.truncated,
        peak_cuda_mb=torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None,
        losses=losses,
    )
    if out_dir is not None and run.method != "full":
        _save_adapter(run.net, Path(out_dir), result)
    if run.checkpoint_dir is not None:
        shutil.rmtree(run.checkpoint_dir, ignore_errors=True)
    log.info("trained %s: %d steps, %.0f tokens/s, loss %.3f -> %.3f", run.method, run.total, result.tokens_per_s,
             result.first_loss, result.final_loss)
    return result


def encode_examples(handle: ModelHandle, examples: Sequence[TrainingExample],
                    max_tokens: int) -> tuple[list[_Encoded], int]:
    """Token ids for each example: the serving prompt (trimmed to fit) + answer + end of turn.

    The answer keeps at most half of ``max_tokens``; the prompt builder then
    trims passages (lowest-ranked first) to fit the rest, exactly as at serving
    time. Returns the encodings and how many answers had to be cut.
    """
    tok = handle.tokenizer
    seq2seq = handle.is_seq2seq
    counter = handle.token_counter()
    encoded: list[_Encoded] = []
    truncated = 0
    for example in examples:
        answer_ids = list(tok(example.answer, add_special_tokens=False)["input_ids"])
        limit = max(1, max_tokens // 2) - 1
        if len(answer_ids) > limit:
            answer_ids, truncated = answer_ids[:limit], truncated + 1
        if tok.eos_token_id is not None:
            answer_ids.append(tok.eos_token_id)
        budget = min(handle.prompt_budget(), max_tokens if seq2seq else max_tokens - len(answer_ids))
        prompt = serving_prompt(handle.config, example.question, example.hits(), [], counter=counter, budget=budget)
        prompt_ids = handle.encode(handle.render(prompt.messages))  # the serving encoding of the serving prompt
        if seq2seq:
            encoded.append(_Encoded(prompt_ids, answer_ids, len(answer_ids)))
        else:
            encoded.append(_Encoded(prompt_ids + answer_ids, [-100] * len(prompt_ids) + answer_ids, len(answer_ids)))
    return encoded, truncated


def _trainable_model(model: Any, config: TrainingConfig, method: str) -> Any:
    if method == "full":
        for p in model.parameters():
            p.requires_grad_(True)
        return model
    from peft import get_peft_model  # lazy: peft pulls transformers (seconds)

    return get_peft_model(model, peft_config(config, model, method))


def _batch_schedule(n: int, batch_size: int, total_steps: int, seed: int) -> list[list[int]]:
    """Every step's example indices, fixed by the seed (so a resumed run sees the same batches)."""
    rng = random.Random(seed)
    steps: list[list[int]] = []
    while len(steps) < total_steps:
        order = list(range(n))
        rng.shuffle(order)
        steps += [order[i: i + batch_size] for i in range(0, n, batch_size)]
    return steps[:total_steps]


def _collate(batch: list[_Encoded], pad_id: int, device: torch.device) -> dict[str, torch.Tensor]:
    def pad(rows: list[list[int]], value: int) -> torch.Tensor:
        width = max(len(r) for r in rows)
        return torch.tensor([r + [value] * (width - len(r)) for r in rows], device=device)

    ids = pad([e.input_ids for e in batch], pad_id)
    mask = pad([[1] * len(e.input_ids) for e in batch], 0)
    return {"input_ids": ids, "attention_mask": mask, "labels": pad([e.labels for e in batch], -100)}


def _fingerprint(examples: Sequence[TrainingExample], config: TrainingConfig, method: str, model: str) -> str:
    h = hashlib.sha256()
    for example in examples:
        h.update(json.dumps(example.to_json(), sort_keys=True).encode())
    keys = ("lora_r", "lora_alpha", "lora_dropout", "lora_target_modules", "train_learning_rate", "train_epochs",
            "train_max_steps", "train_batch_size", "train_seed", "train_max_tokens", "prefix_virtual_tokens")
    values = [getattr(config, k) for k in keys]  # a tuple prints as the list it was in the settings (stable hashes)
    h.update(json.dumps([method, model, *[str(list(v) if isinstance(v, tuple) else v) for v in values]]).encode())
    return h.hexdigest()


def _save_checkpoint(directory: Path, fingerprint: str, net: Any, optimizer: Any, scheduler: Any, step: int,
                     losses: list[float]) -> None:
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    net.save_pretrained(tmp / "adapter")
    torch.save({"fingerprint": fingerprint, "step": step, "losses": losses, "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict()}, tmp / STATE_FILE)
    shutil.rmtree(directory, ignore_errors=True)
    tmp.rename(directory)  # a checkpoint is either complete or absent
    log.info("checkpoint at step %d in %s", step, directory)


def _resume(directory: Path, fingerprint: str, net: Any, optimizer: Any, scheduler: Any) -> tuple[int, list[float]]:
    state_file = directory / STATE_FILE
    if not state_file.is_file():
        return 0, []
    state = torch.load(state_file, map_location="cpu", weights_only=False)
    if state.get("fingerprint") != fingerprint:
        log.info("ignoring checkpoint in %s: it was made for other data or settings", directory)
        return 0, []
    from peft import load_peft_weights, set_peft_model_state_dict  # lazy: peft pulls transformers (seconds)

    set_peft_model_state_dict(net, load_peft_weights(str(directory / "adapter")))
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    log.info("resuming training from step %d", state["step"])
    return int(state["step"]), list(state["losses"])


def _save_adapter(net: Any, out_dir: Path, result: TrainResult) -> None:
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    net.save_pretrained(tmp)
    (tmp / METRICS_FILE).write_text(json.dumps({**result.metrics(), "path": str(out_dir)}, indent=2))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    result.path = out_dir


def _progress(total: int, start: int) -> Any:
    return tqdm(total=total, initial=start, desc="training", unit="step")
