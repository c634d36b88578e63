"""Markdown (as the bot core writes it) to the Markdown Discord shows.

Discord parses message text with rules of its own: no reference links, no
``~~~`` or indented code, and a masked link wherever ``[…]`` meets ``(url)``,
whatever CommonMark thought. Sending the core's text as it is would let Discord
draw links the shared parse (:mod:`bot.markdown`) never saw. So the text is
parsed once and written back with ``](`` kept apart everywhere, code included
(Discord's link rule starts at a ``[`` and reads on through backticks), so the
only links in the result are the ones built here: ``[label](<url>)`` for a
document the answer cites, ``<url>`` for any other (the angle brackets also stop
Discord from embedding a preview of the page).
"""

from __future__ import annotations

import re

from markdown_it.token import Token

from bot.markdown import CitedUrls, is_web, parse
from bot.sanitize import ZWSP, defuse_mentions

_FENCE = "```"
_LANG = re.compile(r"[A-Za-z0-9_+#.-]{1,20}")
_LINK_JOIN = re.compile(r"\]\s*(?=\()")  # Discord links "[x](url)"; a zero-width space keeps them apart
_SPACED_JOIN = re.compile(r"\]\s+(?=\()")  # the same across a line or block break (never a link built here)
_BARE_URL = re.compile(r"(?<![<\w])https?://[^\s<>]*[^\s<>.,:;\"')\]]")  # Discord previews these
_MARKS = {"strong_open": "**", "strong_close": "**", "em_open": "*", "em_close": "*", "s_open": "~~",
          "s_close": "~~"}


def text(value: str) -> str:
    """``value`` as literal Discord text: a backslash or backtick cannot escape or open code around
    the markup built here, and no link can close in it."""
    return unlink(value.replace("\\", "\\\\").replace("`", "\\`"))


def unlink(value: str) -> str:
    """``value`` with every ``](`` kept apart (a zero-width space), so Discord finds no masked link
    in it: a backslash before the ``]`` would not do, Discord's link rule reads past escapes."""
    return _LINK_JOIN.sub(lambda m: m.group(0) + ZWSP, value)


def to_discord(markdown: str, cited: CitedUrls) -> str:
    """Render ``markdown`` for a Discord message; only links to ``cited`` URLs keep a label."""
    out = _Renderer(cited).render(parse(markdown, cited))
    # blocks are unlinked one by one; a "]" ending one block and a "(" starting the next would still meet
    out = _SPACED_JOIN.sub(lambda m: m.group(0) + ZWSP, out)
    return defuse_mentions(out)  # turning links into text can join a mention up: defuse last


