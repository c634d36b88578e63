"""Quarterly-report PDFs with known tables, for the PDF parser's tests and its benchmark.

Each report looks like a financial filing: an id (an SEC-style accession number) as
the PDF's metadata title, the real title in large type on page 1, headings in bold
at two sizes, a running header and page-number footer on every page, prose, a
borderless table with a two-row header ("Three Months Ended" over two dates) and a
ruled table. Every cell is known, so a test or benchmark can ask for one and check
the figure. Needs reportlab (a dev dependency), imported lazily.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HEADINGS_SIZE = {1: 18.0, 2: 13.0}
BODY_SIZE = 10.0


@dataclass(frozen=True, slots=True)
class KnownTable:
    """A table as written: its heading, column headers (one per value column) and rows (label, values)."""

    heading: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, tuple[str, ...]], ...]
    ruled: bool
    page: int  # where it is drawn (1-based)


@dataclass(slots=True)
class Report:
    company: str
    title: str
    metadata_title: str
    tables: list[KnownTable] = field(default_factory=list)
    headings: list[str] = field(default_factory=list)
    pages: int = 0


_COMPANIES = ("Contoso", "Fabrikam", "Northwind", "Tailspin", "Woodgrove", "Litware", "Adatum", "Proseware")
_PRODUCTS = (("Phones", "Tablets", "Laptops", "Wearables", "Services"),
             ("Turbines", "Compressors", "Valves", "Pumps", "Field service"),
             ("Groceries", "Apparel", "Home goods", "Pharmacy", "Membership fees"),
             ("Passenger flights", "Cargo", "Loyalty program", "Charters", "Maintenance services"),
             ("Retail banking", "Mortgages", "Card fees", "Wealth management", "Treasury services"),
             ("Licenses", "Subscriptions", "Consulting", "Training", "Support contracts"),
             ("Vaccines", "Diagnostics", "Generics", "Devices", "Royalties"),
             ("Printers", "Ink cartridges", "Scanners", "Managed print", "Spare parts"))
_EXPENSES = ("Research and development", "Selling, general and administrative", "Restructuring")
_PROSE = ("The Company's results for the quarter reflect seasonal demand, changes in foreign currency exchange "
          "rates and the timing of new product introductions. Management believes the figures below are "
          "representative of the underlying business, although results for interim periods are not "
          "necessarily indicative of results for the full fiscal year. ",
          "Amounts are presented in millions of U.S. dollars unless otherwise stated. Percentages are "
          "computed from unrounded amounts and may not recompute from the rounded figures shown. ")


def write_report(path: Path, index: int, *, seed: int = 0, filler_pages: int = 2) -> Report:
    """Write report ``index`` (0-7) to ``path``; the same arguments give the same numbers."""
    report, data = report_bytes(index, seed=seed, filler_pages=filler_pages)
    path.write_bytes(data)
    return report


def report_bytes(index: int, *, seed: int = 0, filler_pages: int = 2) -> tuple[Report, bytes]:
    # lazy: reportlab is a dev-only dependency, needed only where test PDFs are generated
    from reportlab import rl_config
    from reportlab.lib.pagesizes import LETTER  # lazy: as above
    from reportlab.lib.styles import ParagraphStyle  # lazy: as above
    from reportlab.platypus import (  # lazy: as above
        PageBreak,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )

    rl_config.invariant = 1  # fixed dates and ids: the same report gives the same bytes

    rng = random.Random(seed * 1000 + index)
    company = f"{_COMPANIES[index % len(_COMPANIES)]} Ltd."
    quarter = 1 + index % 4
    year = 2023 - index // 4
    d1, d2 = f"April {1 + index % 28}, {year}", f"March {2 + index % 27}, {year - 1}"
    accession = f"{rng.randint(10**9, 10**10 - 1):010d}-{year % 100:02d}-{rng.randint(0, 999999):06d}"
    report = Report(company=company, title=f"{company} Quarterly Report Q{quarter} {year}", metadata_title=accession)
    h1 = ParagraphStyle("h1", fontName="Helvetica-Bold", fontSize=HEADINGS_SIZE[1], leading=22, spaceAfter=10)
    h2 = ParagraphStyle("h2", fontName="Helvetica-Bold", fontSize=HEADINGS_SIZE[2], leading=17, spaceBefore=8,
                        spaceAfter=6)
    body = ParagraphStyle("body", fontName="Helvetica", fontSize=BODY_SIZE, leading=13, spaceAfter=6)
    products = _PRODUCTS[index % len(_PRODUCTS)]
    story: list[object] = [Paragraph(report.title, h1),
                           Paragraph("PART I — FINANCIAL INFORMATION", body),
                           Paragraph(f"{company} designs, makes and sells {products[0].lower()} and "
                                     f"{products[1].lower()}. {_PROSE[0]}", body)]
    page = 1

    def heading(text: str) -> None:
        report.headings.append(text)
        story.append(Paragraph(text, h2))

    # borderless, financial-filing style: a spanning header row over the dates, "$" in the first row
    sales_cols = (f"Three Months Ended {d1}", f"Three Months Ended {d2}", f"Six Months Ended {d1}",
                  f"Six Months Ended {d2}")
    sales_rows = []
    for name in products:
        q1, q2 = rng.randint(800, 60000), rng.randint(800, 60000)
        sales_rows.append((name, (f"${q1:,}", f"${q2:,}", f"${q1 + rng.randint(800, 60000):,}",
                                  f"${q2 + rng.randint(800, 60000):,}")))
    heading("Net Sales by Category")
    story.append(Paragraph(f"Net sales by category for the periods ended {d1} were as follows (in millions):",
                           body))
    grid = [["", "Three Months Ended", "", "Six Months Ended", ""], ["", d1, d2, d1, d2]]
    grid += [[name, *values] for name, values in sales_rows]
    borderless = Table(grid, colWidths=[130, 95, 95, 95, 95])
    borderless.setStyle(TableStyle([
        ("FONT", (0, 0), (-1, -1), "Helvetica", 9), ("FONT", (0, 0), (-1, 1), "Helvetica-Bold", 9),
        ("SPAN", (1, 0), (2, 0)), ("SPAN", (3, 0), (4, 0)), ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
        ("ALIGN", (1, 0), (-1, 0), "CENTER")]))
    story.append(borderless)
    report.tables.append(KnownTable("Net Sales by Category", sales_cols, tuple(sales_rows), False, page))
    story.append(Paragraph(_PROSE[1] * 2, body))

    for _ in range(filler_pages):  # prose pages, so later tables sit on later pages
        story.append(PageBreak())
        page += 1
        heading(f"Results of Operations, part {page - 1}")
        story += [Paragraph(_PROSE[0] + _PROSE[1], body) for _ in range(6)]

    story.append(PageBreak())
    page += 1
    heading("Operating Expenses")
    story.append(Paragraph("Operating expenses for the three months ended " + d1 + " and " + d2 +
                           " were as follows (in millions, except percentages):", body))
    expense_cols = (f"Q{quarter} {year}", f"Q{quarter} {year - 1}", "Change")
    expense_rows = []
    for name in _EXPENSES:
        a, b = rng.randint(100, 9000), rng.randint(100, 9000)
        expense_rows.append((name, (_money_str(a), _money_str(b), f"{(a - b) * 100 // b}%")))
    ruled = Table([["Expense", *expense_cols], *[[name, *values] for name, values in expense_rows]],
                  colWidths=[200, 90, 90, 70])
    ruled.setStyle(TableStyle([("FONT", (0, 0), (-1, -1), "Helvetica", 9), ("FONT", (0, 0), (-1, 0),
                                                                               "Helvetica-Bold", 9),
                               ("GRID", (0, 0), (-1, -1), 0.5, (0, 0, 0)), ("ALIGN", (1, 0), (-1, -1), "RIGHT")]))
    story.append(ruled)
    report.tables.append(KnownTable("Operating Expenses", expense_cols, tuple(expense_rows), True, page))
    story += [Spacer(1, 12), Paragraph(_PROSE[0], body)]

    def page_furniture(canvas: Any, doc: Any) -> None:  # running header and page number on every page
        canvas.saveState()
        canvas.setFont("Helvetica", 8)
        canvas.drawString(72, 760, f"{company} | Form 10-Q | Q{quarter} {year}")
        canvas.drawString(300, 30, str(canvas.getPageNumber()))
        canvas.restoreState()

    buffer = io.BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=LETTER, title=accession, author=company)
    doc.build(story, onFirstPage=page_furniture, onLaterPages=page_furniture)
    report.pages = page
    return report, buffer.getvalue()


def _money_str(value: int) -> str:
    return f"${value:,}"
