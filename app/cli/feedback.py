"""``ragbot feedback``: export the training set, import existing Q&A history, review corrections.

Review decisions are written to the audit log with actor ``cli:<os user>``,
like ``/ragbot-admin feedback approve|reject`` in chat.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from app.cli.common import console, friendly_errors, settings
from app.cli.lora import audited, cli_user, open_db
from app.configs import bot_config, engine_config
from bot.answer_codes import AnswerCodes, parse_answer_ref
from bot.sanitize import truncate
from rag_engine.feedback import pending_corrections
from rag_engine.interactions import get_interaction
from rag_engine.scope import CollectionScope
from rag_engine.training.curated import import_jsonl

if TYPE_CHECKING:
    from rag_engine.store.database import Database
    from rag_engine.values import SearchHit

feedback_app = typer.Typer(help="The training set built from feedback, and curated Q&A.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(feedback_app, name="feedback")


@feedback_app.command("export")
@friendly_errors
def export(
    out: Annotated[Path, typer.Option("--out", "-o", help="JSONL file to write.")],
) -> None:
    """Write the current training set (both splits, a `split` field on each line) as JSONL."""
    from rag_engine.engine import RagEngine  # lazy: pulls the parsers and yaml; keeps `ragbot --help` fast
    from rag_engine.training.dataset import build_training_set, write_jsonl  # lazy: pulls yaml and the parsers

    config = engine_config(settings())
    engine: list[RagEngine] = []
    with open_db() as db:
        def retrieve(question: str, collection_ids: list[int]) -> list[SearchHit]:
            if not engine:  # the embedder loads only when curated examples need passages
                engine.append(RagEngine(config, db=db, generator=None))
            return engine[0].retriever.search(question, CollectionScope.of(collection_ids),
                                              config.retrieval.search_k, None)

        training_set = build_training_set(db, config.training, retrieve=retrieve,
                                          shown_passages=config.generation.generation_passages)
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


@feedback_app.command("review")
@friendly_errors
def review(
    approve: Annotated[list[str] | None, typer.Option(
        "--approve", help="Correction ids to approve as training data (repeat, or separate with commas).")] = None,
    reject: Annotated[list[str] | None, typer.Option(
        "--reject", help="Correction ids to reject (repeat, or separate with commas).")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many pending corrections to list.")] = 50,
) -> None:
    """List corrections awaiting review (oldest first), or approve / reject them by id."""
    to_approve, to_reject = _ids(approve), _ids(reject)
    both = sorted(set(to_approve) & set(to_reject))
    if both:
        raise ValueError(f"correction {', '.join(map(str, both))} cannot be both approved and rejected")
    with open_db() as db:
        for ids, ok in ((to_approve, True), (to_reject, False)):
            if ids:
                console.print(audited(db, "feedback", {"args": ["approve" if ok else "reject", *map(str, ids)]},
                                      functools.partial(_decide, db, ids, ok)))
        if to_approve or to_reject:
            return
        found, total = pending_corrections(db, limit)
    if not total:
        console.print("no corrections await review")
        return
    table = Table(title=f"Corrections awaiting review ({total}; oldest first)")
    for col in ("id", "from", "when", "question", "answer given", "correction"):
        table.add_column(col, overflow="fold")
    for p in found:  # Text: what users wrote is shown as written, never read as console markup
        table.add_row(str(p.id), Text(p.user_key), p.created_at.strftime("%Y-%m-%d %H:%M"), Text(p.question),
                      Text(truncate(p.answer, 200)), Text(p.text))
    console.print(table)
    console.print("approve: `ragbot feedback review --approve ID[,ID...]`; reject: `--reject ID[,ID...]`")


def _decide(db: Database, ids: list[int], approve: bool) -> str:
    from bot import admin_ops  # lazy: pulls rag_engine.engine (parsers, yaml)

    report = admin_ops.review_corrections(db, ids, approve=approve, reviewer=f"cli:{cli_user()}")
    if not report.ok:  # the audit row records the failure; what was decided is in the message
        raise ValueError(report.message())
    return report.message()


def _ids(values: list[str] | None) -> list[int]:
    ids = [part.strip().removeprefix("#") for value in values or [] for part in value.split(",") if part.strip()]
    bad = [i for i in ids if not (i.isascii() and i.isdigit())]
    if bad:
        raise ValueError(f"{bad[0]!r} is not a correction id (the numbers `ragbot feedback review` lists)")
    return list(dict.fromkeys(int(i) for i in ids))


@feedback_app.command("import")
@friendly_errors
def import_(
    path: Annotated[Path, typer.Argument(help="JSONL: question, answer, optional source and collection.")],
    collection: Annotated[str | None, typer.Option("--collection", "-c",
                                                      help="Collection for lines that name none.")] = None,
) -> None:
    """Store existing Q&A pairs as curated examples for the next retrain."""
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


@feedback_app.command("show")
@friendly_errors
def show(
    answer: Annotated[str, typer.Argument(help="The answer's code as users see it (e.g. 7KQM2D), or #ID.")],
) -> None:
    """Look up an answer users quote: its question, reply, status and where it was asked."""
    codes = AnswerCodes.from_config(bot_config(settings()))
    interaction_id = parse_answer_ref(answer, codes)
    if interaction_id is None:
        raise ValueError(f"{answer!r} is not an answer code (6-12 letters and digits, as shown under an "
                         "answer) or #ID")
    with open_db() as db:
        record = get_interaction(db, interaction_id)
    if record is None:
        raise ValueError(f"no answer {answer} (interaction {interaction_id}); check the code, or the "
                         "answer_code_key setting if it changed")
    console.print(f"answer {codes.encode(record.id)} = interaction {record.id}, {record.created_at:%Y-%m-%d %H:%M} "
                  f"UTC, {record.platform} {record.workspace_id or '-'}/{record.channel_id}, {record.user_key}, "
                  f"{record.status}", markup=False, highlight=False)
    console.print(f"Q: {record.question}", markup=False, highlight=False)
    console.print(f"A: {record.answer}", markup=False, highlight=False)
