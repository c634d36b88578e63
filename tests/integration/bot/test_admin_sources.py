"""``/ragbot-admin sources list | sync NAME`` through the bot core: what admins see, the sync
queued for the worker (once), who may run it, and the audit row of every attempt."""

from __future__ import annotations

from bot.types import Actor, Location
from rag_engine import jobs
from rag_engine.source_admin import add_source
from rag_engine.store import Store
from tests.support.security import core_for

HERE = Location("slack", "T1", "C1")
ADMIN = Actor("slack", "UADMIN")
WORKSPACE_ADMIN = Actor("slack", "UOWNER", is_platform_admin=True)
MEMBER = Actor("slack", "U2")


def _sources(db, tmp_path) -> None:
    store = Store(db)
    add_source(store, "handbook", "git", {"repo": str(tmp_path / "handbook")}, "docs", every_s=3600)
    wiki = add_source(store, "wiki", "git", {"repo": str(tmp_path / "wiki")}, "wiki", every_s=None)
    store.sources.record_failure(wiki.id, "git clone failed: repository not found", backoff_base_s=60,
                                 backoff_max_s=3600)


async def test_admins_list_sources_with_collection_last_success_counts_and_error(engine, db, tmp_path):
    core = core_for(engine, tmp_path)
    empty = await core.admin(ADMIN, HERE, "sources list")
    assert empty.ok and "No sources yet" in empty.message

    _sources(db, tmp_path)
    listed = await core.admin(ADMIN, HERE, "sources list")
    assert listed.ok and listed.message == "2 sources, 1 failing."
    handbook, wiki = listed.detail_lines
    assert handbook.startswith("handbook (git) -> docs; every 1h; last success never; 0 documents")
    assert "error" not in handbook
    assert wiki.startswith("wiki (git) -> wiki; synced on request; last success never")
    assert "error (1 in a row, retried after " in wiki and "repository not found" in wiki


async def test_sync_queues_one_source_sync_job_and_asking_again_returns_it(engine, db, tmp_path):
    _sources(db, tmp_path)
    core = core_for(engine, tmp_path)
    first = await core.admin(ADMIN, HERE, "sources sync handbook")
    assert first.ok and "Queued a sync of handbook" in first.message
    again = await core.admin(ADMIN, HERE, "sources sync HANDBOOK")
    assert again.ok and "already queued or running" in again.message
    assert again.data["job_id"] == first.data["job_id"]
    (job,) = jobs.open_jobs(db, kinds=[jobs.SOURCE_SYNC])
    source = Store(db).sources.by_name("handbook")
    assert source is not None and job.payload == {"source_id": source.id} and job.requested_by == "slack:UADMIN"

    unknown = await core.admin(ADMIN, HERE, "sources sync nope")
    assert not unknown.ok and "no source named 'nope'" in unknown.message and "handbook, wiki" in unknown.message
    for bad in ("sources", "sources sync", "sources sync a b", "sources list extra", "sources sync ../x"):
        result = await core.admin(ADMIN, HERE, bad)
        assert not result.ok, bad
    assert len(jobs.open_jobs(db, kinds=[jobs.SOURCE_SYNC])) == 1


async def test_only_global_admins_may_list_or_sync_sources_and_every_attempt_is_audited(engine, db, tmp_path):
    _sources(db, tmp_path)
    core = core_for(engine, tmp_path, slack_workspace_admins_are_admins=True)
    for actor in (MEMBER, WORKSPACE_ADMIN, Actor("slack", "UADMIN", is_external=True)):
        for command in ("sources list", "sources sync handbook"):
            result = await core.admin(actor, HERE, command)
            assert not result.ok and "repository not found" not in result.message, (actor, command)
            assert not result.detail_lines
    assert jobs.open_jobs(db, kinds=[jobs.SOURCE_SYNC]) == []
    assert (await core.admin(ADMIN, HERE, "sources sync wiki")).ok
    audit = list(reversed(Store(db).audit.recent(20)))
    assert [(a.actor, a.action, a.ok) for a in audit] == [
        *[(actor, "sources", False) for actor in ("slack:U2", "slack:U2", "slack:UOWNER", "slack:UOWNER",
                                                  "slack:UADMIN", "slack:UADMIN")],
        ("slack:UADMIN", "sources", True)]
    assert audit[-1].args == {"args": ["sync", "wiki"]}
