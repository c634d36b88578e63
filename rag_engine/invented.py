"""Invented content: names, numbers and terms in an answer that none of the passages shown to the generator holds.

The grounding check asks whether an answer's sentences are *similar* to the passages; a sentence can be similar
and still carry a benefit name or a figure the documents never mention. The grounding check rejects such an
answer (``attribution.invents``), and ``eval loop`` counts them among kept answers. The rule, stated so it can
be checked by hand:

- candidates are the answer's words (citation markers and links removed) that contain a digit ("30", "2FA",
  "v1.2"), are written in capitals ("VPN", "PTO"), or start with a capital letter anywhere but at the start of a
  sentence ("ask Priya", "the Gold plan"); lone letters and the pronoun "I" ("I'm", "I'd") are not;
- a candidate is invented when neither the passages shown nor the question contain it as a word, compared
  case-insensitively, with a trailing "s"/"'s" ignored and digits compared without thousands separators.

Words from the question are not counted: repeating the user's own term is not inventing it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_MARKER = re.compile(r"\[\d+(?:\s*,\s*\d+)*\]")
_LINK = re.compile(r"(?:https?://|www\.)\S+")
_WORD = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9'’.\-]|,(?=\d{3}))*[A-Za-z0-9]|[A-Za-z0-9]")
_SENTENCE_END = re.compile(r"[.!?:]\s*$|^\s*$")
_TRAILING = re.compile(r"(?:'s|’s|s)$")
_PRONOUN_I = re.compile(r"^I(?:['’][a-z]+)?$")


def invented_terms(answer: str, passages: Sequence[str], question: str = "") -> list[str]:
    """The answer's candidate words (see the module docstring) found in no passage and not in the question,
    in order of first appearance, each once."""
    known = _vocabulary(" ".join([*passages, question]))
    out: list[str] = []
    for word in _candidates(_LINK.sub(" ", _MARKER.sub(" ", answer))):
        key = _key(word)
        if key and key not in known and word not in out:
            out.append(word)
    return out


def _candidates(text: str) -> list[str]:
    words = []
    for match in _WORD.finditer(text):
        word = match.group().rstrip(".")
        if (len(word) == 1 and not word.isdigit()) or _PRONOUN_I.match(word):
            continue  # "I", "I'm" and lone letters ("plan B") say nothing the passages must hold
        figure_or_acronym = any(c.isdigit() for c in word) or (len(word) > 1 and word.isupper())
        name = word[:1].isupper() and not _SENTENCE_END.search(text[:match.start()])
        if figure_or_acronym or name:
            words.append(word)
    return words


def _vocabulary(text: str) -> set[str]:
    return {_key(w) for w in _WORD.findall(text)} - {""}


def _key(word: str) -> str:
    """Lower case, no thousands separators, no trailing plural or possessive "s"."""
    word = word.lower().rstrip(".")
    if any(c.isdigit() for c in word):
        return re.sub(r"(?<=\d),(?=\d{3})", "", word)
    return _TRAILING.sub("", word) if len(word) > 3 else word
