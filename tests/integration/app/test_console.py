"""The admin console over a real database: sign-in by link (single use, expiring, unforgeable), sessions,
CSRF on every form, the pages, and every change audited with the admin's platform identity."""

from __future__ import annotations

import re
import time

import pytest
from starlette.testclient import TestClient

from app.console.sessions import SessionStore
from rag_engine import jobs
from rag_engine.store import Store
from rag_engine.training import registry
from tests.support.console import console_app, console_settings, link_token, seed

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture()
def setup(db, scratch_dir, tmp_path):
    settings = console_settings(scratch_dir)
    seeded = seed(db, settings, tmp_path / "adapters")
    now = [time.time()]
    sessions = SessionStore(settings.console_session_ttl_s, now=lambda: now[0])
    client = TestClient(console_app(db, settings, sessions=sessions), follow_redirects=False)
    return client, seeded, now


def sign_in(client: TestClient, token: str | None = None) -> str:
    """Open the link, press the button; returns the session's CSRF token."""
    token = token or link_token()
    shown = client.get("/login", params={"token": token})
    assert shown.status_code == 200 and "Sign in as slack:UADMIN" in shown.text
    done = client.post("/login", data={"token": token})
    assert done.status_code == 303 and done.headers["location"] == "/interactions", done.text
    page = client.get("/interactions")
    assert page.status_code == 200
    return CSRF.search(page.text).group(1)


def audit(db):
    return list(reversed(Store(db).audit.recent(100)))


def test_pages_need_a_session(setup):
    client, seeded, _ = setup
    for path in ("/interactions", f"/interactions/{seeded.answered}", "/corrections", "/adapters", "/collections",
                 "/sources", "/feedback", "/audit", "/jobs/1"):
        r = client.get(path)
        assert r.status_code == 401 and "/ragbot-admin console" in r.text, path
    assert client.get("/adapters/chart.svg").status_code == 401
    assert client.post("/adapters/rollback", data={"csrf": "x"}).status_code == 403


def test_a_link_opens_one_session_once_and_showing_it_spends_nothing(setup, db):
    client, _, _ = setup
    token = link_token()
    for _ in range(3):  # a link preview or prefetch (GET) does not spend the link
        assert client.get("/login", params={"token": token}).status_code == 200
    sign_in(client, token)
    other = TestClient(client.app, follow_redirects=False)
    again = other.post("/login", data={"token": token})
    assert again.status_code == 401 and "already used" in again.text
    assert other.get("/interactions").status_code == 401
    signins = [a for a in audit(db) if a.action == "console sign-in"]
    assert [(a.actor, a.platform, a.ok) for a in signins] == [("slack:UADMIN", "slack", True),
                                                               ("slack:UADMIN", "slack", False)]
    assert token not in str(signins[0].args) and token not in (signins[0].result or "")


def test_expired_tampered_and_foreign_links_are_refused(setup, db):
    client, _, _ = setup
    expired = link_token(now=time.time() - 600)
    assert "expired" in client.post("/login", data={"token": expired}).text
    version, payload, mac = link_token().split(".")
    forged = f"{version}.{payload}.{mac[:-3]}AAA"
    r = client.post("/login", data={"token": forged})
    assert r.status_code == 401 and "not issued by this ragbot" in r.text
    assert client.get("/login", params={"token": "v1.e30.AAAA"}).status_code == 401
    assert "ragbot_console" not in client.cookies
    assert client.get("/interactions").status_code == 401


def test_a_user_id_admin_removed_since_the_link_was_signed_is_refused(setup):
    client, _, _ = setup
    r = client.post("/login", data={"token": link_token(user_id="UFORMER")})
    assert r.status_code == 401 and "no longer a ragbot admin" in r.text


def test_sessions_expire(setup):
    client, _, now = setup
    sign_in(client)
    now[0] += 3599
    assert client.get("/corrections").status_code == 200
    now[0] += 2
    assert client.get("/corrections").status_code == 401


def test_every_form_needs_the_sessions_csrf_token(setup, db):
    client, seeded, _ = setup
    csrf = sign_in(client)
    before = audit(db)
    for path in (f"/corrections/{seeded.correction}/approve", "/adapters/rollback", "/adapters/retrain",
                 f"/adapters/{seeded.versions[0]}/activate", "/collections/grant", "/sources/handbook/sync", "/logout"):
        assert client.post(path, data={}).status_code == 403, path
        assert client.post(path, data={"csrf": csrf[:-1] + "x"}).status_code == 403, path
    assert audit(db) == before  # nothing ran
    assert registry.active(db).version == seeded.versions[1]
    # another session's token does not work here either
    other = TestClient(client.app, follow_redirects=False)
    other_csrf = sign_in(other)
    assert client.post("/adapters/rollback", data={"csrf": other_csrf}).status_code == 403


