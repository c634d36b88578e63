"""A git repository as a source: a local path or a URL, cloned with the ``git`` CLI into the data
directory's cache, read at one branch.

The cursor is the commit last synced. The first sync lists the whole tree; later ones diff the
two commits' trees (``git diff --raw -M``), so a deleted file is a deleted id and a renamed one
is a deletion plus a new item. Only regular files are read: symbolic links and submodules in the
repository are skipped, so a repository cannot make the sync read files outside itself. A token
for HTTPS (``token_env`` / ``token_file``) reaches git through its environment, never through
the command line, the remote URL or the stored configuration.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from pathlib import Path, PurePosixPath
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, ConfigDict, field_validator

from rag_engine.connectors.base import ChangeSet, Connector, ConnectorError, Fetched, ItemRef
from rag_engine.connectors.secrets import read_secret
from rag_engine.parsing import SUPPORTED_SUFFIXES
from rag_engine.redact import redact_secrets

GIT_TIMEOUT_S = 600.0
_REGULAR = frozenset({"100644", "100755"})  # not 120000 (symbolic link) nor 160000 (submodule)
_ALLOWED_PROTOCOLS = "file:git:http:https:ssh"  # never ext:: (runs commands)
_NULL_COMMIT = "0" * 40
_BRANCH_FILE = "ragbot-branch"  # in the cache clone's .git: the branch followed


class GitConfig(BaseModel):
    """What ``sources.config`` holds for a git source (no secret: it names where the token is)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    repo: str  # an absolute local path, or a URL (https://, ssh://, git@host:path)
    branch: str | None = None  # None: the repository's default branch
    url_base: str | None = None  # e.g. https://github.com/org/repo/blob/main/{path}; without {path}: base + /path
    subdir: str = ""  # only files below this folder of the repository
    token_env: str | None = None
    token_file: str | None = None
    token_user: str = "x-access-token"  # the HTTPS user name sent with the token (GitLab: oauth2)

    @field_validator("repo")
    @classmethod
    def _no_password_in_url(cls, value: str) -> str:
        if "://" in value and urlsplit(value).password:
            raise ValueError("the repository URL holds a password: give the token with token_env or token_file")
        return value

    @field_validator("subdir")
    @classmethod
    def _relative_subdir(cls, value: str) -> str:
        clean = value.strip().strip("/")
        if clean and (PurePosixPath(clean).is_absolute() or ".." in PurePosixPath(clean).parts):
            raise ValueError("subdir must be a folder inside the repository")
        return clean

    @field_validator("url_base")
    @classmethod
    def _web_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("url_base must be an http(s) address, e.g. https://github.com/org/repo/blob/main/{path}")
        return value


