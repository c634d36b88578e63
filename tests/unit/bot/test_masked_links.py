"""Issue 15 item 3: no link the bot posts hides where it goes unless it goes to a cited document.

The answer text takes the path it takes in production: the core's ``sanitize_output``,
then the Slack blocks and the Discord messages as the adapters send them. Links are
then read back out of what would be posted with each platform's own link syntax
(Slack ``<url|label>``; Discord's masked-link rule, written after the parser
Discord's client uses, which reads ``[…](url)`` wherever the brackets meet), and every
one must either show its own URL or point at a host the answer cites.
"""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.discord.render import render_action, render_reply, source_line
from adapters.slack.blocks import reply_messages
from bot.sanitize import ZWSP, sanitize_output
from bot.types import ActionResult, Reply, SourceRef

CITED = ("https://docs.example.com/vpn", "https://wiki.example.org/hr/leave?year=2027&team=ops")
CITED_HOSTS = {urlsplit(u).hostname for u in CITED}
EVIL = ("https://evil.example/login", "http://phish.example.net/docs.example.com/vpn",
        "https://docs.example.com.evil.example/vpn", "mailto:attacker@evil.example")
SOURCES = [SourceRef(n=i + 1, title=f"Doc {i + 1}", location=url, url=url) for i, url in enumerate(CITED)]

# Slack: <url|label> is the only link that can show a text of its own
SLACK_LINK = re.compile(r"<([^<>|]*)\|([^<>]*)>")
# Discord: the masked-link rule of the parser its client uses (simple-markdown): nested [..] pairs and
# "]" followed by a later "]" may sit in the label, and an escape does not end it; "\s*" between "]" and
# "(" is stricter than Discord, to be safe
_INSIDE = r"(?:\[[^\]]*\]|[^\[\]]|\](?=[^\[]*\]))*"
_HREF = r"\s*<?((?:\([^)]*\)|[^\s\\]|\\.)*?)>?(?:\s+['\"][\s\S]*?['\"])?\s*"
DISCORD_LINK = re.compile(rf"!?\[({_INSIDE})\]\s*\({_HREF}\)")


def _bare(url: str) -> str:
    url = re.sub(r"^(https?://|mailto:)", "", url.strip(), flags=re.I)
    return url.rstrip("/")


def _host(url: str) -> str | None:
    if url.lower().startswith("mailto:"):
        return url.rpartition("@")[2].lower() or None
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def hides_target(url: str, label: str) -> bool:
    """A link whose label is not its own URL and whose host the answer does not cite."""
    shown = re.sub(r"[\\*_~`\s" + ZWSP + "]", "", label)
    return _bare(shown) != _bare(url) and _host(url) not in CITED_HOSTS


def slack_links(reply: Reply) -> list[tuple[str, str]]:
    found = []
    for message in reply_messages(reply, question="q"):
        for string in _strings(message.payload()):
            found += [(html.unescape(u), html.unescape(lab)) for u, lab in SLACK_LINK.findall(string)]
    return found


def discord_links(reply: Reply) -> list[tuple[str, str]]:
    found = []
    for message in render_reply(reply):
        for string in [message.content, *(e.description or "" for e in message.embeds)]:
            for start in (i for i, ch in enumerate(string) if ch == "["):  # every "[" may open one
                match = DISCORD_LINK.match(string, start - (start > 0 and string[start - 1] == "!"))
                if match:
                    found.append((match.group(2), match.group(1)))
    return found


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def answer(markdown: str) -> Reply:
    """What the core hands the adapters for a model's ``markdown`` citing ``CITED``."""
    return Reply("answer", sanitize_output(markdown, limit=8000), SOURCES, interaction_id=7,
                 answer_code="A7", feedback_enabled=True)


def assert_no_hidden_target(markdown: str) -> Reply:
    reply = answer(markdown)
    for platform, links in (("slack", slack_links(reply)), ("discord", discord_links(reply))):
        hidden = [(url, label) for url, label in links if hides_target(url, label)]
        assert not hidden, (platform, hidden, markdown)
    return reply


