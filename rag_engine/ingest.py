"""Ingestion: parse → chunk → embed → upsert, with content-hash dedupe.

Each document is written in its own transaction (its chunks replaced whole), so
a failure never leaves half a document. Embeddings of unchanged chunk texts are
reused instead of recomputed.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, delete, func, select

from rag_engine import collections as cols
from rag_engine.chunking import ChunkDraft, chunk_document
from rag_engine.embedding import Embedder
from rag_engine.parsing import SUPPORTED_SUFFIXES, ParsedDocument, ParseError, Section, parse_bytes, parse_file
from rag_engine.settings import Settings
from rag_engine.store import schema as t
from rag_engine.store.database import Database
from rag_engine.types import IngestReport, Record

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
EMBED_BATCH_CHUNKS = 256  # chunks gathered across documents per embedding call


@dataclass(slots=True)
class _Pending:
    source_uri: str
    doc: ParsedDocument
    content_hash: str
    drafts: list[ChunkDraft]


def discover_files(paths: Sequence[Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Supported files under ``paths`` (recursively), and the paths that were skipped."""
    files: list[Path] = []
    skipped: list[tuple[str, str]] = []
    for root in paths:
        if root.is_dir():
            for p in sorted(root.rglob("*")):
                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts):
                    if p.suffix.lower() in SUPPORTED_SUFFIXES:
                        files.append(p.resolve())
        elif root.is_file():
            if root.suffix.lower() in SUPPORTED_SUFFIXES:
                files.append(root.resolve())
            else:
                skipped.append((str(root), f"unsupported file type {root.suffix or '(none)'}"))
        else:
            skipped.append((str(root), "no such file or directory"))
    return files, skipped


class Ingestor:
    def __init__(self, db: Database, embedder: Embedder, settings: Settings) -> None:
        self.db = db
        self.embedder = embedder
        self.settings = settings
        tokenizer = getattr(embedder, "tokenizer", None)
        if tokenizer is not None:
            self.count_tokens = lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])
        else:
            from rag_engine.chunking import approx_tokens

            self.count_tokens = approx_tokens

    # -- public entry points ---------------------------------------------------
    def ingest_paths(
        self, paths: Sequence[Path], collection: str, *, prune: bool = False, progress: Progress | None = None,
        visibility: cols.Visibility = "public",
    ) -> IngestReport:
        start = time.perf_counter()
        files, skipped = discover_files([Path(p) for p in paths])
        report = IngestReport(files=len(files), skipped=list(skipped))
        coll = self._collection(collection, visibility)

        def items() -> Iterable[tuple[str, Callable[[], tuple[ParsedDocument, bytes]]]]:
            for f in files:
                yield f.as_posix(), lambda f=f: self._read_file(f)

        self._run(coll, items(), report, progress)
        if prune:
            roots = [Path(p).resolve().as_posix() for p in paths]
            present = {f.as_posix() for f in files}
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

        def items() -> Iterable[tuple[str, Callable[[], tuple[ParsedDocument, bytes]]]]:
            for rec in records:
                report.files += 1
                seen.add(rec.source_uri)
                yield rec.source_uri, lambda rec=rec: self._read_record(rec)

        self._run(coll, items(), report, progress)
        if prune:
            report.documents_pruned = self._prune(coll, lambda uri: uri not in seen)
        report.seconds = time.perf_counter() - start
        return report

    # -- steps -----------------------------------------------------------------
    def _collection(self, name: str, visibility: cols.Visibility) -> cols.Collection:
        with self.db.begin() as conn:
            coll = cols.get_or_create(conn, name, visibility=visibility)
            cols.bind_embedder(conn, coll, self.embedder.model_name, self.embedder.backend)
        return coll

    def _read_file(self, path: Path) -> tuple[ParsedDocument, bytes]:
        doc = parse_file(path, max_bytes=self.settings.max_file_mb * 1_000_000)
        return doc, path.read_bytes()

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
        sig = f"{self.settings.chunk_tokens}:{self.settings.chunk_overlap}:{self.embedder.model_name}:" \
              f"{self.embedder.backend}\n".encode()
        return hashlib.sha256(sig + raw).hexdigest()

    def _run(self, coll: cols.Collection, items, report: IngestReport, progress: Progress | None) -> None:
        with self.db.connect() as conn:
            known = dict(conn.execute(
                select(t.documents.c.source_uri, t.documents.c.content_hash)
                .where(t.documents.c.collection_id == coll.id)
            ).all())
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
            drafts = chunk_document(doc, max_tokens=self.settings.chunk_tokens, overlap=self.settings.chunk_overlap,
                                    count_tokens=self.count_tokens)
            pending.append(_Pending(uri, doc, digest, drafts))
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
            rows = []
            for d in p.drafts:
                rows.append(dict(collection_id=coll.id, ordinal=d.ordinal, heading_path=d.heading_path,
                                 context=d.context, text=d.text, text_hash=hashes[i], token_count=d.token_count,
                                 embedding=vectors[i]))
                i += 1
            with self.db.begin() as conn:
                self._write_document(conn, coll, p, rows)
            report.documents_written += 1
            report.chunks_written += len(rows)

    def _embed_with_cache(self, collection_id: int, texts: list[str], hashes: list[str],
                          report: IngestReport) -> list:
        """Vectors for ``texts``; a text already stored (or repeated in the batch) is embedded once."""
        with self.db.connect() as conn:
            cached = dict(conn.execute(
                select(t.chunks.c.text_hash, t.chunks.c.embedding)
                .where(t.chunks.c.collection_id == collection_id, t.chunks.c.text_hash.in_(set(hashes)))
            ).all())
        missing: dict[str, str] = {}
        for h, x in zip(hashes, texts):
            if h not in cached:
                missing.setdefault(h, x)
        if missing:
            fresh = self.embedder.embed_documents(list(missing.values()))
            cached.update(zip(missing.keys(), fresh))
        report.embedded += len(missing)
        return [cached[h] for h in hashes]

    def _write_document(self, conn: Connection, coll: cols.Collection, p: _Pending, rows: list[dict]) -> None:
        existing = conn.execute(
            select(t.documents.c.id).where(t.documents.c.collection_id == coll.id,
                                           t.documents.c.source_uri == p.source_uri).with_for_update()
        ).scalar()
        values = dict(title=p.doc.title[:500], content_hash=p.content_hash, metadata=p.doc.metadata)
        if existing is None:
            doc_id = conn.execute(
                t.documents.insert().values(collection_id=coll.id, source_uri=p.source_uri, **values)
                .returning(t.documents.c.id)
            ).scalar_one()
        else:
            doc_id = existing
            conn.execute(delete(t.chunks).where(t.chunks.c.document_id == doc_id))
            conn.execute(t.documents.update().where(t.documents.c.id == doc_id).values(updated_at=func.now(), **values))
        if rows:
            for r in rows:
                r["document_id"] = doc_id
            conn.execute(t.chunks.insert(), rows)

    def _prune(self, coll: cols.Collection, should_delete: Callable[[str], bool]) -> int:
        with self.db.begin() as conn:
            docs = conn.execute(
                select(t.documents.c.id, t.documents.c.source_uri).where(t.documents.c.collection_id == coll.id)
            ).all()
            doomed = [d.id for d in docs if should_delete(d.source_uri)]
            if doomed:
                conn.execute(delete(t.documents).where(t.documents.c.id.in_(doomed)))
        return len(doomed)
