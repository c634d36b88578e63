"""The plain-words line under an answer that quotes the documents instead of a model's answer.

The reason code comes from the engine (``Answer.fallback_code``); each platform
shows the same sentence, so a user learns why the answer reads like quotations
and is never told "the model was unavailable" when the model was merely overruled.
"""

from __future__ import annotations

from rag_engine.values import FallbackCode

_QUOTED = "Quoted from the documents"

NOTES: dict[FallbackCode, str] = {
    FallbackCode.NOT_SUPPORTED: f"{_QUOTED}: the generated answer was not supported by them.",
    FallbackCode.GENERATOR_ERROR: f"{_QUOTED}: the model failed while answering.",
    FallbackCode.QUEUE_TIMEOUT: f"{_QUOTED}: the model was busy.",
    FallbackCode.MODEL_UNAVAILABLE: f"{_QUOTED}: the model could not be loaded.",
    FallbackCode.NO_GENERATOR: f"{_QUOTED}: no model is configured.",
}

# answer-first replies (RAGBOT_REPLY_MODE=answer_first): the quoted answer shown at once, and the model's
# answer that replaced it; a quoted answer whose refinement fails keeps its note (its message is left as is)
QUOTED_FIRST = f"{_QUOTED}."
REFINED = "Refined: written by the model from these sources."


def fallback_note(code: FallbackCode | None) -> str | None:
    """The footer sentence for ``code``; None for a generated answer."""
    return NOTES[code] if code is not None else None
