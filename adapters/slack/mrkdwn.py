"""Markdown (as the bot core writes it) to Slack mrkdwn.

markdown-it-py parses; this module only renders its tokens. Every piece of text
is escaped (``&``, ``<``, ``>``) on the way out, so nothing in a document or a
model's output can become Slack markup: ``<!channel>`` arrives as literal text.
The only ``<…>`` sequences in the result are the links built here, and a
``<url|label>`` only for a document the answer cites (:mod:`bot.markdown`); any
other link is written as its bare URL, which Slack links as itself.
"""

from __future__ import annotations

from markdown_it.token import Token

from bot.markdown import NOTHING_CITED, CitedUrls, is_web, parse

BULLET = "•"


def escape(text: str) -> str:
    """Escape the three characters Slack treats as markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def link(url: str, label: str) -> str:
    """A mrkdwn link, or the escaped label alone when the URL is not a safe web/mail link."""
    if not is_web(url) or any(c in url for c in "|<> \n"):
        return escape(label)
    return f"<{escape(url)}|{escape(label).replace('|', '¦')}>"


def to_mrkdwn(markdown: str, *, cited: CitedUrls = NOTHING_CITED) -> list[str]:
    """Render ``markdown`` as mrkdwn, one string per top-level block (paragraph, list, code…);
    only links to ``cited`` URLs may show a text of their own."""
    return _Renderer(cited).render(parse(markdown, cited))


def table_lines(header: list[str], rows: list[list[str]]) -> list[str]:
    """mrkdwn has no tables: each row becomes ``• *first cell* — Header: cell; Header: cell``.

    Lines rather than an aligned code block: prose cells make tables wider than a
    phone, where a code block wraps and loses its columns, and a code block would
    show the cells' bold, links and code as raw characters.
    """
    if not rows:  # a header alone still says something
        return [" · ".join(cell for cell in header if cell)]
    lines = []
    for row in rows:
        lead = row[0] if row else ""
        if lead and not (lead.startswith("*") and lead.endswith("*")):
            lead = f"*{lead}*"
        pairs = [f"{name}: {cell}" if name else cell for name, cell in zip(header[1:], row[1:], strict=False) if cell]
        lines.append(f"{BULLET} " + " — ".join(part for part in (lead, "; ".join(pairs)) if part))
    return lines


class _Renderer:
    def __init__(self, cited: CitedUrls) -> None:
        self.cited = cited
        self.blocks: list[str] = []
        self.lines: list[str] = []
        self.lists: list[dict] = []  # open lists: {"ordered": bool, "n": next number}
        self.quote_depth = 0
        self.item_prefix: str | None = None  # pending bullet for the item's first line
        self.in_heading = False
        self.in_cell = False
        self.row: list[str] = []
        self.table: list[list[str]] = []  # rows of the open table, header first

    def render(self, tokens: list[Token]) -> list[str]:
        for token in tokens:
            self._block(token)
        self._flush()
        return self.blocks

    # -- blocks ---------------------------------------------------------------
    def _block(self, tok: Token) -> None:
        kind = tok.type
        if kind == "inline":
            self._add_line(self._inline(tok.children or []))
        elif kind == "heading_open":
            self.in_heading = True
        elif kind == "heading_close":
            self.in_heading = False
            self._end_block()
        elif kind in ("bullet_list_open", "ordered_list_open"):
            start = int(tok.attrGet("start") or 1) if kind == "ordered_list_open" else 1
            self.lists.append({"ordered": kind == "ordered_list_open", "n": start})
        elif kind in ("bullet_list_close", "ordered_list_close"):
            self.lists.pop()
            if not self.lists and not self.quote_depth:
                self._flush()
        elif kind == "list_item_open":
            current = self.lists[-1]
            marker = f"{current['n']}." if current["ordered"] else BULLET
            current["n"] += 1
            self.item_prefix = "    " * (len(self.lists) - 1) + marker + " "
        elif kind == "blockquote_open":
            self.quote_depth += 1
        elif kind == "blockquote_close":
            self.quote_depth -= 1
            if not self.quote_depth and not self.lists:
                self._flush()
        elif kind in ("fence", "code_block"):
            body = escape(tok.content.rstrip("\n"))
            for line in f"```\n{body}\n```".split("\n"):
                self._add_line(line, raw=True)
            self._end_block()
        elif kind == "hr":
            self._add_line("───", raw=True)
            self._end_block()
        elif kind == "paragraph_close":
            self._end_block()
        elif kind == "table_close":
            for line in table_lines(self.table[0] if self.table else [], self.table[1:]):
                self._add_line(line, raw=True)
            self.table = []
            self._end_block()
        elif kind == "tr_open":
            self.row = []
        elif kind == "tr_close":
            self.table.append(self.row)
        elif kind in ("th_open", "td_open"):
            self.in_cell = True
        elif kind in ("th_close", "td_close"):
            self.in_cell = False

    def _add_line(self, text: str, *, raw: bool = False) -> None:
        if self.in_cell and not raw:
            self.row.append(text)
            return
        if self.in_heading and not raw and text:
            text = f"*{text}*"
        lines = text.split("\n")
        if self.item_prefix is not None:
            indent = " " * len(self.item_prefix)
            lines = [self.item_prefix + lines[0], *(indent + line for line in lines[1:])]
            self.item_prefix = None
        elif self.lists:
            indent = "    " * len(self.lists) + "  "
            lines = [indent + line for line in lines]
        if self.quote_depth:
            lines = [">" + " " + line for line in lines]
        self.lines.extend(lines)

    def _end_block(self) -> None:
        # paragraphs inside lists or quotes stay in the enclosing block
        if not self.lists and not self.quote_depth:
            self._flush()

    def _flush(self) -> None:
        text = "\n".join(self.lines).strip("\n")
        if text.strip():
            self.blocks.append(text)
        self.lines = []

    # -- inline ---------------------------------------------------------------
    def _inline(self, children: list[Token]) -> str:
        out: list[str] = []
        href_stack: list[tuple[str, int]] = []
        for tok in children:
            kind = tok.type
            if kind == "text":
                out.append(escape(tok.content))
            elif kind == "code_inline":
                out.append(f"`{escape(tok.content)}`")
            elif kind in ("strong_open", "strong_close"):
                out.append("*")
            elif kind in ("em_open", "em_close"):
                out.append("_")
            elif kind in ("s_open", "s_close"):
                out.append("~")
            elif kind == "softbreak" or kind == "hardbreak":
                out.append("\n")
            elif kind == "link_open":
                href_stack.append((str(tok.attrGet("href") or ""), len(out)))
            elif kind == "link_close" and href_stack:
                href, start = href_stack.pop()
                label_parts, out[start:] = out[start:], []
                out.append(_link_from_rendered(href, "".join(label_parts), self.cited))
            elif kind == "image":  # the rule in bot.markdown left only cited images
                alt = self._inline(tok.children or []).strip("*_~`") or "image"
                out.append(_link_from_rendered(str(tok.attrGet("src") or ""), alt, self.cited))
            else:  # html_inline cannot occur (html off); anything unknown keeps its text
                out.append(escape(tok.content))
        return "".join(out)


def _link_from_rendered(href: str, rendered_label: str, cited: CitedUrls) -> str:
    """Link whose label was already rendered (escaped); formatting inside labels is dropped.
    A link to anything the answer does not cite is its bare URL, whatever its label said."""
    if not is_web(href) or any(c in href for c in "|<> \n"):
        return rendered_label
    if not cited.allows(href):
        return escape(href)
    label = rendered_label.strip("*_~`") or escape(href)
    return f"<{escape(href)}|{label.replace('|', '¦')}>"