# -- generated Markdown ------------------------------------------------------------------------------

urls = st.sampled_from(CITED + EVIL + ("https://docs.example.com/not-cited", "ftp://files.evil.example/x"))
labels = st.one_of(
    st.sampled_from(["here", "the VPN guide", "[1]", "the [HR] portal", "a ] b", "a [ b", "reset\nyour password",
                     "**bold** `code`", "https://docs.example.com/vpn", "docs.example.com/vpn", "@everyone",
                     "![img](https://evil.example/i.png)", "x\\", "``` x", "<!here>", ""]),
    st.text(alphabet="ab []()<>|\\`*_~!\n:/", max_size=12),
)
titles = st.sampled_from(['"Docs"', "'Docs'", "(Docs)", '"a) [b](c"'])
refs = st.sampled_from(["p", "HR portal", "1", "x y"])


@st.composite
def link_forms(draw) -> str:
    label, url, url2 = draw(labels), draw(urls), draw(urls)
    one_line = " ".join(label.split()) or "x"
    forms = [
        f"[{label}]({url})",
        f"[{label}]({url} {draw(titles)})",
        f"[{label}](<{url}>)",  # Discord's embed-free form
        f"![{label}]({url})",
        f"[![{label}]({url})]({url2})",
        f"<{url}>",
        f'<a href="{url}">{label}</a>',
        f"<{url}|{one_line}>",  # Slack's syntax typed literally
        f"`[{one_line}]({url})`",
        f"```` ``` [{one_line}]({url}) ``` ````",
        f"\\\\`[{one_line}]({url})`",
        f"\n~~~\n[{label}]({url})\n~~~\n",
        f"\n\n    [{one_line}]({url})\n\n",
        f"[{one_line}]\n({url})",
        f"[{one_line}] ({url})",
    ]
    ref = draw(refs)
    definition = f"\n\n[{ref}]: {url} {draw(titles)}\n\n"
    forms += [f"[{label}][{ref}]{definition}", f"[{ref}][]{definition}", f"[{ref}]{definition}"]
    return draw(st.sampled_from(forms))


separators = st.sampled_from([" ", "\n", "\n\n", "\n- ", "\n> ", "\n1. ", "\n# ", "\n| a | b |\n|---|---|\n| ", " | "])
documents = st.lists(st.one_of(link_forms(), separators, labels), min_size=1, max_size=12).map("".join)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_item03_no_rendered_link_hides_an_uncited_host(markdown):
    assert_no_hidden_target(markdown)


# -- each spoof form of the issue, on both platforms -------------------------------------------------

SPOOFS = {  # links for CommonMark: Slack would have drawn <https://evil.example/login|label>
    "title": '[the VPN guide](https://evil.example/login "Docs")',
    "brackets in the text": "[the [HR] portal](https://evil.example/login)",
    "newline in the text": "[reset\nyour password](https://evil.example/login)",
    "reference link": "See [the VPN guide][p].\n\n[p]: https://evil.example/login",
    "collapsed reference": "See [VPN][].\n\n[VPN]: https://evil.example/login 'Docs'",
    "image": "![the VPN guide](https://evil.example/login)",
    "Discord angle form": "[the VPN guide](<https://evil.example/login>)",
    "label that is another URL": "[https://docs.example.com/vpn](https://evil.example/login)",
}
DISCORD_ONLY = {  # not links for CommonMark, but Discord's own parser would have drawn one
    "in ~~~ code": "~~~\n[the VPN guide](https://evil.example/login)\n~~~",
    "in indented code": "Steps:\n\n    [the VPN guide](https://evil.example/login)",
    "across a blank line": "[the VPN\n\nguide](https://evil.example/login)",
    "space before the target": "[the VPN guide] (https://evil.example/login)",
    "code span Discord ends early": "```` ``` [the VPN guide](https://evil.example/login) ``` ````",
    "bracket before a code span": "[the VPN guide `](https://evil.example/login)`",
    "heading then a paragraph": "# [here]\n(https://evil.example/login)",  # found by the property test
}


