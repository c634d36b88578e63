"""What ``RagEngine.answer_stream`` hands out: the model's text as it is written, then the checked answer."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from rag_engine.values import Answer


@dataclass(frozen=True, slots=True)
class StreamPiece:
    """Text the model wrote since the previous piece: raw (``[n]`` markers unresolved) and not yet checked."""

    text: str


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """The final answer, as ``RagEngine.answer`` gives it: grounding-checked, citations resolved.

    When it is not ``answer.generated`` (the model failed, or its text failed the grounding check and the
    answer quotes the documents), the pieces streamed before must be replaced by it.
    """

    answer: Answer


AnswerStream = Iterator[StreamPiece | StreamEnd]  # pieces, then exactly one StreamEnd
