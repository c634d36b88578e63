"""Parsing and chunking of the supported formats."""

from __future__ import annotations

import itertools

import pytest

from rag_engine.chunking import approx_tokens, chunk_document
from rag_engine.parsing import ParseError, parse_bytes, parse_file
from rag_engine.pipe_tables import find_tables, row_sentences
from tests.conftest import EXAMPLES


def test_markdown_front_matter_becomes_metadata_and_title():
    doc = parse_bytes(b"---\ntitle: Deploy Guide\nowner: platform\ntags: [a, b]\n---\n# Heading\n\n"
                      b"Ship it {% include warn.html %} via {{ site.baseurl }}/deploy.\n", "markdown",
                      fallback_title="x")
    assert doc.title == "Deploy Guide"
    assert doc.metadata == {"title": "Deploy Guide", "owner": "platform", "tags": ["a", "b"]}
    assert "owner" not in doc.full_text and "{%" not in doc.full_text and "{{" not in doc.full_text
    assert doc.sections[0].heading_path == ["Heading"]
    assert "Ship it" in doc.sections[0].text


def test_markdown_heading_path_and_code_fences():
    md = b"# A\n\nintro\n\n## B\n\nbee\n\n```\n# not a heading\n```\n\n### C\n\nsee\n\n## D\n\ndee\n"
    doc = parse_bytes(md, "markdown", fallback_title="x")
    paths = [s.heading_path for s in doc.sections]
    assert paths == [["A"], ["A", "B"], ["A", "B", "C"], ["A", "D"]]
    assert "# not a heading" in doc.sections[1].text


def test_html_drops_boilerplate_and_keeps_headings():
    html = (b"<html><head><title>Expenses</title><script>var x=1;</script></head><body><nav>Home | About</nav>"
            b"<h1>Expenses</h1><p>Dinner limit is $75 per person.</p><h2>Filing</h2><ul><li>Use Expensify</li>"
            b"</ul><footer>(c) 2026</footer></body></html>")
    doc = parse_bytes(html, "html", fallback_title="x")
    assert doc.title == "Expenses"
    text = doc.full_text
    assert "$75" in text and "Expensify" in text
    assert "var x" not in text and "Home | About" not in text and "(c) 2026" not in text
    assert doc.sections[-1].heading_path == ["Expenses", "Filing"]


def test_plain_text_headings():
    txt = b"VPN GUIDE\n=========\n\nIntro text here.\n\nSTILL STUCK?\n\nPost in #it-help.\n"
    doc = parse_bytes(txt, "text", fallback_title="x")
    assert doc.title == "VPN GUIDE"
    assert doc.sections[-1].heading_path[-1] == "Still Stuck?"


def test_pdf_from_examples():
    pdf = next(EXAMPLES.glob("*.pdf"))
    doc = parse_file(pdf, max_bytes=10_000_000)
    assert len(doc.full_text) > 500


@pytest.mark.parametrize(
    ("data", "kind", "reason"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "markdown", "binary"),
        (b"caf\xe9 au lait", "text", "UTF-8"),
        (b"%PDF-1.4\n1 0 obj <<", "pdf", "PDF"),
        (b"<html><body></body></html>", "html", "no text"),
    ],
)
def test_broken_inputs_are_rejected_with_a_reason(data, kind, reason):
    with pytest.raises(ParseError, match=reason):
        parse_bytes(data, kind, fallback_title="x")


def test_oversized_file_is_rejected(tmp_path):
    big = tmp_path / "big.md"
    big.write_bytes(b"a " * 600_000)
    with pytest.raises(ParseError, match="limit"):
        parse_file(big, max_bytes=1_000_000)


def test_chunks_respect_token_budget_overlap_and_context():
    sentences = " ".join(f"Sentence number {i} talks about topic {i % 7}." for i in range(200))
    doc = parse_bytes(f"# Guide\n\n## Part\n\n{sentences}\n".encode(), "markdown", fallback_title="x")
    chunks = chunk_document(doc, max_tokens=60, overlap=15)
    assert len(chunks) > 5
    assert all(c.token_count <= 60 for c in chunks)
    assert all(c.context == "Guide > Part" for c in chunks)
    assert chunks[0].embedding_text.startswith("Guide > Part\n\n")
    # overlap: each chunk starts with the last sentence(s) of the one before
    for a, b in itertools.pairwise(chunks):
        last_sentence = a.text.split(". ")[-1].rstrip(".")
        assert last_sentence in b.text
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))


def test_overlong_sentence_is_split():
    doc = parse_bytes(("word " * 5000).encode(), "text", fallback_title="x")
    chunks = chunk_document(doc, max_tokens=100, overlap=10)
    assert all(approx_tokens(c.text) <= 100 for c in chunks)
    assert sum(len(c.text.split()) for c in chunks) >= 5000


def test_html_tables_become_markdown_tables_that_answers_can_quote_by_row():
    html = (b"<html><body><h1>Limits</h1><table><tr><th>Category</th><th>Limit</th></tr>"
            b"<tr><td>Team dinner</td><td>$75</td></tr><tr><td>Gift</td><td>$50</td></tr></table>"
            b"<p>After the table.</p></body></html>")
    doc = parse_bytes(html, "html", fallback_title="x")
    lines = [line for line in doc.full_text.splitlines() if line.strip()]
    assert lines == ["| Category | Limit |", "|---|---|", "| Team dinner | $75 |", "| Gift | $50 |",
                     "After the table."]
    # flattened onto one line by chunking, the rows are still found with their column names
    (table,) = find_tables(" ".join(lines))
    assert row_sentences(table) == ["Category: Team dinner; Limit: $75", "Category: Gift; Limit: $50"]
