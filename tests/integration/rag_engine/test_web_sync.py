"""Syncing a web site served by a local HTTP server into the real embedded PostgreSQL. The server
logs every request, so the tests count what the crawler really asked for and downloaded: robots.txt
obeyed, limits honoured, an unchanged second sync downloading no page body (all 304s), redirects
followed, canonical URLs as document ids, and a page that disappears leaving search."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text
from tenacity import wait_none
from typer.testing import CliRunner

from app.cli import app
from rag_engine.connectors.web import WebConfig, WebConnector
from rag_engine.source_admin import add_source
from rag_engine.store.sources import SourceRow
from rag_engine.sync import SourceSyncer
from rag_engine.testing.web_site import LocalSite, Page

DINNER = "The team dinner limit is 75 dollars per person, tip included, and receipts go to finance."
PARKING = "The garage on Elm Street gives staff free parking after 18:00 on weekdays and all weekend."
VPN = "Install the WireGuard client and import the corporate VPN profile from the IT portal."
SECRET = "The board meets in the blue room to discuss the confidential acquisition of Zephyr Ltd."
MENU = "Home Expenses Parking Careers Investor relations"


def _html(title: str, body: str, *, links: tuple[str, ...] = (), head: str = "") -> str:
    nav = " ".join(f'<a href="{href}">{href.strip("/") or "home"}</a>' for href in links)
    return (f"<html><head><title>{title} | Handbook</title>{head}</head><body>"
            f"<nav>{MENU} {nav}</nav><main><article><h1>{title}</h1><p>{body}</p>"
            f"<p>{body} This paragraph repeats it so that the page has enough text to count as content.</p>"
            f"</article></main><footer>Copyright 2026 Example Corp. All rights reserved.</footer></body></html>")


@pytest.fixture()
def site():
    with LocalSite() as s:
        st = s.state
        st.robots = "User-agent: *\nDisallow: /private/\n"
        st.pages["/"] = Page(_html("Handbook", "Welcome to the staff handbook of the company.",
                                   links=("/docs/expenses?from=home", "/docs/parking", "/private/board",
                                          "/old-vpn", "http://elsewhere.invalid/page", "/logo.png")))
        st.pages["/docs/expenses"] = Page(_html("Expenses", DINNER, links=("/",),
                                                head='<link rel="canonical" href="/docs/expenses">'))
        st.pages["/docs/parking"] = Page(_html("Parking", PARKING, links=("/", "/docs/deep", "/docs/expenses")),
                                         etag=False)
        st.pages["/docs/deep"] = Page(_html("Deep", "A page two links away from the start page."))
        st.pages["/docs/vpn"] = Page(_html("VPN", VPN))
        st.pages["/private/board"] = Page(_html("Board", SECRET))
        st.redirects["/old-vpn"] = "/docs/vpn"
        yield s


@pytest.fixture()
def syncer(engine, tmp_path) -> SourceSyncer:
    def connector(source: SourceRow, cache: Path) -> WebConnector:
        return WebConnector(WebConfig.model_validate(source.config), cache, retry_wait=wait_none())

    return SourceSyncer(engine.store, engine.ingestor, tmp_path / "data", connector_factory=connector)


def _add(engine, url: str, **config) -> SourceRow:
    return add_source(engine.store, "handbook-site", "web", {"url": url, **config}, "web", every_s=3600)


def _docs(db) -> dict[str, tuple[str | None, str | None, int]]:
    with db.connect() as conn:
        rows = conn.execute(text(
            "SELECT d.external_id, d.url, d.title, count(c.id) FROM documents d "
            "LEFT JOIN chunks c ON c.document_id = d.id WHERE d.source_id IS NOT NULL "
            "GROUP BY d.id ORDER BY d.external_id")).all()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def _texts(db) -> str:
    with db.connect() as conn:
        return "\n".join(conn.execute(text("SELECT text FROM chunks")).scalars())


def test_first_sync_crawls_the_site_as_robots_allow(engine, db, site, syncer):
    source = _add(engine, site.url("/"))
    report = syncer.sync(source.id)
    assert report.status == "synced", report.error
    docs = _docs(db)
    expected = {site.url(p) for p in ("/", "/docs/expenses", "/docs/parking", "/docs/deep", "/docs/vpn")}
    assert set(docs) == expected
    assert all(url == ext and chunks > 0 for ext, (url, _, chunks) in docs.items())
    assert docs[site.url("/docs/expenses")][1] == "Expenses"  # the page's heading, not "Expenses | Handbook"
    # the disallowed page was never asked for; robots.txt was, with our user agent
    assert "/private/board" not in site.requested()
    assert SECRET not in _texts(db)
    assert any(h.path == "/robots.txt" and h.user_agent == "ragbot" for h in site.hits())
    # the redirect was followed, and the page is the document of where it landed
    assert "/old-vpn" in site.requested() and site.url("/docs/vpn") in docs
    # the link with a query string and the canonical URL are one document
    assert site.url("/docs/expenses?from=home") not in docs
    # main content only: menus and footers are not indexed
    texts = _texts(db)
    assert DINNER in texts and "All rights reserved" not in texts and "Investor relations" not in texts
    hit = engine.search("team dinner limit per person", engine.scope_for(["web"]), 1)[0]
    assert hit.url == site.url("/docs/expenses")
    cursor = engine.store.sources.get(source.id).cursor
    assert json.loads(cursor)["v"] == 1 and len(cursor) < 600  # compact: paths, validators, canonical only


def test_an_unchanged_second_sync_downloads_no_page_body(engine, db, site, syncer):
    source = _add(engine, site.url("/"))
    syncer.sync(source.id)
    first_bodies = site.bodies()
    assert len(first_bodies) == 6  # five documents, and /docs/expenses?from=home before its canonical
    site.reset_hits()
    report = syncer.sync(source.id)
    assert (report.status, report.changed, report.written, report.deleted) == ("synced", 0, 0, 0)
    assert site.bodies() == []  # every page answered 304 (ETag, or Last-Modified where no ETag)
    assert {h.status for h in site.hits() if h.path not in ("/robots.txt", "/old-vpn")} == {304}
    assert len(_docs(db)) == 5
    # one page changes: the third sync downloads that one body, and re-indexes it
    site.state.pages["/docs/parking"] = Page(_html("Parking", PARKING.replace("18:00", "19:30"),
                                                   links=("/", "/docs/deep", "/docs/expenses")), etag=False,
                                                   modified=1_800_000_000)
    site.reset_hits()
    report = syncer.sync(source.id)
    assert site.bodies() == ["/docs/parking"]
    assert (report.changed, report.written, report.deleted) == (1, 1, 0)
    assert "19:30" in _texts(db) and PARKING not in _texts(db)


def test_page_and_depth_limits(engine, db, site, syncer):
    source = _add(engine, site.url("/"), max_pages=3)
    syncer.sync(source.id)
    pages = [h for h in site.hits() if h.path not in ("/robots.txt",)]
    assert len(pages) == 3 and len(_docs(db)) <= 3
    site.reset_hits()
    shallow = add_source(engine.store, "shallow", "web", {"url": site.url("/"), "max_depth": 1}, "shallow",
                         every_s=None)
    syncer.sync(shallow.id)
    assert "/docs/deep" not in site.requested()  # two links away
    assert "/docs/parking" in site.requested()


def test_a_page_that_disappears_leaves_search(engine, db, site, syncer):
    source = _add(engine, site.url("/"))
    syncer.sync(source.id)
    assert PARKING in _texts(db)
    del site.state.pages["/docs/parking"]  # 404 (the link from the home page stays)
    site.state.status["/docs/vpn"] = 410
    report = syncer.sync(source.id)
    assert report.status == "synced" and report.deleted == 3  # parking, vpn, and deep (no longer reached)
    assert set(_docs(db)) == {site.url("/"), site.url("/docs/expenses")}
    assert PARKING not in _texts(db) and VPN not in _texts(db)
    hits = engine.search("free parking in the garage after 18:00", engine.scope_for(["web"]), 5)
    assert all("parking" not in (h.url or "") for h in hits)


def test_robots_disallowing_a_page_later_removes_it(engine, db, site, syncer):
    source = _add(engine, site.url("/"))
    syncer.sync(source.id)
    site.state.robots = "User-agent: ragbot\nDisallow: /docs/expenses\nDisallow: /private/\n"
    site.reset_hits()
    report = syncer.sync(source.id)
    assert report.deleted == 1 and site.url("/docs/expenses") not in _docs(db)
    assert not any(h.path.startswith("/docs/expenses") for h in site.hits())


def test_sitemap_pages_and_transient_errors(engine, db, site, syncer):
    site.state.sitemap = ("<?xml version='1.0'?><urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>"
                          + "".join(f"<url><loc>{site.url(p)}</loc></url>"
                                    for p in ("/docs/expenses", "/docs/vpn", "/private/board"))
                          + "<url><loc>http://elsewhere.invalid/x</loc></url></urlset>")
    site.state.fail_times["/docs/vpn"] = 2  # two 503s, then the page: retried within the sync
    source = _add(engine, site.url("/sitemap.xml"), max_depth=0)
    report = syncer.sync(source.id)
    assert report.status == "synced", report.error
    assert set(_docs(db)) == {site.url("/docs/expenses"), site.url("/docs/vpn")}
    assert "/private/board" not in site.requested() and "/" not in site.requested()
    # the page fails for the whole next sync: its document stays until it answers again
    site.state.fail_times["/docs/vpn"] = 10
    report = syncer.sync(source.id)
    assert report.status == "synced" and report.deleted == 0 and VPN in _texts(db)


def test_an_unreachable_site_fails_the_sync_and_deletes_nothing(engine, db, site, syncer):
    source = _add(engine, site.url("/"))
    syncer.sync(source.id)
    site.state.fail_times["/"] = 10
    report = syncer.sync(source.id)
    assert report.status == "failed" and "start page" in (report.error or "")
    assert len(_docs(db)) == 5
    after = engine.store.sources.get(source.id)
    assert after.error_count == 1 and after.backoff_until is not None


def test_sources_add_web_command(db, scratch_dir, site):
    env = {"RAGBOT_DATA_DIR": str(scratch_dir), "RAGBOT_GENERATOR_BACKEND": "extractive", "COLUMNS": "200"}
    added = CliRunner().invoke(app, ["sources", "add", "web", site.url("/"), "--collection", "site",
                                     "--max-pages", "20", "--max-depth", "2", "--every", "1h"], env=env)
    assert added.exit_code == 0, added.output
    assert "Added web source 127.0.0.1 -> collection site (every 1h)" in added.output
    with db.connect() as conn:
        kind, config = conn.execute(text("SELECT kind, config FROM sources")).one()
    assert kind == "web" and config == {"url": site.url("/"), "max_pages": 20, "max_depth": 2}
    synced = CliRunner().invoke(app, ["sources", "sync"], env=env)
    assert synced.exit_code == 0, synced.output
    assert "5 changed, 5 written" in synced.output and DINNER in _texts(db)
    bad = CliRunner().invoke(app, ["sources", "add", "web", "ftp://x/", "--collection", "site"], env=env)
    assert bad.exit_code != 0 and "http(s) address" in bad.output
