"""A web site as a source: pages reached from a start URL (or listed by a sitemap), on its own host,
within a depth and a page limit, as robots.txt allows; each page's main content, as Markdown.

Every sync crawls again, but politely and cheaply: a page seen before is asked for with
``If-None-Match`` / ``If-Modified-Since`` and a ``304`` costs no body (its links come from the
local copy kept in the cache folder). The cursor (compact JSON, committed with the documents)
holds each page's validators and canonical URL, so a sync that dies is re-run from the old
validators and re-downloads what it had not committed. A page is the document of its canonical
URL (``<link rel=canonical>`` on the same host, else the address it was served from after
redirects). A page that answers ``404``/``410``, that robots.txt now disallows, that asks not to
be indexed, or that the crawl no longer reaches within its limits is deleted; a page that fails
for a while (timeouts, ``5xx`` after retries) keeps its document until it answers again.
Main-content extraction is trafilatura's (menus, footers and boilerplate left out), done when the
sync service fetches the item.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit
from urllib.robotparser import RobotFileParser

import httpx
import lxml.etree
import lxml.html
from pydantic import BaseModel, ConfigDict, Field, field_validator
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential
from tenacity.wait import wait_base

from rag_engine.connectors.base import ChangeSet, Connector, ConnectorError, Fetched, ItemRef

TIMEOUT_S = 20.0
ATTEMPTS = 3  # per request: the first try and two retries on 5xx, 429 and transport errors (timeouts)
MAX_REDIRECTS = 5
MAX_SITEMAPS = 50  # sitemap files read per sync (an index and the sitemaps it names)
MAX_CRAWL_DELAY_S = 10.0
_CURSOR_VERSION = 1
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_SKIP_SUFFIXES = frozenset(
    ".png .jpg .jpeg .gif .svg .webp .ico .css .js .json .xml .gz .zip .tar .tgz .pdf .mp3 .mp4 .webm .woff "
    ".woff2 .ttf .eot .exe .dmg .iso .csv .xls .xlsx .doc .docx .ppt .pptx".split())
_CHARSET = re.compile(r"charset=([\w.:-]+)", re.I)


class WebConfig(BaseModel):
    """What ``sources.config`` holds for a web source."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str  # the start page, or a sitemap (a URL ending in .xml, or sitemap: true)
    sitemap: bool = False
    max_pages: int = Field(default=500, ge=1, le=100_000)  # page requests per sync (a 304 counts)
    max_depth: int = Field(default=5, ge=0, le=50)  # links followed from the start page / sitemap pages
    max_page_mb: float = Field(default=5.0, gt=0, le=100)
    user_agent: str = "ragbot"  # the robots.txt group that applies, and the User-Agent header
    # seconds between page requests (robots.txt's Crawl-delay, when longer, wins)
    delay_s: float = Field(default=0.0, ge=0, le=MAX_CRAWL_DELAY_S)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("the web source URL must be an http(s) address, e.g. https://docs.example.com/")
        if parts.username or parts.password:
            raise ValueError("the web source URL must not hold a user name or password")
        return value.strip()

    @property
    def is_sitemap(self) -> bool:
        return self.sitemap or urlsplit(self.url).path.lower().endswith(".xml")


@dataclass(slots=True)
class CrawlStats:
    """What the last ``changes`` and the ``fetch`` calls since cost (the sync benchmark reads it)."""

    requests: int = 0  # every HTTP request: robots.txt, sitemaps, redirects, pages
    page_requests: int = 0
    page_bodies: int = 0  # pages downloaded (200), not 304
    not_modified: int = 0
    gone: int = 0  # 404 / 410
    failed: int = 0  # unreachable after retries; documents kept
    fetch_s: float = 0.0  # time in HTTP (and crawl delays)
    parse_s: float = 0.0  # links, canonical URL, main-content extraction


@dataclass(frozen=True, slots=True)
class _Page:
    """A page as the cursor keeps it: validators and the document it is (canonical URL)."""

    etag: str = ""
    modified: str = ""
    canonical: str = ""


@dataclass(slots=True)
class _Response:
    status: int
    url: str
    headers: httpx.Headers
    body: bytes = b""


