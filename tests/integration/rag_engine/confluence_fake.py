"""A fake Confluence REST API v1 (the shapes Atlassian documents for ``GET /rest/api/content``,
``/rest/api/content/search`` and ``/rest/api/content/{id}``, as atlassian-python-api reads them),
served by ``http.server`` on 127.0.0.1 in a thread, Cloud-style under ``/wiki``.

It pages its results two at a time through ``_links.next`` (relative to ``_links.base``), filters
CQL by ``space`` and ``lastmodified >= now("-Nm")``, expands bodies, ancestors and read restrictions
only when asked, answers 401 without the right basic credentials, and records every request.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

PAGE_LIMIT = 2  # the server's own cap on results per request, so tests exercise paging


@dataclass
class FakePage:
    id: str
    title: str
    body: str
    parent: str | None = None
    version: int = 1
    when: datetime = field(default_factory=lambda: datetime.now(UTC) - timedelta(days=3))
    read_groups: list[str] = field(default_factory=list)
    read_users: list[str] = field(default_factory=list)


class FakeConfluence:
    def __init__(self, space: str, email: str, token: str) -> None:
        self.space = space
        self.pages: dict[str, FakePage] = {}
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        self.hide_restrictions = False  # as a server that ignores the expansion would answer
        self._auth = "Basic " + base64.b64encode(f"{email}:{token}".encode()).decode()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/wiki"

    def start(self) -> FakeConfluence:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- the space, as tests change it ---------------------------------------------------------
    def add(self, page: FakePage) -> FakePage:
        page.when -= timedelta(hours=len(self.pages))  # each page its own last-modified time, older ones first
        self.pages[page.id] = page
        return page

    def edit(self, page_id: str, *, body: str | None = None, title: str | None = None) -> None:
        page = self.pages[page_id]
        page.body = body if body is not None else page.body
        page.title = title if title is not None else page.title
        page.version += 1
        page.when = datetime.now(UTC)

    def calls(self, path_end: str) -> list[dict[str, list[str]]]:
        return [q for p, q in self.requests if p.endswith(path_end)]

    # -- the documented JSON ---------------------------------------------------------------------
    def content(self, page: FakePage, expand: set[str]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": page.id, "type": "page", "status": "current", "title": page.title,
            "_links": {"webui": f"/spaces/{self.space}/pages/{page.id}/{page.title.replace(' ', '+')}",
                       "self": f"{self.url}/rest/api/content/{page.id}", "tinyui": f"/x/{page.id}"},
            "_expandable": {"container": f"/rest/api/space/{self.space}", "space": f"/rest/api/space/{self.space}"},
        }
        if "version" in expand:
            out["version"] = {"number": page.version, "when": page.when.isoformat(timespec="milliseconds")
                              .replace("+00:00", "Z"), "minorEdit": False,
                              "by": {"type": "known", "accountId": "5b10ac8d82e05b22cc7d4ef5", "displayName": "Ann"}}
        if "ancestors" in expand:
            out["ancestors"] = [{"id": a.id, "type": "page", "status": "current", "title": a.title}
                                for a in self._ancestors(page)]
        if any(e.startswith("restrictions.read") for e in expand) and not self.hide_restrictions:
            out["restrictions"] = {"read": {"operation": "read", "restrictions": {
                "user": {"results": [{"type": "known", "accountId": u, "displayName": u} for u in page.read_users],
                         "start": 0, "limit": 200, "size": len(page.read_users)},
                "group": {"results": [{"type": "group", "name": g, "id": f"id-{g}"} for g in page.read_groups],
                          "start": 0, "limit": 200, "size": len(page.read_groups)}},
                "_links": {"self": f"{self.url}/rest/api/content/{page.id}/restriction/byOperation/read"}}}
        if "body.view" in expand:
            out["body"] = {"view": {"value": page.body, "representation": "view"}}
        return out

    def _ancestors(self, page: FakePage) -> list[FakePage]:
        chain: list[FakePage] = []
        parent = page.parent
        while parent is not None and parent in self.pages:
            chain.insert(0, self.pages[parent])
            parent = self.pages[parent].parent
        return chain

    def _paged(self, path: str, query: dict[str, list[str]], pages: list[FakePage]) -> dict[str, Any]:
        start = int(query.get("start", ["0"])[0])
        limit = min(int(query.get("limit", ["25"])[0]), PAGE_LIMIT)
        expand = set(",".join(query.get("expand", [""])).split(","))
        chunk = pages[start:start + limit]
        links: dict[str, str] = {"base": self.url, "context": "/wiki", "self": self.url + path}
        if start + limit < len(pages):
            flat = {k: v[0] for k, v in query.items()}
            links["next"] = path + "?" + urlencode({**flat, "start": start + limit, "limit": limit})
        return {"results": [self.content(p, expand) for p in chunk], "start": start, "limit": limit,
                "size": len(chunk), "_links": links}

    def _search(self, query: dict[str, list[str]]) -> list[FakePage]:
        cql = query.get("cql", [""])[0]
        space = re.search(r'space\s*=\s*"([^"]+)"', cql)
        since = re.search(r'lastmodified\s*>=\s*now\("-(\d+)m"\)', cql)
        found = [p for p in self.pages.values() if space and space.group(1) == self.space]
        if since:
            cutoff = datetime.now(UTC) - timedelta(minutes=int(since.group(1)))
            found = [p for p in found if p.when >= cutoff]
        return found

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                fake.requests.append((parts.path, query))
                if self.headers.get("Authorization") != fake._auth:
                    return self._send(401, {"statusCode": 401, "message": "Unauthorized"})
                path = parts.path.removeprefix("/wiki")
                expand = set(",".join(query.get("expand", [""])).split(","))
                if path == "/rest/api/content":
                    ordered = sorted(fake.pages.values(), key=lambda p: int(p.id))
                    if query.get("spaceKey", [""])[0] != fake.space:
                        ordered = []
                    return self._send(200, fake._paged(path, query, ordered))
                if path == "/rest/api/content/search":
                    return self._send(200, fake._paged(path, query, fake._search(query)))
                match = re.fullmatch(r"/rest/api/content/(\d+)", path)
                if match and match.group(1) in fake.pages:
                    return self._send(200, fake.content(fake.pages[match.group(1)], expand))
                return self._send(404, {"statusCode": 404, "message": "No content found with id"})

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json;charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
