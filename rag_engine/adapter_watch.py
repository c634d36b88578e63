"""Every answer comes from the active adapter; running bots pick up a new one without a restart.

Each ``RagEngine`` owns an :class:`AdapterWatcher` and checks once when it builds
its generator, so one-shot commands (``ragbot ask``, ``demo``, ``eval answers``)
answer with the same adapter as the bots; long-running processes also
:meth:`~AdapterWatcher.start` it. It reads the active adapter from the
``adapters`` table and, when it differs from what the generator serves, loads
it over the already loaded base weights and switches to it (or back to the
base model after a rollback to none). It wakes on ``NOTIFY ragbot_adapters`` (sent by every
activation and rollback) and polls every ``settings.adapter_poll_s`` seconds
anyway, so a missed notification only delays the switch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select

from rag_engine.generation.base import AdapterSwitching, Generator
from rag_engine.settings import Settings
from rag_engine.store import schema as t
from rag_engine.store.database import Database
from rag_engine.training.registry import NOTIFY_CHANNEL, base_model_id

log = logging.getLogger(__name__)

@dataclass(frozen=True, slots=True)
class _Wanted:
    version: str | None
    path: str | None
    base_model: str | None


class AdapterWatcher:
    """Keeps ``generator()``'s active adapter equal to the database's.

    ``generator`` is a callable returning the engine's generator (e.g.
    ``lambda: engine.generator``), so an engine whose generator is built lazily
    is only asked when a check runs. Generators that cannot switch adapters
    (extractive) are left alone.
    """

    def __init__(self, db: Database, settings: Settings, generator: Callable[[], Generator | None]) -> None:
        self.db = db
        self.settings = settings
        self._generator = generator
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failed: tuple[str | None, str] | None = None  # last failure, logged once
        self._lock = threading.Lock()
        self._loaded_here: list[str] = []  # for generators that do not list their adapters
        self.last_error: str | None = None

    # -- one check -------------------------------------------------------------
    def check_once(self) -> str | None:
        """Apply the database's active adapter now; returns the version now served (None = base)."""
        with self._lock:
            gen = self._generator()
            if gen is None or not isinstance(gen, AdapterSwitching):
                return None
            wanted = self._wanted()
            version, problem = wanted.version, None
            if version is not None and wanted.base_model != base_model_id(self.settings):
                problem = (f"adapter {version} was trained on {wanted.base_model!r}, not on the configured "
                           f"{base_model_id(self.settings)!r}; answering with the base model")
                self._fail(version, problem)
                version = None
            previous = gen.active_adapter
            if previous == version:
                if problem is None:
                    self._failed, self.last_error = None, None
                return version
            try:
                if version is not None and version not in self._loaded(gen):
                    gen.load_adapter(version, wanted.path)  # type: ignore[arg-type]
                    self._loaded_here.append(version)
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

    def _wanted(self) -> _Wanted:
        a = t.adapters.c
        with self.db.connect() as conn:
            row = conn.execute(select(a.version, a.path, a.base_model).where(a.status == "active")).first()
        return _Wanted(row.version, row.path, row.base_model) if row else _Wanted(None, None, None)

    def _fail(self, version: str | None, message: str) -> None:
        self.last_error = message
        if self._failed != (version, message):
            log.error("%s", message)
            self._failed = (version, message)

    def _unload_old(self, gen: object, keep: set[str | None]) -> None:
        """Free adapters other than the active one and the one it replaced (kept for a quick rollback)."""
        unload = getattr(gen, "unload_adapter", None)
        if unload is None:
            return
        for version in self._loaded(gen):
            if version not in keep:
                unload(version)
                self._loaded_here = [v for v in self._loaded_here if v != version]

    def _loaded(self, gen: object) -> list[str]:
        listed = getattr(gen, "adapters", None)
        return list(listed) if listed is not None else list(self._loaded_here)

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
                listener.wait(self.settings.adapter_poll_s, self._stop)
        finally:
            listener.close()


class _Listener:
    """Waits for ``NOTIFY ragbot_adapters`` (or a timeout); falls back to sleeping."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._conn = None

    def _connect(self):  # noqa: ANN202
        import psycopg

        url = self._db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        conn = psycopg.connect(url, autocommit=True, connect_timeout=5)
        conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
        return conn

    def wait(self, timeout: float, stop: threading.Event) -> None:
        deadline = time.monotonic() + timeout
        while not stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                if self._conn is None:
                    self._conn = self._connect()
                for _ in self._conn.notifies(timeout=min(left, 1.0), stop_after=1):
                    return
            except Exception:  # noqa: BLE001 - no LISTEN (e.g. a transaction pooler): poll only
                self.close()
                stop.wait(min(left, 1.0))

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001
                pass
            self._conn = None

