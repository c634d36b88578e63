"""A local web site for the web connector's tests and the sync benchmark: ``http.server`` in a thread
on 127.0.0.1, pages with ETag and Last-Modified (``304`` on a matching conditional request),
robots.txt, a sitemap, redirects, gone pages and failing ones, and a log of every request so a
test can count what the crawler really downloaded.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self


@dataclass(slots=True)
class Page:
    html: str
    etag: bool = True  # send an ETag (and honour If-None-Match)
    modified: float | None = 1_700_000_000.0  # Last-Modified (epoch seconds); None: not sent
    content_type: str = "text/html; charset=utf-8"


@dataclass(slots=True)
class Hit:
    path: str
    status: int
    body: bool  # a page body was sent (a 200 for a page, not robots.txt or the sitemap)
    user_agent: str


@dataclass
class SiteState:
    pages: dict[str, Page] = field(default_factory=dict)
    robots: str | None = None  # None: robots.txt answers 404
    sitemap: str | None = None  # served at /sitemap.xml
    redirects: dict[str, str] = field(default_factory=dict)  # path -> Location
    status: dict[str, int] = field(default_factory=dict)  # path -> forced status (410, 503 …)
    fail_times: Counter[str] = field(default_factory=Counter)  # path -> next n requests answer 503
    hits: list[Hit] = field(default_factory=list)


class LocalSite:
    """``with LocalSite() as site``: ``site.url(path)``; edit ``site.state`` between syncs."""

    def __init__(self) -> None:
        self.state = SiteState()
        self._lock = threading.Lock()
        handler = _handler(self.state, self._lock)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def origin(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str) -> str:
        return self.origin + path

    # -- what the crawler did ------------------------------------------------------
    def reset_hits(self) -> None:
        with self._lock:
            self.state.hits.clear()

    def hits(self) -> list[Hit]:
        with self._lock:
            return list(self.state.hits)

    def bodies(self) -> list[str]:
        """Paths of the page bodies downloaded."""
        return [h.path for h in self.hits() if h.body]

    def requested(self) -> set[str]:
        return {h.path for h in self.hits()}


def etag_of(page: Page) -> str:
    return '"' + hashlib.sha256(page.html.encode()).hexdigest()[:16] + '"'


def _handler(state: SiteState, lock: threading.Lock) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stall

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
            return

        def do_GET(self) -> None:
            path = self.path.split("#", 1)[0]
            with lock:
                status, headers, body, is_page = self._answer(path)
                state.hits.append(Hit(path, status, is_page and status == 200, self.headers.get("User-Agent", "")))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _answer(self, path: str) -> tuple[int, dict[str, str], bytes, bool]:
            path = path.split("?", 1)[0]  # pages ignore their query string, as most sites' do
            if state.fail_times[path] > 0:
                state.fail_times[path] -= 1
                return 503, {}, b"busy", False
            if path in state.status:
                return state.status[path], {}, b"", False
            if path == "/robots.txt":
                if state.robots is None:
                    return 404, {}, b"", False
                return 200, {"Content-Type": "text/plain"}, state.robots.encode(), False
            if path == "/sitemap.xml" and state.sitemap is not None:
                return 200, {"Content-Type": "application/xml"}, state.sitemap.encode(), False
            if path in state.redirects:
                return 301, {"Location": state.redirects[path]}, b"", False
            page = state.pages.get(path)
            if page is None:
                return 404, {"Content-Type": "text/html"}, b"<h1>Not found</h1>", False
            headers = {"Content-Type": page.content_type}
            tag = etag_of(page)
            modified = formatdate(page.modified, usegmt=True) if page.modified is not None else None
            if page.etag:
                headers["ETag"] = tag
            if modified:
                headers["Last-Modified"] = modified
            match = self.headers.get("If-None-Match")
            since = self.headers.get("If-Modified-Since")
            if (page.etag and match == tag) or (not (page.etag and match) and modified and since == modified):
                return 304, headers, b"", True
            return 200, headers, page.html.encode(), True

    return Handler
