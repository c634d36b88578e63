"""The web connector alone, against a local HTTP server: what it lists, fetches and keeps in its
cursor (no database: the sync service's part is tests/integration/rag_engine/test_web_sync.py)."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError
from tenacity import wait_none

from rag_engine.connectors.base import ConnectorError
from rag_engine.connectors.web import WebConfig, WebConnector
from rag_engine.testing.web_site import LocalSite, Page

TEXT = ("Laptops are replaced every three years; the IT desk orders the new one and wipes the old one. "
        "Ask for a replacement through the portal, and keep the charger and the bag.")


def _page(title: str, links: tuple[str, ...] = (), head: str = "") -> Page:
    nav = "".join(f'<a href="{h}">{h}</a> ' for h in links)
    return Page(f"<html><head><title>{title} - Site</title>{head}</head><body><nav>{nav}</nav>"
                f"<main><h1>{title}</h1><p>{TEXT}</p><p>{TEXT}</p></main></body></html>")


@pytest.fixture()
def site():
    with LocalSite() as s:
        yield s


def _connector(site: LocalSite, tmp_path, **config) -> WebConnector:
    return WebConnector(WebConfig(url=site.url("/"), **config), tmp_path / "cache", retry_wait=wait_none())


def test_robots_forbidding_everything_fails_rather_than_crawls(site, tmp_path):
    site.state.status["/robots.txt"] = 403
    site.state.pages["/"] = _page("Home")
    with pytest.raises(ConnectorError, match=r"robots\.txt disallows"):
        _connector(site, tmp_path).changes(None)
    assert site.requested() == {"/robots.txt"}


def test_an_unreachable_robots_txt_fails_the_sync(site, tmp_path):
    site.state.fail_times["/robots.txt"] = 3
    with pytest.raises(ConnectorError, match=r"robots\.txt"):
        _connector(site, tmp_path).changes(None)
    assert len(site.hits()) == 3  # tried, and retried twice


def test_off_site_redirects_other_types_and_oversized_pages_are_not_documents(site, tmp_path):
    site.state.pages["/"] = _page("Home", links=("/away", "/data", "/big", "/laptops"))
    site.state.redirects["/away"] = "http://elsewhere.invalid/landing"
    site.state.pages["/data"] = Page('{"a": 1}', content_type="application/json")
    site.state.pages["/big"] = Page("<p>" + "x" * 1_200_000 + "</p>")
    site.state.pages["/laptops"] = _page("Laptops", head='<meta name="robots" content="nofollow">',
                                         links=("/hidden",))
    site.state.pages["/hidden"] = _page("Hidden")
    conn = _connector(site, tmp_path, max_page_mb=1)
    changes = conn.changes(None)
    assert [i.external_id for i in changes.changed] == [site.url("/"), site.url("/laptops")]
    assert changes.full
    assert "/hidden" not in site.requested()  # nofollow
    text = conn.fetch(changes.changed[1]).path.read_text()
    assert text.startswith('---\ntitle: "Laptops"\n---') and "every three years" in text


def test_the_cursor_is_compact_and_validated(site, tmp_path):
    site.state.pages["/"] = _page("Home", links=("/a?x=1",))
    site.state.pages["/a"] = _page("A", head='<link rel="canonical" href="/a">')
    site.state.pages["/a"].etag = False
    conn = _connector(site, tmp_path)
    first = conn.changes(None)
    pages = json.loads(first.cursor)["p"]
    assert set(pages) == {"/", "/a?x=1"}
    assert len(pages["/"]) == 1 and pages["/"][0].startswith('"')  # the ETag (it wins over Last-Modified)
    assert pages["/a?x=1"][0] == "" and "GMT" in pages["/a?x=1"][1]  # no ETag: Last-Modified
    assert pages["/a?x=1"][2] == "/a"  # the canonical URL, kept where it differs
    site.reset_hits()
    again = conn.changes(first.cursor)
    assert (again.changed, again.deleted, again.full) == ([], [], False)
    assert site.bodies() == []
    # a cursor of another form is not trusted: a full crawl
    assert _connector(site, tmp_path).changes('{"v": 99}').full


def test_config_refuses_non_web_urls_and_credentials():
    with pytest.raises(ValidationError):
        WebConfig(url="file:///etc/passwd")
    with pytest.raises(ValidationError):
        WebConfig(url="https://user:secret@docs.example.com/")
    assert WebConfig(url="https://docs.example.com/sitemap.xml").is_sitemap


def test_a_failing_page_keeps_its_document_and_its_links(site, tmp_path):
    site.state.pages["/"] = _page("Home", links=("/hub",))
    site.state.pages["/hub"] = _page("Hub", links=("/leaf",))
    site.state.pages["/leaf"] = _page("Leaf")
    conn = _connector(site, tmp_path)
    first = conn.changes(None)
    site.state.fail_times["/hub"] = 3  # 503 on the try and both retries
    again = conn.changes(first.cursor)
    assert again.deleted == [] and conn.stats.failed == 1
    assert "/leaf" in {h.path for h in site.hits()[-2:]}  # reached through the hub's links from the last sync
    assert set(json.loads(again.cursor)["p"]) == {"/", "/hub", "/leaf"}
    site.state.pages.pop("/hub")  # now gone for good: it and what only it linked to go
    assert sorted(conn.changes(again.cursor).deleted) == [site.url("/hub"), site.url("/leaf")]
