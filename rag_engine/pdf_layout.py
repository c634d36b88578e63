"""A PDF's layout read into titled, page-numbered sections: headings by font, tables as rows.

Plain text extraction runs a table's cells together ("Three Months Ended Six Months
Ended April 1, 2023 …") and loses which figure belongs to which column. Here each
page's words come with their position, size and font (pdfplumber, MIT), so:

* ruled tables (pdfplumber's line-based finder) and borderless ones (lines whose
  words fall into columns with at least one figure) become one line per row that
  names every cell by its column header, as a sentence: ``iPhone — Three Months
  Ended April 1, 2023: $51,334; …`` — a row stays quotable whole, whatever chunk it
  lands in;
* headings are lines set larger than the body text, or short lines wholly in bold;
  their sizes give the levels;
* the running header and footer (the same line on most pages, page numbers aside)
  are dropped;
* every section lies on one page (``Section.page``), so a chunk can cite its page;
* the title is the largest line on page 1 when the metadata title is missing or
  looks like an identifier (an accession number, a hash, a file name).

Single pass over each page's words, sorted once; nothing here is worse than
``n log n`` in the words of a page.
"""

from __future__ import annotations

import bisect
import io
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rag_engine.parsing import ParsedDocument, ParseError, Section

if TYPE_CHECKING:
    from pdfplumber.page import Page

PARSER = "pdfplumber-layout/1"  # documents.metadata["parser"]: a new revision re-indexes PDFs

HEADING_RATIO = 1.12  # a line this much larger than the body text is a heading
HEADING_MAX_WORDS = 16
CELL_GAP = 0.9  # a gap between words wider than this many ems separates table cells
MARGIN = 0.08  # share of the page height at top and bottom where running headers and footers sit
MAX_HEADER_LINES = 3  # header lines looked for above a borderless table's first row
GROUP_MAX_WORDS = 10  # a label-only line inside a table ("Operating expenses:") is at most this long

_FIGURE = re.compile(r"[(\-–—+]?[$€£¥]?\s?\(?[-–]?\d[\d,]*(?:\.\d+)?\)?\s?(?:%|pts?|x|bps)?\)?")
_DASH = frozenset({"—", "–", "-", "$—", "$ —", "n/a", "N/A", "nm", "NM"})
_BOLD = re.compile(r"bold|black|heavy|semibold|demi", re.I)
_ID_TITLE = re.compile(
    r"[\d\W_]+"  # digits and punctuation only: an accession number, a date stamp
    r"|(?:[0-9a-f]{2,}[-_]?){4,}"  # hex: a hash, a UUID
    r"|.*\.(?:pdf|docx?|rtf|odt|pages|tex|indd|txt|html?|xlsx?|pptx?)"  # a file name
    r"|untitled.*|microsoft (?:word|powerpoint|excel) - .*"
    r"|\S*\d\S*",  # one "word" with digits in it: doc_2023_q2_v3
    re.I,
)
_PAGE_NUMBER = re.compile(r"(?:page\s*)?\d{1,4}(?:\s*(?:of|/)\s*\d{1,4})?|[-–—]\s*\d{1,4}\s*[-–—]", re.I)
_BULLET = re.compile(r"^(?:[•◦▪‣●○■□–]|\(cid:\d+\))\s*")  # a glyph with no Unicode mapping: "(cid:127)"


@dataclass(slots=True)
class _Word:
    text: str
    x0: float
    x1: float
    top: float
    bottom: float
    size: float
    bold: bool


@dataclass(slots=True)
class _Line:
    words: list[_Word]
    top: float
    bottom: float
    size: float = 0.0
    bold: bool = False
    cells: list[_Word] = field(default_factory=list)  # words merged into cells split by wide gaps

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)

    @property
    def x0(self) -> float:
        return self.words[0].x0


@dataclass(slots=True)
class _Table:
    top: float
    rows: list[str]  # "label — column: value; …"


@dataclass(slots=True)
class _Page:
    number: int
    height: float
    items: list[_Line | _Table]  # in reading order


def is_id_title(title: str) -> bool:
    """A metadata title that names no document: an id, a hash, a file name, "Untitled"."""
    return not title.strip() or _ID_TITLE.fullmatch(title.strip()) is not None


