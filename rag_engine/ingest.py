"""Ingestion: parse → chunk → embed → upsert, with content-hash dedupe.

Each document is written in its own transaction (its chunks replaced whole), so
a failure never leaves half a document. Embeddings of unchanged chunk texts are
reused instead of recomputed. Files are read and parsed in a child process with a
time limit each (``rag_engine.parse_worker``); a file over it is skipped and
reported. Each document keeps its path relative to the folder it was ingested
from (``rag_engine.sources``), which is what readers are shown.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from rag_engine import collections as cols
from rag_engine import pdf_pages, sources
from rag_engine.chunking import ChunkDraft, approx_tokens, chunk_document
from rag_engine.config import IngestConfig
from rag_engine.embedding import Embedder
from rag_engine.parse_worker import read_document_within
from rag_engine.parsing import SUPPORTED_SUFFIXES, ParsedDocument, ParseError, Section, parse_bytes
from rag_engine.store import Store
from rag_engine.store.documents import DocumentOrigin
from rag_engine.values import IngestReport, Record

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
ReadItem = tuple[str, Callable[[], tuple[ParsedDocument, bytes]]]  # a source uri and how to read it
EMBED_BATCH_CHUNKS = 256  # chunks gathered across documents per embedding call


@dataclass(slots=True)
class _Pending:
    source_uri: str
    doc: ParsedDocument
    content_hash: str
    drafts: list[ChunkDraft]
    origin: DocumentOrigin | None = None


@dataclass(frozen=True, slots=True)
class FoundFile:
    path: Path  # absolute: the document's source_uri
    relative_path: str  # below the folder it was found in (a file given alone: its name); shown to readers


@dataclass(frozen=True, slots=True)
class SourcedFile:
    """A file a connector fetched (``rag_engine.sync``): read like any file, stored with its origin."""

    source_uri: str  # stable across syncs (not the cache path): the document's identity in its collection
    path: Path
    relative_path: str  # shown to readers
    origin: DocumentOrigin


SYMLINK_SKIPPED = "symbolic link: not followed"


def discover_files(paths: Sequence[Path], *, follow_symlinks: bool = True,
                   ) -> tuple[list[FoundFile], list[tuple[str, str]]]:
    """Supported files under ``paths`` (recursively), and the paths that were skipped.

    ``follow_symlinks=False`` skips (and reports) every symbolic link, given or
    met in a folder, so that only files really below the given paths are read.
    Folders reached through a link are never walked either way.
    """
    files: list[FoundFile] = []
    skipped: list[tuple[str, str]] = []
    for root in paths:
        if not follow_symlinks and root.is_symlink():
            skipped.append((str(root), SYMLINK_SKIPPED))
        elif root.is_dir():
            for p in sorted(root.rglob("*")):
                relative = p.relative_to(root)
                if any(part.startswith(".") for part in relative.parts):
                    continue
                if not follow_symlinks and p.is_symlink():
                    if p.is_dir() or p.suffix.lower() in SUPPORTED_SUFFIXES:
                        skipped.append((str(p), SYMLINK_SKIPPED))
                elif p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES:
                    files.append(FoundFile(p.resolve(), relative.as_posix()))
        elif root.is_file():
            if root.suffix.lower() in SUPPORTED_SUFFIXES:
                files.append(FoundFile(root.resolve(), root.name))
            else:
                skipped.append((str(root), f"unsupported file type {root.suffix or '(none)'}"))
        else:
            skipped.append((str(root), "no such file or directory"))
    return files, skipped


class Ingestor:
    def __init__(self, store: Store, embedder: Embedder, config: IngestConfig) -> None:
        self.store = store
        self.embedder = embedder
        self.config = config
        tokenizer = getattr(embedder, "tokenizer", None)
        self.count_tokens: Callable[[str], int] = approx_tokens
        if tokenizer is not None:
            self.count_tokens = lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])

    # -- public entry points ---------------------------------------------------
    def ingest_paths(
        self, paths: Sequence[Path], collection: str, *, prune: bool = False, progress: Progress | None = None,
        visibility: cols.Visibility = "public", create: bool = True, follow_symlinks: bool = True,
    ) -> IngestReport:
        """Ingest files and folders. ``create=False`` refuses a collection that does not
        exist (``CollectionNotFound``); ``follow_symlinks=False`` reads no symbolic link."""
        start = time.perf_counter()
        coll = self._collection(collection, visibility, create)
        files, skipped = discover_files([Path(p) for p in paths], follow_symlinks=follow_symlinks)
        report = IngestReport(files=len(files), skipped=list(skipped))

        def items() -> Iterable[ReadItem]:
            for f in files:
                yield f.path.as_posix(), partial(self._read_file, f, follow_symlinks)

        self._run(coll, items(), report, progress)
        if prune:
            roots = [Path(p).resolve().as_posix() for p in paths]
            present = {f.path.as_posix() for f in files}
            report.documents_pruned = self._prune(
                coll, lambda uri: any(uri == r or uri.startswith(r.rstrip("/") + "/") for r in roots)
                and uri not in present
            )
        report.seconds = time.perf_counter() - start
        return report

    def ingest_records(
        self, records: Iterable[Record], collection: str, *, prune: bool = False, progress: Progress | None = None,
        visibility: cols.Visibility = "public",
    ) -> IngestReport:
        """Ingest documents given as data (BEIR corpora, imports). ``prune`` drops the rest."""
        start = time.perf_counter()
        report = IngestReport()
        coll = self._collection(collection, visibility)
        seen: set[str] = set()

        def items() -> Iterable[ReadItem]:
            for rec in records:
                report.files += 1
                seen.add(rec.source_uri)
                yield rec.source_uri, partial(self._read_record, rec)

        self._run(coll, items(), report, progress)
        if prune:
            report.documents_pruned = self._prune(coll, lambda uri: uri not in seen)
        report.seconds = time.perf_counter() - start
        return report

    def ingest_sourced(self, files: Iterable[SourcedFile], collection: str, *,
                       progress: Progress | None = None) -> IngestReport:
        """Ingest files a source sync fetched into an existing collection; symbolic links are not read.
        Each document keeps its origin (source, external id, URL); deletions are the sync's job."""
        start = time.perf_counter()
        coll = self._collection(collection, "public", create=False)
        report = IngestReport()
        origins: dict[str, DocumentOrigin] = {}

        def items() -> Iterable[ReadItem]:
            for f in files:
                report.files += 1
                origins[f.source_uri] = f.origin
                yield f.source_uri, partial(self._read_sourced, f)

        self._run(coll, items(), report, progress, origins)
        report.seconds = time.perf_counter() - start
        return report

    # -- steps -----------------------------------------------------------------
    def _collection(self, name: str, visibility: cols.Visibility, create: bool = True) -> cols.Collection:
        repo = self.store.collections
        coll = cols.get_or_create(repo, name, visibility=visibility) if create else cols.require(repo, name)
        cols.bind_embedder(repo, coll, self.embedder.model_name, self.embedder.backend)
        return coll

    def _read_file(self, found: FoundFile, follow_symlinks: bool) -> tuple[ParsedDocument, bytes]:
        doc, raw = read_document_within(found.path, timeout_s=self.config.ingest_file_timeout_s,
                                        max_bytes=self.config.max_file_mb * 1_000_000,
                                        follow_symlinks=follow_symlinks)
        doc.metadata[sources.RELATIVE_PATH] = found.relative_path
        # the shown path is part of what is stored: the same file ingested from another folder is rewritten
        # so is the parser's revision, when it names one: a better PDF parser re-reads the PDFs
        return doc, raw + b"\0" + found.relative_path.encode() + str(doc.metadata.get("parser", "")).encode()

    def _read_sourced(self, f: SourcedFile) -> tuple[ParsedDocument, bytes]:
        doc, raw = self._read_file(FoundFile(f.path, f.relative_path), follow_symlinks=False)
        o = f.origin
        # the origin is part of what is stored: a new URL base or a re-added source rewrites the row
        return doc, raw + f"\0{o.source_id}\0{o.external_id}\0{o.url or ''}".encode()

    def _read_record(self, rec: Record) -> tuple[ParsedDocument, bytes]:
        raw = rec.text.encode("utf-8")
        if rec.format == "text" and rec.title:
            doc = ParsedDocument(title=rec.title, sections=[Section([], rec.text)], metadata=dict(rec.metadata))
            if not rec.text.strip():
                raise ParseError("no text found")
        else:
            doc = parse_bytes(raw, "markdown" if rec.format == "markdown" else rec.format, fallback_title=rec.title)
            doc.title = rec.title or doc.title
            doc.metadata.update(rec.metadata)
        return doc, (rec.title + "\n").encode("utf-8") + raw + repr(sorted(rec.metadata.items())).encode()

    def _hash(self, raw: bytes) -> str:
        # the index signature is part of the hash: new chunking or embedder settings re-index
        sig = f"{self.config.chunk_tokens}:{self.config.chunk_overlap}:{self.embedder.model_name}:" \
              f"{self.embedder.backend}\n".encode()
        return hashlib.sha256(sig + raw).hexdigest()

    def _run(self, coll: cols.Collection, items: Iterable[ReadItem], report: IngestReport,
             progress: Progress | None, origins: Mapping[str, DocumentOrigin] | None = None) -> None:
        known = self.store.documents.content_hashes(coll.id)
        pending: list[_Pending] = []
        n_chunks = 0
        for uri, read in items:
            if progress:
                progress(uri)
            try:
                doc, raw = read()
            except ParseError as exc:
                report.skipped.append((uri, str(exc)))
                log.warning("skipped %s: %s", uri, exc)
                continue
            digest = self._hash(raw)
            if known.get(uri) == digest:
                report.documents_unchanged += 1
                continue
            drafts = chunk_document(doc, max_tokens=self.config.chunk_tokens, overlap=self.config.chunk_overlap,
                                    count_tokens=self.count_tokens)
            doc.metadata.update(pdf_pages.chunk_pages([d.page for d in drafts]))  # PDF chunks cite their page
            pending.append(_Pending(uri, doc, digest, drafts, origins.get(uri) if origins else None))
            n_chunks += len(drafts)
            if n_chunks >= EMBED_BATCH_CHUNKS:
                self._flush(coll, pending, report)
                pending, n_chunks = [], 0
        if pending:
            self._flush(coll, pending, report)

    def _flush(self, coll: cols.Collection, pending: list[_Pending], report: IngestReport) -> None:
        texts = [d.embedding_text for p in pending for d in p.drafts]
        hashes = [hashlib.sha256(x.encode()).hexdigest() for x in texts]
        vectors = self._embed_with_cache(coll.id, texts, hashes, report)
        i = 0
        for p in pending:
            rows: list[dict[str, Any]] = []
            for d in p.drafts:
                rows.append({"collection_id": coll.id, "ordinal": d.ordinal, "heading_path": d.heading_path,
                             "context": d.context, "text": d.text, "text_hash": hashes[i],
                             "token_count": d.token_count, "embedding": vectors[i]})
                i += 1
            self.store.documents.replace(coll.id, p.source_uri, title=p.doc.title[:500], content_hash=p.content_hash,
                                         metadata=p.doc.metadata, chunks=rows, origin=p.origin)
            report.documents_written += 1
            report.chunks_written += len(rows)

    def _embed_with_cache(self, collection_id: int, texts: list[str], hashes: list[str],
                          report: IngestReport) -> list[Any]:
        """Vectors for ``texts``; a text already stored (or repeated in the batch) is embedded once."""
        cached = self.store.chunks.embeddings_by_text_hash(collection_id, set(hashes))
        missing: dict[str, str] = {}
        for h, x in zip(hashes, texts, strict=True):
            if h not in cached:
                missing.setdefault(h, x)
        if missing:
            fresh = self.embedder.embed_documents(list(missing.values()))
            cached.update(zip(missing.keys(), fresh, strict=True))
        report.embedded += len(missing)
        return [cached[h] for h in hashes]

    def _prune(self, coll: cols.Collection, should_delete: Callable[[str], bool]) -> int:
        return self.store.documents.prune(coll.id, should_delete)
