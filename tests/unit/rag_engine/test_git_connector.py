"""The git connector on a real local repository: full tree first, then diffs (changes,
deletions, renames), only readable files, web URLs from the configured template."""

from __future__ import annotations

import os

import pytest

from rag_engine.connectors import checked_config
from rag_engine.connectors.base import ConnectorError
from rag_engine.connectors.git import GitConfig, GitConnector
from tests.support.git_repo import GitRepo

WEB = "https://github.com/org/docs/blob/main/{path}"


@pytest.fixture()
def repo(tmp_path) -> GitRepo:
    r = GitRepo(tmp_path / "origin")
    r.write("guide/vpn.md", "# VPN\n\nUse WireGuard.\n").write("notes.txt", "Parking is free after six.\n")
    r.write("logo.png", "not text").write(".github/template.md", "# hidden\n").write("page.html", "<p>hi</p>")
    os.symlink("/etc/hostname", r.root / "escape.md")  # a link out of the repository: never read
    r.commit("first")
    return r


def _connector(repo: GitRepo, tmp_path, **config) -> GitConnector:
    return GitConnector(GitConfig(repo=str(repo.root), url_base=WEB, **config), tmp_path / "cache")


def test_first_sync_lists_the_readable_tree_with_urls(repo, tmp_path):
    conn = _connector(repo, tmp_path)
    changes = conn.changes(None)
    assert changes.full and changes.deleted == []
    assert changes.cursor == repo.git("rev-parse", "HEAD").strip()
    assert sorted(i.external_id for i in changes.changed) == ["guide/vpn.md", "notes.txt", "page.html"]
    vpn = next(i for i in changes.changed if i.external_id == "guide/vpn.md")
    assert vpn.url == "https://github.com/org/docs/blob/main/guide/vpn.md"
    assert conn.fetch(vpn).path.read_text() == "# VPN\n\nUse WireGuard.\n"


def test_later_syncs_diff_the_commits(repo, tmp_path):
    conn = _connector(repo, tmp_path)
    first = conn.changes(None).cursor
    assert conn.changes(first).changed == [] and conn.changes(first).deleted == []  # nothing new
    repo.write("notes.txt", "Parking costs 5 dollars now.\n").delete("page.html")
    repo.move("guide/vpn.md", "network/vpn setup.md")
    repo.write("new.md", "# New\n\nHello.\n").commit("second")
    changes = conn.changes(first)
    assert not changes.full
    assert sorted(i.external_id for i in changes.changed) == ["network/vpn setup.md", "new.md", "notes.txt"]
    assert sorted(changes.deleted) == ["guide/vpn.md", "page.html"]
    moved = next(i for i in changes.changed if i.external_id == "network/vpn setup.md")
    assert moved.url == "https://github.com/org/docs/blob/main/network/vpn%20setup.md"
    assert conn.fetch(moved).path.read_text().startswith("# VPN")


def test_a_file_turned_unreadable_is_a_deletion(repo, tmp_path):
    conn = _connector(repo, tmp_path)
    first = conn.changes(None).cursor
    repo.move("notes.txt", "notes.bin")
    (repo.root / "guide/vpn.md").unlink()
    os.symlink("/etc/passwd", repo.root / "guide/vpn.md")  # a file replaced by a link
    repo.commit("third")
    changes = conn.changes(first)
    assert changes.changed == []
    assert sorted(changes.deleted) == ["guide/vpn.md", "notes.txt"]


def test_subdir_and_branch(repo, tmp_path):
    repo.git("checkout", "--quiet", "-b", "draft")
    repo.write("guide/draft.md", "# Draft\n\nSoon.\n").commit("draft")
    repo.git("checkout", "--quiet", "main")
    conn = _connector(repo, tmp_path, branch="draft", subdir="guide")
    assert sorted(i.external_id for i in conn.changes(None).changed) == ["guide/draft.md", "guide/vpn.md"]


def test_unknown_cursor_falls_back_to_the_full_tree(repo, tmp_path):
    changes = _connector(repo, tmp_path).changes("0123456789abcdef0123456789abcdef01234567")
    assert changes.full and len(changes.changed) == 3


def test_unreachable_repository_is_a_connector_error(tmp_path):
    conn = GitConnector(GitConfig(repo=str(tmp_path / "missing")), tmp_path / "cache")
    with pytest.raises(ConnectorError, match="git clone failed"):
        conn.changes(None)


def test_url_without_template_appends_the_path(repo, tmp_path):
    conn = GitConnector(GitConfig(repo=str(repo.root), url_base="https://docs.example.com/src/"), tmp_path / "c")
    assert conn.url_for("a b/c.md") == "https://docs.example.com/src/a%20b/c.md"
    assert GitConnector(GitConfig(repo=str(repo.root)), tmp_path / "d").url_for("x.md") is None


def test_token_is_read_from_the_environment_never_stored(repo, tmp_path, monkeypatch):
    monkeypatch.setenv("DOCS_TOKEN", "s3cret-token-value")
    stored = checked_config("git", {"repo": str(repo.root), "token_env": "DOCS_TOKEN"})
    assert "s3cret" not in repr(stored)
    conn = GitConnector(GitConfig.model_validate(stored), tmp_path / "cache")
    assert conn.secrets() == ["s3cret-token-value"]
    assert conn.changes(None).changed  # a local clone ignores the header; the token changes nothing else


@pytest.mark.parametrize("config, message", [
    ({"repo": "https://user:pw@github.com/org/docs.git"}, "password"),
    ({"repo": "/x", "token": "abc"}, "may not hold secrets"),
    ({"repo": "/x", "url_base": "ftp://x/{path}"}, "http"),
    ({"repo": "/x", "subdir": "../etc"}, "inside the repository"),
    ({"repo": "/x", "colour": "red"}, "colour"),
])
def test_bad_configurations_are_refused(config, message):
    with pytest.raises(ValueError, match=message):
        checked_config("git", config)


def test_missing_token_variable_is_an_error(tmp_path, monkeypatch):
    monkeypatch.delenv("NO_SUCH_TOKEN", raising=False)
    with pytest.raises(ConnectorError, match="NO_SUCH_TOKEN"):
        GitConnector(GitConfig(repo="/x", token_env="NO_SUCH_TOKEN"), tmp_path)