def parse_pdf_layout(data: bytes, fallback_title: str) -> ParsedDocument:
    """The PDF's sections (one page each), its title and ``metadata["parser"]``; ``ParseError`` if unreadable."""
    import pdfplumber  # lazy: only PDFs need pdfplumber (and pdfminer)

    try:
        with pdfplumber.open(io.BytesIO(data)) as pdf:
            info_title = str((pdf.metadata or {}).get("Title") or "")
            pages = []
            for n, page in enumerate(pdf.pages, start=1):
                pages.append(_read_page(page, n))
                page.close()  # its parsed objects are not needed again: memory stays one page deep
    except ParseError:
        raise
    except Exception as exc:  # pdfminer raises many unrelated types on a broken file
        raise ParseError(f"unreadable PDF ({type(exc).__name__}: {str(exc)[:120]})") from exc
    _drop_running_lines(pages)
    lines = [item for p in pages for item in p.items if isinstance(item, _Line)]
    if not lines and not any(p.items for p in pages):
        raise ParseError("PDF has no extractable text (scanned image?)")
    body = _body_size(lines)
    levels = _heading_levels(lines, body)
    title_lines = _first_page_title(pages[0] if pages else None, levels)
    first_page_title = " ".join(line.text for line in title_lines).strip()
    title = info_title.strip() if not is_id_title(info_title) else (first_page_title or fallback_title)
    if first_page_title and first_page_title.casefold() == title.casefold():
        for line in title_lines:  # the document's title, not a section: its sections are under no heading
            levels.pop(id(line), None)
            line.words.clear()
    sections = _sections(pages, levels)
    return ParsedDocument(title=title, sections=sections, metadata={"parser": PARSER, "pages": len(pages)})


# -- one page -------------------------------------------------------------------------------------------------

def _read_page(page: Page, number: int) -> _Page:
    ruled = [t for t in page.find_tables() if len(t.rows) >= 2 and len(t.rows[0].cells) >= 2]
    boxes = [t.bbox for t in ruled]
    words = [_word(w) for w in page.extract_words(extra_attrs=["size", "fontname"], use_text_flow=False)
             if not any(_inside(w, box) for box in boxes)]
    items: list[_Line | _Table] = [_Table(top=float(t.bbox[1]), rows=_ruled_rows(t.extract())) for t in ruled]
    items += _borderless_tables(_lines(words))
    items.sort(key=lambda item: item.top)
    return _Page(number=number, height=float(page.height), items=items)


def _word(w: dict[str, Any]) -> _Word:
    return _Word(text=str(w["text"]), x0=float(w["x0"]), x1=float(w["x1"]), top=float(w["top"]),
                 bottom=float(w["bottom"]), size=round(float(w.get("size") or 0.0), 1),
                 bold=bool(_BOLD.search(str(w.get("fontname") or ""))))


def _inside(w: dict[str, Any], box: tuple[float, float, float, float]) -> bool:
    cx, cy = (float(w["x0"]) + float(w["x1"])) / 2, (float(w["top"]) + float(w["bottom"])) / 2
    return box[0] <= cx <= box[2] and box[1] <= cy <= box[3]


def _lines(words: list[_Word]) -> list[_Line]:
    """Words grouped into lines (tops within a third of the text size), each line left to right."""
    lines: list[_Line] = []
    for w in sorted(words, key=lambda w: (w.top, w.x0)):
        last = lines[-1] if lines else None
        if last is not None and w.top - last.top <= max(2.0, 0.35 * max(w.size, last.size)):
            last.words.append(w)
            last.bottom = max(last.bottom, w.bottom)
        else:
            lines.append(_Line(words=[w], top=w.top, bottom=w.bottom))
    for line in lines:
        line.words.sort(key=lambda w: w.x0)
        chars = Counter[float]()
        for w in line.words:
            chars[w.size] += len(w.text)
        line.size = chars.most_common(1)[0][0]
        line.bold = all(w.bold for w in line.words)
        line.cells = _cells(line.words, line.size)
    return lines


