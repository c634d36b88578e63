"""The promotion rule's delivered-F1 clause: a lower NLL alone must not put live an adapter that makes what users
receive worse."""

from __future__ import annotations

from rag_engine.training.gate import ModelScore, decide


def _score(nll: float, delivered: float | None) -> ModelScore:
    return ModelScore(nll=nll, token_f1=0.5, rouge_l=0.5, examples=32, answer_tokens=900, generated=32,
                      delivered_f1=delivered)


def test_lower_nll_but_worse_delivered_answers_is_rejected() -> None:
    promote, reason = decide(_score(1.0, 0.667), _score(2.0, 0.694), None, 0.02)
    assert not promote and "delivered token-F1 0.667 < 0.694" in reason


def test_lower_nll_and_delivered_answers_no_worse_is_promoted() -> None:
    assert decide(_score(1.0, 0.694), _score(2.0, 0.694), None, 0.02)[0]
    assert decide(_score(1.0, 0.70), _score(2.0, 0.60), _score(1.5, 0.65), 0.02)[0]


def test_the_reference_is_the_active_adapter_when_there_is_one() -> None:
    promote, reason = decide(_score(1.0, 0.65), _score(2.0, 0.60), _score(1.5, 0.70), 0.02)
    assert not promote and "< 0.700" in reason


def test_without_delivered_scores_the_nll_rule_alone_decides() -> None:
    assert decide(_score(1.0, None), _score(2.0, None), None, 0.02)[0]
    assert not decide(_score(1.99, None), _score(2.0, None), None, 0.02)[0]  # inside the margin
