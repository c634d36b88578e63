"""The generator's way of saying the documents do not answer, and how the engine recognises it.

The system prompt tells the model to "say plainly that the documents do not
say"; training teaches :data:`ABSTAIN_TEXT` on negative examples (a question
shown passages retrieved for another one). The engine turns an answer that is
only this sentence into a "not found" answer instead of grounding-checking it.
"""

from __future__ import annotations

import re

ABSTAIN_TEXT = "The documents do not say."

_ABSTAIN_RE = re.compile(
    r"^(?:the|these|my)?\s*(?:documents|passages|sources)\s+(?:do\s+not|don't|does\s+not|doesn't)\s+say\b",
    re.IGNORECASE,
)
_MARKERS = re.compile(r"\[\s*\d+(?:\s*,\s*\d+)*\s*\]")
_MAX_WORDS = 20  # longer answers say something else too: they go through the grounding check


def is_abstention(text: str) -> bool:
    """Whether ``text`` is the abstention sentence (allowing "don't", a cited number, a short tail)."""
    plain = _MARKERS.sub("", text).strip().replace("’", "'")
    return bool(_ABSTAIN_RE.match(plain)) and len(plain.split()) <= _MAX_WORDS
