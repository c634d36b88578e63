"""How a cited document is shown to readers: a link when one is known, else its
path relative to the folder it was ingested from; never the server's absolute path.

Ingestion stores ``relative_path`` in a document's metadata; a Markdown file's
front matter may give its ``url`` (or ``source_url``); ``RAGBOT_SOURCE_URL_BASE``
gives a collection's base URL, to which the relative path is appended.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePath
from typing import Any
from urllib.parse import quote

RELATIVE_PATH = "relative_path"  # documents.metadata key written at ingestion
URL_KEYS = ("url", "source_url")  # front-matter keys holding the document's own address
_WEB = ("https://", "http://")


def display_path(metadata: Mapping[str, Any], source_uri: str) -> str:
    """The relative path; a web address as it is; for a document ingested before
    relative paths were kept, its file name."""
    relative = metadata.get(RELATIVE_PATH)
    if isinstance(relative, str) and relative:
        return relative
    if source_uri.startswith(_WEB):
        return source_uri
    return PurePath(source_uri).name or source_uri


def source_url(metadata: Mapping[str, Any], source_uri: str, base: str | None) -> str | None:
    """The document's own URL, else its collection's base URL + relative path, else None."""
    for key in URL_KEYS:
        value = metadata.get(key)
        if isinstance(value, str) and value.strip().startswith(_WEB):
            return value.strip()
    if source_uri.startswith(_WEB):
        return source_uri
    relative = metadata.get(RELATIVE_PATH)
    if base and isinstance(relative, str) and relative:
        return base.rstrip("/") + "/" + quote(relative)
    return None
