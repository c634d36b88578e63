"""Prompt-injection hygiene: flag passages that try to give the model orders.

Passages are always quoted as data; a flag only records (in the interaction
log) that a document tried, so an admin can find and fix it.
"""

from __future__ import annotations

import re

from rag_engine.types import SearchHit

_INJECTION = re.compile(
    r"ignore (?:all |any |the )?(?:previous|prior|above|earlier) (?:instructions|prompts|rules)"
    r"|disregard (?:all |any |the )?(?:previous|prior|above) "
    r"|you are now (?:a|an|in) "
    r"|new (?:system )?instructions?:"
    r"|(?:^|\n)\s*(?:system|assistant)\s*:"
    r"|<\|im_start\|>|<\|system\|>|\[/?INST\]|<<SYS>>"
    r"|reveal (?:your|the) (?:system )?prompt",
    re.I,
)

PROMPT_INJECTION = "prompt_injection"


def injection_flags(hits: list[SearchHit]) -> list[str]:
    flagged = [h.chunk_id for h in hits if _INJECTION.search(h.text)]
    return [f"{PROMPT_INJECTION}:chunk={cid}" for cid in flagged]


def looks_like_injection(text: str) -> bool:
    return bool(_INJECTION.search(text))
