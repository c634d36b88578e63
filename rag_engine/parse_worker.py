"""Reading and parsing files in a child process, so that one file has a time limit.

Files come from anyone who can write to an ingested folder, and the parsers
(ours, BeautifulSoup, pdfplumber, PyYAML) may be made slow by a crafted one. A thread
cannot be stopped, a process can: a file that takes longer than its limit is
abandoned by terminating the child, and the next file gets a fresh one. One child
serves every ingestion of the process (started on first use, imports done before
any clock runs); parsing is serialized through it.
"""

from __future__ import annotations

import atexit
import importlib
import multiprocessing
import threading
from multiprocessing.pool import Pool
from pathlib import Path

from rag_engine.parsing import ParsedDocument, ParseError, read_document

__all__ = ["ParseTimeout", "read_document_within"]


class ParseTimeout(ParseError):
    """Reading and parsing a file did not finish within its time limit."""


_lock = threading.Lock()
_pool: Pool | None = None


def read_document_within(path: Path, *, timeout_s: float, max_bytes: int,
                         follow_symlinks: bool = True) -> tuple[ParsedDocument, bytes]:
    """``parsing.read_document`` in the child; ``ParseTimeout`` after ``timeout_s`` seconds."""
    global _pool
    with _lock:
        pool = _pool or _start()
        _pool = pool
        pending = pool.apply_async(read_document, (path,), {"max_bytes": max_bytes,
                                                            "follow_symlinks": follow_symlinks})
        try:
            return pending.get(timeout_s)
        except multiprocessing.TimeoutError:
            pool.terminate()  # the only way to stop a parser mid-file
            _pool = None
            raise ParseTimeout(f"reading and parsing took longer than the {timeout_s:g} s limit per file "
                               "(RAGBOT_INGEST_FILE_TIMEOUT_S)") from None


def _start() -> Pool:
    # spawn, not fork: the parent has threads (database pool, event loop) whose locks a fork would copy
    pool = multiprocessing.get_context("spawn").Pool(1)
    pool.apply(_import_parsers)
    return pool


@atexit.register
def _stop() -> None:
    """Stop the child while the interpreter can still do it cleanly."""
    global _pool
    with _lock:
        if _pool is not None:
            _pool.terminate()
            _pool = None


def _import_parsers() -> None:
    """Load the parsers' modules in the child before the first file's clock starts."""
    for module in ("bs4", "pdfplumber"):
        importlib.import_module(module)
