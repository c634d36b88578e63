"""``ragbot feedback``: export the training set, import existing Q&A history."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from bot.cli.adapters import open_db
from bot.cli.common import console, friendly_errors, settings

feedback_app = typer.Typer(help="The training set built from feedback, and curated Q&A.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(feedback_app, name="feedback")


@feedback_app.command("export")
@friendly_errors
def export(
    out: Annotated[Path, typer.Option("--out", "-o", help="JSONL file to write.")],
) -> None:
    """Write the current training set (both splits, a `split` field on each line) as JSONL."""
    from rag_engine.engine import RagEngine
    from rag_engine.training.dataset import build_training_set, write_jsonl

    s = settings()
    engine: list[RagEngine] = []
    with open_db() as db:
        def retrieve(question: str, collection_ids: list[int]):
            if not engine:  # the embedder loads only when curated examples need passages
                engine.append(RagEngine(s, db=db, generator=None))
            return engine[0].retriever.search(question, collection_ids, s.search_k, None)

        training_set = build_training_set(db, s, retrieve=retrieve)
    n = write_jsonl(training_set, out)
    console.print(f"wrote {n} examples to {out} ({len(training_set.train)} train, "
                  f"{len(training_set.heldout)} held-out)")
    origins = training_set.snapshot.get("origins", {})
    if origins:
        console.print("by origin: " + ", ".join(f"{k} {v}" for k, v in sorted(origins.items())))
    if training_set.excluded:
        table = Table(title="Left out")
        table.add_column("reason")
        table.add_column("count", justify="right")
        for reason, count in training_set.excluded.most_common():
            table.add_row(reason, str(count))
        console.print(table)


@feedback_app.command("import")
@friendly_errors
def import_(
    path: Annotated[Path, typer.Argument(help="JSONL: question, answer, optional source and collection.")],
    collection: Annotated[Optional[str], typer.Option("--collection", "-c",
                                                      help="Collection for lines that name none.")] = None,
) -> None:
    """Store existing Q&A pairs as curated examples for the next retrain."""
    from rag_engine.training.curated import import_jsonl

    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    with open_db() as db:
        report = import_jsonl(db, path, collection=collection)
    console.print(f"imported {report.added} examples ({report.duplicates} already there, "
                  f"{len(report.errors)} lines with errors)")
    for line, message in report.errors[:50]:
        console.print(f"[yellow]line {line}:[/] {message}")
    if len(report.errors) > 50:
        console.print(f"... and {len(report.errors) - 50} more")
    if report.errors and not report.added and not report.duplicates:
        raise typer.Exit(1)
