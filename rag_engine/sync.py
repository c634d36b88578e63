"""Syncing a source: its connector's changes into the collection, through the usual ingestion.

One sync: claim the source (a lease: one sync at a time), ask the connector what changed since
the committed cursor, ingest the changed items (``Ingestor.ingest_sourced``: parsed, chunked,
embedded, each document written whole, unchanged ones skipped by content hash), then in one
transaction delete the documents of deleted items and move the cursor. Each write is idempotent
and the cursor moves only after the documents are in, so a sync that dies is simply run again
from the old cursor (resumable), and a deleted or moved item is out of search when its sync
commits. A failure is recorded on the source (error, count, exponential back-off) and never
stops another source.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rag_engine import collections as cols
from rag_engine import jobs
from rag_engine.connectors import Connector, ConnectorError, ItemRef, build_connector
from rag_engine.connectors.base import Placement
from rag_engine.ingest import Ingestor, SourcedFile
from rag_engine.redact import redact_secrets
from rag_engine.source_admin import cache_dir
from rag_engine.store import Store
from rag_engine.store.documents import DocumentOrigin
from rag_engine.store.sources import SourceRow
from rag_engine.values import IngestReport

log = logging.getLogger(__name__)

LEASE_S = 1800.0  # a sync's claim on its source; renewed while it runs, expires if its process dies
RENEW_EVERY_S = 60.0
BACKOFF_BASE_S = 60.0  # after the n-th failure in a row: min(max, base * 2 ** (n - 1))
BACKOFF_MAX_S = 6 * 3600.0

SyncStatus = Literal["synced", "busy", "superseded", "failed"]
Progress = Callable[[str], None]


class SourceNotFound(LookupError):
    """No source has that name or id."""


@dataclass(slots=True)
class SyncReport:
    source: str
    status: SyncStatus  # busy: another sync holds it; superseded: another sync committed first
    cursor: str | None = None
    changed: int = 0  # items the connector listed as new or changed
    written: int = 0  # documents (re)written
    unchanged: int = 0
    deleted: int = 0  # documents removed (deleted, moved or no longer readable items)
    chunks: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (item, reason)
    seconds: float = 0.0
    error: str | None = None

    def counts(self) -> dict[str, Any]:
        return {"changed": self.changed, "written": self.written, "unchanged": self.unchanged,
                "deleted": self.deleted, "chunks": self.chunks, "skipped": len(self.skipped)}

    def as_result(self) -> dict[str, Any]:
        """The job's result."""
        return {"source": self.source, "status": self.status, "cursor": self.cursor, **self.counts(),
                "seconds": round(self.seconds, 2), **({"error": self.error} if self.error else {})}


def document_uri(source: SourceRow, external_id: str) -> str:
    """A synced document's ``source_uri``: stable across syncs and cache folders."""
    return f"{source.kind}:{source.name}/{external_id}"


