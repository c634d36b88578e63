"""Retrieval progress for loading states: what the engine is doing while the asker waits.

``RagEngine.answer`` / ``answer_first`` call an optional ``on_progress`` with these events so a
platform can say "searching 3 collections…", then "reading VPN Setup…" instead of one fixed note.
A callback that fails never costs the answer: ``report`` logs and carries on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

log = logging.getLogger(__name__)

ProgressStage = Literal["searching", "reading"]


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """``searching``: ``collections`` is how many collections are searched; ``reading``: ``title`` is the
    top passage's document, about to be answered from."""

    stage: ProgressStage
    collections: int = 0
    title: str = ""


OnProgress = Callable[[ProgressEvent], None]


def report(on_progress: OnProgress | None, event: ProgressEvent) -> None:
    """Tell ``on_progress`` (if any) about ``event``; its failure is logged, never raised."""
    if on_progress is None:
        return
    try:
        on_progress(event)
    except Exception as exc:  # noqa: BLE001 - a loading state must never break answering
        log.debug("progress callback failed: %s", exc)
