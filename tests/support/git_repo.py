"""A real local git repository for connector and sync tests (the ``git`` CLI, no network)."""

from __future__ import annotations

import subprocess
from pathlib import Path


class GitRepo:
    """``git init`` in ``root``; write, delete and rename files, then commit."""

    def __init__(self, root: Path, branch: str = "main") -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.git("init", "--quiet", "--initial-branch", branch)
        self.git("config", "user.email", "docs@example.com")
        self.git("config", "user.name", "Docs")
        self.git("config", "commit.gpgsign", "false")

    def git(self, *args: str) -> str:
        return subprocess.run(["git", *args], cwd=self.root, check=True, capture_output=True, text=True).stdout

    def write(self, path: str, text: str) -> GitRepo:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        return self

    def delete(self, path: str) -> GitRepo:
        self.git("rm", "--quiet", path)
        return self

    def move(self, old: str, new: str) -> GitRepo:
        (self.root / new).parent.mkdir(parents=True, exist_ok=True)
        self.git("mv", old, new)
        return self

    def commit(self, message: str = "docs") -> str:
        self.git("add", "--all")
        self.git("commit", "--quiet", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD").strip()
