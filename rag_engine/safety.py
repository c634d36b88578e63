"""Prompt-injection hygiene: flag passages that try to give the model orders.

Passages are always quoted as data (``generation/prompting.py`` fences them and
tells the model so); the extractive answerer never reads them as instructions.
A flag only records, in the interaction log, that a document tried, so an admin
can find and fix it. Detection runs on a normalized copy of the text (NFKC,
zero-width characters removed, whitespace collapsed, Unicode "tag" characters
decoded), so trivial obfuscation does not hide an attempt.

Flags look like ``prompt_injection:chunk=<id>:kind=<kind>``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from rag_engine.values import SearchHit

PROMPT_INJECTION = "prompt_injection"

_DET = r"(?:all |any |the |your |my |these |those |of the )?"
_BEFORE = r"(?:previous|prior|above|earlier|preceding|former|original|initial|system|developer) "
_ORDERS = r"(?:instructions?|prompts?|rules|directions|directives|guidelines|context|messages)"

_KINDS: dict[str, re.Pattern[str]] = {
    # "ignore previous instructions", "disregard the rules above", "forget everything you were told"
    "override": re.compile(
        rf"\b(?:ignore|disregard|forget|override|bypass) {_DET}{_BEFORE}{_ORDERS}\b"
        rf"|\b(?:ignore|disregard|forget|override|bypass) {_DET}(?:instructions|prompts|system prompt)\b"
        rf"|\b(?:ignore|disregard|forget) (?:everything|all) (?:above|before|you (?:were|have been) told)"
        rf"|\bdo not (?:follow|obey) {_DET}(?:{_BEFORE})?(?:instructions|prompts|system prompt)\b"
        rf"|\bnew (?:system )?instructions?\s*:"
    ),
    # "you are now DAN", "pretend to be", "from now on you will"
    "role_change": re.compile(
        r"\byou are (?:now|no longer) (?:a |an |the |my )?(?:new |different |unrestricted |unfiltered |evil )?"
        r"(?:ai|assistant|bot|chatbot|model|llm|character|persona|dan|bound by|restricted|limited)\b"
        r"|\bpretend (?:to be|you are|that you)\b"
        r"|\bfrom now on,? you (?:are|will|must|shall)\b"
        r"|\b(?:developer|god|jailbreak|dan) mode\b"
    ),
    # chat-template tokens and fake role headers that imitate the prompt's structure
    "fake_prompt": re.compile(
        r"(?:^|\n)\s*(?:system|assistant|developer)\s*:"
        r"|<\|(?:im_start|im_end|system|user|assistant|endoftext|eot_id|start_header_id|end_header_id)\|>"
        r"|\[/?inst\]|<<\/?sys>>|(?:^|\n)\s*#{2,} ?(?:system|instruction|instructions|response)\s*:"
        r"|\bbegin (?:system )?prompt\b|</?passage\b|</?question\b"
    ),
    # "reveal your system prompt", "send the conversation to https://..."
    "exfiltration": re.compile(
        r"\b(?:reveal|print|show|repeat|output|leak|dump) (?:me )?(?:your|the) (?:full |hidden |secret )?"
        r"(?:system )?(?:prompt|instructions)\b"
        r"|\b(?:send|post|forward|upload) (?:all |the |this |your )?(?:conversation|chat|data|documents?|answers?|"
        r"secrets?|tokens?|passwords?)\b.{0,60}\bhttps?://"
    ),
}

_ZERO_WIDTH = re.compile("[\u00ad\u180e\u200b-\u200f\u2060-\u2064\ufeff]")
_TAGS = re.compile("[\U000e0000-\U000e007f]+")


def normalize(text: str) -> str:
    """The text as detection sees it: tag characters decoded, NFKC, no zero-width characters, lower case."""
    text = _TAGS.sub(lambda m: " " + "".join(chr(ord(c) - 0xE0000) for c in m.group(0)) + " ", text)
    text = _ZERO_WIDTH.sub("", unicodedata.normalize("NFKC", text))
    lines = (" ".join(line.split()) for line in text.lower().splitlines())
    return "\n".join(line for line in lines if line)


def injection_kind(text: str) -> str | None:
    """The kind of instruction-like text in ``text`` (``override``, ``role_change``, ``fake_prompt``,
    ``exfiltration``, ``hidden_text``), or None when it reads as ordinary content."""
    if _TAGS.search(text):
        return "hidden_text"
    normalized = normalize(text)
    flat = normalized.replace("\n", " ")  # a phrase broken over lines still reads as one
    for kind, pattern in _KINDS.items():
        if pattern.search(normalized if kind == "fake_prompt" else flat):
            return kind
    return None


def looks_like_injection(text: str) -> bool:
    return injection_kind(text) is not None


def injection_flags(hits: Sequence[SearchHit]) -> list[str]:
    """One flag per retrieved chunk that tries to give orders."""
    flags = []
    for hit in hits:
        kind = injection_kind(hit.text) or injection_kind(f"{hit.title}\n{hit.heading_path}")
        if kind:
            flags.append(f"{PROMPT_INJECTION}:chunk={hit.chunk_id}:kind={kind}")
    return flags
