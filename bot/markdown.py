"""The one Markdown parse every chat renderer uses, with the link rule already applied.

A link's visible text may differ from its target only when the target is a
document the bot cited for this answer: anything else could show "the HR
portal" and lead to a phishing page. The rule works on the parsed tree, so it
sees every link the renderers would draw, whatever syntax made it (inline links
with or without a title, brackets or line breaks in the text, reference links,
images). An uncited link becomes ``text (url)``: the reader keeps the words and
sees where the link really goes. Renderers draw a link node as a masked link
only when :meth:`CitedUrls.allows` says so, and as its bare URL otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from markdown_it import MarkdownIt
from markdown_it.token import Token

from bot.types import SourceRef

# html off: tags stay text; autolink off: a literal <url|label> (Slack syntax typed by a model) stays text
PARSER = MarkdownIt("commonmark", {"html": False}).enable(["strikethrough", "table"]).disable("autolink")
WEB_SCHEMES = ("http://", "https://", "mailto:")


@dataclass(frozen=True, slots=True)
class CitedUrls:
    """The URLs of the documents an answer cites (``SourceRef.url``), normalized as the parser
    normalizes link targets, so ``[text](url)`` to a cited document may keep its text."""

    urls: frozenset[str] = frozenset()

    @classmethod
    def of(cls, urls: Iterable[str | None]) -> CitedUrls:
        return cls(frozenset(PARSER.normalizeLink(u.strip()) for u in urls if u and u.strip()))

    @classmethod
    def from_sources(cls, sources: Iterable[SourceRef]) -> CitedUrls:
        return cls.of(s.url for s in sources)

    def allows(self, href: str) -> bool:
        """May a link to ``href`` (a parsed, normalized target) show a text other than the URL?"""
        return is_web(href) and href in self.urls


NOTHING_CITED = CitedUrls()


def is_web(url: str) -> bool:
    """A target a chat link may point at (web or mail); other schemes are never made clickable."""
    return url.lower().startswith(WEB_SCHEMES)


def parse(markdown: str, cited: CitedUrls) -> list[Token]:
    """Block tokens of ``markdown`` in which every link node (image included) that may not hide its
    target has been rewritten as its text followed by ``(url)``, the URL as a link showing itself."""
    tokens = PARSER.parse(markdown or "")
    for token in tokens:
        if token.type == "inline" and token.children:
            token.children = _unmask(token.children, cited)
    return tokens


def plain_text(tokens: Iterable[Token]) -> str:
    """What a run of inline tokens reads as, without formatting."""
    parts = []
    for tok in tokens:
        if tok.type in ("text", "code_inline"):
            parts.append(tok.content)
        elif tok.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif tok.type == "image":
            parts.append(plain_text(tok.children or []))
    return "".join(parts)


def shows_target(label: str, href: str) -> bool:
    """Does ``label`` already say where ``href`` goes (the same URL, give or take the scheme
    and a trailing slash)?"""
    def bare(url: str) -> str:
        for scheme in WEB_SCHEMES:
            if url.lower().startswith(scheme):
                url = url[len(scheme):]
                break
        return url.rstrip("/")
    label = label.strip()
    return bool(label) and bare(PARSER.normalizeLink(label)) == bare(href)


def _unmask(children: list[Token], cited: CitedUrls) -> list[Token]:
    out: list[Token] = []
    i = 0
    while i < len(children):
        tok = children[i]
        if tok.type == "link_open":  # links do not nest: the next close ends this one
            close = next((j for j in range(i + 1, len(children)) if children[j].type == "link_close"),
                         len(children))
            label = _unmask(children[i + 1:close], cited)
            kept = [tok, *label, *children[close:close + 1]]
            out += _rule(str(tok.attrGet("href") or ""), label, kept, cited)
            i = close + 1
            continue
        if tok.type == "image":
            tok.children = _unmask(tok.children or [], cited)
            out += _rule(str(tok.attrGet("src") or ""), tok.children, [tok], cited)
        else:
            out.append(tok)
        i += 1
    return out


def _rule(href: str, label: list[Token], kept: list[Token], cited: CitedUrls) -> list[Token]:
    """``kept`` (the link as parsed) when it may hide its target, else its label and its URL."""
    if cited.allows(href):
        return kept
    if not is_web(href):  # nothing clickable: the words alone
        return label
    url = [Token("link_open", "a", 1, attrs={"href": href}), Token("text", "", 0, content=href),
           Token("link_close", "a", -1)]
    if not label or shows_target(plain_text(label), href):
        return url
    return [*label, Token("text", "", 0, content=" ("), *url, Token("text", "", 0, content=")")]
