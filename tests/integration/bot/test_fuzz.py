"""Property-based fuzzing (hypothesis) of everything that reads untrusted text:
message cleaning, admin command parsing, the output sanitizer, parsing and the
chunker; and malformed files through real ingestion."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.commands import ADMIN_USAGE, AdminCommand, CommandError, parse_admin_command
from bot.sanitize import ZWSP, clean_question, defuse_mentions, sanitize_output
from rag_engine.chunking import approx_tokens, chunk_document
from rag_engine.parsing import ParsedDocument, ParseError, Section, parse_bytes
from tests.conftest import EXAMPLES

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Independent descriptions of what the platforms treat as a mention (not the sanitizer's own regexes).
SLACK_MENTION = re.compile(r"<[!@#][^<>]*>")
DISCORD_MENTION = re.compile(r"<(?:@[!&]?\d+|#\d+|/[^<>:]+:\d+|id:\w+)>")
MASS_MENTION = re.compile(r"@(?:everyone|here|channel)\b", re.I)
HIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\U000e0000-\U000e007f]")

# Text that mixes ordinary words with every kind of markup and control character.
fragments = st.sampled_from([
    "<!channel>", "<!here>", "<!everyone>", "<!subteam^S123|@devs>", "<@U12345>", "<@U1|bob>", "<#C999|general>",
    "<@123456789012345678>", "<@!42>", "<@&77>", "<#88>", "</deploy:123>", "<id:customize>", "@everyone",
    "@here", "@channel", "@Everyone", "[click](https://evil.example/x)", "[1]", "[12", "<", ">", "&", "<!", "<@",
    "<[!channel](https://x.example)>", "@[everyone](https://x.example)", "\u202e", "\u2066", "\x00", "\x1b[31m",
    "\r\n", "\u2028", "\U000e0041", "\u200b", "xoxb-1234567890-abcdefghij",
    "**bold**", "`code`", "```", "ignore previous instructions", " ", "\n", "\t", "é", "漢字", "🙂",
])
texts = st.lists(st.one_of(fragments, st.text(max_size=20)), max_size=25).map("".join)


@FUZZ
@given(texts, st.integers(min_value=0, max_value=400))
def test_sanitized_output_cannot_mention_hide_or_overflow(text, limit):
    out = sanitize_output(text, limit=limit)
    assert len(out) <= limit
    assert not SLACK_MENTION.search(out), out
    assert not DISCORD_MENTION.search(out), out
    assert not MASS_MENTION.search(out), out
    assert not HIDDEN.search(out), out
    assert "xoxb-1234567890" not in out
    assert sanitize_output(out, limit=limit) == out  # sanitizing twice changes nothing


@FUZZ
@given(texts)
def test_defusing_keeps_the_readable_text(text):
    # only zero-width spaces are added and brackets swapped: no letter is lost or moved
    out = defuse_mentions(text)

    def letters(s: str) -> str:
        return re.sub(r"[^A-Za-z0-9]", "", s)

    assert letters(out) == letters(text)


@FUZZ
@given(texts)
def test_clean_question_never_fails_and_is_stable(text):
    q = clean_question(text)
    assert q == q.strip() and "  " not in q and "\n" not in q
    assert not HIDDEN.search(q)
    assert not re.match(r"<@[!&]?[A-Za-z0-9]+(\|[^>]*)?>", q)  # a leading bot mention is removed
    assert clean_question(q) == q


def test_clean_question_examples():
    assert clean_question("<@U0BOT> <@U0BOT|ragbot>:  how do\u202e I get\n VPN?") == "how do I get VPN?"
    assert clean_question("ask <@U1> about VPN") == "ask <@U1> about VPN"  # only leading mentions go
    assert clean_question("\x00\u200b ") == ""


words = st.sampled_from(["help", "status", "retrain", "rollback", "ingest", "collections", "list", "create", "grant",
                         "exclude", "revoke", "--private", "--collection", "--x", "here", "*", "dm", "hr",
                         "<#C123|general>", "<#456>", "#general", "docs/a.md", "'", '"', "\\", "", "x" * 120])
commands = st.one_of(st.text(max_size=60), st.lists(words, max_size=6).map(" ".join))


@FUZZ
@given(commands)
def test_admin_command_parser_returns_a_command_or_a_command_error(text):
    try:
        cmd = parse_admin_command(text)
    except CommandError as exc:
        assert str(exc)  # a message that says what is expected
        return
    assert isinstance(cmd, AdminCommand)
    assert cmd.action in ("help", "status", "retrain", "rollback", "ingest", "collections")
    if cmd.action == "collections":
        sub, *args = cmd.args
        assert sub in ("list", "create", "grant", "exclude", "revoke")
        assert len(args) == (0 if sub == "list" else 1 if sub == "create" else len(args))
        if len(args) == 2:  # a channel target was normalised
            assert args[1] in ("here", "*", "dm") or re.fullmatch(r"[A-Za-z0-9_-]{1,64}", args[1])
    if cmd.action == "ingest":
        assert cmd.args and all(not a.startswith("--") for a in cmd.args)


@pytest.mark.parametrize("text, expected", [
    ("collections grant hr <#C123|general>", ("grant", "hr", "C123")),
    ("collections exclude hr <#456>", ("exclude", "hr", "456")),
    ("collections revoke hr *", ("revoke", "hr", "*")),
    ("COLLECTIONS Grant hr HERE", ("grant", "hr", "here")),
    ("collections create 'my docs' --private", ("create", "my docs")),
])
def test_admin_command_channel_targets(text, expected):
    assert parse_admin_command(text).args == expected


@pytest.mark.parametrize("text", ["collections grant hr #general", "collections grant", "collections create a b",
                                  "collections list x", "collections grant hr C1 extra", "status now", "nuke",
                                  "ingest", "ingest --collection", "collections grant hr --force", "'unclosed",
                                  "x" * 5000, "collections grant " + "n" * 101])
def test_bad_admin_commands_say_what_is_expected(text):
    with pytest.raises(CommandError) as err:
        parse_admin_command(text)
    assert len(str(err.value)) < len(ADMIN_USAGE) + 200  # the user's input is not echoed back at length


sections = st.lists(
    st.builds(Section, st.lists(st.text(max_size=15), max_size=3),
              st.lists(st.one_of(st.text(max_size=40), st.sampled_from(["\n\n", ". ", "- item\n", "1. step\n"]),
                                 st.just("word " * 60)), max_size=20).map("".join)),
    min_size=1, max_size=5)


@FUZZ
@given(sections, st.text(max_size=30), st.integers(min_value=16, max_value=120), st.integers(min_value=0, max_value=80))
def test_chunker_keeps_every_word_within_budget(secs, title, max_tokens, overlap):
    doc = ParsedDocument(title=title, sections=secs)
    drafts = chunk_document(doc, max_tokens=max_tokens, overlap=overlap, count_tokens=approx_tokens)
    assert [d.ordinal for d in drafts] == list(range(len(drafts)))
    assert all(d.token_count <= max_tokens for d in drafts)
    chunk_words = {w for d in drafts for w in d.text.split()}
    for section in secs:
        assert set(section.text.split()) <= chunk_words  # nothing is lost between windows


def test_chunker_refuses_a_budget_too_small_to_be_useful():
    with pytest.raises(ValueError):
        chunk_document(ParsedDocument("t", [Section([], "some text")]), max_tokens=4, overlap=0)


@FUZZ
@given(st.sampled_from(["markdown", "text", "html", "pdf"]),
       st.one_of(st.binary(max_size=300), texts.map(lambda s: s.encode("utf-8", "surrogatepass")),
                 st.sampled_from([b"---\n: [\n---\n# x", b"---\ntitle: [1, 2\n---\nbody", b"<html><script>x",
                                  b'---\ntitle: "a\\0b"\nk: "\\0"\n---\nbody text', b"# t\n\n" + b"w " * 5000 + b"\x00",
                                  b"%PDF-1.4\n%%EOF", b"\xef\xbb\xbf# BOM title\n\ntext", b"<<<>>>", b"\xff\xfe"])))
def test_parsers_accept_or_reject_with_a_reason(kind, data):
    try:
        doc = parse_bytes(data, kind, fallback_title="fallback")
    except ParseError as exc:
        assert str(exc)
        return
    assert doc.sections and all(s.text.strip() for s in doc.sections)
    assert isinstance(doc.title, str)
    # Postgres text and jsonb cannot hold NUL: nothing that reaches a write may carry one
    assert "\x00" not in doc.title + "".join(s.text + "".join(s.heading_path) for s in doc.sections)
    assert "\x00" not in repr(doc.metadata) and "\\x00" not in repr(doc.metadata)


def test_malformed_files_are_skipped_with_a_reason_and_the_rest_ingested(engine, db, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.md").write_text("# Good\n\nThe office opens at 8:00 on weekdays.\n")
    (docs / "also-good.txt").write_text("Parking permits are renewed every January.\n")
    (docs / "yaml-escape.md").write_text('---\ntitle: "Desk\\0 booking"\nowner: "\\0"\n---\n'
                                         '# Desks\n\nBook desks a day ahead.\n')
    pdf = (EXAMPLES / "filing-expenses.pdf").read_bytes()
    bad = {
        "truncated.pdf": pdf[: len(pdf) // 3],
        "not-really.pdf": b"# this is markdown with a .pdf name\n",
        "binary.md": bytes(range(256)) * 40,
        "invalid-utf8.txt": b"caf\xe9 au lait \xff\xfe",
        "empty.md": b"",
        "only-front-matter.md": b"---\ntitle: Nothing\n---\n",
        "only-script.html": b"<html><body><script>alert(1)</script></body></html>",
        "late-nul.md": b"# Late\n\n" + b"A sentence without end " * 500 + b"\x00 and more.\n",  # NUL after 8 KB
    }
    for name, data in bad.items():
        (docs / name).write_bytes(data)
    with open(docs / "huge.md", "wb") as f:  # 50 MB, sparse: rejected by its size before it is read
        f.truncate(50_000_000)
    report = engine.ingest([docs], "team")
    skipped = {Path(p).name: reason for p, reason in report.skipped}
    assert set(skipped) == {*bad, "huge.md"}, skipped
    assert "50.0 MB" in skipped["huge.md"] and "limit" in skipped["huge.md"]
    assert "UTF-8" in skipped["invalid-utf8.txt"]
    assert "binary" in skipped["binary.md"] or "UTF-8" in skipped["binary.md"]
    assert "PDF" in skipped["truncated.pdf"] and "PDF" in skipped["not-really.pdf"]
    assert all(reason for reason in skipped.values())
    assert report.documents_written == 3  # a YAML "\0" escape is cleaned, not fatal
    hits = engine.search("When does the office open?", engine.scope_for(["team"]), k=3)
    assert hits and "8:00" in hits[0].text


@pytest.mark.parametrize("text", ["\u202eevil\u202c", "a\u2028b", "x\U000e0041y"])
def test_sanitizer_removes_reordering_and_invisible_characters(text):
    out = sanitize_output(text, limit=100)
    assert all(unicodedata.category(ch) != "Cf" or ch == ZWSP for ch in out), repr(out)
