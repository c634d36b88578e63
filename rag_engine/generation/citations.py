"""Resolve ``[n]`` markers in answer text to the passages they cite, numbered for readers.

A generator writes ``[n]`` for passage n of its prompt. Readers see each answer's
sources numbered from [1] in order of first use, one number per document: the
passages of one document share its number, so its sources entry is listed once
(with the sections cited from it) and no number is skipped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rag_engine.pdf_pages import page_label, page_link
from rag_engine.values import Citation, SearchHit, section_label

_MARKER = r"\[\s*\d{1,4}(?:\s*,\s*\d{1,4})*\s*\]"
# [3], [1, 2], [1,2 ,3], and runs like [1][2] or [1] [2] (one marker after renumbering).
_RUN_RE = re.compile(rf"{_MARKER}(?:[ \t]*{_MARKER})*")
_NUMBER_RE = re.compile(r"\d+")
# A marker removed entirely takes the whitespace before it ("fact [9]." -> "fact.").
_SPACE_BEFORE_PUNCT_RE = re.compile(r"[ \t]+([.,;:!?)])")
_DOUBLE_SPACE_RE = re.compile(r"[ \t]{2,}")


def parse_citations(text: str, hits: Sequence[SearchHit]) -> tuple[str, list[Citation]]:
    """Return ``text`` with its markers renumbered for readers, and the citations it makes.

    ``[n]`` in ``text`` refers to ``hits[n-1]``. Recognised forms: ``[n]``,
    ``[n, m]`` and runs like ``[n][m]``; a run becomes one marker listing its
    numbers in ascending order, each once. Numbers outside ``1..len(hits)`` are
    dropped (a marker left empty is removed with the space before it).
    Bracketed numbers that are not citations (``[2024]``) look the same and are
    treated the same.

    Each cited document is numbered from 1 in order of first use; every passage
    of it that is cited gets that number (``Citation.n``) and keeps its passage
    number (``Citation.passage``). Citations come back one per cited passage,
    grouped by ``n`` in ascending order, in order of first use within a document.
    """
    numbers: dict[int, int] = {}  # document id -> number shown
    citations: dict[int, Citation] = {}  # passage number -> citation

    def cite(passage: int) -> int:
        hit = hits[passage - 1]
        n = numbers.setdefault(hit.document_id, len(numbers) + 1)
        if passage not in citations:
            citations[passage] = Citation(n=n, chunk_id=hit.chunk_id, document_id=hit.document_id, title=hit.title,
                                          source_uri=hit.source_uri, heading_path=hit.heading_path, passage=passage,
                                          display_path=hit.display_path, url=page_link(hit.url, hit.page),
                                          page=hit.page)
        return n

    def replace(match: re.Match[str]) -> str:
        passages = [int(p) for p in _NUMBER_RE.findall(match.group(0))]
        shown = sorted({cite(p) for p in passages if 1 <= p <= len(hits)})
        return "[" + ", ".join(map(str, shown)) + "]" if shown else "\0"

    cleaned = _RUN_RE.sub(replace, text)
    if "\0" in cleaned:
        cleaned = re.sub(r"[ \t]*\0", "", cleaned)
        cleaned = _SPACE_BEFORE_PUNCT_RE.sub(r"\1", cleaned)
        cleaned = _DOUBLE_SPACE_RE.sub(" ", cleaned)
    return cleaned.strip(), sorted(citations.values(), key=lambda c: c.n)


@dataclass(frozen=True, slots=True)
class CitedSource:
    """One entry of an answer's sources: a document, the number it is cited by, the sections cited."""

    n: int
    citation: Citation  # the document's first cited passage (title, source_uri, ...)
    sections: tuple[str, ...]  # section labels (title-only headings dropped), each once, in citation order


def cited_sources(citations: Sequence[Citation]) -> list[CitedSource]:
    """``citations`` (as ``parse_citations`` returns them) as one entry per document, in number order."""
    grouped: dict[int, list[Citation]] = {}
    for c in citations:
        grouped.setdefault(c.n, []).append(c)
    return [
        CitedSource(n, group[0], tuple(dict.fromkeys(
            label for c in group if (label := _with_page(section_label(c.title, c.heading_path), c.page)))))
        for n, group in sorted(grouped.items())
    ]


def _with_page(label: str, page: int | None) -> str:
    """``"Net sales (p. 3)"``; a passage with no heading is named by its page alone."""
    if page is None:
        return label
    return f"{label} ({page_label(page)})" if label else page_label(page)


def passage_markers(text: str, citations: Sequence[Mapping[str, Any]]) -> str:
    """Undo the renumbering of a logged answer: readers' ``[n]`` back to the passage numbers of its prompt.

    ``citations`` are the logged citation records (``n``, ``passage``). A
    document's number stands for every passage of it the answer cited; records
    logged before passages were kept (no ``passage``) already use passage numbers.
    """
    passages: dict[int, list[int]] = {}
    for c in citations:
        if c.get("passage"):
            passages.setdefault(int(c["n"]), []).append(int(c["passage"]))
    if not passages:
        return text

    def replace(match: re.Match[str]) -> str:
        found = sorted({p for n in _NUMBER_RE.findall(match.group(0)) for p in passages.get(int(n), [int(n)])})
        return "[" + ", ".join(map(str, found)) + "]"

    return _RUN_RE.sub(replace, text)
