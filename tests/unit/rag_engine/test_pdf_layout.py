"""PDFs read by layout (rag_engine.pdf_layout): table rows keep their column headers, headings come
from the font, the title from page 1 when the metadata title is an id, and every section and chunk
keeps its page. The PDFs are generated here (reportlab) with known content."""

from __future__ import annotations

import io

import pytest

from rag_engine.chunking import chunk_document
from rag_engine.generation.citations import cited_sources, parse_citations
from rag_engine.parsing import ParseError, parse_bytes
from rag_engine.pdf_layout import is_id_title
from rag_engine.pdf_pages import chunk_page, chunk_pages, page_link
from rag_engine.testing.report_pdfs import report_bytes
from rag_engine.values import SearchHit


@pytest.fixture(scope="module")
def report():
    return report_bytes(2, seed=3, filler_pages=1)


def _lines(doc):
    return [" ".join(line.split()) for s in doc.sections for line in s.text.splitlines()]


def test_every_table_cell_is_on_its_row_with_its_column_header(report):
    known, data = report
    doc = parse_bytes(data, "pdf", fallback_title="report 2")
    lines = _lines(doc)
    for table in known.tables:
        for label, values in table.rows:
            row = [line for line in lines if line.startswith(f"{label} — ")]
            assert len(row) == 1, (label, lines)
            for column, value in zip(table.columns, values, strict=True):
                assert f"{column}: {value}" in row[0]  # e.g. "Three Months Ended April 3, 2023: $5,552"
            assert not any(other in row[0] for other, _ in table.rows if other != label)


def test_spanning_header_names_both_columns_under_it(report):
    known, data = report
    doc = parse_bytes(data, "pdf", fallback_title="x")
    sales = known.tables[0]
    first = next(line for line in _lines(doc) if line.startswith(sales.rows[0][0] + " — "))
    assert first.count("Three Months Ended") == 2 and first.count("Six Months Ended") == 2


def test_headings_come_from_the_font_not_from_capitals(report):
    known, data = report
    doc = parse_bytes(data, "pdf", fallback_title="x")
    paths = [s.heading_path for s in doc.sections]
    assert list(dict.fromkeys(p[-1] for p in paths if p)) == known.headings
    # body text in capitals is not a heading (the old plain-text rule made it one)
    assert all("PART I — FINANCIAL INFORMATION" not in p for p in paths)
    assert "PART I — FINANCIAL INFORMATION" in doc.sections[0].text


def test_running_header_and_page_numbers_are_dropped(report):
    _, data = report
    doc = parse_bytes(data, "pdf", fallback_title="x")
    assert "Form 10-Q" not in doc.full_text
    assert not any(line.strip().isdigit() for line in doc.full_text.splitlines())


def test_title_from_page_one_when_the_metadata_title_is_an_id(report):
    known, data = report
    assert known.metadata_title.replace("-", "").isdigit()  # an accession number, as SEC filings carry
    doc = parse_bytes(data, "pdf", fallback_title="report 2")
    assert doc.title == known.title
    assert all(known.title not in s.heading_path for s in doc.sections)  # the title is no section


@pytest.mark.parametrize("title", ["", "  ", "0000320193-23-000064", "d41d8cd98f00b204e9800998ecf8427e",
                                   "3f2504e0-4f89-11d3-9a0c-0305e82c3301", "Q2_2023_10Q_final.pdf",
                                   "Microsoft Word - report.docx", "Untitled", "doc_2023_q2_v3", "20230401"])
def test_id_like_metadata_titles(title):
    assert is_id_title(title)


@pytest.mark.parametrize("title", ["Quarterly Report", "Filing Expenses", "Form 10-Q for Q2 2023", "Apple Inc."])
def test_real_metadata_titles(title):
    assert not is_id_title(title)


def _pdf(draw, *, title: str | None = None, pages: int = 1) -> bytes:
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    c = canvas.Canvas(buffer, pagesize=(612, 792))
    if title is not None:
        c.setTitle(title)
    for n in range(1, pages + 1):
        draw(c, n)
        c.showPage()
    c.save()
    return buffer.getvalue()


def test_a_real_metadata_title_wins_and_the_file_name_is_the_last_resort():
    def draw(c, n):
        c.setFont("Helvetica", 10)
        c.drawString(72, 700, "Only body text here, all in one size, nothing larger.")

    assert parse_bytes(_pdf(draw, title="Remote Work Policy"), "pdf", fallback_title="f").title == "Remote Work Policy"
    assert parse_bytes(_pdf(draw, title="a1b2c3d4e5f6a7b8"), "pdf", fallback_title="remote work").title == \
        "remote work"


def test_borderless_table_with_year_columns_lowercase_labels_and_detached_dollar_signs():
    rows = [("Net sales", ("$", "1,200", "$", "950")), ("cost of sales", ("", "(400)", "", "(350)")),
            ("Gross margin", ("", "800", "", "600"))]

    def draw(c, n):
        c.setFont("Helvetica-Bold", 16)
        c.drawString(72, 720, "Condensed Statement of Operations")
        c.setFont("Helvetica", 10)
        c.drawString(72, 690, "The statement below is unaudited (in thousands).")
        c.drawRightString(330, 660, "2024")
        c.drawRightString(430, 660, "2023")
        y = 644
        for label, (d1, v1, d2, v2) in rows:
            c.drawString(72, y, label)
            c.drawString(272, y, d1)
            c.drawRightString(330, y, v1)
            c.drawString(372, y, d2)
            c.drawRightString(430, y, v2)
            y -= 14
        c.drawString(72, y - 20, "Gross margin grew on higher volumes.")

    doc = parse_bytes(_pdf(draw), "pdf", fallback_title="x")
    lines = _lines(doc)
    assert "Net sales — 2024: $1,200; 2023: $950." in lines
    assert "cost of sales — 2024: (400); 2023: (350)." in lines
    assert "Gross margin — 2024: 800; 2023: 600." in lines
    assert doc.sections[0].heading_path == [] and doc.title == "Condensed Statement of Operations"


