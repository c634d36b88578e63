"""Defining sources: the rules for adding and removing one (names, schedules, configuration),
shared by ``ragbot sources`` and, later, the chat admin command. Rows: ``SourceRepo``."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from rag_engine import collections as cols
from rag_engine.connectors import checked_config
from rag_engine.errors import DuplicateKey
from rag_engine.store import Store
from rag_engine.store.sources import SourceRow

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
_INTERVAL = re.compile(r"(\d+)\s*([smhdw]?)")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MIN_SCHEDULE_S = 60  # a source polled more often than this would spend its time cloning and diffing
LISTED_COUNTS = ("written", "deleted", "skipped")  # what the source listings (CLI, chat) show of a sync


def parse_interval(text: str) -> int:
    """Seconds in ``30m``, ``1h``, ``2d``, ``1h30m`` or a plain number of seconds."""
    clean = text.strip().lower().replace(" ", "")
    parts = _INTERVAL.findall(clean)
    if not clean or "".join(n + u for n, u in parts) != clean:
        raise ValueError(f"cannot read the interval {text!r}: write e.g. 30m, 1h, 6h, 1d")
    return sum(int(n) * _UNIT_S[u] for n, u in parts)


def describe_schedule(seconds: int | None) -> str:
    """A schedule in words, the inverse of ``parse_interval``: ``every 1h``, ``every 90s``, ``on request``."""
    if seconds is None:
        return "on request"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"every {seconds // size}{unit}"
    return f"every {seconds}s"


def describe_counts(counts: dict[str, Any], keys: tuple[str, ...] = LISTED_COUNTS) -> str:
    """A sync's non-zero ``keys`` of ``counts`` ("3 written, 1 deleted"; "no changes"; "" when there are none
    yet)."""
    if not counts:
        return ""
    shown = [f"{counts[k]} {k}" for k in keys if counts.get(k)]
    return ", ".join(shown) or "no changes"


def add_source(store: Store, name: str, kind: str, config: dict[str, Any], collection: str, *,
               every_s: int | None, visibility: cols.Visibility = "public") -> SourceRow:
    """A new source writing into ``collection`` (created with ``visibility`` if missing); ``every_s``
    None: synced only on request."""
    if not _NAME.fullmatch(name):
        raise ValueError("source name: 1-63 of a-z 0-9 . _ -, starting with a letter or digit")
    if every_s is not None and every_s < MIN_SCHEDULE_S:
        raise ValueError(f"the schedule must be at least {MIN_SCHEDULE_S} seconds")
    stored = checked_config(kind, config)
    coll = cols.get_or_create(store.collections, collection, visibility=visibility)
    try:
        source_id = store.sources.add(name, kind, stored, coll.id, every_s)
    except DuplicateKey:
        raise ValueError(f"a source named {name!r} already exists") from None
    found = store.sources.get(source_id)
    if found is None:  # removed by someone else in between
        raise ValueError(f"source {name!r} was removed while it was being added")
    return found


def require_source(store: Store, name: str) -> SourceRow:
    found = store.sources.by_name(name)
    if found is None:
        names = [s.name for s in store.sources.all()]
        raise ValueError(f"there is no source named {name!r}; sources: {', '.join(names) or 'none'}")
    return found


def cache_dir(data_dir: Path, source: SourceRow) -> Path:
    """The source's own folder for local copies (a git clone)."""
    return data_dir / "sources" / f"{source.kind}-{source.id}"


def remove_source(store: Store, name: str, *, keep_documents: bool = False, data_dir: Path | None = None) -> int:
    """Delete the source and its documents (or keep them, detached) and, given ``data_dir``, its local
    copy; how many documents."""
    source = require_source(store, name)
    n = store.sources.remove(source.id, keep_documents=keep_documents)
    if data_dir is not None:
        shutil.rmtree(cache_dir(data_dir, source), ignore_errors=True)
    return n