def _cells(words: list[_Word], size: float) -> list[_Word]:
    """Words joined into cells: a gap wider than ``CELL_GAP`` ems starts a new one; a lone "$" joins the next."""
    cells: list[_Word] = []
    for w in words:
        last = cells[-1] if cells else None
        if last is not None and (w.x0 - last.x1 <= CELL_GAP * size or last.text in {"$", "€", "£", "("}):
            last.text = f"{last.text}{'' if last.text in {'$', '€', '£', '('} else ' '}{w.text}"
            last.x1 = w.x1
        else:
            cells.append(_Word(w.text, w.x0, w.x1, w.top, w.bottom, w.size, w.bold))
    return cells


def _is_figure(text: str) -> bool:
    return text in _DASH or _FIGURE.fullmatch(text) is not None


# -- tables ---------------------------------------------------------------------------------------------------

def _ruled_rows(grid: Sequence[Sequence[str | None]]) -> list[str]:
    """Rows of a ruled table; header rows are the leading rows without figures, spans filled rightwards."""
    cells = [[" ".join((c or "").split()) for c in row] for row in grid]
    spans = [[c is None for c in row] for row in grid]
    n_header = 0
    while n_header < min(MAX_HEADER_LINES, len(cells) - 1) and any(cells[n_header][1:]) \
            and not any(_is_figure(c) for c in cells[n_header][1:] if c):  # a label alone is a group, not a header
        n_header += 1
    n_header = max(1, n_header)
    width = max(len(r) for r in cells)
    headers = [""] * width
    for row, spanned in zip(cells[:n_header], spans[:n_header], strict=True):
        filled = ""
        for j in range(1, width):
            text = row[j] if j < len(row) else ""
            filled = filled if (j < len(spanned) and spanned[j]) else text
            headers[j] = f"{headers[j]} {filled}".strip()
    out: list[str] = []
    group = ""
    for row in cells[n_header:]:
        label = row[0] if row else ""
        if label and not any(row[1:]):  # a label alone: the group of the rows below ("Operating expenses:")
            group = label.rstrip(":").strip()
            continue
        if text := _row_text(f"{group}: {label}" if group and label else label, headers[1:], row[1:]):
            out.append(text)
    return out


def _row_text(label: str, headers: Sequence[str], values: Sequence[str]) -> str:
    pairs = [f"{h}: {v}" if h else v for h, v in zip(headers, values, strict=False) if v]
    if not pairs:
        return label
    return f"{label} — {'; '.join(pairs)}" if label else "; ".join(pairs)


def _borderless_tables(lines: list[_Line]) -> list[_Line | _Table]:
    """``lines`` with each run of figure rows (and the header lines just above it) replaced by a table.

    A run may hold label-only lines that a row follows: a group ("Operating expenses:") or the first
    line of a wrapped label; one just above the first row joins the table as a group."""
    out: list[_Line | _Table] = []
    i = 0
    while i < len(lines):
        j = i
        while j < len(lines) and (j == i or _close(lines[j - 1], lines[j])) and (
                _is_row(lines[j]) or (j > i and j + 1 < len(lines) and _is_label_only(lines[j])
                                      and _is_row(lines[j + 1]) and _close(lines[j], lines[j + 1]))):
            j += 1
        if sum(_is_row(x) for x in lines[i:j]) < 2:
            out.append(lines[i])
            i += 1
            continue
        rows = lines[i:j]
        label_x0 = min(r.cells[0].x0 for r in rows)
        while len(rows) > 2 and rows[0].cells[0].x0 > label_x0 + 2 * rows[0].size:
            rows = rows[1:]  # no label: a header of years ("2023  2022"), not a row
        headers: list[_Line] = lines[i:j - len(rows)]
        while not headers and out and isinstance(out[-1], _Line) and _is_group_above(out[-1], rows[0]):
            line = out.pop()
            assert isinstance(line, _Line)
            rows.insert(0, line)
        label_x1 = max(r.cells[0].x1 for r in rows if _is_row(r))
        while (out and isinstance(out[-1], _Line) and len(headers) < MAX_HEADER_LINES
               and _close(out[-1], headers[0] if headers else rows[0])
               and (out[-1].x0 > label_x1 or len(out[-1].cells) >= 3)):
            line = out.pop()
            assert isinstance(line, _Line)
            headers.insert(0, line)
        out.append(_Table(top=(headers or rows)[0].top, rows=_aligned_rows(headers, rows)))
        i = j
    return out