def test_approving_editing_and_rejecting_corrections_is_audited(setup, db):
    client, seeded, _ = setup
    csrf = sign_in(client)
    queue = client.get("/corrections")
    assert "after the staging check" in queue.text and f"approve-{seeded.correction}" in queue.text
    r = client.post(f"/corrections/{seeded.correction}/approve", data={"csrf": csrf})
    assert r.status_code == 303
    assert "No corrections await review" in client.get("/corrections").text
    _, fixes = Store(db).feedback.for_interaction(seeded.fallback)
    assert [(f.status, f.reviewed_by) for f in fixes] == [("approved", "slack:UADMIN")]
    row = audit(db)[-1]
    assert (row.actor, row.action, row.ok) == ("slack:UADMIN", "feedback", True)
    assert row.args == {"args": ["approve", str(seeded.correction)], "via": "console"}
    # an edit: the admin's text approved, the user's kept but rejected
    client.post(f"/corrections/{seeded.correction}/edit", data={"csrf": csrf, "text": "Tuesdays and Thursdays."})
    _, fixes = Store(db).feedback.for_interaction(seeded.fallback)
    assert [(f.text, f.status, f.is_admin) for f in fixes][-1] == ("Tuesdays and Thursdays.", "approved", True)
    assert fixes[0].status == "rejected"
    client.post("/corrections/999999/reject", data={"csrf": csrf})
    assert audit(db)[-1].ok is False and "no correction 999999" in audit(db)[-1].result


def test_rollback_activate_and_retrain(setup, db):
    client, seeded, _ = setup
    csrf = sign_in(client)
    v1, v2 = seeded.versions
    page = client.get("/adapters")
    assert f'id="active-version">{v2}<' in page.text and "1.850" in page.text and "0.470" in page.text
    chart = client.get("/adapters/chart.svg")
    assert chart.status_code == 200 and chart.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in chart.content
    client.post("/adapters/rollback", data={"csrf": csrf})
    assert registry.active(db).version == v1
    assert audit(db)[-1].action == "rollback" and audit(db)[-1].ok
    client.post(f"/adapters/{v2}/activate", data={"csrf": csrf})
    assert registry.active(db).version == v2
    assert audit(db)[-1].args == {"args": ["activate", v2], "via": "console"}
    r = client.post("/adapters/retrain", data={"csrf": csrf})
    (job,) = jobs.open_jobs(db, kinds=[jobs.RETRAIN])
    assert r.headers["location"] == f"/jobs/{job.id}" and job.requested_by == "slack:UADMIN"
    status = client.get(f"/jobs/{job.id}")
    assert 'id="job-status">queued<' in status.text and 'http-equiv="refresh"' in status.text
    assert jobs.claim(db, "w1").kind == jobs.RETRIEVAL_RETRAIN  # claimed first: seconds, not behind hours of LoRA


def test_interactions_search_and_detail(setup, db):
    client, seeded, _ = setup
    sign_in(client)

    def ids(**params):
        text = client.get("/interactions", params=params).text
        return {int(i) for i in re.findall(r'href="/interactions/(\d+)"', text)}

    assert ids() == {seeded.answered, seeded.fallback}
    assert ids(text="VACATION") == {seeded.answered}
    assert ids(channel="C-OPS") == {seeded.fallback}
    assert ids(status="fallback") == {seeded.fallback}
    assert ids(vote="up") == {seeded.answered}
    assert ids(vote="down") == {seeded.fallback}
    assert ids(vote="none") == set()
    assert ids(text="100%_") == set()  # LIKE wildcards are literal
    detail = client.get(f"/interactions/{seeded.fallback}").text
    for shown in ("When are production deploys?", "grounding: 3 of 4 sentences unsupported", "too vague",
                  "Production deploys happen on Tuesday and Thursday.", "after the staging check"):
        assert shown in detail
    assert client.get("/interactions/999999").status_code == 404


def test_collections_grants_feedback_and_audit_pages(setup, db):
    client, _, _ = setup
    csrf = sign_in(client)
    from rag_engine import collections as cols

    cols.create(Store(db).collections, "secret", visibility="private")
    client.post("/collections/grant", data={"csrf": csrf, "collection": "secret", "platform": "slack",
                                             "workspace": "T1", "channel": "C-HELP"})
    assert [r.where for r in Store(db).access_rules.list()] == ["slack/T1/C-HELP"]
    assert "slack/T1/C-HELP" in client.get("/collections").text
    client.post("/collections/revoke", data={"csrf": csrf, "collection": "secret", "platform": "slack",
                                              "workspace": "T1", "channel": "C-HELP"})
    assert Store(db).access_rules.list() == []
    assert "1 👍, 1 👎, 1 corrections" in client.get("/feedback").text
    assert b"<svg" in client.get("/feedback/chart.svg").content
    trail = client.get("/audit").text
    assert "console sign-in" in trail and '"via": "console"' in trail


