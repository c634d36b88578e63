"""reStructuredText read as Markdown: section titles become ``#`` headings, so an ``.rst`` file
gets the same heading paths as a Markdown one (docs repositories mix both).

Only the structure is translated: a title underlined (and optionally overlined) with one
punctuation character; levels follow the order in which the styles first appear, as in
docutils. Directive and target lines (``.. note::``, ``.. _label:``) are dropped, their
indented content is kept as text; ``::`` literal blocks stay text. No docutils dependency.
"""

from __future__ import annotations

import re

_ADORNMENT = re.compile(r"([=\-~^\"'`#*+:.!$%&,;<>?@_|/\\()\[\]{}])\1{2,}\s*$")
_DIRECTIVE = re.compile(r"\s*\.\.\s+(?:_[^:]+:.*|[\w:-]+::\s*|\|[^|]+\|\s+[\w-]+::.*)$")
_MAX_LEVEL = 6


def rst_to_markdown(text: str) -> str:
    """``text`` with its section titles as ATX headings and directive lines removed."""
    lines = text.splitlines()
    styles: list[tuple[str, bool]] = []  # (character, overlined) in order of first use: level = index + 1
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        heading = _title(lines, i)
        if heading is not None:
            title, style, used = heading
            if style not in styles:
                styles.append(style)
            out.append("#" * min(styles.index(style) + 1, _MAX_LEVEL) + " " + title)
            i += used
            continue
        if not _DIRECTIVE.match(line):
            out.append(line)
        i += 1
    return "\n".join(out) + "\n"


def _title(lines: list[str], i: int) -> tuple[str, tuple[str, bool], int] | None:
    """The section title starting at line ``i``: (title, style, lines used), else None."""
    over = _ADORNMENT.match(lines[i])
    if over and i + 2 < len(lines):  # overline, title, underline of the same character
        title, under = lines[i + 1].strip(), _ADORNMENT.match(lines[i + 2])
        if title and under and under.group(1) == over.group(1) and not _ADORNMENT.match(lines[i + 1]):
            return title, (over.group(1), True), 3
    if i + 1 < len(lines) and lines[i].strip() and not lines[i].startswith((" ", "\t")) and not over:
        under = _ADORNMENT.match(lines[i + 1])
        if under and len(lines[i + 1].rstrip()) >= len(lines[i].rstrip()):
            return lines[i].strip(), (under.group(1), False), 2
    return None