def _is_row(line: _Line) -> bool:
    return len(line.cells) >= 2 and any(_is_figure(c.text) for c in line.cells[1:])


def _is_label_only(line: _Line) -> bool:
    return len(line.cells) == 1 and not _is_figure(line.text) and len(line.text.split()) <= GROUP_MAX_WORDS


def _is_group_above(line: _Line, first: _Line) -> bool:
    """``line`` names the group of the rows starting at ``first``: ends with a colon, or the rows are indented."""
    return (_is_label_only(line) and _close(line, first) and line.x0 <= first.cells[0].x0 + 2
            and (line.text.rstrip().endswith(":") or first.cells[0].x0 > line.x0 + 2))


def _close(upper: _Line, lower: _Line) -> bool:
    return lower.top - upper.bottom <= 1.6 * max(upper.size, lower.size)


def _aligned_rows(headers: list[_Line], rows: list[_Line]) -> list[str]:
    """Columns from the rows' value cells (overlapping x-ranges merge). Header lines are read bottom-up: a
    cell names the columns it overlaps, as widened by the header cells already placed below it, so a
    spanning "Three Months Ended" reaches both dates under it."""
    spans: list[list[float]] = []
    for cell in sorted((c for r in rows for c in r.cells[1:]), key=lambda c: c.x0):
        if spans and cell.x0 <= spans[-1][1] + 1:
            spans[-1][1] = max(spans[-1][1], cell.x1)
        else:
            spans.append([cell.x0, cell.x1])
    starts = [a for a, _ in spans]  # sorted and disjoint, before headers widen them
    base = [(a, b) for a, b in spans]
    names = [""] * len(spans)
    for line in reversed(headers):
        widened: list[tuple[int, float, float]] = []
        for cell in line.cells:
            hit = [k for k, (a, b) in enumerate(spans) if cell.x0 <= b and cell.x1 >= a]
            if not hit:
                if cell.x1 < spans[0][0]:
                    continue  # over the label column: names the rows, not a figure
                centre = (cell.x0 + cell.x1) / 2
                hit = [min(range(len(spans)), key=lambda k: abs((spans[k][0] + spans[k][1]) / 2 - centre))]
            for k in hit:
                names[k] = f"{cell.text} {names[k]}".strip()
            if len(hit) == 1:
                widened.append((hit[0], cell.x0, cell.x1))
        for k, a, b in widened:
            spans[k] = [min(spans[k][0], a), max(spans[k][1], b)]
    out: list[str] = []
    group: tuple[str, float] | None = None  # ("Operating expenses", its x0)
    wrapped = ""  # a label's first line, when it wraps
    for n, row in enumerate(rows):
        if not _is_row(row):
            nxt = rows[n + 1]
            if row.text.rstrip().endswith(":") or nxt.cells[0].x0 > row.x0 + 2:
                group, wrapped = (row.text.strip().rstrip(":").strip(), row.x0), ""
            else:
                wrapped = f"{wrapped} {row.text.strip()}".strip()
            continue
        has_label = not _is_figure(row.cells[0].text)
        label, wrapped = f"{wrapped} {row.cells[0].text if has_label else ''}".strip(), ""
        if group is not None and row.cells[0].x0 > group[1] + 2:
            label = f"{group[0]}: {label}" if label else group[0]
        elif group is not None:
            group = None
        values = [""] * len(spans)
        for cell in row.cells[1:] if has_label else row.cells:
            at = bisect.bisect_right(starts, cell.x0) - 1  # the nearest column is this one or a neighbour
            k = min(range(max(0, at - 1), min(len(base), at + 2)),
                    key=lambda k: max(base[k][0] - cell.x1, cell.x0 - base[k][1], 0.0))
            values[k] = f"{values[k]} {cell.text}".strip()
        out.append(_row_text(label, names, values))
    return out


# -- the whole document ---------------------------------------------------------------------------------------

