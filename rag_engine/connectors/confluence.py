"""A Confluence space as a source (Cloud or Data Center), read through its REST API v1 with the
``atlassian-python-api`` client's typed REST core (auth, session, retries on 429/503).

Each sync lists the space's pages without their bodies (id, title, version, ancestors, read
restrictions: one request per page of results). A page is ingested again when what the listing
shows of it changed: its version (an edit), its title, its ancestors' titles or its restrictions
(renaming or restricting a parent touches neither a child's version nor its ``lastmodified``).
The edited pages' bodies come from one CQL search, ``lastmodified >= now("-Nm")`` since the last
sync, with ``body.view`` expanded (a request per page of results, not one per page); a page CQL
missed is fetched by id. Pages the listing no longer has (deleted, moved to another space, now
unreadable to the token) are deletions, found at every sync. The cursor is that listing's
fingerprints plus the time of the newest version seen (the server's clock).

A page is written as HTML: its ancestors' titles and its own as nested headings above its body
(rendered ``body.view``, headings shifted below them), so its chunks' heading path is the page
hierarchy. A page with read restrictions, its own or an ancestor's (Confluence inherits them), goes
to a private collection of its own restriction set (``<prefix>-<groups>``), never to the source's
collection; an admin grants that collection to the channels that may read it (or ``restricted:
skip`` leaves such pages out).
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from requests import RequestException

from rag_engine.connectors.base import ChangeSet, Connector, ConnectorError, Fetched, ItemRef, Placement
from rag_engine.connectors.secrets import read_secret

if TYPE_CHECKING:
    from atlassian.rest_client import AtlassianRestAPI

PAGE_SIZE = 100  # results asked per request (the server may return fewer; ``_links.next`` pages on)
CQL_MARGIN_MIN = 10  # minutes of overlap with the last sync: clock skew, and CQL's minute resolution
MAX_PATH_LEVELS = 4  # hierarchy headings h1..h4; a deeper path joins its top levels into the first
TIMEOUT_S = 60
_LIST_EXPAND = ("version,ancestors,restrictions.read.restrictions.user,restrictions.read.restrictions.group")
_BODY_EXPAND = "body.view," + _LIST_EXPAND
_HEADING = re.compile(r"<(/?)h([1-6])(?=[\s>])", re.I)
_SLUG = re.compile(r"[^a-z0-9]+")


class ConfluenceConfig(BaseModel):
    """What ``sources.config`` holds for a Confluence space (no secret: it names where the token is)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str  # the site's base: https://acme.atlassian.net/wiki (Cloud) or https://confluence.example.com
    space: str  # the space key, e.g. ENG
    email: str | None = None  # Cloud: the Atlassian account of the API token (basic auth); None: a bearer PAT
    token_env: str | None = None
    token_file: str | None = None
    restricted: Literal["private", "skip"] = "private"  # pages with read restrictions: own collections, or left out
    restricted_prefix: str | None = None  # their collections' names start with this (default <space>-restricted)

    @field_validator("url")
    @classmethod
    def _web_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("url must be the site's http(s) address, e.g. https://acme.atlassian.net/wiki")
        if parts.password or parts.username:
            raise ValueError("the URL holds a user name or password: give the token with token_env or token_file")
        return value.rstrip("/")

    @field_validator("space")
    @classmethod
    def _space_key(cls, value: str) -> str:
        if not re.fullmatch(r"~?[A-Za-z0-9_-]{1,255}", value):
            raise ValueError("space must be a space key, e.g. ENG")
        return value


