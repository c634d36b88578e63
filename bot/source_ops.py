"""``/ragbot-admin sources list | sync NAME``: the synced sources from chat (platform-neutral).

The same facts as ``ragbot sources list`` (kind, collection, last success, counts, last error)
as plain lines for chat, and a sync queued as a ``source_sync`` job for ``ragbot worker``, the
way ``ragbot sources sync --queue`` does: the bot process never clones or crawls itself. The
caller (``BotCore``) has checked that the actor is a global admin and writes the audit row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from bot.sanitize import sanitize_output
from rag_engine import jobs
from rag_engine.engine import Database, Store
from rag_engine.source_admin import describe_counts, describe_schedule, require_source

ERROR_CHARS = 200


@dataclass(frozen=True, slots=True)
class SyncQueued:
    source: str
    job_id: int
    created: bool  # False: a sync of this source was already queued or running, and this is its job

    @property
    def message(self) -> str:
        if self.created:
            return f"Queued a sync of {self.source} (job {self.job_id}); `ragbot worker` runs it."
        return f"A sync of {self.source} is already queued or running (job {self.job_id})."


def source_lines(store: Store) -> tuple[str, list[str]]:
    """A headline and one line per source."""
    found = store.sources.all()
    if not found:
        return "No sources yet: add one on the server with `ragbot sources add …`.", []
    lines = []
    for s in found:
        parts = [f"{s.name} ({s.kind}) -> {sanitize_output(s.collection_name, limit=100)}",
                 f"{_schedule(s.schedule_s)}", f"last success {_when(s.last_success_at)}",
                 f"{s.documents} documents"]
        counts = describe_counts(s.last_counts)
        if counts:
            parts.append(f"last sync: {counts}")
        if s.last_error:
            retry = f", retried after {_when(s.backoff_until)}" if s.backoff_until else ""
            parts.append(f"error ({s.error_count} in a row{retry}): "
                         f"{sanitize_output(' '.join(s.last_error.split()), limit=ERROR_CHARS)}")
        lines.append("; ".join(parts))
    failing = sum(1 for s in found if s.last_error)
    return f"{len(found)} sources" + (f", {failing} failing" if failing else "") + ".", lines


def queue_sync(db: Database, store: Store, name: str, requested_by: str) -> SyncQueued:
    """Queue a sync of source ``name`` (``ValueError`` naming the sources if there is none), or return the
    open one: asking twice queues one sync."""
    source = require_source(store, name)
    for job in jobs.open_jobs(db, kinds=[jobs.SOURCE_SYNC]):
        if job.payload.get("source_id") == source.id:
            return SyncQueued(source.name, job.id, False)
    queued = jobs.enqueue(db, jobs.SOURCE_SYNC, {"source_id": source.id}, requested_by=requested_by)
    return SyncQueued(source.name, queued.job_id, queued.created)


def _schedule(seconds: int | None) -> str:
    return "synced on request" if seconds is None else describe_schedule(seconds)


def _when(at: datetime | None) -> str:
    if at is None:
        return "never"
    return (at.astimezone(UTC) if at.tzinfo else at).strftime("%Y-%m-%d %H:%M UTC")
