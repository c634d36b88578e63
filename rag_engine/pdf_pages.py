"""Page numbers of PDF chunks: kept at ingestion, shown in citations, linked with ``#page=N``.

A PDF's sections each lie on one page (``rag_engine.pdf_layout``), so each chunk has one.
The pages are kept in the document's metadata as a list by chunk ordinal (no schema
change: chunks have no metadata column); a search hit reads its own back by ordinal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

CHUNK_PAGES = "chunk_pages"  # documents.metadata key: [page or null, ...] by chunk ordinal


def chunk_pages(pages: Sequence[int | None]) -> dict[str, list[int | None]]:
    """What to add to a document's metadata: ``{}`` when no chunk has a page (not a PDF)."""
    return {CHUNK_PAGES: list(pages)} if any(p is not None for p in pages) else {}


def chunk_page(metadata: Mapping[str, Any], ordinal: int) -> int | None:
    """The page of chunk ``ordinal``, when its document kept one."""
    pages = metadata.get(CHUNK_PAGES)
    if not isinstance(pages, list) or not 0 <= ordinal < len(pages):
        return None
    page = pages[ordinal]
    return page if isinstance(page, int) and not isinstance(page, bool) and page > 0 else None


def page_link(url: str | None, page: int | None) -> str | None:
    """``url#page=N`` (the PDF open-parameters fragment browsers' viewers follow); unchanged without a page,
    and an existing fragment is replaced, not appended to."""
    if not url or page is None:
        return url
    return f"{url.split('#', 1)[0]}#page={page}"


def page_label(page: int | None) -> str:
    return f"p. {page}" if page is not None else ""