@pytest.mark.parametrize("markdown", SPOOFS.values(), ids=SPOOFS.keys())
def test_item03_spoof_forms_show_the_real_url(markdown):
    reply = assert_no_hidden_target(markdown)
    slack = "\n".join(s for m in reply_messages(reply) for s in _strings(m.payload()))
    assert "evil.example/login|" not in slack and "https://evil.example/login" in slack  # Slack links it as itself
    discord = "\n".join(m.content for m in render_reply(reply))
    assert "<https://evil.example/login>" in discord  # a bare URL, in <> so Discord embeds no preview


@pytest.mark.parametrize("markdown", DISCORD_ONLY.values(), ids=DISCORD_ONLY.keys())
def test_item03_discord_finds_no_link_that_the_parse_did_not_see(markdown):
    reply = assert_no_hidden_target(markdown)
    assert "evil.example/login" in render_reply(reply)[0].content  # shown, never hidden


def test_item03_slack_literal_and_html_anchor_stay_text():
    reply = assert_no_hidden_target('<https://evil.example/login|the VPN guide> <a href="https://evil.example/x">VPN</a>')
    (message,) = reply_messages(reply)
    assert "&lt;https://evil.example/login|the VPN guide&gt;" in message.blocks[0]["text"]["text"]


def test_item03_a_cited_document_keeps_its_link_text_on_both_platforms():
    reply = answer("Follow [the VPN guide](https://docs.example.com/vpn) [1] or "
                   "[the leave policy](<https://wiki.example.org/hr/leave?year=2027&team=ops> 'HR').")
    slack = reply_messages(reply)[0].blocks[0]["text"]["text"]
    assert "<https://docs.example.com/vpn|the VPN guide>" in slack
    assert "<https://wiki.example.org/hr/leave?year=2027&amp;team=ops|the leave policy>" in slack
    content = render_reply(reply)[0].content
    assert "[the VPN guide](<https://docs.example.com/vpn>)" in content
    assert "[the leave policy](<https://wiki.example.org/hr/leave?year=2027&team=ops>)" in content


def test_item03_an_uncited_page_on_a_cited_host_loses_its_label_too():
    reply = answer("[the VPN guide](https://docs.example.com/not-cited)")
    masked = [url for url, _ in slack_links(reply) + discord_links(reply)]
    assert masked and "https://docs.example.com/not-cited" not in masked  # only the source list links
    assert "the VPN guide (<https://docs.example.com/not-cited>)" in render_reply(reply)[0].content


def test_item03_a_link_text_that_is_its_url_is_shown_once():
    reply = answer("[evil.example/login](https://evil.example/login)")
    assert render_reply(reply)[0].content == "<https://evil.example/login>"
    assert reply_messages(reply)[0].blocks[0]["text"]["text"] == "https://evil.example/login"


def test_item03_discord_previews_no_page_the_answer_names():
    content = render_reply(answer("Log in at https://evil.example/login, then [see](https://evil.example/x)."))[0].content
    assert content == "Log in at <https://evil.example/login>, then see (<https://evil.example/x>)."


def test_item03_flattening_a_link_cannot_assemble_a_mention():
    reply = assert_no_hidden_target("@[everyone](https://x.example) <[@123456]()> <[!here](https://x.example)>")
    content = render_reply(reply)[0].content
    assert not re.search(r"@everyone|<@\d+>|<!here>", content), content


def test_item03_discord_source_titles_cannot_close_the_source_link():
    line = source_line(SourceRef(n=1, title="](https://evil.example/login) [x", location=CITED[0], url=CITED[0]))
    assert [(u, lab) for lab, u in DISCORD_LINK.findall(line) if hides_target(u, lab)] == []


def test_item03_discord_admin_messages_carry_no_masked_links():
    (content,) = render_action(ActionResult(False, "Unknown collection [hr](https://evil.example/login)."))
    assert not DISCORD_LINK.search(content)
