"""Structure-aware chunking: sections keep their heading path; long sections are
cut into token windows on paragraph and sentence boundaries, with overlap."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from rag_engine.parsing import ParsedDocument

TokenCounter = Callable[[str], int]

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")
_PARAGRAPH = re.compile(r"\n\s*\n")


@dataclass(frozen=True, slots=True)
class ChunkDraft:
    ordinal: int
    heading_path: str
    context: str  # "Title > Heading > Sub": embedded and weighted higher in full text
    text: str
    token_count: int
    page: int | None = None  # the PDF page it was read from (rag_engine.pdf_pages)

    @property
    def embedding_text(self) -> str:
        return f"{self.context}\n\n{self.text}" if self.context else self.text


def approx_tokens(text: str) -> int:
    """Word-piece estimate when no tokenizer is at hand (~1.3 pieces per word)."""
    return int(len(text.split()) * 1.3) + 1


def split_sentences(text: str) -> list[str]:
    out: list[str] = []
    for para in _PARAGRAPH.split(text):
        para = para.strip()
        if not para:
            continue
        lines = para.splitlines()
        if len(lines) > 1 and all(re.match(r"\s*([-*+]|\d+[.)])\s", line) for line in lines if line.strip()):
            out.extend(line.strip() for line in lines if line.strip())  # a list: one item per unit
            continue
        out.extend(s.strip() for s in _SENTENCE_END.split(" ".join(line.strip() for line in lines)) if s.strip())
    return out


def chunk_document(
    doc: ParsedDocument, *, max_tokens: int, overlap: int, count_tokens: TokenCounter = approx_tokens
) -> list[ChunkDraft]:
    if max_tokens < 16:
        raise ValueError("chunk size must be at least 16 tokens")
    overlap = max(0, min(overlap, max_tokens // 2))
    drafts: list[ChunkDraft] = []
    for section in doc.sections:
        path = " > ".join(section.heading_path)
        context = " > ".join([doc.title, *[h for h in section.heading_path if h != doc.title]])
        for piece in _windows(split_sentences(section.text), max_tokens, overlap, count_tokens):
            drafts.append(ChunkDraft(len(drafts), path, context, piece, count_tokens(piece), section.page))
    return drafts


def _windows(units: list[str], max_tokens: int, overlap: int, count: TokenCounter) -> list[str]:
    sized: list[tuple[str, int]] = []
    for unit in units:
        n = count(unit)
        if n <= max_tokens:
            sized.append((unit, n))
        else:
            sized.extend(_split_long(unit, max_tokens, count))
    chunks: list[str] = []
    window: list[tuple[str, int]] = []
    total = 0
    for unit, n in sized:
        if window and total + n > max_tokens:
            chunks.append(" ".join(u for u, _ in window))
            carry: list[tuple[str, int]] = []
            kept = 0
            for u, m in reversed(window):  # overlap: whole trailing sentences that leave room for the next
                if kept + m > overlap or kept + m + n > max_tokens:
                    break
                carry.insert(0, (u, m))
                kept += m
            window, total = carry, kept
        window.append((unit, n))
        total += n
    if window:
        chunks.append(" ".join(u for u, _ in window))
    return chunks


def _split_long(unit: str, max_tokens: int, count: TokenCounter) -> list[tuple[str, int]]:
    """Cut an over-long sentence into word windows, halving any window still too long."""
    words = unit.split()
    step = max(1, int(max_tokens / 1.5))
    pending = [words[i:i + step] for i in range(0, len(words), step)]
    pieces: list[tuple[str, int]] = []
    while pending:
        group = pending.pop(0)
        piece = " ".join(group)
        n = count(piece)
        if n > max_tokens and len(group) > 1:
            half = len(group) // 2
            pending[:0] = [group[:half], group[half:]]
        else:
            pieces.append((piece, n))
    return pieces