def test_group_rows_and_wrapped_labels_stay_with_their_rows():
    def draw(c, n):
        c.setFont("Helvetica", 10)
        c.drawString(72, 720, "Results of operations were as follows (in millions):")
        for y, label, x, v1, v2 in [(686, "Operating expenses:", 72, "", ""),
                                    (672, "Research and development", 84, "310", "290"),
                                    (658, "Selling, general and", 84, "", ""),
                                    (644, "administrative", 84, "120", "(110)"),
                                    (630, "Total operating expenses", 72, "430", "400")]:
            c.drawString(x, y, label)
            c.drawRightString(330, y, v1)
            c.drawRightString(430, y, v2)
        c.drawRightString(330, 700, "2024")
        c.drawRightString(430, 700, "2023")

    lines = _lines(parse_bytes(_pdf(draw), "pdf", fallback_title="x"))
    assert "Operating expenses: Research and development — 2024: 310; 2023: 290." in lines
    assert "Operating expenses: Selling, general and administrative — 2024: 120; 2023: (110)." in lines
    assert "Total operating expenses — 2024: 430; 2023: 400." in lines


def test_ruled_table_with_a_spanning_header_and_a_group_row():
    from reportlab.platypus import SimpleDocTemplate, Table, TableStyle

    grid = [["", "Fiscal 2024", "", "Fiscal 2023", ""], ["Segment", "Q1", "Q2", "Q1", "Q2"],
            ["Hardware", "", "", "", ""], ["Servers", "1,010", "1,020", "930", "940"],
            ["Storage", "510", "520", "430", "440"], ["Services", "77", "78", "66", "67"]]
    table = Table(grid, colWidths=[120, 70, 70, 70, 70])
    table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.5, (0, 0, 0)), ("SPAN", (1, 0), (2, 0)),
                               ("SPAN", (3, 0), (4, 0)), ("FONT", (0, 0), (-1, -1), "Helvetica", 9)]))
    buffer = io.BytesIO()
    SimpleDocTemplate(buffer).build([table])
    lines = _lines(parse_bytes(buffer.getvalue(), "pdf", fallback_title="x"))
    assert "Hardware: Servers — Fiscal 2024 Q1: 1,010; Fiscal 2024 Q2: 1,020; Fiscal 2023 Q1: 930; " \
           "Fiscal 2023 Q2: 940." in lines
    assert "Hardware: Services — Fiscal 2024 Q1: 77; Fiscal 2024 Q2: 78; Fiscal 2023 Q1: 66; Fiscal 2023 Q2: 67." \
        in lines


def test_each_section_and_chunk_keeps_its_page(report):
    known, data = report
    doc = parse_bytes(data, "pdf", fallback_title="x")
    assert {s.page for s in doc.sections} == set(range(1, known.pages + 1))
    for table in known.tables:
        label = table.rows[0][0]
        assert [s.page for s in doc.sections if f"{label} — " in s.text] == [table.page]
    drafts = chunk_document(doc, max_tokens=64, overlap=8)
    assert all(d.page is not None for d in drafts)
    for table in known.tables:
        assert {d.page for d in drafts if table.rows[-1][0] + " — " in d.text} == {table.page}
    meta = chunk_pages([d.page for d in drafts])
    assert [chunk_page(meta, d.ordinal) for d in drafts] == [d.page for d in drafts]
    assert chunk_pages([None, None]) == {} and chunk_page({}, 0) is None and chunk_page(meta, len(drafts)) is None


def test_a_citation_links_to_its_page_and_names_it():
    def hit(chunk_id, page, url="https://docs.example/reports/q2.pdf"):
        return SearchHit(chunk_id=chunk_id, document_id=7, collection_id=1, title="Q2 report", source_uri="/srv/q2.pdf",
                         heading_path="Operating Expenses", text="...", score=1.0, display_path="reports/q2.pdf",
                         url=url, page=page)

    text, citations = parse_citations("R&D was $291 [1]; SG&A $1,264 [2].", [hit(1, 6), hit(2, 7)])
    assert text == "R&D was $291 [1]; SG&A $1,264 [1]."
    assert [c.url for c in citations] == ["https://docs.example/reports/q2.pdf#page=6",
                                          "https://docs.example/reports/q2.pdf#page=7"]
    assert [c.page for c in citations] == [6, 7]
    assert cited_sources(citations)[0].sections == ("Operating Expenses (p. 6)", "Operating Expenses (p. 7)")
    _, no_url = parse_citations("x [1]", [hit(3, 2, url=None)])
    assert no_url[0].url is None and cited_sources(no_url)[0].sections == ("Operating Expenses (p. 2)",)
    assert page_link("https://x/a.pdf#page=1", 4) == "https://x/a.pdf#page=4"
    assert page_link("https://x/a.md", None) == "https://x/a.md"


def test_a_broken_pdf_is_rejected_with_a_reason(report):
    _, data = report
    with pytest.raises(ParseError, match="unreadable PDF"):
        parse_bytes(data[: len(data) // 3], "pdf", fallback_title="x")
    with pytest.raises(ParseError, match="no extractable text"):
        parse_bytes(_pdf(lambda c, n: c.rect(72, 72, 100, 100)), "pdf", fallback_title="x")
