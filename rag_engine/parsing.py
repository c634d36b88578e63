"""File parsing: Markdown, plain text, HTML and PDF into titled sections.

A parser never returns half a document: anything it cannot read raises
``ParseError`` with a reason a person can act on. Files come from anyone who can
write to an ingested folder, so every step is linear in the input (no regex that
backtracks over the rest of a line, no tree walk per element); the per-file time
limit in ``rag_engine.parse_worker`` covers the third-party parsers.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from rag_engine.rst import rst_to_markdown

if TYPE_CHECKING:
    from bs4 import Tag

SUPPORTED_SUFFIXES = {".md": "markdown", ".markdown": "markdown", ".txt": "text", ".text": "text",
                      ".html": "html", ".htm": "html", ".pdf": "pdf", ".rst": "rst"}


class ParseError(ValueError):
    """A file that cannot be ingested, with the reason."""


@dataclass(slots=True)
class Section:
    heading_path: list[str]
    text: str
    page: int | None = None  # 1-based page of a PDF's section (each lies on one page); None for other formats


@dataclass(slots=True)
class ParsedDocument:
    title: str
    sections: list[Section]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def full_text(self) -> str:
        return "\n\n".join(s.text for s in self.sections)


_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S)
_TEMPLATE_OPEN = re.compile(r"\{[%{#]")
_TEMPLATE_CLOSE = {"%": "%}", "{": "}}", "#": "#}"}  # {% ... %}, {{ ... }}, {# ... #}
_ATX_OPEN = re.compile(r"(#{1,6})[ \t]")
_FENCE = re.compile(r"^\s*(```|~~~)")


def parse_file(path: Path, *, max_bytes: int) -> ParsedDocument:
    return read_document(path, max_bytes=max_bytes)[0]


def read_document(path: Path, *, max_bytes: int, follow_symlinks: bool = True) -> tuple[ParsedDocument, bytes]:
    """The parsed file and its bytes, read once. ``follow_symlinks=False`` refuses a
    symbolic link at the last step of ``path`` as the file is opened, not before."""
    kind = SUPPORTED_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise ParseError(f"unsupported file type {path.suffix or '(none)'}")
    # non-blocking: opening a FIFO must not wait for a writer (it is refused below)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | (0 if follow_symlinks else getattr(os, "O_NOFOLLOW", 0))
    try:
        with os.fdopen(os.open(path, flags), "rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise ParseError("not a regular file")
            if info.st_size > max_bytes:
                raise ParseError(f"file is {info.st_size / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB limit")
            data = f.read(max_bytes + 1)
    except OSError as exc:
        if not follow_symlinks and os.path.islink(path):
            raise ParseError("symbolic link: not followed") from exc
        raise ParseError(f"cannot read file: {exc.strerror}") from exc
    if len(data) > max_bytes:  # grew while being read
        raise ParseError(f"file is over the {max_bytes / 1e6:.0f} MB limit")
    title = path.stem.replace("-", " ").replace("_", " ").strip()
    return parse_bytes(data, kind, fallback_title=title), data


def parse_bytes(data: bytes, kind: str, *, fallback_title: str) -> ParsedDocument:
    if kind == "pdf":
        doc = parse_pdf(data, fallback_title)
    else:
        text = decode_text(data)
        if kind == "markdown":
            doc = parse_markdown(text, fallback_title)
        elif kind == "rst":  # its section titles as Markdown headings
            doc = parse_markdown(rst_to_markdown(text), fallback_title)
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


class _NoAliasLoader(yaml.SafeLoader):
    """YAML without anchors and aliases: a few aliased lists nest into billions of
    values once walked, so front matter that uses them is treated as unreadable."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.YAMLError("aliases are not allowed in front matter")
        return super().compose_node(parent, index)


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text
    try:
        meta = yaml.load(match.group(1), Loader=_NoAliasLoader) or {}
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
    """Drop ``{% ... %}``, ``{{ ... }}`` and ``{# ... #}``, each ending at its first closer.

    A scan rather than a lazy regex, which would search the rest of the text once
    for every opener that has no closer.
    """
    kept: list[str] = []
    pos = search = 0
    unclosed: set[str] = set()  # kinds with no closer left: no later opener of theirs can match
    while len(unclosed) < len(_TEMPLATE_CLOSE):
        opener = _TEMPLATE_OPEN.search(text, search)
        if opener is None:
            break
        start = opener.start()
        kind = text[start + 1]
        end = -1 if kind in unclosed else text.find(_TEMPLATE_CLOSE[kind], start + 2)
        if end < 0:
            unclosed.add(kind)
            search = start + 1
            continue
        kept.append(text[pos:start])
        pos = search = end + 2
    kept.append(text[pos:])
    return "".join(kept)


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
        heading_line = None if in_fence else _atx_heading(line)
        if heading_line:
            flush()
            level, heading = heading_line[0], _clean_inline(heading_line[1])
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, heading))
        else:
            lines.append(line)
    flush()
    return sections