@dataclass(slots=True)
class _Parsed:
    canonical: str
    title: str
    links: list[str] = field(default_factory=list)
    noindex: bool = False
    nofollow: bool = False


class _Retryable(Exception):
    def __init__(self, response: _Response) -> None:
        super().__init__(f"HTTP {response.status}")
        self.response = response


class _TooLarge(Exception):
    pass


class WebConnector(Connector):
    kind = "web"

    def __init__(self, config: WebConfig, cache_dir: Path, *, transport: httpx.BaseTransport | None = None,
                 retry_wait: wait_base | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config
        self.cache_dir = cache_dir
        start = urlsplit(config.url)
        self.origin = f"{start.scheme}://{start.netloc.lower()}"
        self.stats = CrawlStats()
        self._client = httpx.Client(timeout=TIMEOUT_S, follow_redirects=False, transport=transport,
                                    headers={"User-Agent": config.user_agent})
        self._wait = retry_wait if retry_wait is not None else wait_exponential(multiplier=0.5, max=8)
        self._sleep = sleep
        self._robots = RobotFileParser()
        self._delay_s = config.delay_s
        self._listed: dict[str, str] = {}  # canonical URL -> the cached page it comes from

    # -- the interface ---------------------------------------------------------
    def changes(self, cursor: str | None) -> ChangeSet:
        self.stats = CrawlStats()
        self._listed.clear()
        old = self._load_cursor(cursor)
        self._read_robots()
        seeds = self._sitemap_urls(self.config.url) if self.config.is_sitemap else [self._normal(self.config.url)]
        seeds = [u for u in dict.fromkeys(u for u in seeds if u) if self._allowed(u)]
        if not seeds:
            raise ConnectorError(f"nothing to crawl at {self.config.url} (robots.txt disallows it, or an empty "
                                 "sitemap)")
        queue = deque((u, 0) for u in seeds)
        seen = set(seeds)
        pages: dict[str, _Page] = {}  # this sync's cursor: final URL -> page
        claimed: set[str] = set()  # canonical URLs of this sync's documents: the first page of each wins
        changed: list[ItemRef] = []
        while queue and self.stats.page_requests < self.config.max_pages:
            url, depth = queue.popleft()
            outcome = self._visit(url, old, first=depth == 0 and not self.config.is_sitemap)
            if outcome is None:
                continue
            final, page, parsed, fresh = outcome
            seen.add(final)
            if parsed is None:  # unreachable for now: keep what was synced, and go on through its old links
                pages[final] = page
                meta = self._meta(final) or {}
                parsed = _Parsed(page.canonical, "", meta.get("links", []), nofollow=meta.get("nofollow", False))
            elif not parsed.noindex:
                pages[final] = page
                if page.canonical not in claimed:
                    claimed.add(page.canonical)
                    if fresh:
                        item = self._item(page.canonical)
                        changed.append(item)
                        self._listed[item.external_id] = final
            if depth < self.config.max_depth and not parsed.nofollow:
                for link in parsed.links:
                    if link not in seen and self._allowed(link):
                        seen.add(link)
                        queue.append((link, depth + 1))
        now = {p.canonical for p in pages.values()}
        deleted = sorted({self._absolute(p.canonical) for p in old.values()} - {self._absolute(c) for c in now})
        # never synced (or a cursor of another form): every page was downloaded, so ``changed`` is the site
        return ChangeSet(changed, deleted, self._dump_cursor(pages), full=not old)

    def fetch(self, item: ItemRef) -> Fetched:
        final = self._listed.get(item.external_id)
        if final is None:
            raise ConnectorError(f"{item.external_id} was not listed by this sync")
        import trafilatura  # lazy: a sixth of a second at every CLI start otherwise

        started = time.perf_counter()
        html = self._cached(final).read_text(encoding="utf-8")
        parsed = self._parse(html, final)
        body = trafilatura.extract(html, url=item.external_id, output_format="markdown", include_comments=False,
                                   include_tables=True, include_links=False, include_images=False,
                                   deduplicate=False, with_metadata=False) or ""
        out = self.cache_dir / "text" / f"{_key(item.external_id)}.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        # a front-matter title (JSON is YAML) the Markdown parser reads; empty text: nothing to index
        out.write_text(f"---\ntitle: {json.dumps(parsed.title)}\n---\n{body}\n" if body.strip() else "",
                       encoding="utf-8")
        self.stats.parse_s += time.perf_counter() - started
        return Fetched(out)

    def close(self) -> None:
        self._client.close()

    # -- a page ----------------------------------------------------------------
    def _visit(self, url: str, old: dict[str, _Page], *, first: bool
               ) -> tuple[str, _Page, _Parsed | None, bool] | None:
        """(final URL, page, what it holds or None if unreachable, downloaded anew); None: not a page
        (gone, disallowed, off-host, not HTML)."""
        self._pause()
        self.stats.page_requests += 1
        known = old.get(url)
        try:
            response = self._get_following(url, known, old)
            if response is not None and response.status == 304:
                page = old.get(response.url)
                meta = self._meta(response.url)
                if page is not None and meta is not None and meta.get("v") == [page.etag, page.modified]:
                    self.stats.not_modified += 1
                    return response.url, page, _Parsed(page.canonical, "", meta.get("links", []),
                                                       meta.get("noindex", False), meta.get("nofollow", False)), False
                response = self._get(response.url, {})  # our copy is not the version validated: download it
        except (httpx.HTTPError, _Retryable) as exc:
            if first:
                raise ConnectorError(f"the start page {url} is unreachable: {_describe(exc)}") from None
            self.stats.failed += 1
            return (url, known, None, False) if known else None
        except _TooLarge:
            return None
        if response is None:
            return None
        final = response.url
        if 400 <= response.status < 500:  # 404/410 gone; 401/403 no longer public: the document goes too
            self.stats.gone += 1
            if first:
                raise ConnectorError(f"the start page {url} answers HTTP {response.status}")
            return None
        if response.status != 200:  # a 1xx/3xx left over (too many redirects, a 304 on an unconditional GET)
            if first:
                raise ConnectorError(f"the start page {url} answers HTTP {response.status}")
            self.stats.failed += 1
            page = old.get(final)
            return (final, page, None, False) if page else None
        ctype = response.headers.get("content-type", "text/html").split(";")[0].strip().lower()
        if ctype not in _HTML_TYPES:
            return None
        self.stats.page_bodies += 1
        started = time.perf_counter()
        html = _decode(response)
        parsed = self._parse(html, final)
        etag = response.headers.get("etag", "")
        # with an ETag, If-None-Match is what a server must go by (RFC 9110): Last-Modified is not kept
        page = _Page(etag, "" if etag else response.headers.get("last-modified", ""), self._relative(parsed.canonical))
        self._store(final, html, page, parsed)
        self.stats.parse_s += time.perf_counter() - started
        return final, page, parsed, True

    def _get_following(self, url: str, known: _Page | None, old: dict[str, _Page]) -> _Response | None:
        """The response at the end of redirects (each hop on this host and allowed), conditional where the
        page is known; None where a redirect leaves the site or robots.txt disallows its target."""
        page = known
        for _ in range(MAX_REDIRECTS + 1):
            response = self._get(url, self._conditional(url, page))
            if response.status not in (301, 302, 303, 307, 308):
                return response
            target = self._normal(urljoin(url, response.headers.get("location", "")))
            if target is None or not self._allowed(target):
                return None
            url, page = target, old.get(target)
        return None

    def _conditional(self, url: str, page: _Page | None) -> dict[str, str]:
        """Validators to send: only where our copy of the page is the version they validate."""
        if page is None or not (page.etag or page.modified):
            return {}
        meta = self._meta(url)
        if meta is None or meta.get("v") != [page.etag, page.modified]:
            return {}
        headers = {"If-None-Match": page.etag} if page.etag else {}
        if page.modified:
            headers["If-Modified-Since"] = page.modified
        return headers

    def _parse(self, html: str, url: str) -> _Parsed:
        try:
            doc = lxml.html.document_fromstring(html.encode("utf-8"), parser=_HTML_PARSER)
        except (lxml.etree.ParserError, ValueError):
            return _Parsed(url, "")
        base = url
        for b in doc.iter("base"):
            base = urljoin(url, b.get("href") or "")
            break
        canonical = url
        robots = ""
        for el in doc.iter("link", "meta"):
            if el.tag == "link" and "canonical" in (el.get("rel") or "").lower().split():
                target = self._normal(urljoin(base, el.get("href") or ""))
                if target:
                    canonical = target
            elif el.tag == "meta" and (el.get("name") or "").lower() in ("robots", self.config.user_agent.lower()):
                robots += "," + (el.get("content") or "").lower()
        links = []
        for a in doc.iter("a"):
            href = a.get("href")
            target = self._normal(urljoin(base, href)) if href else None
            if target and "nofollow" not in (a.get("rel") or "").lower():
                links.append(target)
        heading = next((" ".join(h.text_content().split()) for h in doc.iter("h1")), "")
        title = heading or " ".join((doc.findtext(".//title") or "").split())
        flags = {f.strip() for f in robots.split(",")}
        return _Parsed(canonical, title[:300], list(dict.fromkeys(links)), bool(flags & {"noindex", "none"}),
                       bool(flags & {"nofollow", "none"}))

    # -- HTTP --------------------------------------------------------------------
    def _get(self, url: str, headers: dict[str, str]) -> _Response:
        """One GET, retried on 5xx, 429 and transport errors; raises the last failure."""
        retrying = Retrying(stop=stop_after_attempt(ATTEMPTS), wait=self._wait, reraise=True,
                            retry=retry_if_exception_type((httpx.TransportError, _Retryable)))
        for attempt in retrying:
            with attempt:
                response = self._once(url, headers)
                if response.status >= 500 or response.status == 429:
                    raise _Retryable(response)
                return response
        raise AssertionError("unreachable: tenacity re-raises the last failure")

    def _once(self, url: str, headers: dict[str, str]) -> _Response:
        started = time.perf_counter()
        self.stats.requests += 1
        limit = int(self.config.max_page_mb * 1_000_000)
        try:
            with self._client.stream("GET", url, headers=headers) as r:
                if int(r.headers.get("content-length") or 0) > limit:
                    raise _TooLarge
                body = bytearray()
                if r.status_code == 200:
                    for part in r.iter_bytes():
                        body += part
                        if len(body) > limit:
                            raise _TooLarge
                return _Response(r.status_code, url, r.headers, bytes(body))
        finally:
            self.stats.fetch_s += time.perf_counter() - started

    def _pause(self) -> None:
        if self._delay_s > 0 and self.stats.page_requests:
            started = time.perf_counter()
            self._sleep(self._delay_s)
            self.stats.fetch_s += time.perf_counter() - started

    # -- robots.txt and sitemaps -----------------------------------------------
    def _read_robots(self) -> None:
        """robots.txt: absent (4xx) allows all, 401/403 forbid all, unreachable (5xx) fails the sync."""
        url = self.origin + "/robots.txt"
        self._robots = RobotFileParser(url)
        try:
            r = self._get(url, {})
        except (httpx.HTTPError, _Retryable, _TooLarge) as exc:
            raise ConnectorError(f"robots.txt at {url} is unreachable: {_describe(exc)}") from None
        if r.status in (401, 403):
            self._robots.parse(["User-agent: *", "Disallow: /"])
        else:
            self._robots.parse(_decode(r).splitlines() if r.status == 200 else [])
        delay = self._robots.crawl_delay(self.config.user_agent)
        self._delay_s = min(max(self.config.delay_s, float(delay or 0)), MAX_CRAWL_DELAY_S)

    def _allowed(self, url: str) -> bool:
        return self._robots.can_fetch(self.config.user_agent, url)

    def _sitemap_urls(self, url: str) -> list[str]:
        """Page URLs of a sitemap or a sitemap index (same host only)."""
        todo, done, found = [url], 0, []
        while todo and done < MAX_SITEMAPS:
            current = todo.pop(0)
            done += 1
            try:
                r = self._get(current, {})
            except (httpx.HTTPError, _Retryable, _TooLarge) as exc:
                raise ConnectorError(f"the sitemap {current} is unreachable: {_describe(exc)}") from None
            if r.status != 200:
                raise ConnectorError(f"the sitemap {current} answers HTTP {r.status}")
            try:
                root = lxml.etree.fromstring(r.body, parser=_XML_PARSER)
            except lxml.etree.XMLSyntaxError as exc:
                raise ConnectorError(f"the sitemap {current} is not XML: {exc}") from None
            locs = [(el.text or "").strip() for el in root.iter("{*}loc")]
            if lxml.etree.QName(root).localname == "sitemapindex":
                todo += [u for u in locs if u.startswith(self.origin + "/")]
            else:
                found += [n for n in map(self._normal, locs) if n]
        return found

    # -- addresses -------------------------------------------------------------
    def _normal(self, url: str) -> str | None:
        """``url`` without its fragment, scheme and host in lower case; None if off this site or not a page."""
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError:
            return None
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            return None
        host = parts.hostname.lower()
        default = {"http": 80, "https": 443}[parts.scheme.lower()]
        netloc = host if port in (None, default) else f"{host}:{port}"
        normal = urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", parts.query, ""))
        if not normal.startswith(self.origin + "/"):
            return None
        if Path(parts.path).suffix.lower() in _SKIP_SUFFIXES and normal != self._start_normal():
            return None
        return normal

    def _start_normal(self) -> str:
        parts = urlsplit(self.config.url)
        return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", parts.query, ""))

    def _relative(self, url: str) -> str:
        """Cursor form: a path on this site (compact), the whole URL otherwise."""
        return url[len(self.origin):] if url.startswith(self.origin + "/") else url

    def _absolute(self, url: str) -> str:
        return self.origin + url if url.startswith("/") else url

    def _item(self, canonical: str) -> ItemRef:
        url = self._absolute(canonical)
        return ItemRef(external_id=url, display_path=url.split("://", 1)[-1], url=url)

    # -- cursor and cache ----------------------------------------------------------
    def _load_cursor(self, cursor: str | None) -> dict[str, _Page]:
        if not cursor:
            return {}
        try:
            data = json.loads(cursor)
            if data.get("v") != _CURSOR_VERSION:
                return {}
            pages = {}
            for key, value in data["p"].items():
                etag, modified, canonical = [*value, "", "", ""][:3]
                pages[self._absolute(key)] = _Page(str(etag), str(modified), str(canonical or key))
            return pages
        except (ValueError, TypeError, KeyError, AttributeError):
            return {}  # not ours (or an older form): a full crawl

    def _dump_cursor(self, pages: dict[str, _Page]) -> str:
        compact = {}
        for url, p in sorted(pages.items()):
            key = self._relative(url)
            value = [p.etag, p.modified, "" if p.canonical == key else p.canonical]
            while value and not value[-1]:  # [etag], or [] where the page has no validators and is its own URL
                value.pop()
            compact[key] = value
        return json.dumps({"v": _CURSOR_VERSION, "p": compact}, separators=(",", ":"), ensure_ascii=False)

    def _cached(self, url: str) -> Path:
        return self.cache_dir / "pages" / f"{_key(url)}.html"

    def _meta(self, url: str) -> dict[str, Any] | None:
        try:
            meta: dict[str, Any] = json.loads(self._cached(url).with_suffix(".json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return meta if self._cached(url).is_file() else None

    def _store(self, url: str, html: str, page: _Page, parsed: _Parsed) -> None:
        path = self._cached(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(html, encoding="utf-8")
        meta = {"v": [page.etag, page.modified], "links": parsed.links, "noindex": parsed.noindex,
                "nofollow": parsed.nofollow}
        path.with_suffix(".json").write_text(json.dumps(meta, separators=(",", ":")), encoding="utf-8")


_HTML_PARSER = lxml.html.HTMLParser(encoding="utf-8", no_network=True)
_XML_PARSER = lxml.etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


def _key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:32]


def _decode(response: _Response) -> str:
    found = _CHARSET.search(response.headers.get("content-type", ""))
    try:
        return response.body.decode(found.group(1) if found else "utf-8", errors="replace")
    except LookupError:
        return response.body.decode("utf-8", errors="replace")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, _Retryable):
        return f"HTTP {exc.response.status}"
    if isinstance(exc, _TooLarge):
        return "larger than max_page_mb"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
