"""Core commands: db, ingest, search, ask, demo."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer
from rich.markup import escape
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from app.cli.common import console, friendly_errors, open_engine, settings, setup_logging
from app.configs import engine_config, store_config
from bot.fallback_notes import fallback_note
from rag_engine.embedding import build_embedder
from rag_engine.generation.citations import cited_sources
from rag_engine.store.database import Database
from rag_engine.store.migrate import check_pgvector, current_revision, downgrade, head_revision, upgrade
from rag_engine.training import registry
from rag_engine.values import Answer, AnswerStatus, IngestReport, SearchMode

if TYPE_CHECKING:
    from rag_engine.collections import Visibility
    from rag_engine.engine import RagEngine

db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"
DEMO_LORA = EXAMPLES_DIR / "lora" / "handbook-bootstrap"  # made by `ragbot lora bootstrap` (examples/lora/README.md)


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
    app.command()(ingest)
    app.command()(search)
    app.command()(ask)
    app.command()(demo)


@db_app.command("upgrade")
@friendly_errors
def db_upgrade(revision: str = "head") -> None:
    """Run pending migrations (the embedding dimension comes from the configured model)."""
    s = settings()
    db = Database.from_config(store_config(s))
    check_pgvector(db)
    dim = build_embedder(engine_config(s).embedding).dim
    upgrade(db, dim, revision)
    console.print(f"database at revision [bold]{current_revision(db)}[/] (embedding dimension {dim})")


@db_app.command("downgrade")
@friendly_errors
def db_downgrade(revision: str = typer.Argument("base", help="target revision")) -> None:
    """Revert migrations (base drops every ragbot table)."""
    db = Database.from_config(store_config(settings()))
    downgrade(db, revision)
    console.print(f"database at revision [bold]{current_revision(db) or 'base'}[/]")


@db_app.command("current")
@friendly_errors
def db_current() -> None:
    """Show the schema revision of the database and of the code."""
    db = Database.from_config(store_config(settings()))
    console.print(f"database: {current_revision(db) or 'not migrated'}   code: {head_revision()}")


@friendly_errors
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or directories (md, txt, html, pdf).")],
    collection: Annotated[str, typer.Option("--collection", "-c")] = "default",
    prune: Annotated[bool, typer.Option(help="Delete documents whose files are gone.")] = False,
    private: Annotated[bool, typer.Option(help="Create the collection as private.")] = False,
) -> None:
    """Parse, chunk, embed and store documents; unchanged files are skipped."""
    engine = open_engine()
    report = _ingest_with_progress(engine, paths, collection, prune, "private" if private else "public")
    print_ingest_report(report)


def _ingest_with_progress(engine: RagEngine, paths: list[Path], collection: str, prune: bool,
                          visibility: Visibility) -> IngestReport:
    from rag_engine.ingest import discover_files  # lazy: pulls the parsers, yaml and multiprocessing

    files, _ = discover_files([Path(p) for p in paths])
    with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("ingesting", total=len(files))

        def step(uri: str) -> None:
            bar.update(task, advance=1, description=f"ingesting {Path(uri).name[:40]}")

        return engine.ingest(paths, collection, prune=prune, progress=step, visibility=visibility)


def print_ingest_report(report: IngestReport) -> None:
    table = Table(title="Ingestion", show_header=False)
    for label, value in [("files", report.files), ("documents written", report.documents_written),
                         ("documents unchanged", report.documents_unchanged),
                         ("documents pruned", report.documents_pruned), ("chunks written", report.chunks_written),
                         ("chunks embedded", report.embedded), ("skipped", len(report.skipped)),
                         ("seconds", f"{report.seconds:.1f}")]:
        table.add_row(label, str(value))
    console.print(table)
    for path, reason in report.skipped:
        console.print(f"[yellow]skipped[/] {path}: {reason}")


@friendly_errors
def search(
    query: str,
    mode: Annotated[str | None, typer.Option(help="vector | lexical | hybrid")] = None,
    collection: Annotated[list[str] | None, typer.Option("--collection", "-c")] = None,
    k: Annotated[int, typer.Option("-k")] = 5,
) -> None:
    """Show the ranked chunks for a query."""
    if mode not in (None, "vector", "lexical", "hybrid"):
        raise ValueError("mode must be vector, lexical or hybrid")
    engine = open_engine()
    scope = engine.scope_for(collection) if collection else engine.every_collection()
    hits = engine.search(query, scope, k, cast("SearchMode | None", mode))  # checked against the modes above
    table = Table(title=f"{mode or engine.config.retrieval.search_mode} search: {query}")
    for col in ("#", "score", "cosine", "title", "section", "text"):
        table.add_column(col, overflow="fold")
    for i, h in enumerate(hits, 1):
        table.add_row(str(i), f"{h.score:.4f}", f"{h.vector_score:.3f}" if h.vector_score is not None else "",
                      h.title, h.heading_path, h.text[:160])
    console.print(table)
    if not hits:
        console.print("no results")


@friendly_errors
def ask(
    question: str,
    collection: Annotated[list[str] | None, typer.Option("--collection", "-c")] = None,
    extractive: Annotated[bool, typer.Option(help="Skip the language model.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as one JSON object.")] = False,
) -> None:
    """Answer a question from the documents, with sources and the model (and adapter) that wrote it."""
    engine = open_engine(generator=None) if extractive else open_engine()
    with console.status("Thinking…"):
        answer = engine.answer(question, engine.scope_for(collection) if collection else engine.every_collection())
    if as_json:
        typer.echo(json.dumps(answer_json(question, answer), ensure_ascii=False, default=str))
    else:
        print_answer(question, answer)


def answer_json(question: str, answer: Answer) -> dict[str, object]:
    """What ``ask --json`` prints: the answer, who wrote it, and why it was quoted if it was."""
    return {
        "question": question, "answer": answer.text, "status": answer.status.value,
        "generator": answer.generator, "adapter_version": answer.adapter_version, "answered_by": answer.answered_by,
        "retriever_version": answer.retriever_version,
        "fallback_code": answer.fallback_code.value if answer.fallback_code else None,
        "fallback_reason": answer.fallback_reason,
        "citations": [{"n": c.n, "title": c.title, "section": c.heading_path, "source": c.display_path or c.source_uri,
                       "url": c.url} for c in answer.citations],
        "timings": answer.timings, "metadata": answer.metadata,
    }


def print_answer(question: str, answer: Answer) -> None:
    subtitle = f"{answer.status.value} · {answer.answered_by} · {answer.timings.get('total', 0):.1f}s"
    # answer and question are plain text: a "[/x]" in a document must not be read as console markup
    console.print(Panel(escape(answer.text), title=escape(question), subtitle=escape(subtitle), title_align="left"))
    if answer.metadata.get("adapter_error"):
        console.print(f"  [yellow]adapter problem:[/] {escape(answer.metadata['adapter_error'])}")
    for source in cited_sources(answer.citations):
        c = source.citation
        where = f" › {'; '.join(source.sections)}" if source.sections else ""
        console.print(escape(f"  [{source.n}] ") + f"[bold]{escape(c.title)}[/]{escape(where)} — "
                      f"{escape(c.display_path or c.source_uri)}")
    note = fallback_note(answer.fallback_code)
    if note:
        detail = f" ({answer.fallback_reason})" if answer.status is AnswerStatus.FALLBACK else ""
        console.print(f"  [dim]{escape(note + detail)}[/]")


def _activate_demo_lora(engine: RagEngine, folder: Path) -> None:
    """Import the shipped adapter and serve it, unless the database already has an active one (a user's own)."""
    from rag_engine.training.shipped import import_adapter  # lazy: pulls the training modules

    if registry.active(engine.db) is None:
        import_adapter(engine.db, engine.config.generation, engine.config.training, folder, activate=True)
    engine.adapter_watcher.check_once()


@friendly_errors
def demo(
    docs: Annotated[Path, typer.Option(help="Documents to ingest.")] = EXAMPLES_DIR / "handbook",
    questions: Annotated[Path, typer.Option(help="JSON list of {question}.")] = EXAMPLES_DIR / "questions.json",
    extractive: Annotated[bool, typer.Option(help="Skip the language model.")] = False,
    lora: Annotated[Path | None, typer.Option(
        help="LoRA adapter to import and activate when none is active (see examples/lora/README.md).")] = DEMO_LORA,
) -> None:
    """Ingest the sample handbook into the embedded database and answer sample questions."""
    s = settings()
    setup_logging(s, "WARNING")
    engine = open_engine(generator=None) if extractive else open_engine()
    embedded = engine.db.embedded
    where = f"embedded PostgreSQL at {embedded.pgdata}" if embedded is not None else "PostgreSQL"
    console.print(f"[bold]ragbot demo[/] — {where}")
    if not extractive and lora is not None and lora.is_dir():
        _activate_demo_lora(engine, lora)
    print_ingest_report(_ingest_with_progress(engine, [docs], "handbook", True, "public"))
    for item in json.loads(questions.read_text()):
        with console.status(f"Answering: {item['question']}"):
            answer = engine.answer(item["question"], engine.scope_for(["handbook"]))
        print_answer(item["question"], answer)
