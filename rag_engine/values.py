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
    display_path: str = ""  # what readers see instead of source_uri (rag_engine.sources)
    url: str | None = None  # a link to the document, when one is known
    page: int | None = None  # the PDF page the chunk was read from (rag_engine.pdf_pages)


@dataclass(frozen=True, slots=True)
class Citation:
    """Answer marker ``[n]`` resolved to the passage it points at."""

    n: int
    chunk_id: int
    document_id: int
    title: str
    source_uri: str
    heading_path: str = ""
    passage: int = 0  # the generator's own marker: passage number in its prompt (``n`` is per document)
    display_path: str = ""  # path relative to the ingested folder; source_uri is the server's, never shown
    url: str | None = None  # with ``#page=N`` when the passage has a page
    page: int | None = None


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


class FallbackCode(StrEnum):
    """Why an answer quotes the documents instead of a generated answer (machine-readable)."""

    NOT_SUPPORTED = "not_supported"  # the generated answer failed the grounding check
    GENERATOR_ERROR = "generator_error"  # the model raised (or returned nothing) while answering
    QUEUE_TIMEOUT = "queue_timeout"  # the model was busy: no answer within the time allowed
    MODEL_UNAVAILABLE = "model_unavailable"  # the model could not be loaded or reached
    NO_GENERATOR = "no_generator"  # none configured: quoting is the design, not a failure


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
    retriever_version: str | None = None  # the query adapter (retrieval version) its search used; None: raw query
    prompt_version: str | None = None
    fallback_reason: str | None = None  # "<fallback_code>: <detail>", as the interaction log keeps it
    fallback_code: FallbackCode | None = None  # set whenever the text was quoted instead of generated
    flags: list[str] = field(default_factory=list)  # e.g. "prompt_injection"
    passages: list[str] = field(default_factory=list)  # passage texts as shown to the generator
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def generated(self) -> bool:
        """A language model wrote it and it passed the grounding check (not quoted, not "not found")."""
        return self.status is AnswerStatus.ANSWERED and self.fallback_code is None and self.generator not in NO_MODEL

    @property
    def answered_by(self) -> str:
        """Who wrote the text, for people: ``"<model> + adapter v3"``, ``"<model> (base model)"``, or
        ``"extractive"`` / ``"ask-back"`` when no language model did."""
        if self.adapter_version:
            return f"{self.generator} + adapter {self.adapter_version}"
        if self.generator in NO_MODEL:
            return self.generator
        return f"{self.generator} (base model)"


NO_MODEL = ("extractive", "ask-back")  # ``Answer.generator`` values that name no language model


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