def test_sources_page_shows_sync_state_and_sync_now_queues_an_audited_job(setup, db, tmp_path):
    from rag_engine.source_admin import add_source

    client, _, _ = setup
    csrf = sign_in(client)
    store = Store(db)
    assert "No sources yet" in client.get("/sources").text
    add_source(store, "handbook", "git", {"repo": str(tmp_path / "handbook")}, "docs", every_s=3600)
    wiki = add_source(store, "wiki", "git", {"repo": str(tmp_path / "wiki")}, "wiki-docs", every_s=1800)
    store.sources.record_failure(wiki.id, "git clone failed: <script>alert(1)</script>", backoff_base_s=600,
                                 backoff_max_s=3600)
    add_source(store, "notes", "git", {"repo": str(tmp_path / "notes")}, "docs", every_s=None)
    page = client.get("/sources").text
    assert 'href="/sources">Sources</a>' in page  # in the nav
    handbook = re.search(r'<tr id="source-handbook">.*?</tr>', page, re.S).group(0)
    assert "docs" in handbook and "every 1h" in handbook and "never" in handbook and ">due<" in handbook
    failing = re.search(r'<tr id="source-wiki">.*?</tr>', page, re.S).group(0)
    assert "wiki-docs" in failing and "every 30m" in failing and ">backing off<" in failing
    assert "after 1 failure in a row" in failing and "1 in a row" in failing
    manual = re.search(r'<tr id="source-notes">.*?</tr>', page, re.S).group(0)
    assert ">on request<" in manual and "backing off" not in manual
    assert "&lt;script&gt;alert(1)" in failing and "<script>alert" not in page

    r = client.post("/sources/handbook/sync", data={"csrf": csrf})
    (job,) = jobs.open_jobs(db, kinds=[jobs.SOURCE_SYNC])
    assert r.status_code == 303 and r.headers["location"] == f"/jobs/{job.id}"
    assert job.payload == {"source_id": store.sources.by_name("handbook").id}
    assert job.requested_by == "slack:UADMIN"
    row = audit(db)[-1]
    assert (row.actor, row.platform, row.action, row.ok) == ("slack:UADMIN", "slack", "sources", True)
    assert row.args == {"args": ["sync", "handbook"], "via": "console"} and f"job {job.id}" in row.result
    job_page = client.get(f"/jobs/{job.id}").text
    assert 'id="job-status">queued<' in job_page and 'href="/sources"' in job_page and "Queued a sync" in job_page
    queued = re.search(r'<tr id="source-handbook">.*?</tr>', client.get("/sources").text, re.S).group(0)
    assert ">queued<" in queued and f'href="/jobs/{job.id}"' in queued

    again = client.post("/sources/handbook/sync", data={"csrf": csrf})  # one open sync per source
    assert again.headers["location"] == f"/jobs/{job.id}" and len(jobs.open_jobs(db, kinds=[jobs.SOURCE_SYNC])) == 1
    assert "already queued or running" in client.get(f"/jobs/{job.id}").text
    missing = client.post("/sources/nope/sync", data={"csrf": csrf})
    assert missing.headers["location"] == "/sources"
    assert audit(db)[-1].ok is False and "no source named 'nope'" in audit(db)[-1].result
    assert "no source named" in client.get("/sources").text  # the notice


def test_responses_carry_the_security_headers_and_sign_out_ends_the_session(setup, db):
    client, _, _ = setup
    csrf = sign_in(client)
    r = client.get("/interactions")
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["referrer-policy"] == "no-referrer" and r.headers["cache-control"] == "no-store"
    assert client.post("/logout", data={"csrf": csrf}).status_code == 303
    assert client.get("/interactions").status_code == 401
    assert audit(db)[-1].action == "console sign-out"


def test_what_users_wrote_is_shown_as_text_never_as_markup(setup, db):
    from rag_engine.interactions import InteractionContext, log_interaction
    from rag_engine.values import Answer

    client, _, _ = setup
    sign_in(client)
    hostile = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    iid = log_interaction(db, InteractionContext("slack", "T1", "C1", None, "slack:U9"), hostile,
                          Answer(f"echo {hostile}"), [])
    for path in ("/interactions", f"/interactions/{iid}"):
        text = client.get(path).text
        assert "<script>alert(1)" not in text and "<img src=x" not in text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
