"""``ragbot sources add confluence`` then ``sources sync`` against the local fake Confluence: the
stored configuration names the token's variable, never the token, and the sync reads the space."""

from __future__ import annotations

from sqlalchemy import text
from typer.testing import CliRunner

from app.cli import app
from tests.integration.rag_engine.confluence_fake import FakeConfluence, FakePage

TOKEN = "atl-cli-token-789"


def test_add_confluence_and_sync(db, scratch_dir, monkeypatch):
    monkeypatch.setenv("RAGBOT_TEST_CONFLUENCE_CLI_TOKEN", TOKEN)
    wiki = FakeConfluence("OPS", "ops@example.com", TOKEN).start()
    wiki.add(FakePage("1", "Runbooks", "<p>Page the on-call engineer through the Heron rota.</p>"))
    env = {"RAGBOT_DATA_DIR": str(scratch_dir), "RAGBOT_GENERATOR_BACKEND": "extractive", "COLUMNS": "200"}
    try:
        added = CliRunner().invoke(app, ["sources", "add", "confluence", "--url", wiki.url, "--space", "OPS",
                                         "--email", "ops@example.com", "--token-env",
                                         "RAGBOT_TEST_CONFLUENCE_CLI_TOKEN", "--collection", "ops"], env=env)
        assert added.exit_code == 0, added.output
        assert "Added Confluence source confluence-ops -> collection ops" in added.output
        synced = CliRunner().invoke(app, ["sources", "sync", "confluence-ops"], env=env)
        assert synced.exit_code == 0, synced.output
        assert "1 changed, 1 written" in synced.output
    finally:
        wiki.stop()
    with db.connect() as conn:
        config = conn.execute(text("SELECT config::text FROM sources")).scalar_one()
        assert "Heron" in "\n".join(conn.execute(text("SELECT text FROM chunks")).scalars())
    assert TOKEN not in config and "RAGBOT_TEST_CONFLUENCE_CLI_TOKEN" in config
