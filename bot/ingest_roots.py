"""Which server paths an admin may ingest from chat.

A chat admin is not someone with a shell on the bot's host, so ``/ragbot-admin
ingest`` reads only below the folders in ``RAGBOT_INGEST_ROOTS``: a requested
path is taken as written (no ``..``), may not pass through a symbolic link below
its root, and must resolve inside that root. With no roots configured chat
ingestion is off. The engine then skips symbolic links met inside a folder
(``follow_symlinks=False``). ``ragbot ingest`` on the host is not limited.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

OFF = ("Ingesting from chat is off on this bot. To turn it on, set RAGBOT_INGEST_ROOTS to the folders admins may "
       "ingest from (comma-separated absolute paths) and restart the bot; `ragbot ingest` on the host works "
       "without it.")


class PathRefused(ValueError):
    """A path chat ingestion may not read; the message says why."""


def chat_ingest_paths(requested: Sequence[str], roots: Sequence[str]) -> list[Path]:
    """The requested paths, each checked against ``roots``; ``PathRefused`` on the first bad one.

    A relative path is taken below the first root.
    """
    if not roots:
        raise PathRefused(OFF)
    allowed = [_Root(r) for r in roots]
    return [_check(word, allowed) for word in requested]


class _Root:
    """A configured root, as written (made absolute) and as resolved: a path may be given under either."""

    def __init__(self, root: str) -> None:
        self.written = Path(os.path.abspath(root))
        self.real = Path(root).resolve()

    def below(self, path: Path) -> Path | None:
        """``path`` relative to this root, or None when it is not under it."""
        for base in (self.written, self.real):
            if path.is_relative_to(base):
                return path.relative_to(base)
        return None


def _check(word: str, roots: list[_Root]) -> Path:
    path = Path(word)
    if ".." in path.parts:
        raise PathRefused(f"`{_shown(word)}`: paths containing `..` are not accepted from chat.")
    path = Path(os.path.normpath(path if path.is_absolute() else roots[0].written / path))
    for root in roots:
        relative = root.below(path)
        if relative is None:
            continue
        step = root.real
        for part in relative.parts:  # no link anywhere below the root, the path itself included
            step = step / part
            if step.is_symlink():
                raise PathRefused(f"`{_shown(word)}` goes through a symbolic link; chat ingestion does not "
                                  "follow links.")
        if not path.resolve().is_relative_to(root.real):
            break  # e.g. a root's own parent changed under it: refused below
        return root.real / relative
    listed = ", ".join(str(r.written) for r in roots)
    raise PathRefused(f"`{_shown(word)}` is outside the folders chat ingestion may read ({listed}).")


def _shown(word: str) -> str:
    """A path quoted back to the admin: short, without backticks."""
    return word[:200].replace("`", "'")