def _atx_heading(line: str) -> tuple[int, str] | None:
    """``(level, text)`` of an ATX heading (``## Text ##``), else None.

    What ``^(#{1,6})[ \\t]+(.+?)[ \\t#]*$`` matches, without its backtracking
    (quadratic on a long run of spaces inside a heading).
    """
    opener = _ATX_OPEN.match(line)
    if opener is None:
        return None
    level = len(opener.group(1))
    rest = line[level:]
    body = rest.lstrip(" \t")
    if not body:  # only blanks: the last one is the text
        return (level, rest[-1]) if len(rest) > 1 else None
    return level, body.rstrip(" \t#") or body[0]


def _clean_inline(text: str) -> str:
    return re.sub(r"[*_`]+", "", _links_to_text(text)).strip()


def _links_to_text(text: str) -> str:
    """``[label](target)`` -> ``label``, in one scan.

    A link's label ends at the first ``]`` after its ``[``, so every ``[`` before
    that ``]`` shares its fate, and once no ``)`` is left no later link can close.
    """
    kept: list[str] = []
    pos = 0
    opening = text.find("[")
    while opening >= 0:
        closing = text.find("]", opening + 1)
        if closing < 0:
            break
        if not text.startswith("(", closing + 1):
            opening = text.find("[", closing + 1)
            continue
        end = text.find(")", closing + 2)
        if end < 0:
            break
        kept += [text[pos:opening], text[opening + 1:closing]]
        pos = end + 1
        opening = text.find("[", pos)
    kept.append(text[pos:])
    return "".join(kept)


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
    has_h1 = any(line.startswith("# ") for line in md)
    title = top[0] if (top and has_h1) else fallback_title
    return ParsedDocument(title=title, sections=sections)


_HTML_BLOCKS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "pre", "blockquote", "tr", "dt", "dd"})
_HTML_DROPPED = frozenset({"script", "style", "nav", "header", "footer", "noscript", "template", "svg", "form"})
_HTML_CELLS = frozenset({"td", "th"})


def parse_html(text: str, fallback_title: str) -> ParsedDocument:
    from bs4 import BeautifulSoup  # lazy: only HTML files need bs4
    from bs4.exceptions import ParserRejectedMarkup  # lazy: as above

    try:
        soup = BeautifulSoup(text, "html.parser")
    except ParserRejectedMarkup as exc:  # e.g. a "<![" that opens no known declaration
        raise ParseError(f"unreadable HTML ({str(exc).splitlines()[-1][:120]})") from exc
    title_tag = _first(soup, "title")
    for tag in list(_outermost(soup, _HTML_DROPPED)):
        tag.decompose()
    root = soup.body or soup
    md: list[str] = []
    in_table = False  # the last block kept was a table row
    for el in _outermost(root, _HTML_BLOCKS):  # an inner block's text is part of its outer block's
        if el.name == "tr":  # a Markdown table row, so answers can quote rows by column (rag_engine.pipe_tables)
            cells = [" ".join(c.get_text(" ", strip=True).split()) for c in _outermost(el, _HTML_CELLS)]
            if any(cells):
                row = "| " + " | ".join(cells) + " |"
                # a table starts after a blank line, and its first row is its header
                md += [row] if in_table else ["", row, "|" + "---|" * len(cells)]
                in_table = True
            continue
        content = " ".join(el.get_text(" ", strip=True).split())
        if not content:
            continue
        if in_table:  # a blank line ends the table
            md.append("")
            in_table = False
        if el.name[0] == "h" and el.name[1:].isdigit():
            md.append(f"{'#' * int(el.name[1])} {content}")
        elif el.name == "li":
            md.append(f"- {content}")
        else:
            md.append(content + "\n")
    sections = markdown_sections("\n".join(md))
    h1 = _first(root, "h1")
    title = (title_tag.get_text(strip=True) if title_tag else "") or (h1.get_text(strip=True) if h1 else "")
    return ParsedDocument(title=title or fallback_title, sections=sections)


def _outermost(root: Tag, names: frozenset[str]) -> Iterator[Tag]:
    """The tags below ``root`` named in ``names`` with no such tag above them, in document order.

    One visit per node, with an explicit stack: looking up each tag's ancestors
    instead is quadratic, and recursion fails on deep nesting. Tags are yielded
    before their parent's later children are visited: collect them before
    removing any.
    """
    from bs4 import Tag  # lazy: only HTML files need bs4

    stack = [iter(root.contents)]
    while stack:
        node = next(stack[-1], None)
        if node is None:
            stack.pop()
        elif isinstance(node, Tag):
            if node.name in names:
                yield node
            else:
                stack.append(iter(node.contents))


def _first(root: Tag, name: str) -> Tag | None:
    """``root.find(name)`` (the first in document order is never inside another), without its
    per-node filter machinery."""
    return next(_outermost(root, frozenset({name})), None)


def parse_pdf(data: bytes, fallback_title: str) -> ParsedDocument:
    """Layout-aware: tables as rows that keep their headers, headings by font, a page per section
    (``rag_engine.pdf_layout``)."""
    from rag_engine.pdf_layout import parse_pdf_layout  # lazy: pdfplumber only when a PDF is parsed

    if not data.startswith(b"%PDF"):
        raise ParseError("not a PDF file (missing %PDF header)")
    return parse_pdf_layout(data, fallback_title)
