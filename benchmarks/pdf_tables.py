"""PDF tables: does the extractive answer quote the figure a question asks for? Before / after the layout parser.

    .venv/bin/python benchmarks/pdf_tables.py                  # 6 reports, 36 questions, 2-5 min on 2 CPU cores
    .venv/bin/python benchmarks/pdf_tables.py --reports 8 --out benchmarks/results/pdf_tables.md

Generated quarterly reports (``rag_engine/testing/report_pdfs.py``: an accession number as the
metadata title, a borderless net-sales table with a two-row header, a ruled expense table on a later
page, a running header and footer) are ingested twice into an embedded Postgres: with the parser
before this change (pypdf plain text, headings from ALL-CAPS lines, the metadata title) and with
``rag_engine.pdf_layout`` (pdfplumber). Each question asks for one cell ("What were Tablets net sales
for the six months ended April 1, 2023 at Contoso Ltd.?"); the extractive answer (default embedder,
hybrid search, no reranker, no language model) recalls the figure when the cell's number appears
in it (the issue's measure), and ``cell named`` when one of its sentences holds the figure with its
row label and full column header and no other row's label — what a reader needs to trust the
figure (a run-together table quoted whole holds every figure and names none). ``file@5``: the
report is among the top 5 hits; ``page cited``: the answer's first citation of the report carries
the table's page.

The library comparison reads the same reports with pypdf (plain and layout modes) and pdfplumber: a
known cell is ``row kept`` when one line of the output holds its row label and its figure, ``header
kept`` when that line also holds its full column header; the time is per page. The structure table
compares the old and new parser's titles and headings on the reports and on the handbook's own PDFs
(``examples/handbook``, whose h1/h2 texts are known from ``examples/make_pdfs.py``).
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import random
import re
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.configs import engine_config
from app.settings import Settings
from rag_engine import sources
from rag_engine.chunking import split_sentences
from rag_engine.engine import RagEngine
from rag_engine.ingest import FoundFile
from rag_engine.parsing import ParsedDocument, ParseError, parse_bytes, parse_plain_text
from rag_engine.testing.report_pdfs import KnownTable, Report, write_report

HANDBOOK = ROOT / "examples" / "handbook"
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def legacy_parse_pdf(data: bytes, fallback_title: str) -> ParsedDocument:
    """``rag_engine.parsing.parse_pdf`` before the layout parser (commit 1f12bfc), kept for the comparison."""
    from pypdf import PdfReader

    if not data.startswith(b"%PDF"):
        raise ParseError("not a PDF file (missing %PDF header)")
    reader = PdfReader(io.BytesIO(data), strict=False)
    text = "\n\n".join(page.extract_text() or "" for page in reader.pages)
    info_title = (reader.metadata.title if reader.metadata else None) or ""
    doc = parse_plain_text(text, fallback_title)
    if info_title.strip():
        doc.title = info_title.strip()
    return doc


# -- questions ------------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Question:
    text: str
    figure: str  # the cell as printed ("$51,334", "-61%")
    label: str  # its row
    column: str
    others: tuple[str, ...]  # the table's other row labels
    file: str
    page: int


def questions_for(report: Report, file: str, rng: random.Random, per_table: int) -> list[Question]:
    out = []
    for table in report.tables:
        cells = [(label, col, value) for label, values in table.rows for col, value in zip(table.columns, values,
                                                                                             strict=True)]
        for label, col, value in rng.sample(cells, per_table):
            others = tuple(name for name, _ in table.rows if name != label)
            out.append(Question(_phrase(report, table, label, col), value, label, col, others, file, table.page))
    return out


def _phrase(report: Report, table: KnownTable, label: str, column: str) -> str:
    if table.ruled:
        if column == "Change":
            return f"By what percentage did {report.company} {label.lower()} expense change year over year?"
        return f"How much did {report.company} spend on {label.lower()} in {column}?"
    return f"What were {report.company} net sales of {label.lower()} for the {column[0].lower() + column[1:]}?"


def figure_in(figure: str, text: str) -> bool:
    want = figure.replace("$", "").replace(",", "").replace("%", "")
    return any(m.replace(",", "") == want for m in _NUMBER.findall(text))


def cell_in(q: Question, text: str) -> bool:
    """A sentence of the answer names the cell: its figure, its row and its column header, and no other row."""
    for sentence in split_sentences(text):
        s = _squash(sentence)
        if (figure_in(q.figure, sentence) and q.label.casefold() in s and _squash(q.column) in s
                and not any(other.casefold() in s for other in q.others)):
            return True
    return False


# -- the engine, before and after -----------------------------------------------------------------------------

def legacy_reader(engine: RagEngine) -> Callable[[FoundFile, bool], tuple[ParsedDocument, bytes]]:
    def read(found: FoundFile, follow_symlinks: bool) -> tuple[ParsedDocument, bytes]:
        raw = found.path.read_bytes()
        doc = legacy_parse_pdf(raw, found.path.stem.replace("-", " "))
        doc.metadata[sources.RELATIVE_PATH] = found.relative_path
        return doc, raw + b"\0legacy"
    return read


def answer_all(engine: RagEngine, collection: str, questions: list[Question]) -> dict[str, float]:
    scope = engine.scope_for([collection])
    recalled = exact = found = paged = 0
    for q in questions:
        answer = engine.answer(q.text, scope)
        recalled += figure_in(q.figure, answer.text)
        exact += cell_in(q, answer.text)
        found += any(Path(h.source_uri).name == q.file for h in answer.hits[:5])
        cited = [c for c in answer.citations if Path(c.source_uri).name == q.file]
        paged += bool(cited) and cited[0].page == q.page
    n = len(questions)
    return {"figure recall": recalled / n, "cell named": exact / n, "file@5": found / n, "page cited": paged / n}


# -- libraries ------------------------------------------------------------------------------------------------

def _pypdf(mode: str) -> Callable[[bytes], list[str]]:
    def lines(data: bytes) -> list[str]:
        from pypdf import PdfReader

        reader = PdfReader(io.BytesIO(data), strict=False)
        return [line for p in reader.pages for line in (p.extract_text(extraction_mode=mode) or "").splitlines()]
    return lines


def _plumber_text(data: bytes) -> list[str]:
    import pdfplumber

    with pdfplumber.open(io.BytesIO(data)) as pdf:
        return [line for p in pdf.pages for line in (p.extract_text() or "").splitlines()]


def _plumber_layout(data: bytes) -> list[str]:
    doc = parse_bytes(data, "pdf", fallback_title="x")
    return [line for s in doc.sections for line in s.text.splitlines()]


LIBRARIES: dict[str, Callable[[bytes], list[str]]] = {
    "pypdf 7 plain": _pypdf("plain"),
    "pypdf 7 layout mode": _pypdf("layout"),
    "pdfplumber extract_text": _plumber_text,
    "pdfplumber + rag_engine.pdf_layout": _plumber_layout,
}


def _squash(text: str) -> str:
    return " ".join(text.split()).casefold()


def library_table(reports: list[tuple[Report, bytes]]) -> list[str]:
    """Each reader on the reports' known cells: is a cell's row on one line, with its column header?"""
    rows = ["| reader | row kept | header kept | s per page |", "|---|---:|---:|---:|"]
    pages = sum(r.pages for r, _ in reports)
    for name, read in LIBRARIES.items():
        kept = headed = total = 0
        start = time.perf_counter()
        for report, data in reports:
            lines = [_squash(x) for x in read(data)]
            for table in report.tables:
                for label, values in table.rows:
                    for col, value in zip(table.columns, values, strict=True):
                        total += 1
                        row_lines = [x for x in lines if label.casefold() in x and value.casefold() in x]
                        kept += bool(row_lines)
                        headed += any(_squash(col) in x for x in row_lines)
        seconds = (time.perf_counter() - start) / pages
        rows.append(f"| {name} | {kept / total:.2f} | {headed / total:.2f} | {seconds:.3f} |")
    return rows


def structure_table(reports: list[tuple[Report, bytes]]) -> list[str]:
    """Titles and headings, before / after, on the reports and on the handbook's PDFs (their h1/h2 known)."""
    handbook = [(p.stem, p.read_bytes(), h) for p, h in ((p, _handbook_headings()[p.name])
                                                         for p in sorted(HANDBOOK.glob("*.pdf")))]
    generated = [(f"report-{i}", data, report.headings) for i, (report, data) in enumerate(reports)]
    titles = [report.title for report, _ in reports]
    parsers: dict[str, Callable[[bytes, str], ParsedDocument]] = {
        "before: pypdf plain + ALL-CAPS rule": legacy_parse_pdf,
        "after: rag_engine.pdf_layout": lambda data, stem: parse_bytes(data, "pdf", fallback_title=stem)}
    rows = [f"| parser | reports: title right ({len(reports)}) | reports: headings found | reports: false headings "
            f"| handbook ({len(handbook)} PDFs): headings found | handbook: false headings |",
            "|---|---:|---:|---:|---:|---:|"]
    for name, parse in parsers.items():
        cells = []
        docs = [parse(data, stem) for stem, data, _ in generated]
        cells.append(str(sum(d.title == t for d, t in zip(docs, titles, strict=True))))
        for sample, parsed in ((generated, docs), (handbook, [parse(data, stem) for stem, data, _ in handbook])):
            found = sum(_found(known, d) for (_, _, known), d in zip(sample, parsed, strict=True))
            false = sum(len(_headings(d) - {_squash(h) for h in known})
                        for (_, _, known), d in zip(sample, parsed, strict=True))
            cells += [f"{found}/{sum(len(k) for _, _, k in sample)}", str(false)]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return rows


