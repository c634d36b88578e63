"""File parsing: Markdown, plain text, HTML and PDF into titled sections.

A parser never returns half a document: anything it cannot read raises
``ParseError`` with a reason a person can act on.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SUPPORTED_SUFFIXES = {".md": "markdown", ".markdown": "markdown", ".txt": "text", ".text": "text",
                      ".html": "html", ".htm": "html", ".pdf": "pdf"}


class ParseError(ValueError):
    """A file that cannot be ingested, with the reason."""


@dataclass(slots=True)
class Section:
    heading_path: list[str]
    text: str


@dataclass(slots=True)
class ParsedDocument:
    title: str
    sections: list[Section]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def full_text(self) -> str:
        return "\n\n".join(s.text for s in self.sections)


_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S)
_TEMPLATE_TAGS = re.compile(r"\{%-?.*?-?%\}|\{\{-?.*?-?\}\}|\{#.*?#\}", re.S)
_ATX = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


def parse_file(path: Path, *, max_bytes: int) -> ParsedDocument:
    kind = SUPPORTED_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise ParseError(f"unsupported file type {path.suffix or '(none)'}")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ParseError(f"cannot read file: {exc.strerror}") from exc
    if size > max_bytes:
        raise ParseError(f"file is {size / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB limit")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ParseError(f"cannot read file: {exc.strerror}") from exc
    return parse_bytes(data, kind, fallback_title=path.stem.replace("-", " ").replace("_", " ").strip())


def parse_bytes(data: bytes, kind: str, *, fallback_title: str) -> ParsedDocument:
    if kind == "pdf":
        doc = parse_pdf(data, fallback_title)
    else:
        text = decode_text(data)
        if kind == "markdown":
            doc = parse_markdown(text, fallback_title)
        elif kind == "html":
            doc = parse_html(text, fallback_title)
        else:
            doc = parse_plain_text(text, fallback_title)
    for s in doc.sections:  # a PDF's extracted text or a YAML "\0" escape can still carry NUL
        s.text = s.text.replace("\x00", "")
        s.heading_path = [h.replace("\x00", "") for h in s.heading_path]
    doc.title = doc.title.replace("\x00", "")
    doc.sections = [s for s in doc.sections if s.text.strip()]
    if not doc.sections:
        raise ParseError("no text found")
    return doc


def decode_text(data: bytes) -> str:
    if b"\x00" in data:  # anywhere: Postgres text cannot hold NUL, and a late one would fail the write
        raise ParseError("binary content (NUL bytes) in a text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParseError(f"not valid UTF-8 (bad byte at offset {exc.start})") from exc


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text
    try:
        meta = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError:
        meta = {}
    if not isinstance(meta, dict):
        meta = {}
    return {str(k): _jsonable(v) for k, v in meta.items()}, text[match.end():]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k).replace("\x00", ""): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, str):
        return value.replace("\x00", "")  # jsonb cannot hold \u0000
    if value is None or isinstance(value, (int, float, bool)):
        return value
    return str(value).replace("\x00", "")


def strip_template_tags(text: str) -> str:
    return _TEMPLATE_TAGS.sub("", text)


def parse_markdown(text: str, fallback_title: str) -> ParsedDocument:
    meta, body = split_front_matter(text)
    body = strip_template_tags(body)
    sections = markdown_sections(body)
    title = str(meta.get("title") or "").strip()
    if not title:
        first = next((s.heading_path[0] for s in sections if s.heading_path), None)
        title = first or fallback_title
    return ParsedDocument(title=title, sections=sections, metadata=meta)


def markdown_sections(body: str) -> list[Section]:
    """Split on ATX headings (outside code fences), keeping the heading path."""
    sections: list[Section] = []
    stack: list[tuple[int, str]] = []
    lines: list[str] = []
    in_fence = False

    def flush() -> None:
        text = "\n".join(lines).strip()
        if text:
            sections.append(Section([h for _, h in stack], text))
        lines.clear()

    for line in body.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
        match = None if in_fence else _ATX.match(line)
        if match:
            flush()
            level, heading = len(match.group(1)), _clean_inline(match.group(2))
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, heading))
        else:
            lines.append(line)
    flush()
    return sections


def _clean_inline(text: str) -> str:
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links -> their text
    return re.sub(r"[*_`]+", "", text).strip()


def parse_plain_text(text: str, fallback_title: str) -> ParsedDocument:
    """Headings are underlined lines (=== / ---) or short ALL-CAPS lines."""
    lines = text.splitlines()
    md: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if line.strip() and re.fullmatch(r"=+", nxt) and len(nxt) >= 3:
            md.append(f"# {line.strip()}")
            i += 2
            continue
        if line.strip() and re.fullmatch(r"-+", nxt) and len(nxt) >= 3:
            md.append(f"## {line.strip()}")
            i += 2
            continue
        stripped = line.strip()
        if 3 <= len(stripped) <= 80 and stripped.upper() == stripped and re.search(r"[A-Z]{3}", stripped) \
                and not stripped.endswith((".", ",")):
            md.append(f"## {stripped.title()}")
        else:
            md.append(line)
        i += 1
    sections = markdown_sections("\n".join(md))
    top = [s.heading_path[0] for s in sections if s.heading_path]
    has_h1 = any(l.startswith("# ") for l in md)
    title = top[0] if (top and has_h1) else fallback_title
    return ParsedDocument(title=title, sections=sections)


_HTML_BLOCKS = ["h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "pre", "blockquote", "tr", "dt", "dd"]


def parse_html(text: str, fallback_title: str) -> ParsedDocument:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(text, "html.parser")
    title_tag = soup.find("title")
    for tag in soup(["script", "style", "nav", "header", "footer", "noscript", "template", "svg", "form"]):
        tag.decompose()
    root = soup.body or soup
    md: list[str] = []
    block_set = set(_HTML_BLOCKS)
    for el in root.find_all(_HTML_BLOCKS):
        if any(p.name in block_set for p in el.parents):
            continue  # the outer block already carries this text
        if el.name == "tr":  # one row per line, cells kept apart
            cells = [" ".join(c.get_text(" ", strip=True).split()) for c in el.find_all(["td", "th"])]
            content = " | ".join(c for c in cells if c)
        else:
            content = " ".join(el.get_text(" ", strip=True).split())
        if not content:
            continue
        if el.name[0] == "h" and el.name[1:].isdigit():
            md.append(f"{'#' * int(el.name[1])} {content}")
        elif el.name == "li":
            md.append(f"- {content}")
        else:
            md.append(content + "\n")
    sections = markdown_sections("\n".join(md))
    h1 = root.find("h1")
    title = (title_tag.get_text(strip=True) if title_tag else "") or (h1.get_text(strip=True) if h1 else "")
    return ParsedDocument(title=title or fallback_title, sections=sections)


def parse_pdf(data: bytes, fallback_title: str) -> ParsedDocument:
    from pypdf import PdfReader

    if not data.startswith(b"%PDF"):
        raise ParseError("not a PDF file (missing %PDF header)")
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        pages = [page.extract_text() or "" for page in reader.pages]
        info_title = (reader.metadata.title if reader.metadata else None) or ""
    except Exception as exc:  # noqa: BLE001 - pypdf raises many types on damaged files
        raise ParseError(f"unreadable PDF ({type(exc).__name__}: {str(exc)[:120]})") from exc
    text = "\n\n".join(pages)
    if not text.strip():
        raise ParseError("PDF has no extractable text (scanned image?)")
    doc = parse_plain_text(text, fallback_title)
    if info_title.strip():
        doc.title = info_title.strip()
    return doc
