"""Markdown tables the way Discord can show them.

Discord's Markdown has no tables: a table arrives as lines of pipes. Each
top-level table becomes a code block whose columns line up (cell formatting is
dropped, its text kept; long cells wrap inside their column so a row stays
readable on a narrow screen). Everything else in the text is left as it was.
"""

from __future__ import annotations

import textwrap
from itertools import zip_longest

from markdown_it.token import Token

from bot.markdown import PARSER, plain_text

COLUMN_WIDTH = 32  # wider cells wrap within their column
_GAP = "  "
_FENCE = "```"


def tables_as_code(text: str) -> str:
    """``text`` with every top-level Markdown table replaced by an aligned code block."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    tokens = PARSER.parse(text)
    lines = text.split("\n")
    found: list[tuple[int, int, list[list[str]]]] = []  # (first line, end line, rows with the header first)
    for i, tok in enumerate(tokens):
        if tok.type == "table_open" and tok.level == 0 and tok.map:
            found.append((tok.map[0], tok.map[1], _rows(tokens, i)))
    for start, end, rows in reversed(found):
        lines[start:end] = [_FENCE, *_layout(rows), _FENCE]
    return "\n".join(lines)


def _rows(tokens: list[Token], start: int) -> list[list[str]]:
    rows: list[list[str]] = []
    for tok in tokens[start:]:
        if tok.type == "table_close":
            break
        if tok.type == "tr_open":
            rows.append([])
        elif tok.type == "inline" and rows:
            rows[-1].append(_cell(tok.children or []))
    return rows


def _cell(children: list[Token]) -> str:
    """A cell's text without its Markdown (emphasis markers, link targets), and never a code fence."""
    return " ".join(plain_text(children).replace(_FENCE, "'" * 3).split())


def _layout(rows: list[list[str]]) -> list[str]:
    """Rows as aligned lines; the header (first row) is underlined."""
    columns = max((len(r) for r in rows), default=0)
    widths = [max(1, min(COLUMN_WIDTH, max((len(r[c]) for r in rows if c < len(r)), default=0)))
              for c in range(columns)]
    out: list[str] = []
    for index, row in enumerate(rows):
        wrapped = [textwrap.wrap(cell, w, break_on_hyphens=False) or [""]
                   for cell, w in zip(row + [""] * (columns - len(row)), widths, strict=True)]
        out.extend(_GAP.join(p.ljust(w) for p, w in zip(parts, widths, strict=True)).rstrip()
                   for parts in zip_longest(*wrapped, fillvalue=""))
        if index == 0:
            out.append(_GAP.join("-" * w for w in widths))
    return out
