"""The evaluation gate: a candidate adapter goes live only if it is measurably better.

On the held-out examples, each model (the candidate, the active adapter if
any, the base model) is scored by

* **NLL**: mean negative log-likelihood per reference-answer token (plus the
  end-of-turn token), given the serving prompt: the promotion criterion;
* **token F1 / ROUGE-L** of answers it generates (greedy, first
  ``eval_generate_max`` examples): reported, not gating;
* **delivered F1**, when the caller passes ``deliver`` (the worker passes the
  engine's grounding check): token F1 of what a user would receive for those
  generations — the generated answer when the check keeps it, else the
  extractive answer.

Promotion rule: with reference = the active adapter (or the base model when
none is active), the candidate is promoted iff

    nll(candidate) <= nll(reference) * (1 - promotion_margin)   and   nll(candidate) < nll(base)
    and   delivered_f1(candidate) >= delivered_f1(reference)          (when measured)

i.e. it must cut the reference's per-token NLL by at least ``promotion_margin``
(relative; 0.02 = 2 %), never be worse than the base model, and not make what
users receive worse. The last clause exists because a lower NLL showed no such
thing: on tts-handbook an adapter cut held-out NLL and raised its own generated
F1 from 0.149 to 0.545, yet delivered F1 fell from 0.694 to 0.667 on the gate's
held-out examples (it was kept more often while scoring below the extract it
replaced) and from 0.645 to 0.619 on the unseen test questions
(benchmarks/delivered_gate.py, benchmarks/results/invented_rule/).

The held-out examples must all be reviewed (curated Q&A or approved
corrections, see ``dataset``): otherwise whoever can vote or suggest a
correction could also write the exam a poisoned candidate is judged by.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rag_engine.config import EngineConfig
from rag_engine.eval.scores import rouge_l, token_f1
from rag_engine.generation.transformers_backend import TransformersGenerator
from rag_engine.training.dataset import TrainingExample
from rag_engine.values import GeneratedText, SearchHit

log = logging.getLogger(__name__)

# What a user would receive for a generated answer: (question, generated, hits) -> the answer text given
Deliver = Callable[[str, GeneratedText, list[SearchHit]], str]


@dataclass(frozen=True, slots=True)
class ModelScore:
    nll: float
    token_f1: float | None
    rouge_l: float | None
    examples: int
    answer_tokens: int
    generated: int
    delivered_f1: float | None = None


@dataclass(frozen=True, slots=True)
class GateDecision:
    promote: bool
    reason: str
    candidate: ModelScore
    base: ModelScore
    active: ModelScore | None
    active_version: str | None
    margin: float

    def metrics(self) -> dict[str, Any]:
        return {
            "candidate": asdict(self.candidate),
            "active": asdict(self.active) if self.active else None,
            "active_version": self.active_version,
            "base": asdict(self.base),
            "margin": self.margin,
            "promote": self.promote,
            "reason": self.reason,
        }


def score(gen: TransformersGenerator, adapter: str | None, examples: Sequence[TrainingExample], *,
          generate_max: int, deliver: Deliver | None = None) -> ModelScore:
    """Score ``examples`` with ``adapter`` active on ``gen`` (None = the base model)."""
    gen.set_active_adapter(adapter)
    gen.load()
    handle = gen.handle  # scores with the same encoding the trainer trained on
    total_nll = 0.0
    total_tokens = 0
    f1s: list[float] = []
    rouges: list[float] = []
    delivered: list[float] = []
    for i, example in enumerate(examples):
        built = gen.build_prompt(example.question, example.hits(), [])
        prompt = gen.render(built.messages)
        n_tokens = len(handle.answer_ids(example.answer))
        total_nll += handle.score_nll(prompt, example.answer) * n_tokens  # token-weighted mean over the set
        total_tokens += n_tokens
        if i < generate_max:
            text, _, _ = gen.generate_from_text(prompt)
            f1s.append(token_f1(text, example.answer))
            rouges.append(rouge_l(text, example.answer))
            if deliver is not None:
                result = GeneratedText(text=text, model=gen.model_name, adapter_version=adapter,
                                       passages=built.passages)
                delivered.append(token_f1(deliver(example.question, result, example.hits()), example.answer))
    return ModelScore(
        nll=total_nll / total_tokens if total_tokens else float("nan"),
        token_f1=sum(f1s) / len(f1s) if f1s else None,
        rouge_l=sum(rouges) / len(rouges) if rouges else None,
        examples=len(examples),
        answer_tokens=total_tokens,
        generated=len(f1s),
        delivered_f1=sum(delivered) / len(delivered) if delivered else None,
    )


def decide(candidate: ModelScore, base: ModelScore, active: ModelScore | None, margin: float) -> tuple[bool, str]:
    """The promotion rule (see the module docstring)."""
    reference, name = (active, "the active adapter") if active is not None else (base, "the base model")
    needed = reference.nll * (1 - margin)
    nll_passes = candidate.nll < base.nll and candidate.nll <= needed
    worse_delivered = (candidate.delivered_f1 is not None and reference.delivered_f1 is not None
                       and candidate.delivered_f1 < reference.delivered_f1)
    if nll_passes and worse_delivered:
        return False, (f"held-out NLL {candidate.nll:.4f} beats {name} ({reference.nll:.4f}), but what users would "
                       f"receive gets worse: delivered token-F1 {candidate.delivered_f1:.3f} < "
                       f"{reference.delivered_f1:.3f}")
    if nll_passes:
        return True, (f"held-out NLL {candidate.nll:.4f} beats {name} ({reference.nll:.4f}) "
                      f"by more than the {margin:.1%} margin")
    if candidate.nll >= base.nll:
        return False, f"held-out NLL {candidate.nll:.4f} is no better than the base model's ({base.nll:.4f})"
    return False, (f"held-out NLL {candidate.nll:.4f} does not beat {name} ({reference.nll:.4f}) "
                   f"by the {margin:.1%} margin (needs <= {needed:.4f})")


def evaluate(
    config: EngineConfig,
    heldout: Sequence[TrainingExample],
    candidate: tuple[str, Path],
    active: tuple[str, Path] | None,
    *,
    model: str | Path | None = None,
    deliver: Deliver | None = None,
) -> GateDecision:
    """Load the base model once, the adapters over it, and judge the candidate (``deliver``: see the module)."""
    if not heldout:
        raise ValueError("no held-out examples to evaluate on")
    unreviewed = sum(not e.reviewed for e in heldout)
    if unreviewed:  # a 👍 or unapproved answer must not decide what goes live
        raise ValueError(f"{unreviewed} held-out example(s) are not reviewed (curated or approved corrections only)")
    gen = TransformersGenerator(config.generation, model=model)
    gen.load_adapter(*candidate)
    if active is not None:
        gen.load_adapter(*active)
    limit = max(0, config.training.eval_generate_max)
    base_score = score(gen, None, heldout, generate_max=limit, deliver=deliver)
    active_score = score(gen, active[0], heldout, generate_max=limit, deliver=deliver) if active else None
    cand_score = score(gen, candidate[0], heldout, generate_max=limit, deliver=deliver)
    promote, reason = decide(cand_score, base_score, active_score, config.training.promotion_margin)
    log.info("gate for %s: %s", candidate[0], reason)
    return GateDecision(promote, reason, cand_score, base_score, active_score, active[0] if active else None,
                        config.training.promotion_margin)
