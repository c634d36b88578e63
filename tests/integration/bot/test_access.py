"""Collections and channel access: rules, their precedence, DMs, filtering inside
the SQL, and the same operations through ``/ragbot-admin`` and ``ragbot collections``."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from bot import access
from bot.types import Location
from rag_engine import collections as cols
from rag_engine.scope import CollectionScope
from rag_engine.store import Store
from rag_engine.store import schema as t
from tests.support.security import ADMIN, DM, GRANTED, PUBLIC, core_for


@pytest.mark.parametrize("visibility, rules, is_dm, readable", [
    ("public", [], False, True),
    ("private", [], False, False),
    ("private", [("slack", "T1", "C1", "grant")], False, True),
    ("public", [("slack", "T1", "C1", "exclude")], False, False),
    # the most specific rule wins: excluded everywhere but one channel
    ("public", [("*", "*", "*", "exclude"), ("slack", "T1", "C1", "grant")], False, True),
    ("private", [("slack", "T1", "*", "grant"), ("slack", "T1", "C1", "exclude")], False, False),
    # channel beats workspace beats platform
    ("private", [("slack", "*", "C1", "grant"), ("slack", "T1", "*", "exclude")], False, True),
    ("private", [("*", "T1", "*", "grant"), ("slack", "*", "*", "exclude")], False, True),
    # a tie: the exclusion wins
    ("private", [("slack", "T1", "*", "grant"), ("*", "T1", "C1", "exclude")], False, False),
    ("public", [("slack", "T1", "C1", "grant"), ("slack", "T1", "C1", "exclude")], False, False),
    # DMs: a wildcard channel never grants, but does exclude; an explicit dm rule grants
    ("private", [("slack", "T1", "*", "grant")], True, False),
    ("public", [("slack", "T1", "*", "exclude")], True, False),
    ("private", [("slack", "T1", "dm", "grant")], True, True),
    ("private", [("slack", "*", "*", "grant"), ("slack", "T1", "dm", "grant")], True, True),
])
def test_decide(visibility, rules, is_dm, readable):
    assert access.decide(visibility, rules, is_dm=is_dm) is readable


def _collection(db, name: str, visibility: str = "public") -> int:
    return cols.create(Store(db).collections, name, visibility=visibility).id


def test_allowed_collection_ids_against_the_database(db):
    handbook = _collection(db, "handbook")
    hr = _collection(db, "hr", "private")
    legal = _collection(db, "legal", "private")
    access.set_access(Store(db), hr, "slack", "T1", "C-hr", "grant")
    access.set_access(Store(db), legal, "slack", "*", "*", "grant")  # every Slack channel, but not DMs
    access.set_access(Store(db), handbook, "discord", "G1", "*", "exclude")
    access.set_access(Store(db), legal, "slack", "*", "dm", "grant")  # DM rules: one per platform

    assert access.collection_scope(Store(db), Location("slack", "T1", "C-general")).ids() == [handbook, legal]
    assert access.collection_scope(Store(db), Location("slack", "T1", "C-hr")).ids() == [handbook, hr, legal]
    assert access.collection_scope(Store(db), Location("slack", "T2", "C-hr")).ids() == [handbook, legal]
    assert access.collection_scope(Store(db), Location("slack", "T2", "D1", is_dm=True)).ids() == [handbook, legal]
    assert access.collection_scope(Store(db), Location("discord", "", "D1", is_dm=True)).ids() == [handbook]
    assert access.collection_scope(Store(db), Location("discord", "G1", "42")).ids() == []
    assert access.collection_scope(Store(db), Location("discord", "G2", "42")).ids() == [handbook]
    # a rule replaced, not duplicated
    access.set_access(Store(db), hr, "slack", "T1", "C-hr", "exclude")
    assert access.collection_scope(Store(db), Location("slack", "T1", "C-hr")).ids() == [handbook, legal]
    assert [(r.collection, r.access, r.where) for r in Store(db).access_rules.list(hr)] == [("hr", "exclude",
                                                                                       "slack/T1/C-hr")]
    assert Store(db).access_rules.revoke(hr, "slack", "T1", "C-hr") == 1
    assert Store(db).access_rules.revoke(hr, "slack", "T1", "C-hr") == 0


@pytest.mark.parametrize("keys", [("", "T1", "C1"), ("slack", "T1", ""), ("slack", "T 1", "C1"),
                                  ("slack", "T1", "C1\n"), ("slack", "T1", "x" * 201)])
def test_malformed_rules_are_refused(db, keys):
    hr = _collection(db, "hr", "private")
    with pytest.raises(ValueError):
        access.set_access(Store(db), hr, *keys, "grant")
    with pytest.raises(ValueError):
        access.set_access(Store(db), hr, "slack", "T1", "C1", "allow")


def test_a_location_with_nothing_readable_retrieves_nothing(engine, db, tmp_path):
    (tmp_path / "a.md").write_text("# Office\n\nThe office opens at 8:00 on weekdays.\n")
    engine.ingest([tmp_path / "a.md"], "handbook")
    (hid,) = engine.collection_ids(["handbook"])
    access.set_access(Store(db), hid, "*", "*", "*", "exclude")
    ids = access.collection_scope(Store(db), PUBLIC).ids()
    assert ids == []
    assert engine.retriever.search("When does the office open?", CollectionScope.of(ids), 5) == []  # none, not all
    answer = engine.answer("When does the office open?", CollectionScope.of(ids))
    assert answer.status.value == "not_found" and not answer.hits


def test_filtering_happens_inside_the_sql_not_after(engine, db, tmp_path):
    """The nearest chunks are all private; a post-filter after LIMIT would return nothing."""
    engine.retriever.config = engine.config.retrieval.model_copy(update={"candidate_depth": 5})
    private = tmp_path / "private"
    private.mkdir()
    for n in range(8):
        (private / f"salary-{n}.md").write_text(f"# Salary band {n}\n\nThe salary band for level L{n} engineers "
                                                f"pays a base salary of {100 + n * 10} thousand dollars.\n")
    (tmp_path / "public.md").write_text("# Pay day\n\nSalaries are paid on the last working day of the month.\n"
                                        "\n## Payslips\n\nPayslips show your salary and tax deductions.\n")
    engine.ingest([private], "hr", visibility="private")
    engine.ingest([tmp_path / "public.md"], "handbook")
    hr_id, public_id = engine.collection_ids(["hr", "handbook"])
    question = "What is the base salary band for level L3 engineers?"
    everything = engine.retriever.search(question, engine.every_collection(), 5, "vector")
    assert all(h.collection_id == hr_id for h in everything)  # the private chunks are the nearest
    for mode in ("vector", "lexical", "hybrid"):
        hits = engine.retriever.search(question, CollectionScope.of([public_id]), 2, mode)
        assert hits and all(h.collection_id == public_id for h in hits), mode


async def test_admin_collection_commands(engine, db, tmp_path):
    core = core_for(engine, tmp_path)
    assert (await core.admin(ADMIN, GRANTED, "collections create hr --private")).ok
    assert (await core.admin(ADMIN, GRANTED, "collections grant hr here")).ok
    assert (await core.admin(ADMIN, GRANTED, "collections grant hr <#C777|payroll>")).ok
    assert (await core.admin(ADMIN, DM, "collections grant hr here")).ok  # from a DM: the platform's DMs
    assert (await core.admin(ADMIN, GRANTED, "collections exclude hr *")).ok
    duplicate = await core.admin(ADMIN, GRANTED, "collections create hr --public")
    assert not duplicate.ok and "already exists" in duplicate.message
    missing = await core.admin(ADMIN, GRANTED, "collections grant nope here")
    assert not missing.ok and "nope" in missing.message
    listed = await core.admin(ADMIN, GRANTED, "collections list")
    assert listed.ok and listed.detail_lines == ["hr: private, 0 documents, 0 chunks, training off"]
    (hr,) = engine.collection_ids(["hr"])
    rules = {(r.workspace_id, r.channel_id, r.access) for r in Store(db).access_rules.list(hr)}
    assert rules == {("T1", "C-hr", "grant"), ("T1", "C777", "grant"), ("*", "dm", "grant"), ("T1", "*", "exclude")}
    assert hr in access.collection_scope(Store(db), GRANTED).ids()  # the channel rule beats the workspace exclusion
    assert hr not in access.collection_scope(Store(db), PUBLIC).ids()
    assert hr in access.collection_scope(Store(db), DM).ids()
    assert len(Store(db).audit.recent(100)) == 8


def test_cli_collections(db, scratch_dir, monkeypatch):
    from app.cli import app

    monkeypatch.setenv("RAGBOT_DATA_DIR", str(scratch_dir))
    monkeypatch.delenv("RAGBOT_DATABASE_URL", raising=False)
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, ["collections", *args])
        assert result.exit_code == code, result.output
        return result.output

    assert "Created private collection hr (training off)" in run("create", "hr", "--private")
    assert "Created public collection docs (training on)" in run("create", "docs")
    run("create", "hr", code=1)
    assert "Granted hr (private) at slack/T1/C1" in run("grant", "hr", "-p", "slack", "-w", "T1", "-c", "C1")
    assert "Granted hr (private) at discord/*/dm" in run("grant", "hr", "-p", "discord", "--dm")
    assert "Excluded docs" in run("exclude", "docs", "-p", "*", "-c", "*")
    assert "either --channel" in run("grant", "hr", "-p", "slack", code=1)  # neither --channel nor --dm
    listing = run("list")
    assert "hr" in listing and "private" in listing and "discord" in listing and "exclude" in listing
    assert "Removed the rule" in run("revoke", "hr", "-p", "slack", "-w", "T1", "-c", "C1")
    assert "there is no rule" in run("revoke", "hr", "-p", "slack", "-w", "T1", "-c", "C1", code=1)
    assert "docs: private, training off" in run("set", "docs", "--private")
    assert "docs: public, training on" in run("set", "docs", "--public", "--training")
    run("set", "nope", "--public", code=1)
    assert access.collection_scope(Store(db), Location("discord", "", "5", is_dm=True)).ids() != []
    with db.connect() as conn:
        hr_rules = conn.execute(select(t.collection_access.c.platform, t.collection_access.c.channel_id)
                                .join(t.collections).where(t.collections.c.name == "hr")).all()
    assert hr_rules == [("discord", "dm")]
    audit = Store(db).audit.recent(100)
    assert all(a.platform == "cli" and a.actor.startswith("cli:") for a in audit)
    assert [a.ok for a in reversed(audit)] == [True, True, False, True, True, True, True, False, True, True, False]
