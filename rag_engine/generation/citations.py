"""Resolve ``[n]`` markers in answer text to the passages they cite."""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag_engine.types import Citation, SearchHit

# [3], [1, 2], [1,2 ,3]; adjacent markers like [1][2] are simply two matches.
_MARKER_RE = re.compile(r"\[\s*(\d{1,4}(?:\s*,\s*\d{1,4})*)\s*\]")
# A marker removed entirely takes the whitespace before it ("fact [9]." -> "fact.").
_SPACE_BEFORE_PUNCT_RE = re.compile(r"[ \t]+([.,;:!?)])")
_DOUBLE_SPACE_RE = re.compile(r"[ \t]{2,}")


def parse_citations(text: str, hits: Sequence[SearchHit]) -> tuple[str, list[Citation]]:
    """Return ``text`` with invalid markers removed and the citations it makes.

    ``[n]`` refers to ``hits[n-1]``. Recognised forms: ``[n]``, ``[n, m]`` and
    runs like ``[n][m]``. Numbers outside ``1..len(hits)`` are dropped from the
    marker (a marker left empty is removed with the space before it) and
    duplicates within a marker are collapsed. Citations come back in order of
    first appearance, one per passage number. Bracketed numbers that are not
    citations (``[2024]``) look the same and are treated the same.
    """
    citations: dict[int, Citation] = {}

    def replace(match: re.Match[str]) -> str:
        numbers: list[int] = []
        for part in match.group(1).split(","):
            n = int(part)
            if 1 <= n <= len(hits) and n not in numbers:
                numbers.append(n)
        for n in numbers:
            if n not in citations:
                hit = hits[n - 1]
                citations[n] = Citation(
                    n=n,
                    chunk_id=hit.chunk_id,
                    document_id=hit.document_id,
                    title=hit.title,
                    source_uri=hit.source_uri,
                    heading_path=hit.heading_path,
                )
        return "[" + ", ".join(map(str, numbers)) + "]" if numbers else "\0"

    cleaned = _MARKER_RE.sub(replace, text)
    if "\0" in cleaned:
        cleaned = re.sub(r"[ \t]*\0", "", cleaned)
        cleaned = _SPACE_BEFORE_PUNCT_RE.sub(r"\1", cleaned)
        cleaned = _DOUBLE_SPACE_RE.sub(" ", cleaned)
    return cleaned.strip(), list(citations.values())
