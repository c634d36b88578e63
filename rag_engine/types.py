"""Typed values that cross the engine's boundary."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

SearchMode = Literal["vector", "lexical", "hybrid"]


@dataclass(frozen=True, slots=True)
class Turn:
    """One earlier message of a conversation (thread history)."""

    role: Literal["user", "assistant"]
    text: str


@dataclass(slots=True)
class SearchHit:
    """A retrieved chunk with where it came from and how it ranked."""

    chunk_id: int
    document_id: int
    collection_id: int
    title: str
    source_uri: str
    heading_path: str
    text: str
    score: float
    vector_score: float | None = None  # cosine similarity, when the vector side saw it
    lexical_score: float | None = None
    rerank_score: float | None = None


@dataclass(frozen=True, slots=True)
class Citation:
    """Answer marker ``[n]`` resolved to the passage it points at."""

    n: int
    chunk_id: int
    document_id: int
    title: str
    source_uri: str
    heading_path: str = ""


def section_label(title: str, heading_path: str) -> str:
    """The heading path without a leading heading that only repeats the title."""
    parts = [p for p in heading_path.split(" > ") if p]
    if parts and parts[0].strip().casefold() == title.strip().casefold():
        parts = parts[1:]
    return " > ".join(parts)


class AnswerStatus(StrEnum):
    ANSWERED = "answered"
    NOT_FOUND = "not_found"  # nothing relevant retrieved: says so instead of guessing
    ASK_BACK = "ask_back"  # clarifying question
    FALLBACK = "fallback"  # generator failed; extractive answer given
    ERROR = "error"


@dataclass(slots=True)
class Answer:
    """What ``RagEngine.answer`` returns."""

    text: str
    citations: list[Citation] = field(default_factory=list)
    hits: list[SearchHit] = field(default_factory=list)
    status: AnswerStatus = AnswerStatus.ANSWERED
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    generator: str = "extractive"
    adapter_version: str | None = None
    prompt_version: str | None = None
    fallback_reason: str | None = None
    flags: list[str] = field(default_factory=list)  # e.g. "prompt_injection"
    passages: list[str] = field(default_factory=list)  # passage texts as shown to the generator
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GeneratedText:
    """What a generator backend returns before citations are resolved."""

    text: str
    model: str
    adapter_version: str | None = None
    prompt_version: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    passages: tuple[str, ...] = ()  # passage texts as actually shown (after trimming)


@dataclass(slots=True)
class IngestReport:
    files: int = 0
    documents_written: int = 0
    documents_unchanged: int = 0
    documents_pruned: int = 0
    chunks_written: int = 0
    embedded: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class Record:
    """A document given as data instead of a file (BEIR corpora, API imports)."""

    source_uri: str
    title: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    format: Literal["markdown", "text", "html"] = "text"
