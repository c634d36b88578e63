"""Shared fixtures: real embedded PostgreSQL servers (never mocked) and the real
default embedder. Two servers: a scratch one, emptied before each test that asks
for it, and a read-only one holding the sample handbook (ingested once)."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import text

from app.configs import bot_config, engine_config, store_config
from app.settings import Settings
from bot.config import BotConfig
from rag_engine.config import EngineConfig

warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")

# CI replays the same examples every run (a red CI then means a change broke something); a developer's
# run explores new ones, and hypothesis prints the seed of any failure to add as an explicit example.
hypothesis_settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "handbook"
ALL_TABLES = ("processed_events, audit_log, jobs, adapters, query_adapters, curated_examples, corrections, feedback, "
              "interactions, collection_access, chunks, documents, collections")


def make_settings(data_dir: Path, **overrides) -> Settings:
    """Test settings: nothing from the environment or a .env file leaks in."""
    # reply_mode final: what a test's fake model says is the answer; tests of answer-first replies ask for them
    base = {"data_dir": data_dir, "generator_backend": "extractive", "reply_mode": "final", "database_url": None,
            "rate_limit_user_per_min": 1000.0, "rate_limit_user_burst": 1000,
            "rate_limit_channel_per_min": 1000.0, "rate_limit_channel_burst": 1000}
    base.update(overrides)
    return Settings(_env_file=None, **base)


def make_engine_config(data_dir: Path, **overrides) -> EngineConfig:
    """The engine's config, built as the composition root builds it, from ``make_settings``."""
    return engine_config(make_settings(data_dir, **overrides))


def make_bot_config(data_dir: Path | str = "/nonexistent", **overrides) -> BotConfig:
    """The bot core's config, built as the composition root builds it, from ``make_settings``."""
    return bot_config(make_settings(Path(data_dir), **overrides))


@pytest.fixture(scope="session")
def embedder():
    from rag_engine.embedding import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder("default")


@pytest.fixture(scope="session")
def scratch_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("scratch-db")


@pytest.fixture(scope="session")
def _scratch_db(scratch_dir, embedder):
    from rag_engine.store.database import Database
    from rag_engine.store.migrate import ensure_schema

    db = Database.from_config(store_config(make_settings(scratch_dir)))
    ensure_schema(db, embedder.dim)
    yield db
    db.dispose()


@pytest.fixture()
def settings(scratch_dir) -> Settings:
    return make_settings(scratch_dir)


@pytest.fixture()
def db(_scratch_db):
    """The scratch database, emptied (schema kept) before the test."""
    with _scratch_db.begin() as conn:
        conn.execute(text(f"TRUNCATE {ALL_TABLES} RESTART IDENTITY CASCADE"))
    return _scratch_db


@pytest.fixture()
def engine(db, embedder, settings):
    from rag_engine.engine import RagEngine

    return RagEngine(engine_config(settings), db=db, embedder=embedder, generator=None, reranker=None)


@pytest.fixture(scope="session")
def handbook_engine(tmp_path_factory, embedder):
    """An engine over the sample handbook, ingested once per session. Do not write to it."""
    from rag_engine.engine import RagEngine

    data_dir = tmp_path_factory.mktemp("handbook-db")
    engine = RagEngine(make_engine_config(data_dir), embedder=embedder, generator=None, reranker=None)
    report = engine.ingest([EXAMPLES], "handbook")
    assert not report.skipped, report.skipped
    yield engine
    engine.close()


TIERS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its tier, taken from the folder it lives in (``-m unit`` is the fast tier)."""
    for item in items:
        parts = Path(str(item.fspath)).relative_to(ROOT / "tests").parts
        if parts[0] in TIERS:
            item.add_marker(parts[0])


@pytest.fixture(autouse=True)
def _quiet_logs(caplog):
    caplog.set_level(logging.INFO)