class SourceSyncer:
    """Runs syncs with one store and ingestor; ``data_dir`` holds each source's local cache."""

    def __init__(self, store: Store, ingestor: Ingestor, data_dir: Path, secrets: Sequence[str] = (),
                 connector_factory: Callable[[SourceRow, Path], Connector] | None = None) -> None:
        self.store = store
        self.ingestor = ingestor
        self.data_dir = data_dir
        self.secrets = list(secrets)
        self._connector = connector_factory or (lambda s, cache: build_connector(s.kind, s.config, cache))

    def cache_dir(self, source: SourceRow) -> Path:
        return cache_dir(self.data_dir, source)

    def sync(self, source_id: int, progress: Progress | None = None) -> SyncReport:
        """Sync one source now (back-off and schedule are the scheduler's business, not this)."""
        repo = self.store.sources
        source = repo.acquire(source_id, LEASE_S)
        if source is None:
            existing = repo.get(source_id)
            if existing is None:
                raise SourceNotFound(f"no source with id {source_id}")
            return SyncReport(existing.name, "busy")
        started = time.perf_counter()
        secrets = list(self.secrets)
        try:
            connector = self._connector(source, self.cache_dir(source))
            secrets += connector.secrets()
            report = self._sync(source, connector, progress)
        except Exception as exc:  # noqa: BLE001 - any failure is recorded on its source and stops no other
            error = redact_secrets(f"{type(exc).__name__}: {exc}", secrets)[:2000]
            after = repo.record_failure(source.id, error, backoff_base_s=BACKOFF_BASE_S, backoff_max_s=BACKOFF_MAX_S)
            log.info("source %s failed (%d in a row, backing off until %s): %s", source.name,
                        after.error_count if after else 0, after.backoff_until if after else "-", error)
            return SyncReport(source.name, "failed", source.cursor, seconds=time.perf_counter() - started,
                              error=error)
        except BaseException:  # interrupted (Ctrl-C): not the source's fault; let the next sync start at once
            repo.release(source.id)
            raise
        report.seconds = time.perf_counter() - started
        log.info("source %s: %s", source.name, report.as_result())
        return report

    def _sync(self, source: SourceRow, connector: Connector, progress: Progress | None) -> SyncReport:
        repo = self.store.sources
        changes = connector.changes(source.cursor)
        owned = repo.external_ids(source.id)
        changed_ids = {item.external_id for item in changes.changed}
        gone = set(owned) - changed_ids if changes.full else set(changes.deleted) - changed_ids
        by_uri = {document_uri(source, item.external_id): item.external_id for item in changes.changed}
        renewed = [time.monotonic()]

        def step(uri: str) -> None:
            if time.monotonic() - renewed[0] > RENEW_EVERY_S:
                repo.renew(source.id, LEASE_S)
                renewed[0] = time.monotonic()
            if progress:
                progress(uri)

        ingest = IngestReport()
        for collection, items in self._placed(source, changes.changed).items():
            part = self.ingestor.ingest_sourced(self._files(source, connector, items), collection, progress=step)
            ingest.documents_written += part.documents_written
            ingest.documents_unchanged += part.documents_unchanged
            ingest.chunks_written += part.chunks_written
            ingest.skipped += part.skipped
        # an item that changed but can no longer be read keeps no stale version in search
        unreadable = {by_uri.get(uri, uri) for uri, _ in ingest.skipped}
        report = SyncReport(source.name, "synced", changes.cursor, changed=len(changes.changed),
                            written=ingest.documents_written, unchanged=ingest.documents_unchanged,
                            chunks=ingest.chunks_written,
                            skipped=[(by_uri.get(uri, uri), reason) for uri, reason in ingest.skipped])
        doomed = (gone | unreadable) & set(owned)
        deleted = repo.commit_sync(source.id, from_cursor=source.cursor, to_cursor=changes.cursor,
                                   delete_external_ids=doomed, counts={**report.counts(), "deleted": len(doomed)})
        if deleted is None:
            report.status = "superseded"
            return report
        report.deleted = deleted
        return report

    def _placed(self, source: SourceRow, items: Iterable[ItemRef]) -> dict[str, list[ItemRef]]:
        """The items by the collection they go to; a placement's private collection is made (and granted
        to its chat locations) before anything is written into it."""
        placed: dict[str, list[ItemRef]] = {source.collection_name: []}
        for item in items:
            if item.placement is not None and item.placement.collection not in placed:
                self._ensure_private(item.placement)
            placed.setdefault(item.placement.collection if item.placement else source.collection_name, []).append(item)
        return placed

    def _ensure_private(self, placement: Placement) -> None:
        """Create the placement's collection, private and granted to its locations; one that exists is
        left as its operator set it (its rules included), unless it is public: that is refused."""
        existing = self.store.collections.get(placement.collection)
        if existing is not None:
            if existing.visibility != "private":  # never pour a private channel into what everyone reads
                raise ConnectorError(f"collection {existing.name!r} exists and is public: private content is not "
                                     "written to it (remove or rename it, or make it private)")
            return
        coll = cols.get_or_create(self.store.collections, placement.collection, visibility="private")
        for platform, workspace, channel in placement.grants:
            self.store.access_rules.set(coll.id, platform, workspace, channel, "grant")

    def _files(self, source: SourceRow, connector: Connector, items: Iterable[ItemRef]) -> Iterator[SourcedFile]:
        for item in items:
            fetched = connector.fetch(item)
            yield SourcedFile(document_uri(source, item.external_id), fetched.path, item.display_path,
                              DocumentOrigin(source.id, item.external_id, item.url))


def enqueue_due(store: Store) -> list[int]:
    """Queue a sync job for every scheduled source that is due (not backing off, not running); their ids."""
    return store.sources.enqueue_due(jobs.SOURCE_SYNC)
