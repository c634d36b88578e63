"""Syncing a git source into the real embedded PostgreSQL: first sync, deletions, renames, an
unchanged sync that writes nothing, a sync that dies half-way and resumes, and the lease."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from rag_engine.connectors.base import ChangeSet, Connector, Fetched, ItemRef
from rag_engine.connectors.git import GitConfig, GitConnector
from rag_engine.source_admin import add_source, remove_source
from rag_engine.store.sources import SourceRow
from rag_engine.sync import SourceSyncer
from tests.support.git_repo import GitRepo

WEB = "https://github.com/org/handbook/blob/main/{path}"
DINNER = "The team dinner limit is 75 dollars per person, tip included."
PARKING = "The garage on Elm Street gives staff free parking after 18:00."
VPN = "Install the WireGuard client and import the corporate VPN profile."


@pytest.fixture()
def repo(tmp_path) -> GitRepo:
    r = GitRepo(tmp_path / "handbook")
    r.write("policies/expenses.md", f"# Expenses\n\n{DINNER}\n")
    r.write("office/parking.md", f"# Parking\n\n{PARKING}\n")
    r.write("it/vpn.rst", f"VPN setup\n=========\n\nClient\n------\n\n{VPN}\n")
    r.write("logo.png", "binary")
    r.commit("first")
    return r


@pytest.fixture()
def syncer(engine, tmp_path) -> SourceSyncer:
    return SourceSyncer(engine.store, engine.ingestor, tmp_path / "data")


def _add(engine, repo: GitRepo, name: str = "handbook", **config) -> SourceRow:
    return add_source(engine.store, name, "git", {"repo": str(repo.root), "url_base": WEB, **config}, "docs",
                      every_s=3600)


def _docs(db) -> dict[str, tuple[str | None, str | None, int]]:
    """external_id -> (url, title, chunks) of the synced documents."""
    with db.connect() as conn:
        rows = conn.execute(text(
            "SELECT d.external_id, d.url, d.title, count(c.id) FROM documents d "
            "LEFT JOIN chunks c ON c.document_id = d.id WHERE d.source_id IS NOT NULL "
            "GROUP BY d.id ORDER BY d.external_id")).all()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def _texts(db) -> str:
    with db.connect() as conn:
        return "\n".join(conn.execute(text("SELECT text FROM chunks")).scalars())


def test_first_sync_ingests_the_repository_with_urls(engine, db, repo, syncer):
    source = _add(engine, repo)
    report = syncer.sync(source.id)
    assert (report.status, report.changed, report.written, report.deleted) == ("synced", 3, 3, 0)
    docs = _docs(db)
    assert sorted(docs) == ["it/vpn.rst", "office/parking.md", "policies/expenses.md"]
    assert docs["policies/expenses.md"][0] == "https://github.com/org/handbook/blob/main/policies/expenses.md"
    assert all(chunks > 0 for _, _, chunks in docs.values())
    assert docs["it/vpn.rst"][1] == "VPN setup"  # reStructuredText titles read as headings
    with db.connect() as conn:
        assert conn.execute(text("SELECT heading_path FROM chunks WHERE text LIKE '%WireGuard%'")).scalar() \
            == "VPN setup > Client"
    after = engine.store.sources.get(source.id)
    assert after.cursor == repo.git("rev-parse", "HEAD").strip()
    assert after.last_success_at is not None and after.last_error is None and after.documents == 3
    hit = engine.search("team dinner limit per person", engine.scope_for(["docs"]), 1)[0]
    assert hit.url == "https://github.com/org/handbook/blob/main/policies/expenses.md"
    assert hit.display_path == "policies/expenses.md"


def test_a_deleted_file_leaves_search_and_is_never_cited(engine, db, repo, syncer):
    source = _add(engine, repo)
    syncer.sync(source.id)
    assert PARKING in _texts(db)
    repo.delete("office/parking.md").commit("parking is gone")
    report = syncer.sync(source.id)
    assert (report.changed, report.written, report.deleted) == (0, 0, 1)
    assert "office/parking.md" not in _docs(db)
    assert PARKING not in _texts(db)  # its chunks went with it
    answer = engine.answer("Where can staff park for free after 18:00?", engine.scope_for(["docs"]))
    assert all("parking" not in (c.display_path or "") for c in answer.citations)
    assert PARKING not in answer.text


def test_a_renamed_file_moves_with_its_url(engine, db, repo, syncer):
    source = _add(engine, repo)
    syncer.sync(source.id)
    repo.move("policies/expenses.md", "finance/team expenses.md").commit("move")
    report = syncer.sync(source.id)
    assert (report.changed, report.deleted) == (1, 1)
    docs = _docs(db)
    assert "policies/expenses.md" not in docs
    assert docs["finance/team expenses.md"][0] == "https://github.com/org/handbook/blob/main/finance/team%20expenses.md"
    assert _texts(db).count(DINNER) == 1  # one copy, at the new place
    hit = engine.search("team dinner limit per person", engine.scope_for(["docs"]), 1)[0]
    assert hit.display_path == "finance/team expenses.md"


def test_an_unchanged_second_sync_touches_nothing(engine, db, repo, syncer):
    source = _add(engine, repo)
    syncer.sync(source.id)
    with db.connect() as conn:
        before = conn.execute(text("SELECT (SELECT sum(xmin::text::bigint) FROM documents), "
                                   "(SELECT sum(xmin::text::bigint) FROM chunks)")).one()
    report = syncer.sync(source.id)
    assert (report.status, report.changed, report.written, report.deleted, report.chunks) == ("synced", 0, 0, 0, 0)
    with db.connect() as conn:
        after = conn.execute(text("SELECT (SELECT sum(xmin::text::bigint) FROM documents), "
                                  "(SELECT sum(xmin::text::bigint) FROM chunks)")).one()
    assert tuple(after) == tuple(before)


def test_a_changed_file_is_rewritten_and_the_rest_left_alone(engine, db, repo, syncer):
    source = _add(engine, repo)
    syncer.sync(source.id)
    repo.write("policies/expenses.md", "# Expenses\n\nThe team dinner limit is now 90 dollars per person.\n")
    repo.commit("raise")
    report = syncer.sync(source.id)
    assert (report.changed, report.written, report.unchanged, report.deleted) == (1, 1, 0, 0)
    texts = _texts(db)
    assert "90 dollars" in texts and DINNER not in texts and PARKING in texts


class _Dies(Connector):
    """A git connector whose fetch fails at the n-th item: a sync that dies half-way."""

    kind = "git"

    def __init__(self, inner: GitConnector, fail_at: int) -> None:
        self.inner, self.fail_at, self.fetched = inner, fail_at, 0

    def changes(self, cursor: str | None) -> ChangeSet:
        return self.inner.changes(cursor)

    def fetch(self, item: ItemRef) -> Fetched:
        self.fetched += 1
        if self.fetched == self.fail_at:
            raise OSError("disk went away")
        return self.inner.fetch(item)


def test_a_sync_that_dies_half_way_keeps_its_cursor_and_resumes(engine, db, repo, tmp_path):
    source = _add(engine, repo)
    first = SourceSyncer(engine.store, engine.ingestor, tmp_path / "data").sync(source.id)
    repo.delete("office/parking.md").write("a.md", "# A\n\nAlpha.\n").write("b.md", "# B\n\nBravo.\n").commit("2")

    def dying(s: SourceRow, cache: Path) -> Connector:
        return _Dies(GitConnector(GitConfig.model_validate(s.config), cache), fail_at=2)

    failed = SourceSyncer(engine.store, engine.ingestor, tmp_path / "data", connector_factory=dying).sync(source.id)
    assert failed.status == "failed" and "disk went away" in (failed.error or "")
    row = engine.store.sources.get(source.id)
    assert row.cursor == first.cursor  # not moved: the sync did not finish
    assert row.error_count == 1 and row.backoff_until is not None and row.sync_lease_until is None
    assert "office/parking.md" in _docs(db)  # deletions wait for the commit

    resumed = SourceSyncer(engine.store, engine.ingestor, tmp_path / "data").sync(source.id)
    assert resumed.status == "synced" and resumed.deleted == 1
    assert sorted(_docs(db)) == ["a.md", "b.md", "it/vpn.rst", "policies/expenses.md"]
    row = engine.store.sources.get(source.id)
    assert (row.error_count, row.last_error, row.backoff_until) == (0, None, None)
    assert row.cursor == repo.git("rev-parse", "HEAD").strip()


def test_one_sync_at_a_time(engine, repo, syncer):
    source = _add(engine, repo)
    assert engine.store.sources.acquire(source.id, 60) is not None  # another sync holds the lease
    assert syncer.sync(source.id).status == "busy"
    engine.store.sources.release(source.id)
    assert syncer.sync(source.id).status == "synced"


def test_two_sources_own_their_documents_and_removal_deletes_them(engine, db, repo, syncer, tmp_path):
    other = GitRepo(tmp_path / "other")
    other.write("policies/expenses.md", "# Other expenses\n\nMeals abroad are capped at 40 euros.\n").commit()
    a, b = _add(engine, repo), _add(engine, other, name="other")
    syncer.sync(a.id)
    syncer.sync(b.id)
    with db.connect() as conn:  # the same path in two repositories: two documents
        assert conn.execute(text("SELECT count(*) FROM documents WHERE external_id = 'policies/expenses.md'")
                            ).scalar() == 2
    assert remove_source(engine.store, "handbook") == 3
    assert sorted(_docs(db)) == ["policies/expenses.md"] and DINNER not in _texts(db)
    assert remove_source(engine.store, "other", keep_documents=True) == 1
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*), count(source_id) FROM documents")).one() == (1, 0)


def test_names_and_schedules_are_checked(engine, repo):
    _add(engine, repo)
    with pytest.raises(ValueError, match="already exists"):
        _add(engine, repo)
    with pytest.raises(ValueError, match="source name"):
        _add(engine, repo, name="Bad Name")
    with pytest.raises(ValueError, match="at least"):
        add_source(engine.store, "fast", "git", {"repo": str(repo.root)}, "docs", every_s=5)
    with pytest.raises(ValueError, match="unknown source kind"):
        add_source(engine.store, "wiki", "notion", {}, "docs", every_s=None)  # no Notion connector (Confluence is)