class _Renderer:
    def __init__(self, cited: CitedUrls) -> None:
        self.cited = cited
        self.blocks: list[str] = []
        self.lines: list[str] = []
        self.prefixes: list[str] = []  # one per open list item ("   ") or quote ("> ")
        self.lists: list[dict] = []  # open lists: {"ordered": bool, "n": next number}
        self.marker: tuple[int, str] | None = None  # (its prefix slot, "- ") for an item's first line
        self.heading = ""
        self.row: list[str] | None = None

    def render(self, tokens: list[Token]) -> str:
        for tok in tokens:
            self._block(tok)
        self._end_block()
        return "\n\n".join(self.blocks)

    def _block(self, tok: Token) -> None:
        kind = tok.type
        if kind == "inline":
            rendered = self._inline(tok.children or [])
            if self.row is not None:
                self.row.append(rendered.replace("\n", " "))
            else:
                self._add(self.heading + rendered)
        elif kind == "heading_open":
            self.heading = "#" * min(int(tok.tag[1:]), 3) + " "  # Discord draws three levels
        elif kind == "heading_close":
            self.heading = ""
            self._end_block()
        elif kind in ("bullet_list_open", "ordered_list_open"):
            start = int(tok.attrGet("start") or 1) if kind == "ordered_list_open" else 1
            self.lists.append({"ordered": kind == "ordered_list_open", "n": start})
        elif kind in ("bullet_list_close", "ordered_list_close"):
            self.lists.pop()
            self._end_block()
        elif kind == "list_item_open":
            current = self.lists[-1]
            marker = f"{current['n']}. " if current["ordered"] else "- "
            current["n"] += 1
            self.marker = (len(self.prefixes), marker)
            self.prefixes.append(" " * len(marker))
        elif kind == "list_item_close":
            self.prefixes.pop()
        elif kind == "blockquote_open":
            self.prefixes.append("> ")
        elif kind == "blockquote_close":
            self.prefixes.pop()
            self._end_block()
        elif kind in ("fence", "code_block"):
            lang = _LANG.fullmatch(tok.info.strip()) if kind == "fence" else None
            body = unlink(tok.content.rstrip("\n").replace(_FENCE, "'''"))  # nothing may end it early
            self._add(f"{_FENCE}{lang.group(0) if lang else ''}\n{body}\n{_FENCE}")
            self._end_block()
        elif kind == "hr":
            self._add("───")
            self._end_block()
        elif kind in ("paragraph_close", "table_close"):
            self._end_block()
        elif kind == "tr_open":
            self.row = []
        elif kind == "tr_close":
            self._add(" | ".join(self.row or []))
            self.row = None

    def _add(self, value: str) -> None:
        lines = value.split("\n")
        prefixes = list(self.prefixes)
        if self.marker is not None:  # the item's first line carries its marker
            slot, marker = self.marker
            self.marker = None
            first = "".join([*prefixes[:slot], marker, *prefixes[slot + 1:]])
            self.lines += [first + lines[0], *("".join(prefixes) + line for line in lines[1:])]
        else:
            self.lines += ["".join(prefixes) + line for line in lines]

    def _end_block(self) -> None:
        if self.prefixes:  # paragraphs inside lists or quotes stay in the enclosing block
            return
        joined = "\n".join(self.lines).strip("\n")
        if joined.strip():
            self.blocks.append(joined)
        self.lines = []

    def _inline(self, children: list[Token], *, in_label: bool = False) -> str:
        out: list[str] = []
        run: list[str] = []  # text and line breaks, escaped as one run: no "](" can span two tokens
        links: list[tuple[str, int]] = []  # open links: (href, where their label starts in out)
        for tok in children:
            kind = tok.type
            if kind in ("text", "softbreak", "hardbreak"):
                run.append(tok.content if kind == "text" else "\n")
                continue
            out.append(self._text("".join(run), in_label or bool(links)))
            run = []
            if kind == "code_inline":
                out.append(_code_span(tok.content))
            elif kind in _MARKS:
                out.append(_MARKS[kind])
            elif kind == "link_open":
                links.append((str(tok.attrGet("href") or ""), len(out)))
            elif kind == "link_close" and links:
                href, start = links.pop()
                label, out[start:] = "".join(out[start:]), []
                out.append(self._link(href, label))
            elif kind == "image":  # the rule in bot.markdown left only cited images
                alt = self._inline(tok.children or [], in_label=True)
                out.append(self._link(str(tok.attrGet("src") or ""), alt))
            else:  # html is off; anything unknown keeps its text
                out.append(text(tok.content))
        out.append(self._text("".join(run), in_label or bool(links)))
        return "".join(out)

    @staticmethod
    def _text(value: str, in_label: bool) -> str:
        """Literal text; a URL typed as text goes in <> (outside link labels) so Discord shows no preview."""
        value = text(value)
        return value if in_label else _BARE_URL.sub(lambda m: f"<{m.group(0)}>", value)

    def _link(self, href: str, label: str) -> str:
        """A cited target keeps its (already rendered) label; anything else is its bare URL."""
        if not is_web(href) or any(c in href for c in "<> \n"):
            return label
        if not self.cited.allows(href):
            return f"<{href}>"
        label = " ".join(label.replace("[", "(").replace("]", ")").split()) or text(href)
        return f"[{label}](<{href.replace('(', '%28').replace(')', '%29')}>)"  # a ")" would end it


def _code_span(content: str) -> str:
    """Inline code that no backtick inside it can close early. Three backticks inside would open
    a code block for Discord and leave the rest as text, so they become ''' as in fences."""
    content = unlink(content.replace(_FENCE, "'''"))
    longest = max((len(run) for run in re.findall(r"`+", content)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if content.startswith("`") or content.endswith("`") else ""
    return f"{fence}{pad}{content}{pad}{fence}"