def _headings(doc: ParsedDocument) -> set[str]:
    return {_squash(h) for s in doc.sections for h in s.heading_path}


def _handbook_headings() -> dict[str, list[str]]:
    spec = importlib.util.spec_from_file_location("make_pdfs", ROOT / "examples" / "make_pdfs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out: dict[str, list[str]] = {}
    for value in vars(module).values():
        if isinstance(value, dict) and "file" in value and "blocks" in value:
            out[value["file"]] = [text for kind, text in value["blocks"] if kind in ("h1", "h2")]
    return out


def _found(headings: list[str], doc: ParsedDocument) -> int:
    """Headings found as section headings, or as the title (the layout parser keeps the title out of sections)."""
    seen = _headings(doc) | {_squash(doc.title)}
    return sum(_squash(h) in seen for h in headings)


# -- main -----------------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=6)
    parser.add_argument("--filler-pages", type=int, default=4, help="prose pages between the two tables")
    parser.add_argument("--per-table", type=int, default=3, help="questions per table")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "out" / "pdf_tables")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "pdf_tables.md")
    args = parser.parse_args()
    t0 = time.perf_counter()
    docs = args.work / "docs"
    shutil.rmtree(docs, ignore_errors=True)
    docs.mkdir(parents=True)
    rng = random.Random(args.seed)
    reports: list[tuple[Report, bytes]] = []
    questions: list[Question] = []
    for i in range(args.reports):
        path = docs / f"report-{i}.pdf"
        report = write_report(path, i, seed=args.seed, filler_pages=args.filler_pages)
        reports.append((report, path.read_bytes()))
        questions += questions_for(report, path.name, rng, args.per_table)
    lib_rows = library_table(reports)
    print("\n".join(lib_rows))
    struct_rows = structure_table(reports)
    print("\n".join(struct_rows))
    print(f"[{time.perf_counter() - t0:.0f} s] readers compared; starting the engine")

    data_dir = args.work / "data"
    shutil.rmtree(data_dir, ignore_errors=True)
    settings = Settings(_env_file=None, data_dir=data_dir, database_url=None, generator_backend="extractive",
                        reranker_model=None)
    engine = RagEngine(engine_config(settings), reranker=None)
    try:
        results: dict[str, dict[str, float]] = {}
        chunks: dict[str, int] = {}
        print(f"[{time.perf_counter() - t0:.0f} s] engine up; ingesting")
        after = engine.ingest([docs], "after")
        chunks["after"] = after.chunks_written
        engine.ingestor._read_file = legacy_reader(engine)  # type: ignore[method-assign]  # the old parser, in-process
        before = engine.ingest([docs], "before")
        chunks["before"] = before.chunks_written
        print(f"[{time.perf_counter() - t0:.0f} s] ingested; answering")
        for name in ("before", "after"):
            results[name] = answer_all(engine, name, questions)
    finally:
        engine.close()
    labels = {"before": "before: pypdf plain text, ALL-CAPS headings, metadata title",
              "after": "after: pdfplumber layout (rows with headers, font headings, page per chunk)"}
    eng_rows = ["| parser | chunks | figure recall | cell named | file@5 | page cited |",
                "|---|---:|---:|---:|---:|---:|"]
    for name in ("before", "after"):
        r = results[name]
        eng_rows.append(f"| {labels[name]} | {chunks[name]} | {r['figure recall']:.2f} | {r['cell named']:.2f} | "
                        f"{r['file@5']:.2f} | "
                        f"{r['page cited']:.2f} |")
    print("\n".join(eng_rows))
    elapsed = time.perf_counter() - t0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join([
        "# PDF tables: figure recall of the extractive answer, before / after the layout parser",
        "",
        f"`python benchmarks/pdf_tables.py --reports {args.reports} --filler-pages {args.filler_pages} "
        f"--per-table {args.per_table} --seed {args.seed}` — {len(reports)} generated quarterly reports "
        f"({sum(r.pages for r, _ in reports)} pages), {len(questions)} questions, each asking for one table cell; "
        f"extractive answers (no language model), default embedder, hybrid search, k=5. {elapsed:.0f} s on this "
        "machine. See the script's docstring for the set-up.",
        "",
        *eng_rows,
        "",
        f"The old parser's answers hold the figure ({results['before']['figure recall']:.2f}) because they "
        "quote the whole run-together table — every figure of it, under a misdetected heading "
        "(\"Part I — Financial Information\") and with no column names — so none names the cell asked for; "
        "the generated reports are drawn row by row, which is kinder to pypdf than the SEC filings of issue 18 "
        "(15 % there).",
        "",
        "## PDF readers on the same reports",
        "",
        "A known cell's row is kept when one output line holds its row label and its figure; its header",
        "is kept when that line also holds its full column header. Time per page on this machine, shared.",
        "",
        *lib_rows,
        "",
        "## Titles and headings, before / after",
        "",
        "Headings found: the known section headings (the reports' h2, the handbook PDFs' h1/h2 from",
        "examples/make_pdfs.py) found as section headings or as the title; false headings: headings",
        "that are none of those (for the old parser, capitalised body lines).",
        "",
        *struct_rows,
        "",
    ]))
    print(f"wrote {args.out} in {elapsed:.0f} s")


if __name__ == "__main__":
    main()
