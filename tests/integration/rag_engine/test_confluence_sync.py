"""Syncing a Confluence space into the real embedded PostgreSQL, the REST API served by a local fake
(``confluence_fake.py``, the documented v1 shapes): pages with their hierarchy as heading path and
their web URL, an edit found by CQL and re-indexed, a renamed parent re-heading its child, a
deleted page out of search, and a restricted page (and its child) in a private collection that a
public channel cannot read."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from bot.access import collection_scope
from bot.types import Location
from rag_engine.connectors.confluence import ConfluenceConfig, ConfluenceConnector, page_html
from rag_engine.source_admin import add_source
from rag_engine.sync import SourceSyncer
from tests.integration.rag_engine.confluence_fake import FakeConfluence, FakePage

TOKEN_ENV = "RAGBOT_TEST_CONFLUENCE_TOKEN"
EMAIL = "bot@example.com"
SALARY = "The confidential Nightingale salary band for L7 engineers is 212,000 to 248,000 dollars."
SALARY_Q = "What is the Nightingale salary band for L7 engineers?"


@pytest.fixture()
def wiki(monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, "atl-api-token-123")
    fake = FakeConfluence("ENG", EMAIL, "atl-api-token-123").start()
    fake.add(FakePage("100", "Engineering Home", "<p>Welcome to the engineering space.</p>"))
    fake.add(FakePage("101", "Onboarding", "<h1>Laptop</h1><p>Request your laptop from the Osprey desk on day "
                      "one.</p><h2>VPN</h2><p>Import the WireGuard profile from portal.example.com.</p>",
                      parent="100"))
    fake.add(FakePage("102", "Build cache", "<p>The Marmot build cache belongs to the platform team.</p>",
                      parent="101"))
    fake.add(FakePage("103", "Parking", "<p>The parking garage closes at 22:00 on weekdays.</p>", parent="100"))
    fake.add(FakePage("200", "People team", "<p>Internal notes of the people team.</p>", parent="100",
                      read_groups=["people-team"]))
    fake.add(FakePage("201", "Salary bands", f"<p>{SALARY}</p>", parent="200"))  # inherits its parent's restriction
    try:
        yield fake
    finally:
        fake.stop()


def _source(engine, wiki: FakeConfluence, **config):
    return add_source(engine.store, "eng-wiki", "confluence",
                      {"url": wiki.url, "space": "ENG", "email": EMAIL, "token_env": TOKEN_ENV, **config},
                      "wiki", every_s=None)


def _sync(engine, source_id: int, tmp_path):
    report = SourceSyncer(engine.store, engine.ingestor, tmp_path / "data").sync(source_id)
    assert report.status == "synced", report.error
    return report


def _docs(db) -> dict[str, tuple[str, str, str]]:
    """external_id -> (collection, url, title)."""
    with db.connect() as conn:
        rows = conn.execute(text("SELECT d.external_id, c.name, d.url, d.title FROM documents d "
                                 "JOIN collections c ON c.id = d.collection_id WHERE d.source_id IS NOT NULL")).all()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def _headings(db, external_id: str) -> list[str]:
    with db.connect() as conn:
        return list(conn.execute(text("SELECT c.heading_path FROM chunks c JOIN documents d ON d.id = c.document_id "
                                      "WHERE d.external_id = :e ORDER BY c.ordinal"), {"e": external_id}).scalars())


def _texts(db) -> str:
    with db.connect() as conn:
        return "\n".join(conn.execute(text("SELECT text FROM chunks")).scalars())


def test_first_sync_ingests_pages_with_hierarchy_headings_urls_and_restricted_pages_apart(engine, db, wiki, tmp_path):
    source = _source(engine, wiki)
    report = _sync(engine, source.id, tmp_path)

    assert (report.changed, report.written, report.deleted) == (6, 6, 0)
    docs = _docs(db)
    assert docs["101"] == ("wiki", f"{wiki.url}/spaces/ENG/pages/101/Onboarding", "Onboarding")
    assert _headings(db, "101") == ["Engineering Home > Onboarding > Laptop",
                                    "Engineering Home > Onboarding > Laptop > VPN"]
    assert _headings(db, "102") == ["Engineering Home > Onboarding > Build cache"]
    # a restricted page, and its child that inherits the restriction, are never in the public collection
    assert docs["200"][0] == docs["201"][0] != "wiki"
    private = engine.store.collections.get(docs["200"][0])
    assert private.name == "eng-restricted-people-team" and private.visibility == "private"
    assert not private.allow_training
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM collection_access WHERE collection_id = :c"),
                            {"c": private.id}).scalar() == 0  # nobody reads it until an admin grants it
    assert len(wiki.calls("/rest/api/content")) == 3  # six pages, two per response: _links.next followed
    assert not wiki.calls("/rest/api/content/search")  # a first sync reads everything; CQL starts next time


def test_a_restricted_page_is_not_answerable_from_a_public_channel_only_where_granted(engine, db, wiki, tmp_path):
    source = _source(engine, wiki)
    _sync(engine, source.id, tmp_path)
    general = collection_scope(engine.store, Location("slack", "T1", "C-general"))
    assert engine.store.collections.get("wiki").id in general.ids()
    answer = engine.answer(SALARY_Q, general)
    restricted = _doc_ids(db, "200", "201")
    assert "212,000" not in answer.text and all(h.document_id not in restricted for h in answer.hits)
    assert all(h.document_id not in restricted for h in engine.search(SALARY_Q, general, 20))

    private = engine.store.collections.get("eng-restricted-people-team")
    engine.store.access_rules.set(private.id, "slack", "T1", "C-people", "grant")  # what the admin does
    people = collection_scope(engine.store, Location("slack", "T1", "C-people"))
    assert "212,000" in engine.answer(SALARY_Q, people).text
    assert "212,000" not in engine.answer(SALARY_Q, collection_scope(engine.store, Location("slack", "T1",
                                                                                             "C-general"))).text


def test_an_edit_is_found_by_cql_and_reindexed_a_deletion_leaves_search(engine, db, wiki, tmp_path):
    source = _source(engine, wiki)
    _sync(engine, source.id, tmp_path)
    assert "22:00" in _texts(db)
    before = len(wiki.requests)

    wiki.edit("101", body="<h1>Laptop</h1><p>Request your laptop from the Osprey desk.</p><h2>VPN</h2>"
                          "<p>Import the WireGuard profile from vpn.example.org (moved in May).</p>")
    del wiki.pages["103"]
    report = _sync(engine, source.id, tmp_path)

    chunks = _texts(db)
    assert "vpn.example.org" in chunks and "portal.example.com" not in chunks  # the edit, re-indexed
    assert "22:00" not in chunks and "103" not in _docs(db)  # the deleted page is gone
    assert (report.changed, report.written, report.deleted) == (1, 1, 1)
    searched = wiki.calls("/rest/api/content/search")
    assert len(searched) == 1 and 'lastmodified >= now("-' in searched[0]["cql"][0]
    # the edited page's body came with the CQL answer: no request for a page by id
    assert not [p for p, _ in wiki.requests[before:] if p.rsplit("/", 1)[-1].isdigit()]
    hits = engine.search("parking garage closing time", engine.scope_for(["wiki"]), 5)
    assert all("22:00" not in h.text for h in hits)


def test_a_renamed_parent_reheads_its_child_and_an_unchanged_sync_fetches_no_body(engine, db, wiki, tmp_path):
    source = _source(engine, wiki)
    _sync(engine, source.id, tmp_path)
    unchanged = _sync(engine, source.id, tmp_path)
    assert (unchanged.changed, unchanged.written, unchanged.deleted) == (0, 0, 0)

    wiki.pages["101"].title = "Getting started"  # a rename of the parent: the child's lastmodified is untouched
    wiki.pages["101"].version += 1
    report = _sync(engine, source.id, tmp_path)
    assert report.changed == 2  # the renamed page (its version) and its child (its ancestors' titles)
    assert _headings(db, "102") == ["Engineering Home > Getting started > Build cache"]


def test_a_page_that_becomes_restricted_moves_to_its_private_collection(engine, db, wiki, tmp_path):
    source = _source(engine, wiki)
    _sync(engine, source.id, tmp_path)
    assert _docs(db)["103"][0] == "wiki"
    wiki.pages["103"].read_groups = ["facilities"]  # a restriction does not change the page's version
    _sync(engine, source.id, tmp_path)
    assert _docs(db)["103"][0] == "eng-restricted-facilities"
    hits = engine.search("parking garage closing time", engine.scope_for(["wiki"]), 5)
    assert all("22:00" not in h.text for h in hits)


def test_restricted_skip_leaves_restricted_pages_out(engine, db, wiki, tmp_path):
    source = _source(engine, wiki, restricted="skip")
    _sync(engine, source.id, tmp_path)
    assert set(_docs(db)) == {"100", "101", "102", "103"} and SALARY not in _texts(db)


def test_pages_without_restriction_data_fail_the_sync_closed(engine, db, wiki, tmp_path):
    wiki.hide_restrictions = True
    source = _source(engine, wiki)
    report = SourceSyncer(engine.store, engine.ingestor, tmp_path / "data").sync(source.id)
    assert report.status == "failed" and "no read restrictions" in (report.error or "")
    assert _docs(db) == {}  # nothing written where a restricted page might have gone public


def test_bad_credentials_fail_the_sync_without_showing_the_token(engine, wiki, tmp_path, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, "wrong-token-456")
    source = _source(engine, wiki)
    report = SourceSyncer(engine.store, engine.ingestor, tmp_path / "data").sync(source.id)
    assert report.status == "failed" and "401" in (report.error or "") and "wrong-token-456" not in report.error


def test_page_html_nests_deep_paths_and_shifts_body_headings():
    html = page_html(["A", "B", "C", "D"], "Page <x>", "<h1>Sec</h1><H2 class='k'>Sub</H2>")
    assert "<h1>A &gt; B</h1><h2>C</h2><h3>D</h3><h4>Page &lt;x&gt;</h4>" in html
    assert "<h5>Sec</h5>" in html and "<h6 class='k'>Sub</h6>" in html


def test_restricted_collection_names():
    c = ConfluenceConnector.__new__(ConfluenceConnector)
    c.config = ConfluenceConfig(url="https://acme.atlassian.net/wiki", space="ENG")
    assert c.restricted_collection(["group:HR Team"]) == "eng-restricted-hr-team"
    two_levels = c.restricted_collection(["group:hr", "group:finance"])
    assert two_levels.startswith("eng-restricted-finance+hr-") and two_levels != "eng-restricted-finance+hr"
    assert c.restricted_collection(["user:5b10ac"]) != c.restricted_collection(["user:6c22bd"])


def _doc_ids(db, *external_ids: str) -> set[int]:
    with db.connect() as conn:
        return set(conn.execute(text("SELECT id FROM documents WHERE external_id = ANY(:e)"),
                                {"e": list(external_ids)}).scalars())
