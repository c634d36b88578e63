"""Markdown pipe tables in passages and answers, made readable.

Chunking joins a section's lines with spaces, so a table stored in a chunk is one
long line of pipes (``| Service | SLI | |---|---| | API | 5xx |``), and a model
quoting it copies that line. Tables are found here by their separator row, on one
line or several, and given back in a form a reader can follow: one sentence per
row that names each cell by its column (``Service: API; SLI: 5xx``) for quoting,
or a proper multi-line Markdown table that the chat adapters lay out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

_SEPARATOR = re.compile(r"\|(?:[ \t]*:?-+:?[ \t]*\|)+")
_HEADER_REACH = 4000  # characters before a separator searched for its header row


@dataclass(frozen=True, slots=True)
class Table:
    """A table found in ``text[start:end]``: its header cells and body rows (cells stripped)."""

    start: int
    end: int
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    separator: str  # the separator row as written (keeps column alignment)


def find_tables(text: str) -> list[Table]:
    """Every pipe table in ``text`` with a header row, flattened onto one line or not, in order."""
    tables: list[Table] = []
    done = 0
    for sep in _SEPARATOR.finditer(text):
        if sep.start() < done:
            continue
        columns = sep.group(0).count("|") - 1
        header = _header_before(text, sep.start(), columns)
        if header is None:
            continue
        start, cells = header
        rows, end = _rows_after(text, sep.end(), columns)
        tables.append(Table(start, end, cells, rows, sep.group(0)))
        done = end
    return tables


def row_sentences(table: Table) -> list[str]:
    """One line per body row, each cell named by its column: ``Service: API; SLI: 5xx``."""
    lines = []
    for row in table.rows:
        pairs = [f"{name}: {cell}" if name else cell for name, cell in zip(table.header, row, strict=False) if cell]
        if pairs:
            lines.append("; ".join(pairs))
    return lines


def restore_tables(text: str) -> str:
    """``text`` with each table flattened onto one line put back on lines of its own."""
    out: list[str] = []
    pos = 0
    for table in find_tables(text):
        if "\n" in text[table.start:table.end]:
            continue  # already a Markdown table
        before = text[pos:table.start].rstrip()
        out.append(f"{before}\n\n" if before else "")
        lines = [_row(table.header), table.separator, *(_row(r) for r in table.rows)]
        out.append("\n".join(lines) + "\n\n")
        pos = table.end
        while pos < len(text) and text[pos].isspace():
            pos += 1
    out.append(text[pos:])
    return "".join(out).strip() if pos else text


def _row(cells: tuple[str, ...]) -> str:
    return "| " + " | ".join(cells) + " |"


@lru_cache(maxsize=32)
def _row_re(columns: int) -> re.Pattern[str]:
    return re.compile(r"[ \t]*\n?[ \t]*\|((?:[^|\n]*\|){" + str(columns) + "})")


def _header_before(text: str, at: int, columns: int) -> tuple[int, tuple[str, ...]] | None:
    """The header row ending right before the separator at ``at`` (on its line or the one above):
    where it starts and its cells, or None when ``columns`` cells do not end there."""
    end = at
    while end > 0 and text[end - 1] in " \t":
        end -= 1
    if end > 0 and text[end - 1] == "\n":
        end -= 1
        while end > 0 and text[end - 1] in " \t":
            end -= 1
    if end == 0 or text[end - 1] != "|":
        return None
    floor = max(text.rfind("\n", max(0, end - _HEADER_REACH), end) + 1, end - _HEADER_REACH, 0)
    start = end - 1
    for _ in range(columns):  # back over one cell and the pipe that opens it
        start = text.rfind("|", floor, start)
        if start < 0:
            return None
    if start > 0 and not text[start - 1].isspace():
        return None
    return start, tuple(cell.strip() for cell in text[start + 1:end - 1].split("|"))


def _rows_after(text: str, pos: int, columns: int) -> tuple[tuple[tuple[str, ...], ...], int]:
    """The body rows following a separator (as many as have ``columns`` cells) and where they end."""
    rows: list[tuple[str, ...]] = []
    pattern = _row_re(columns)
    while (found := pattern.match(text, pos)) is not None:
        rows.append(tuple(c.strip() for c in found.group(1)[:-1].split("|")))
        pos = found.end()
    return tuple(rows), pos
