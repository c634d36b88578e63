"""Every answer comes from the active adapter; running bots pick up a new one without a restart.

Each ``RagEngine`` owns an :class:`AdapterWatcher` and checks once when it builds
its generator, so one-shot commands (``ragbot ask``, ``demo``, ``eval answers``)
answer with the same adapter as the bots; long-running processes also
:meth:`~AdapterWatcher.start` it. It reads the active adapter from the
``adapters`` table and, when it differs from what the generator serves, loads
it over the already loaded base weights and switches to it (or back to the
base model after a rollback to none). It wakes on ``NOTIFY ragbot_adapters`` (sent by every
activation and rollback) and polls every ``training.adapter_poll_s`` seconds
anyway, so a missed notification only delays the switch.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from rag_engine.config import EngineConfig
from rag_engine.generation.base import AdapterSwitching, Generator
from rag_engine.store.database import Database
from rag_engine.store.lora_adapters import LoraAdapterRepo
from rag_engine.training import registry

log = logging.getLogger(__name__)


class AdapterWatcher:
    """Keeps ``generator()``'s active adapter equal to the database's.

    ``generator`` is a callable returning the engine's generator (e.g.
    ``lambda: engine.generator``), so an engine whose generator is built lazily
    is only asked when a check runs. Generators that cannot switch adapters
    (extractive) are left alone.
    """

    def __init__(self, db: Database, config: EngineConfig, generator: Callable[[], Generator | None]) -> None:
        self.db = db
        self.config = config
        self._generator = generator
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failed: tuple[str | None, str] | None = None  # last failure, logged once
        self._lock = threading.Lock()
        self.last_error: str | None = None

    # -- one check -------------------------------------------------------------
    def check_once(self) -> str | None:
        """Apply the database's active adapter now; returns the version now served (None = base)."""
        with self._lock:
            gen = self._generator()
            if gen is None or not isinstance(gen, AdapterSwitching):
                return None
            wanted = registry.active(self.db)
            version, problem = (wanted.version if wanted else None), None
            base_model = registry.base_model_id(self.config.generation)
            if wanted is not None and wanted.base_model != base_model:
                problem = (f"adapter {wanted.version} was trained on {wanted.base_model!r}, not on the configured "
                           f"{base_model!r}; answering with the base model")
                self._fail(version, problem)
                version = None
            previous = gen.active_adapter
            if previous == version:
                if problem is None:
                    self._failed, self.last_error = None, None
                return version
            try:
                if wanted is not None and version is not None and version not in gen.adapters:
                    gen.load_adapter(version, wanted.path)
                gen.set_active_adapter(version)
            except Exception as exc:  # noqa: BLE001 - a bad adapter must not take the bot down
                self._fail(version, f"cannot switch to adapter {version}: {type(exc).__name__}: {exc}")
                return gen.active_adapter
            log.info("now answering with %s", f"adapter {version}" if version else "the base model")
            if problem is None:
                self._failed, self.last_error = None, None
            self._unload_old(gen, keep={version, previous})
            return version

    def check(self) -> str | None:
        """:meth:`check_once` that never raises (e.g. the database is down): the failure is logged and
        kept in ``last_error``, and the generator keeps serving what it served."""
        try:
            return self.check_once()
        except Exception as exc:  # noqa: BLE001 - answering must not depend on the adapter check
            self._fail(None, f"adapter check failed: {type(exc).__name__}: {exc}")
            return None

    def _fail(self, version: str | None, message: str) -> None:
        self.last_error = message
        if self._failed != (version, message):
            log.error("%s", message)
            self._failed = (version, message)

    @staticmethod
    def _unload_old(gen: AdapterSwitching, keep: set[str | None]) -> None:
        """Free adapters other than the active one and the one it replaced (kept for a quick rollback)."""
        for version in gen.adapters:
            if version not in keep:
                gen.unload_adapter(version)

    # -- background ------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="ragbot-adapter-watch", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        listener = _Listener(self.db)
        try:
            while not self._stop.is_set():
                self.check()  # a failed check is tried again at the next wake-up
                listener.wait(self.config.training.adapter_poll_s, self._stop)
        finally:
            listener.close()


class _Listener:
    """Waits for ``NOTIFY ragbot_adapters`` (or a timeout); falls back to sleeping."""

    def __init__(self, db: Database) -> None:
        self._repo = LoraAdapterRepo(db)
        self._conn: Any = None  # the psycopg connection, opened on first wait

    def wait(self, timeout: float, stop: threading.Event) -> None:
        deadline = time.monotonic() + timeout
        while not stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                if self._conn is None:
                    self._conn = self._repo.listen()
                for _ in self._conn.notifies(timeout=min(left, 1.0), stop_after=1):
                    return
            except Exception:  # noqa: BLE001 - no LISTEN (e.g. a transaction pooler): poll only
                self.close()
                stop.wait(min(left, 1.0))

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):  # a dead connection needs no goodbye
                self._conn.close()
            self._conn = None