def _drop_running_lines(pages: list[_Page]) -> None:
    """Drop page numbers and the lines repeated in the top or bottom margin of most pages."""
    def key(line: _Line) -> str:
        return re.sub(r"\d+", "#", line.text.casefold())

    def in_margin(line: _Line, page: _Page) -> bool:
        return line.bottom < MARGIN * page.height or line.top > (1 - MARGIN) * page.height

    seen = Counter(key(line) for p in pages for line in {key(x): x for x in p.items
                                                          if isinstance(x, _Line) and in_margin(x, p)}.values())
    running = {k for k, n in seen.items() if len(pages) >= 2 and n >= max(2, len(pages) / 2)}
    for p in pages:
        p.items = [x for x in p.items if not (isinstance(x, _Line) and in_margin(x, p) and
                                               (key(x) in running or _PAGE_NUMBER.fullmatch(x.text.strip())))]


def _body_size(lines: list[_Line]) -> float:
    chars = Counter[float]()
    for line in lines:
        chars[line.size] += len(line.text)
    return chars.most_common(1)[0][0] if chars else 0.0


def _looks_like_heading(line: _Line) -> bool:
    text = line.text.strip()
    return (0 < len(text.split()) <= HEADING_MAX_WORDS and not text.endswith((".", ",", ";", ":"))
            and any(ch.isalpha() for ch in text) and len(line.cells) == 1)


def _heading_levels(lines: list[_Line], body: float) -> dict[int, int]:
    """Heading level by ``id`` of each heading line: larger sizes first, bold body-size lines last."""
    candidates = [line for line in lines if _looks_like_heading(line)]
    sizes = sorted({line.size for line in candidates if line.size >= body * HEADING_RATIO}, reverse=True)
    level = {size: n for n, size in enumerate(sizes, start=1)}
    out: dict[int, int] = {}
    for line in candidates:
        if line.size in level:
            out[id(line)] = level[line.size]
        elif line.bold and line.size >= body * 0.95:
            out[id(line)] = len(sizes) + 1
    return out


def _first_page_title(page: _Page | None, levels: dict[int, int]) -> list[_Line]:
    """The first page's largest heading: its lines (several when it wraps)."""
    if page is None:
        return []
    heads = [x for x in page.items if isinstance(x, _Line) and id(x) in levels]
    if not heads:
        return []
    biggest = max(h.size for h in heads)
    run: list[_Line] = []
    for h in heads:
        if h.size == biggest:
            run.append(h)
        elif run:
            break
    return run


def _sections(pages: list[_Page], levels: dict[int, int]) -> list[Section]:
    """Sections under a stack of headings, cut at every heading and every page break."""
    sections: list[Section] = []
    stack: list[tuple[int, str]] = []
    for page in pages:
        blocks: list[str] = []
        previous: _Line | None = None

        for item in page.items:
            if isinstance(item, _Table):
                # a sentence per row: chunking and the extractive answer cut text at sentence ends
                blocks.append("\n" + "\n".join(row if row.endswith(".") else f"{row}." for row in item.rows) + "\n")
                previous = None
                continue
            if not item.words:  # the title, taken out
                continue
            level = levels.get(id(item))
            if level is not None:
                if previous is not None and id(previous) in levels and levels[id(previous)] == level \
                        and _close(previous, item) and stack:  # a heading that wraps onto a second line
                    stack[-1] = (level, f"{stack[-1][1]} {item.text}")
                else:
                    _flush(sections, stack, blocks, page.number)
                    while stack and stack[-1][0] >= level:
                        stack.pop()
                    stack.append((level, item.text.strip()))
                previous = item
                continue
            text = _BULLET.sub("- ", item.text)
            if previous is None or not _close(previous, item) or text.startswith("- "):
                blocks.append("")  # a paragraph break
            blocks.append(text)
            previous = item
        _flush(sections, stack, blocks, page.number)
    return sections


def _flush(sections: list[Section], stack: list[tuple[int, str]], blocks: list[str], page: int) -> None:
    text = "\n".join(blocks).strip()
    if text:
        sections.append(Section([h for _, h in stack], text, page=page))
    blocks.clear()