class GitConnector(Connector):
    kind = "git"

    def __init__(self, config: GitConfig, cache_dir: Path) -> None:
        self.config = config
        self.cache_dir = cache_dir
        self._token = read_secret(config.token_env, config.token_file)

    # -- the interface ---------------------------------------------------------
    def changes(self, cursor: str | None) -> ChangeSet:
        self._ensure_clone()
        head = self._fetch()
        self._git("-c", "core.symlinks=false", "checkout", "--quiet", "--force", "--detach", head)
        if cursor == head:
            return ChangeSet([], [], head)
        if cursor is None or not self._has_commit(cursor):
            return ChangeSet([self._item(p) for p in self._tree(head)], [], head, full=True)
        changed, deleted = self._diff(cursor, head)
        return ChangeSet([self._item(p) for p in changed], deleted, head)

    def fetch(self, item: ItemRef) -> Fetched:
        return Fetched(self.cache_dir / item.external_id)

    def secrets(self) -> list[str]:
        return [self._token] if self._token else []

    # -- items -----------------------------------------------------------------
    def url_for(self, path: str) -> str | None:
        base = self.config.url_base
        if not base:
            return None
        if "{path}" in base:
            return base.replace("{path}", quote(path))
        return base.rstrip("/") + "/" + quote(path)

    def _item(self, path: str) -> ItemRef:
        return ItemRef(external_id=path, display_path=path, url=self.url_for(path))

    def wanted(self, path: str, mode: str) -> bool:
        """A regular file of a supported type, not hidden, below ``subdir``."""
        p = PurePosixPath(path)
        if mode not in _REGULAR or p.suffix.lower() not in SUPPORTED_SUFFIXES:
            return False
        if any(part.startswith(".") for part in p.parts):
            return False
        sub = self.config.subdir
        return not sub or path.startswith(sub + "/")

    def _tree(self, commit: str) -> list[str]:
        out = self._git("ls-tree", "-r", "-z", "--full-tree", commit)
        paths = []
        for entry in filter(None, out.split("\0")):
            meta, _, path = entry.partition("\t")
            if self.wanted(path, meta.split(" ")[0]):
                paths.append(path)
        return paths

    def _diff(self, old: str, new: str) -> tuple[list[str], list[str]]:
        """(changed paths, deleted paths) between two commits; a rename is both."""
        fields = self._git("diff", "--raw", "-z", "--find-renames", "--no-ext-diff", "--no-textconv",
                           old, new).split("\0")
        changed: list[str] = []
        deleted: list[str] = []
        i = 0
        while i < len(fields) and fields[i].startswith(":"):
            old_mode, new_mode, _, _, status = fields[i][1:].split(" ")
            letter = status[0]
            if letter in "RC":  # copied or renamed: two paths follow
                before, after = fields[i + 1], fields[i + 2]
                i += 3
            else:
                before = after = fields[i + 1]
                i += 2
            old_wanted, new_wanted = self.wanted(before, old_mode), self.wanted(after, new_mode)
            if new_wanted and letter != "D":
                changed.append(after)
            if old_wanted and (letter in "DR" or not new_wanted):  # gone, moved, or no longer readable
                deleted.append(before)
        return changed, deleted

    # -- git -------------------------------------------------------------------
    def _ensure_clone(self) -> None:
        """A clone of this source's repository in the cache (cloned again if the folder holds another's)."""
        if (self.cache_dir / ".git" / _BRANCH_FILE).is_file():
            origin = self._run("config", "--get", "remote.origin.url").stdout.strip()
            if origin == self.config.repo:
                return
        partial = self.cache_dir.with_name(self.cache_dir.name + ".cloning")
        shutil.rmtree(partial, ignore_errors=True)
        partial.parent.mkdir(parents=True, exist_ok=True)
        branch = ["--branch", self.config.branch] if self.config.branch else []
        self._git("clone", "--quiet", "--no-checkout", "--no-tags", "--single-branch", *branch, "--",
                  self.config.repo, str(partial), cwd=partial.parent)
        # the branch to follow: the one asked for, else the remote's default (the fresh clone's HEAD)
        name = self.config.branch or self._git("symbolic-ref", "--short", "HEAD", cwd=partial).strip()
        (partial / ".git" / _BRANCH_FILE).write_text(name + "\n")
        shutil.rmtree(self.cache_dir, ignore_errors=True)
        partial.rename(self.cache_dir)

    def _branch(self) -> str:
        return (self.cache_dir / ".git" / _BRANCH_FILE).read_text().strip()

    def _fetch(self) -> str:
        branch = self._branch()
        self._git("fetch", "--quiet", "--no-tags", "--force", "origin",
                  f"+refs/heads/{branch}:refs/remotes/origin/{branch}")
        head = self._git("rev-parse", "--verify", f"refs/remotes/origin/{branch}^{{commit}}").strip()
        if not head or head == _NULL_COMMIT:
            raise ConnectorError(f"branch {branch} has no commit")
        return head

    def _has_commit(self, commit: str) -> bool:
        return self._run("cat-file", "-e", f"{commit}^{{commit}}").returncode == 0

    def _git(self, *args: str, cwd: Path | None = None) -> str:
        done = self._run(*args, cwd=cwd)
        if done.returncode != 0:
            detail = redact_secrets(done.stderr.strip()[-800:], self.secrets())
            raise ConnectorError(f"git {args[0]} failed: {detail or f'exit status {done.returncode}'}")
        return done.stdout

    def _run(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ALLOW_PROTOCOL": _ALLOWED_PROTOCOLS,
               "GIT_CONFIG_NOSYSTEM": "1", "LC_ALL": "C"}
        env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")  # fail, never prompt, without a key
        if self._token:  # through the environment: not visible in the process list, never in .git/config
            basic = base64.b64encode(f"{self.config.token_user}:{self._token}".encode()).decode()
            env.update(GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0="http.extraHeader",
                       GIT_CONFIG_VALUE_0=f"Authorization: Basic {basic}")
        try:
            return subprocess.run(["git", *args], cwd=cwd or self.cache_dir, env=env, capture_output=True,
                                  text=True, timeout=GIT_TIMEOUT_S, check=False)
        except FileNotFoundError:
            raise ConnectorError("the git command is not installed") from None
        except subprocess.TimeoutExpired:
            raise ConnectorError(f"git {args[0]} took longer than {GIT_TIMEOUT_S:g} s") from None
