"""Periodic clean-up every long-running process does: expired delivery ids.

The worker and each bot run it, so the table stays bounded whether or not a
worker is deployed; several processes pruning at once is harmless (the DELETE is
idempotent).
"""

from __future__ import annotations

import logging
import threading

from app.settings import Settings
from rag_engine.store.database import Database
from rag_engine.store.processed_events import ProcessedEventRepo

log = logging.getLogger(__name__)


class Housekeeping:
    """Prunes ``processed_events`` at start and every ``settings.housekeeping_interval_s`` (a daemon thread)."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.events = ProcessedEventRepo(db)
        self.settings = settings
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        """Delete expired delivery ids; 0 (and a warning) when the database is away."""
        try:
            deleted = self.events.prune(self.settings.processed_events_retention_s)
        except Exception as exc:  # noqa: BLE001 - the next round tries again; the process carries on
            log.warning("pruning processed events failed: %s", exc)
            return 0
        if deleted:
            log.info("pruned %d delivery ids older than %.0f s", deleted, self.settings.processed_events_retention_s)
        return deleted

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="ragbot-housekeeping", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            self.run_once()
            if self._stop.wait(self.settings.housekeeping_interval_s):
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
