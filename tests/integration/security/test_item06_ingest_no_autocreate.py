"""Issue 15 item 6: chat ingestion never creates a collection. `ingest PATH --collection
hr-privat` (a typo) is refused with the list of existing collections instead of creating a
public, trainable one; creating a collection is its own admin command, where chat must say
--private or --public. The host CLI (`ragbot ingest`, i.e. ``RagEngine.ingest``) still
creates collections. Real database, real BotCore."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.configs import bot_config
from bot.commands import CommandError, parse_admin_command
from bot.core import BotCore
from bot.types import Actor, Location
from rag_engine import collections as cols
from rag_engine.store import schema as t
from tests.conftest import make_settings

ADMIN = Actor("slack", "UADMIN")
WHERE = Location("slack", "T1", "C1")


@pytest.fixture()
def setup(engine, tmp_path):
    docs = tmp_path / "hr-docs"
    docs.mkdir()
    (docs / "bands.md").write_text("# Salary bands\n\nLevel L7 earns between 212,000 and 248,000 dollars.\n")
    (tmp_path / "public.md").write_text("# Office\n\nThe office opens at 8:00.\n")
    engine.ingest([tmp_path / "public.md"], "handbook")
    engine.ingest([], "hr", visibility="private")
    settings = make_settings(tmp_path, admin_user_ids=["slack:UADMIN"], ingest_roots=[str(tmp_path)])
    return BotCore(bot_config(settings), engine), docs


def _collections(db) -> dict[str, str]:
    with db.connect() as conn:
        return dict(conn.execute(select(t.collections.c.name, t.collections.c.visibility)).all())


def _documents(db) -> int:
    with db.connect() as conn:
        return conn.execute(select(func.count()).select_from(t.documents)).scalar_one()


async def test_chat_ingest_into_an_unknown_collection_is_refused_with_the_existing_ones(setup, db):
    core, docs = setup
    before = (_collections(db), _documents(db))
    result = await core.admin(ADMIN, WHERE, f"ingest {docs} --collection hr-privat")
    assert not result.ok
    assert "hr-privat" in result.message and "handbook, hr" in result.message
    assert "collections create NAME --private" in result.message  # says how to make one on purpose
    assert (_collections(db), _documents(db)) == before  # no public "hr-privat", nothing read

    no_name = await core.admin(ADMIN, WHERE, f"ingest {docs}")  # the default collection does not exist either
    assert not no_name.ok and "'default'" in no_name.message
    assert (_collections(db), _documents(db)) == before

    into_existing = await core.admin(ADMIN, WHERE, f"ingest {docs} --collection hr")
    assert into_existing.ok and "1 written" in into_existing.message
    assert _collections(db) == {"handbook": "public", "hr": "private"}


@pytest.mark.parametrize("command", ["collections create hr-2026", "collections create hr-2026 --private --public"])
async def test_collections_create_from_chat_must_say_private_or_public(setup, db, command):
    core, _ = setup
    with pytest.raises(CommandError, match=r"--private .* --public"):
        parse_admin_command(command)
    result = await core.admin(ADMIN, WHERE, command)
    assert not result.ok and "--private" in result.message and "--public" in result.message
    assert "hr-2026" not in _collections(db)


@pytest.mark.parametrize("flag, visibility", [("--private", "private"), ("--public", "public")])
async def test_collections_create_with_an_explicit_visibility(setup, db, flag, visibility):
    core, _ = setup
    assert parse_admin_command(f"collections create hr-2026 {flag}").options == {"visibility": visibility}
    result = await core.admin(ADMIN, WHERE, f"collections create hr-2026 {flag}")
    assert result.ok and visibility in result.message
    assert _collections(db)["hr-2026"] == visibility


def test_the_host_cli_path_still_creates_collections(engine, db, tmp_path):
    (tmp_path / "a.md").write_text("# A\n\nThe office opens at 8:00.\n")
    with pytest.raises(cols.CollectionNotFound, match="existing collections: none"):
        engine.ingest([tmp_path / "a.md"], "brand-new", create=False)  # what chat ingestion asks for
    assert _collections(db) == {}
    report = engine.ingest([tmp_path / "a.md"], "brand-new")  # `ragbot ingest -c brand-new`
    assert report.documents_written == 1 and _collections(db) == {"brand-new": "public"}
