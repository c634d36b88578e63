"""``processed_events``: the delivery ids that make answers at-most-once.

A delivery id only matters while the platform may still re-deliver the event
(Slack retries within minutes; a Discord gateway replays within a session), so
ids older than ``RAGBOT_PROCESSED_EVENTS_RETENTION_S`` are deleted instead of
being kept forever.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert

from rag_engine.store import schema as t
from rag_engine.store.database import Database


class ProcessedEventRepo:
    """Records delivery ids and forgets expired ones."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def first_delivery(self, event_key: str) -> bool:
        """Record ``event_key``; False if it was recorded before (a re-delivery)."""
        events = t.processed_events
        with self.db.begin() as conn:
            row = conn.execute(insert(events).values(event_key=event_key)
                               .on_conflict_do_nothing().returning(events.c.event_key)).first()
        return row is not None

    def prune(self, older_than_s: float) -> int:
        """Delete delivery ids recorded more than ``older_than_s`` seconds ago; returns how many."""
        if older_than_s <= 0:
            raise ValueError("the retention must be positive: a zero retention would forget deliveries in flight")
        events = t.processed_events
        with self.db.begin() as conn:
            return int(conn.execute(
                events.delete().where(events.c.created_at < func.now() - timedelta(seconds=older_than_s))
            ).rowcount)
