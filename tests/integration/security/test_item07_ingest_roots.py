"""Issue 15 item 7: chat ingestion reads only below RAGBOT_INGEST_ROOTS: no `..`, no
symbolic link on the way or inside a folder, nothing outside the roots, and nothing at
all when no root is configured (the refusal says how to turn it on). The host CLI path
(``RagEngine.ingest``) keeps full access. Real files, real database, real BotCore."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import select

from app.configs import bot_config
from bot.core import BotCore
from bot.types import Actor, Location
from rag_engine.store import schema as t
from tests.conftest import make_settings

ADMIN = Actor("slack", "UADMIN")
WHERE = Location("slack", "T1", "C1")
SECRET = "The root password of the billing database is hunter2-orchid."


@pytest.fixture()
def tree(engine, tmp_path):
    """root/docs/ok.md inside the root; outside/secret.md beside it; links from the root to outside."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "docs").mkdir(parents=True)
    outside.mkdir()
    (root / "docs" / "ok.md").write_text("# Office\n\nThe office opens at 8:00 on weekdays.\n")
    (outside / "secret.md").write_text(f"# Billing\n\n{SECRET}\n")
    os.symlink(outside / "secret.md", root / "docs" / "linked.md")  # a link to a file, inside a walked folder
    os.symlink(outside, root / "docs" / "linked-dir")  # a link to a folder, inside a walked folder
    os.symlink(outside, root / "elsewhere")  # a link to a folder, given in a path
    engine.ingest([], "handbook")
    return root, outside


def core(engine, tmp_path, **overrides) -> BotCore:
    return BotCore(bot_config(make_settings(tmp_path, admin_user_ids=["slack:UADMIN"], **overrides)), engine)


def _stored_texts(db) -> str:
    with db.connect() as conn:
        return " ".join(conn.execute(select(t.chunks.c.text)).scalars())


async def test_no_roots_configured_means_no_chat_ingestion(engine, db, tree, tmp_path):
    root, _ = tree
    result = await core(engine, tmp_path).admin(ADMIN, WHERE, f"ingest {root / 'docs'} --collection handbook")
    assert not result.ok and "RAGBOT_INGEST_ROOTS" in result.message and "off" in result.message
    assert _stored_texts(db) == ""


@pytest.mark.parametrize("path, why", [
    ("{root}/docs/../../outside/secret.md", "`..`"),
    ("{root}/../outside", "`..`"),
    ("{outside}/secret.md", "outside the folders"),
    ("/etc/passwd", "outside the folders"),
    ("{root}/docs/linked.md", "symbolic link"),  # a link to a file outside
    ("{root}/elsewhere", "symbolic link"),  # a link to a folder outside
    ("{root}/elsewhere/secret.md", "symbolic link"),  # through a linked folder
])
async def test_paths_outside_the_roots_are_refused(engine, db, tree, tmp_path, path, why):
    root, outside = tree
    bot = core(engine, tmp_path, ingest_roots=[str(root)])
    result = await bot.admin(ADMIN, WHERE, f"ingest {path.format(root=root, outside=outside)} --collection handbook")
    assert not result.ok and why in result.message, result.message
    assert SECRET not in _stored_texts(db)


async def test_links_inside_a_folder_are_skipped_and_reported(engine, db, tree, tmp_path):
    root, _ = tree
    bot = core(engine, tmp_path, ingest_roots=[str(root)])
    result = await bot.admin(ADMIN, WHERE, f"ingest {root / 'docs'} --collection handbook")
    assert result.ok and "1 written" in result.message and "2 skipped" in result.message, result
    assert sorted(line.split(": ")[0].rsplit("/", 1)[-1] for line in result.detail_lines) == ["linked-dir",
                                                                                              "linked.md"]
    assert all("symbolic link" in line for line in result.detail_lines)
    stored = _stored_texts(db)
    assert "8:00" in stored and SECRET not in stored


async def test_paths_below_a_root_are_read(engine, db, tree, tmp_path):
    root, _ = tree
    alias = tmp_path / "alias"
    os.symlink(root, alias)  # the operator's own link to the root: the root is trusted as configured
    bot = core(engine, tmp_path, ingest_roots=[str(alias)])
    assert (await bot.admin(ADMIN, WHERE, "ingest docs/ok.md --collection handbook")).ok  # relative to the root
    assert (await bot.admin(ADMIN, WHERE, f"ingest {alias}/docs/ok.md --collection handbook")).ok
    assert (await bot.admin(ADMIN, WHERE, f"ingest {root}/docs/ok.md --collection handbook")).ok
    assert "8:00" in _stored_texts(db)


def test_the_host_cli_path_is_not_limited(engine, db, tree):
    root, outside = tree
    report = engine.ingest([outside, root / "docs"], "handbook")  # `ragbot ingest` on the host
    assert report.documents_written >= 2 and not report.skipped  # links inside the folder followed
    assert SECRET in _stored_texts(db)