# -- the parts of the REST responses the connector reads ------------------------------------------
class _Ref(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str
    title: str = ""


class _Version(BaseModel):
    model_config = ConfigDict(extra="ignore")
    number: int = 0
    when: datetime | None = None


class _Principals(BaseModel):
    model_config = ConfigDict(extra="ignore")
    results: list[dict[str, Any]] = Field(default_factory=list)


class _ReadRestrictions(BaseModel):  # both required: a list the server did not expand is not "nobody"
    model_config = ConfigDict(extra="ignore")
    user: _Principals
    group: _Principals


class _Operation(BaseModel):
    model_config = ConfigDict(extra="ignore")
    restrictions: _ReadRestrictions


class _Restrictions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    read: _Operation


class _View(BaseModel):
    model_config = ConfigDict(extra="ignore")
    value: str = ""


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")
    view: _View | None = None


class Page(BaseModel):
    """One page as the content API returns it (``expand``: version, ancestors, read restrictions)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    id: str
    title: str
    type: str = "page"
    status: str = "current"
    version: _Version = Field(default_factory=_Version)
    ancestors: list[_Ref] = Field(default_factory=list)
    restrictions: _Restrictions | None = None  # None: not returned; the sync fails rather than guess
    body: _Body | None = None
    links: dict[str, str] = Field(default_factory=dict, alias="_links")

    def own_restriction(self) -> list[str]:
        """This page's own read restriction: ``group:NAME`` / ``user:ID`` sorted; [] when it has none."""
        if self.restrictions is None:
            raise ConnectorError(f"page {self.id}: the server returned no read restrictions, so it cannot be "
                                 "told whether the page is restricted; nothing is synced")
        r = self.restrictions.read.restrictions
        groups = [f"group:{g.get('name') or g.get('id')}" for g in r.group.results]
        users = [f"user:{u.get('accountId') or u.get('userKey') or u.get('username')}" for u in r.user.results]
        return sorted(groups + users)


# -- the connector -----------------------------------------------------------------------------------
class ConfluenceConnector(Connector):
    kind = "confluence"

    def __init__(self, config: ConfluenceConfig, cache_dir: Path) -> None:
        self.config = config
        self.cache_dir = cache_dir
        self._token = read_secret(config.token_env, config.token_file)
        self._api = _client(config, self._token)
        self._pages: dict[str, Page] = {}  # the latest listing, by id
        self._bodies: dict[str, tuple[int, str]] = {}  # (version, body) CQL returned for the edited pages

    # -- the interface ---------------------------------------------------------
    def changes(self, cursor: str | None) -> ChangeSet:
        before = _Cursor.load(cursor)
        listing = [p for p in self._list() if p.type == "page" and p.status == "current"]
        restrictions = _effective_restrictions(listing)
        if self.config.restricted == "skip":
            listing = [p for p in listing if not restrictions[p.id]]
        self._pages = {p.id: p for p in listing}
        fingerprints = {p.id: self._fingerprint(p, restrictions[p.id]) for p in listing}
        if before.since and any(before.pages.get(i) != fp for i, fp in fingerprints.items()):
            self._modified_since(before.since)  # the edited pages' bodies, in bulk
        newest = max((p.version.when for p in listing if p.version.when), default=None)
        after = _Cursor(since=newest.isoformat() if newest else before.since, pages=fingerprints).dump()
        items = {p.id: self._item(p, restrictions[p.id]) for p in listing}
        if before.since is None:  # never synced, or a cursor this version cannot read: everything, and the
            return ChangeSet(list(items.values()), [], after, full=True)  # sync deletes what it no longer has
        changed = [items[i] for i, fp in fingerprints.items() if before.pages.get(i) != fp]
        deleted = sorted(set(before.pages) - set(fingerprints))
        return ChangeSet(changed, deleted, after)

    def fetch(self, item: ItemRef) -> Fetched:
        page = self._pages.get(item.external_id)
        version, body = self._bodies.get(item.external_id, (-1, ""))
        if page is None or version != page.version.number:  # not in CQL's answer, or edited since the listing
            page = self._page(item.external_id)
            body = page.body.view.value if page.body and page.body.view else ""
        path = self.cache_dir / "pages" / f"{_safe(item.external_id)}.html"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(page_html([a.title for a in page.ancestors], page.title, body), encoding="utf-8")
        return Fetched(path)

    def secrets(self) -> list[str]:
        return [self._token] if self._token else []

    # -- items -----------------------------------------------------------------
    def _item(self, page: Page, restriction: list[str]) -> ItemRef:
        path = " > ".join([*(a.title for a in page.ancestors), page.title])
        placement = Placement(self.restricted_collection(restriction), ()) if restriction else None
        return ItemRef(page.id, f"{self.config.space}: {path}", self._url(page), placement)

    def restricted_collection(self, restriction: list[str]) -> str:
        """The private collection of one restriction (its levels, each ``group:NAME,user:ID…``):
        ``<prefix>-<group names>``, plus a short hash when it names users (account ids mean nothing to
        a reader), has several levels (a page and a restricted ancestor) or the name would be too long."""
        prefix = self.config.restricted_prefix or f"{self.config.space.lower().lstrip('~')}-restricted"
        principals = [p for level in restriction for p in level.split(",")]
        groups = sorted({_SLUG.sub("-", p.split(":", 1)[1].lower()).strip("-") for p in principals
                         if p.startswith("group:")} - {""})
        label = "+".join(groups)
        exact = len(restriction) == 1 and all(p.startswith("group:") for p in principals)
        if not exact or not label or len(prefix) + len(label) > 80:
            digest = hashlib.sha256("\n".join(restriction).encode()).hexdigest()[:8]
            label = (label[:40].rstrip("+-") + "-" if label else "") + digest
        return f"{prefix}-{label}"

    def _url(self, page: Page) -> str | None:
        webui = page.links.get("webui")
        if not webui:
            return None
        return webui if webui.startswith(("https://", "http://")) else self.config.url + webui

    @staticmethod
    def _fingerprint(page: Page, restriction: list[str]) -> str:
        what = [page.version.number, page.title, [a.title for a in page.ancestors], restriction]
        return hashlib.sha256(json.dumps(what).encode()).hexdigest()[:16]

    # -- the REST API ----------------------------------------------------------
    def _list(self) -> Iterator[Page]:
        params = {"spaceKey": self.config.space, "type": "page", "status": "current", "expand": _LIST_EXPAND,
                  "limit": PAGE_SIZE}
        for raw in self._paged("rest/api/content", params):
            yield _page(raw)

    def _modified_since(self, since: str) -> None:
        """Keep the bodies of the pages CQL says were modified since ``since`` (minus a margin)."""
        try:
            then = datetime.fromisoformat(since)
        except ValueError:
            return
        minutes = max(1, math.ceil((datetime.now(UTC) - then).total_seconds() / 60)) + CQL_MARGIN_MIN
        cql = f'space = "{self.config.space}" and type = page and lastmodified >= now("-{minutes}m")'
        for raw in self._paged("rest/api/content/search", {"cql": cql, "expand": _BODY_EXPAND, "limit": PAGE_SIZE}):
            page = _page(raw)
            if page.body and page.body.view:
                self._bodies[page.id] = (page.version.number, page.body.view.value)

    def _page(self, page_id: str) -> Page:
        return _page(self._get(f"rest/api/content/{page_id}", {"expand": _BODY_EXPAND}))

    def _paged(self, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every result of a paged v1 call, following ``_links.next`` (on this site only)."""
        url: str | None = path
        query: dict[str, Any] | None = params
        while url:
            data = self._get(url, query, absolute=url.startswith(("https://", "http://")))
            results = data.get("results")
            if not isinstance(results, list):
                raise ConnectorError(f"{path}: the response has no results list")
            yield from (r for r in results if isinstance(r, dict))
            url, query = self._next(data), None

    def _next(self, data: dict[str, Any]) -> str | None:
        found = data.get("_links")
        links: dict[str, Any] = found if isinstance(found, dict) else {}
        nxt = links.get("next")
        if not isinstance(nxt, str) or not nxt:
            return None
        if nxt.startswith(("https://", "http://")):
            if urlsplit(nxt).netloc != urlsplit(self.config.url).netloc:
                raise ConnectorError("the server's next link leaves the site: not followed with the token")
            return nxt
        base = links.get("base") if isinstance(links.get("base"), str) else None
        site = self.config.url
        if base and urlsplit(base).netloc == urlsplit(site).netloc:
            site = base.rstrip("/")
        return site + "/" + nxt.lstrip("/")

    def _get(self, path: str, params: dict[str, Any] | None, *, absolute: bool = False) -> dict[str, Any]:
        try:
            data = self._api.get(path, params=params, absolute=absolute)
        except RequestException as exc:
            status = getattr(exc.response, "status_code", None)
            hint = {401: " (check the token and email)", 403: " (the token's account cannot read the space)",
                    404: " (check the url and space key)"}.get(status or 0, "")
            raise ConnectorError(f"Confluence GET {path.split('?')[0]}: "
                                 f"{f'HTTP {status}' if status else type(exc).__name__}{hint}: {exc}") from None
        if not isinstance(data, dict):
            raise ConnectorError(f"Confluence GET {path.split('?')[0]}: the response is not a JSON object")
        return data


class _Cursor(BaseModel):
    """The committed state: the newest version time seen, and each listed page's fingerprint."""

    model_config = ConfigDict(extra="ignore")
    v: int = 1
    since: str | None = None
    pages: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def load(cls, text: str | None) -> _Cursor:
        if not text:
            return cls()
        try:
            return cls.model_validate_json(text)
        except ValidationError:
            return cls()  # unreadable: read everything again

    def dump(self) -> str:
        return self.model_dump_json()


def _client(config: ConfluenceConfig, token: str | None) -> AtlassianRestAPI:
    """The REST core of ``atlassian-python-api``: basic auth (email + API token) on Cloud, a bearer
    personal access token on Data Center; it retries 429 and 503 answers with back-off."""
    from atlassian.rest_client import AtlassianRestAPI  # lazy: only Confluence sources need it

    if token is None:
        raise ConnectorError("a Confluence source needs a token: give token_env or token_file")
    auth: dict[str, Any] = {"username": config.email, "password": token} if config.email else {"token": token}
    return AtlassianRestAPI(url=config.url, timeout=TIMEOUT_S, backoff_and_retry=True, max_backoff_retries=5,
                            max_backoff_seconds=120, cloud=bool(config.email), **auth)


def _page(raw: dict[str, Any]) -> Page:
    try:
        return Page.model_validate(raw)
    except ValidationError as exc:
        raise ConnectorError(f"unexpected Confluence content: {exc.errors()[0]['msg']}") from None


def _effective_restrictions(pages: list[Page]) -> dict[str, list[str]]:
    """Each page's read restriction levels, its own and its ancestors' (Confluence inherits them: a
    reader must pass every level), each level its principals joined by commas; [] when unrestricted.
    An ancestor outside the listing (unreadable to the token) counts as unrestricted."""
    own = {p.id: p.own_restriction() for p in pages}
    out: dict[str, list[str]] = {}
    for p in pages:
        chain = [own.get(a.id, []) for a in p.ancestors] + [own[p.id]]
        out[p.id] = sorted({",".join(level) for level in chain if level})
    return out


def page_html(ancestors: list[str], title: str, body: str) -> str:
    """The page as HTML whose headings carry its hierarchy: ancestors and title as h1..hN (a deep path
    joins its top levels into the first), the body's own headings shifted below them."""
    path = [*ancestors, title]
    if len(path) > MAX_PATH_LEVELS:
        path = [" > ".join(path[:len(path) - MAX_PATH_LEVELS + 1]), *path[len(path) - MAX_PATH_LEVELS + 1:]]
    shift = len(path)
    heads = "".join(f"<h{i}>{html.escape(t)}</h{i}>" for i, t in enumerate(path, 1))
    shifted = _HEADING.sub(lambda m: f"<{m.group(1)}h{min(6, int(m.group(2)) + shift)}", body)
    return f"<html><head><title>{html.escape(title)}</title></head><body>{heads}\n{shifted}</body></html>\n"


def _safe(page_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", page_id)[:100] or "_"
