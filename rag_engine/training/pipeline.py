"""One retrain, end to end: training set -> PEFT training -> evaluation gate -> promote or reject.

The worker runs this for a ``retrain`` job; the result dict it returns is
stored on the job and shown by ``status`` and the report.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rag_engine.config import EngineConfig, TrainingConfig
from rag_engine.store.database import Database
from rag_engine.training import registry
from rag_engine.training.dataset import Retrieve, TrainingExample, TrainingSet, build_training_set
from rag_engine.training.gate import Deliver, evaluate
from rag_engine.training.trainer import StepInfo, TrainResult, train_adapter

log = logging.getLogger(__name__)

Decision = Literal["promoted", "rejected", "skipped"]
CHECKPOINTS_DIR = "_checkpoints"


@dataclass(slots=True)
class RetrainOutcome:
    decision: Decision
    reason: str
    version: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)  # gate: candidate / active / base scores
    train: dict[str, Any] = field(default_factory=dict)
    snapshot: dict[str, Any] = field(default_factory=dict)

    def to_result(self) -> dict[str, Any]:
        return {"decision": self.decision, "reason": self.reason, "version": self.version,
                "metrics": self.metrics, "train": self.train, "snapshot": self.snapshot}


def retrain(
    db: Database,
    config: EngineConfig,
    *,
    retrieve: Retrieve | None,
    job_id: int | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_step: Callable[[StepInfo], None] | None = None,
    show_progress: bool = False,
    deliver: Deliver | None = None,
) -> RetrainOutcome:
    """Build the training set from the database, train a candidate and gate it (``deliver``: ``gate``)."""
    if config.generation.generator_backend != "transformers":
        return RetrainOutcome("skipped", f"retraining needs the local transformers backend "
                                         f"(generator_backend is {config.generation.generator_backend!r})")
    training_set = build_training_set(db, config.training, retrieve=retrieve,
                                      shown_passages=config.generation.generation_passages)
    if len(training_set) >= 2 and not any(e.reviewed for e in training_set.train + training_set.heldout):
        return RetrainOutcome(
            "skipped",
            f"no reviewed example to judge a candidate by ({len(training_set)} usable, all 👍 answers): the "
            "gate holds out only curated Q&A and approved corrections. Import Q&A (`ragbot feedback import`) "
            "or approve corrections (`ragbot feedback review`, `/ragbot-admin feedback pending`)",
            snapshot=training_set.snapshot,
        )
    if not training_set.train or not training_set.heldout:
        return RetrainOutcome(
            "skipped",
            f"not enough usable examples yet ({len(training_set)}; need at least 2: one to train on, one to "
            f"judge by); excluded: {dict(training_set.excluded) or 'none'}",
            snapshot=training_set.snapshot,
        )
    checkpoint = config.training.adapter_store / CHECKPOINTS_DIR / f"job-{job_id}" if job_id is not None else None
    return train_and_judge(db, config, training_set, checkpoint_dir=checkpoint, should_stop=should_stop,
                           on_step=on_step, show_progress=show_progress, deliver=deliver)


def train_and_judge(
    db: Database,
    config: EngineConfig,
    training_set: TrainingSet,
    *,
    train_examples: list[TrainingExample] | None = None,
    checkpoint_dir: Path | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_step: Callable[[StepInfo], None] | None = None,
    show_progress: bool = False,
    deliver: Deliver | None = None,
) -> RetrainOutcome:
    """Train a candidate on ``train_examples`` (default: the set's train split), register it, gate it."""
    version = registry.next_version(db)
    out_dir = config.training.adapter_store / version
    result: TrainResult = train_adapter(
        train_examples if train_examples is not None else training_set.train, config, out_dir,
        checkpoint_dir=checkpoint_dir, should_stop=should_stop, on_step=on_step, show_progress=show_progress,
    )
    base_model = registry.base_model_id(config.generation)
    train_metrics = {k: v for k, v in result.metrics().items() if k != "losses"}
    registry.register(db, version=version, method=result.method, base_model=base_model, path=out_dir,
                      data_snapshot=training_set.snapshot, metrics={"train": train_metrics})
    current = registry.active(db)
    active = None
    if current is not None and current.base_model == base_model and current.path.is_dir():
        active = (current.version, current.path)
    elif current is not None:
        log.warning("active adapter %s does not fit %s or its files are gone; comparing with the base model only",
                    current.version, base_model)
    decision = evaluate(config, training_set.heldout, (version, out_dir), active, deliver=deliver)
    metrics = {"train": train_metrics, **decision.metrics()}
    if decision.promote:
        registry.set_outcome(db, version, status="candidate", metrics=metrics)
        registry.activate(db, version, base_model=base_model)
    else:
        registry.set_outcome(db, version, status="rejected", metrics=metrics)
    return RetrainOutcome(
        "promoted" if decision.promote else "rejected", decision.reason, version,
        metrics=decision.metrics(), train=train_metrics, snapshot=training_set.snapshot,
    )


def clear_checkpoint(config: TrainingConfig, job_id: int) -> None:
    shutil.rmtree(config.adapter_store / CHECKPOINTS_DIR / f"job-{job_id}", ignore_errors=True)
