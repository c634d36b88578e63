"""``/healthz`` and ``/metrics`` over HTTP, from a background thread.

A plain ``ThreadingHTTPServer`` in a daemon thread works the same in the
synchronous Slack process, the asyncio Discord process and the worker, and
never competes with their event loops.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import urllib.request
from collections.abc import Callable
from concurrent.futures import Future
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from app.settings import Settings
from bot import metrics
from rag_engine.store.database import Database

log = logging.getLogger(__name__)

ModelStatus = Callable[[], dict[str, Any]]


class HealthServer:
    """Serves ``/healthz`` (database, model, adapter version) and ``/metrics``.

    ``/healthz`` answers 200 ``{"status": "ok", ...}`` while the database answers
    a ping, 503 ``{"status": "unavailable", "database": false, ...}`` when it does
    not. A model that reports ``{"ok": false}`` (or whose status callable raises)
    makes it 200 ``"degraded"``: the bot still answers extractively then.
    """

    def __init__(self, *, port: int, db: Database, model_status: ModelStatus | None = None,
                 host: str = "127.0.0.1", ping_timeout_s: float | None = None) -> None:
        self.db = db
        self.model_status = model_status
        self.host = host
        self.requested_port = port
        # connect_timeout bounds a refused or unroutable server; this bounds a hung one too
        self.ping_timeout_s = ping_timeout_s or db.config.db_connect_timeout_s + 1.0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._ping_lock = threading.Lock()
        self._ping_in_flight: Future[bool] | None = None

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> None:
        """Bind (synchronously, so ``port`` is known) and serve in a daemon thread."""
        if self._server is not None:
            return
        self._server = ThreadingHTTPServer((self.host, self.requested_port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="ragbot-health", daemon=True)
        self._thread.start()
        log.info("health and metrics on http://%s:%d/healthz and /metrics", self.host, self.port)

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the health server is not started")
        return self._server.server_address[1]

    def __enter__(self) -> HealthServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the checks --------------------------------------------------------------
    def health(self) -> tuple[int, dict[str, Any]]:
        """(HTTP status, body) for ``/healthz``."""
        database = self.database_reachable()
        model, model_ok = self._model()
        if not database:
            status, code = "unavailable", HTTPStatus.SERVICE_UNAVAILABLE
        elif not model_ok:
            status, code = "degraded", HTTPStatus.OK
        else:
            status, code = "ok", HTTPStatus.OK
        return code, {"status": status, "database": database, "model": model,
                      "adapter_version": model.get("adapter_version")}

    def database_reachable(self) -> bool:
        """``db.ping()`` with a deadline; at most one ping in flight at a time.

        A ping stuck on a hung server keeps running in its own thread, and the
        checks that come while it runs report the database down instead of
        stacking up more stuck threads.
        """
        with self._ping_lock:
            pending = self._ping_in_flight
            if pending is None or pending.done():
                pending = Future()
                self._ping_in_flight = pending
                threading.Thread(target=self._ping_into, args=(pending,), name="ragbot-health-ping",
                                 daemon=True).start()
        try:
            return pending.result(timeout=self.ping_timeout_s)
        except TimeoutError:
            log.warning("database ping took longer than %.1fs", self.ping_timeout_s)
            return False

    def _ping_into(self, result: Future[bool]) -> None:
        try:
            result.set_result(bool(self.db.ping()))
        except Exception as exc:  # noqa: BLE001 - e.g. pool timeout: unhealthy, not a crash
            log.warning("database ping failed: %s", type(exc).__name__)
            result.set_result(False)

    def _model(self) -> tuple[dict[str, Any], bool]:
        if self.model_status is None:
            return {}, True
        try:
            model = dict(self.model_status())
        except Exception as exc:  # noqa: BLE001 - a status callback must not take health down
            log.warning("model status failed: %s", exc)
            return {"ok": False, "error": type(exc).__name__}, False
        return model, model.get("ok", True) is not False


def _handler_for(server: HealthServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                code, body = server.health()
                self._send(code, json.dumps(body, default=str).encode(), "application/json")
            elif path == "/metrics":
                payload, content_type = metrics.render()
                self._send(HTTPStatus.OK, payload, content_type)
            else:
                self._send(HTTPStatus.NOT_FOUND, b'{"error": "not found: use /healthz or /metrics"}',
                           "application/json")

        def _send(self, code: int, payload: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature from http.server
            # scrapes every few seconds would drown the logs; keep them at debug
            log.debug("%s %s", self.address_string(), format % args)

    return Handler


def probe(url: str, timeout_s: float = 5.0) -> bool:
    """True when ``url`` answers 200 (the container health check)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - local URL from settings
            return response.status == HTTPStatus.OK
    except OSError:  # refused, timed out, or an HTTP error status (HTTPError is an OSError)
        return False


def main() -> int:
    """``python -m app.health``: probe this container's own ``/healthz``."""
    settings = Settings()
    if settings.health_port == 0:
        print("RAGBOT_HEALTH_PORT is 0 (a random port): nothing fixed to probe", file=sys.stderr)
        return 1
    return 0 if probe(f"http://127.0.0.1:{settings.health_port}/healthz") else 1


if __name__ == "__main__":
    sys.exit(main())
