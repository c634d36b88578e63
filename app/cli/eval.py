"""``ragbot eval retrieval|answers|loop``: quality numbers for the retrieval and answer paths, and the
learning loop (answers before and after a retrain on one's own Q&A)."""

from __future__ import annotations

import json
from collections.abc import Callable
from io import StringIO
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from app.cli.common import console, friendly_errors, open_engine, settings
from app.cli.lora import cli_user
from app.worker import Worker
from rag_engine.eval.beir import load_beir

if TYPE_CHECKING:
    from rag_engine.eval.loop_report import LoopReport
    from rag_engine.eval.retrieval_eval import RetrievalEvalResult

eval_app = typer.Typer(help="Evaluate retrieval (BEIR data sets), answers (QA files) and the learning loop.",
                       no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")


def _progress() -> Progress:
    return Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=True)


@eval_app.command("retrieval")
@friendly_errors
def eval_retrieval(
    directory: Annotated[Path, typer.Argument(help="BEIR layout: corpus.jsonl, queries.jsonl, qrels/<split>.tsv")],
    collection: Annotated[str | None, typer.Option("--collection", "-c",
                          help="Collection to ingest into (default: eval-<data set>-<embedding backend>).")] = None,
    split: Annotated[str, typer.Option(help="qrels file to use")] = "test",
    mode: Annotated[list[str] | None, typer.Option("--mode", "-m",
                    help="vector | lexical | hybrid | adaptive (hybrid, weight per query) | hybrid+rerank "
                    "(repeatable; default all but adaptive)")] = None,
    max_queries: Annotated[int | None, typer.Option(help="Evaluate only the first N judged queries.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the results as JSON.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Write a PNG of metrics and latency per mode.")] = None,
    retriever_version: Annotated[str | None, typer.Option(
        "--retriever-version", help="A learned retrieval version (query adapter, `ragbot retrieval list`) to "
        "evaluate against the active one (raw queries when none is active): each vector-using mode runs with both."
    )] = None,
) -> None:
    """nDCG@10, Recall@10/100, MRR@10 and latency per search mode on a BEIR data set."""
    from rag_engine.eval.retrieval_eval import (  # lazy: the engine
        available_modes,
        evaluate_retrieval,
        plot_retrieval,
        retriever_versions,
    )

    dataset = load_beir(directory, split, max_queries=max_queries)
    engine = open_engine(generator=None)
    name = collection or f"eval-{dataset.name}-{engine.embedder.backend}"
    modes = mode or available_modes(engine)
    versions = retriever_versions(engine, retriever_version) if retriever_version else []
    with _progress() as bar:
        ingest_task = bar.add_task(f"ingesting {dataset.name}", total=len(dataset.corpus))
        tasks: dict[str, TaskID] = {}

        def on_query(m: str) -> None:
            if m not in tasks:
                tasks[m] = bar.add_task(m, total=len(dataset.queries))
            bar.advance(tasks[m])

        result = evaluate_retrieval(engine, dataset, name, modes=modes,
                                    on_document=lambda _uri: bar.advance(ingest_task), on_query=on_query,
                                    versions=versions)
    ing = result.ingest
    console.print(f"[dim]{name}: {ing['documents_written']} documents written, {ing['documents_unchanged']} "
                  f"unchanged, {ing['embedded']} chunks embedded, {ing['skipped']} skipped ({ing['seconds']:.1f}s)[/]")
    print_retrieval_table(result)
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result.as_dict(), indent=2))
        console.print(f"wrote {json_out}")
    if plot:
        plot_retrieval([(m.mode, m.metrics, m.latency) for m in result.modes], plot, dataset.name)
        console.print(f"wrote {plot}")


def print_retrieval_table(result: RetrievalEvalResult) -> None:
    table = Table(title=f"Retrieval on {result.dataset} ({result.queries} queries, {result.documents} documents)")
    table.add_column("mode")
    metric_names = list(result.modes[0].metrics) if result.modes else []
    for name in metric_names:
        table.add_column(name, justify="right")
    table.add_column("p50 ms", justify="right")
    table.add_column("p95 ms", justify="right")
    best = {n: max(m.metrics[n] for m in result.modes) for n in metric_names}
    for m in result.modes:
        cells = [f"[bold]{m.metrics[n]:.4f}[/]" if m.metrics[n] == best[n] else f"{m.metrics[n]:.4f}"
                 for n in metric_names]
        table.add_row(m.mode, *cells, f"{m.latency['p50_ms']:.1f}", f"{m.latency['p95_ms']:.1f}")
    console.print(table)


@eval_app.command("answers")
@friendly_errors
def eval_answers(
    qa_file: Annotated[Path, typer.Argument(help='JSON lines: {"question", "answer", "source"?}')],
    collection: Annotated[list[str] | None, typer.Option("--collection", "-c",
                          help="Collection(s) to answer from (repeatable; default all).")] = None,
    k: Annotated[int | None, typer.Option("-k", help="Passages retrieved per question (hit@k).")] = None,
    extractive: Annotated[bool, typer.Option(help="Skip the language model.")] = False,
    limit: Annotated[int | None, typer.Option(help="Only the first N questions.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write summary and rows as JSON.")] = None,
    html_out: Annotated[Path | None, typer.Option("--html", help="Write the per-question table as HTML.")] = None,
) -> None:
    """Exact match, token F1, ROUGE-L, BLEU, citation and retrieval hit rates, abstentions, latency."""
    from rag_engine.eval.answer_eval import evaluate_answers, load_qa, write_html  # lazy: pulls the engine

    items = load_qa(qa_file)[:limit] if limit else load_qa(qa_file)
    engine = open_engine(generator=None) if extractive else open_engine()
    with _progress() as bar:
        task = bar.add_task("answering", total=len(items))
        result = evaluate_answers(engine, items, collection or None, k=k, progress=lambda _i: bar.advance(task))
    table = Table(title=f"Answers on {qa_file.name} ({len(items)} questions)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in result.summary.items():
        table.add_row(name.replace("retrieval_hit_rate", f"retrieval_hit@{result.k}"),
                      str(value) if name == "questions" else f"{value:.3f}")
    for who, n in result.answered_by.items():  # the model and adapter that wrote them, or extractive
        table.add_row(f"answered by {escape(who)}", str(n))
    console.print(table)
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result.as_dict(), indent=2))
        console.print(f"wrote {json_out}")
    if html_out:
        write_html(result, html_out, f"ragbot answers: {qa_file.name}")
        console.print(f"wrote {html_out}")


@eval_app.command("loop")
@friendly_errors
def eval_loop(
    docs: Annotated[Path | None, typer.Argument(metavar="DOCS",
        help="Folder (or file) to ingest; leave out with --collection to use an existing collection.")] = None,
    qa_file: Annotated[Path | None, typer.Argument(metavar="QA_FILE",
        help='JSON lines {"question", "answer", "source"?}, split into train and test (or --train/--test).')] = None,
    collection: Annotated[str | None, typer.Option("--collection", "-c",
                          help="Collection to ingest into / answer from (default: eval-loop-<folder>).")] = None,
    train_file: Annotated[Path | None, typer.Option("--train", help="Q&A pairs to retrain on (with --test).")] = None,
    test_file: Annotated[Path | None, typer.Option("--test", help="Q&A pairs to measure on (with --train).")] = None,
    test_fraction: Annotated[float, typer.Option(help="Share of QA_FILE held out as test questions.")] = 0.3,
    seed: Annotated[int, typer.Option(help="Seed of the split (a hash of each question and the seed).")] = 0,
    max_test: Annotated[int | None, typer.Option(min=1, help="Measure on the first N test questions only.")] = None,
    k: Annotated[int | None, typer.Option("-k", help="Passages retrieved per question.")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Folder for loop.json, loop.png, loop.txt.")] = None,
    bootstrap: Annotated[bool, typer.Option(
        "--bootstrap", help="Before the train pairs, retrain on pairs derived from the documents (`ragbot lora "
                            "bootstrap`) and measure that adapter too (a \"bootstrap\" row).")] = False,
) -> None:
    """Measure the learning loop: answers before a retrain, extractive only, retrain on the train pairs through the
    job worker (gate included), answers after; one table (and JSON/PNG with --out)."""
    from app.eval_loop import LoopHooks, prepare_collection, run_loop  # lazy: pulls the engine
    from rag_engine.eval.answer_eval import load_qa  # lazy: pulls the engine
    from rag_engine.eval.loop_report import overlap, plot_loop, split_qa  # lazy: pulls the engine

    if docs is not None and qa_file is None and docs.is_file() and collection and (train_file is None):
        docs, qa_file = None, docs  # `eval loop --collection NAME QA_FILE`
    if (train_file is None) != (test_file is None):
        raise ValueError("give both --train and --test, or one QA_FILE to split")
    if train_file is not None and qa_file is not None:
        raise ValueError("give either QA_FILE or --train/--test, not both")
    if docs is None and not collection:
        raise ValueError("give a folder to ingest, or --collection NAME of an ingested one")
    if docs is not None and not docs.exists():
        raise ValueError(f"no such file or folder: {docs}")
    if train_file is not None and test_file is not None:
        train, test = load_qa(train_file), load_qa(test_file)
        split: dict[str, object] = {"train_file": str(train_file), "test_file": str(test_file)}
    elif qa_file is not None:
        train, test = split_qa(load_qa(qa_file), test_fraction, seed)
        split = {"qa_file": str(qa_file), "test_fraction": test_fraction, "seed": seed}
    else:
        raise ValueError("give a QA_FILE to split, or --train and --test")
    test = test[:max_test] if max_test else test
    name = collection or _default_collection(docs)

    s = settings()  # the one place settings are read: the engines and the worker get what they need from here
    engine = open_engine(s)
    extractive = open_engine(s, db=engine.db, embedder=engine.embedder, generator=None,
                             reranker=engine.retriever.reranker)  # the same retrieval, no language model
    worker = Worker(s, engine.db)
    if train_file is not None and (shared := overlap(train, test)):
        console.print(f"[yellow]{shared} test question(s) are also train questions: the retrain sees their answers")
    console.print(f"[dim]{name}: {len(train)} train pairs, {len(test)} test questions "
                  f"({split.get('qa_file') or split.get('test_file')})[/]")

    with _progress() as bar:
        current: list[TaskID] = []

        def stage(text: str, total: int) -> None:
            for task in current:
                bar.update(task, visible=False)
            current[:] = [bar.add_task(escape(text), total=total or None)]

        hooks = LoopHooks(stage=stage, advance=lambda: bar.advance(current[-1]) if current else None)
        prepare_collection(engine, name, docs, hooks)
        report = run_loop(engine, extractive, worker, name, train, test, k=k, requested_by=f"cli:{cli_user()}",
                          split=split, bootstrap=bootstrap, hooks=hooks)
    tables = _loop_tables(report)
    for table in tables:
        console.print(table)
    for t in (report.bootstrap_retrain, report.retrain):
        if t is None:
            continue
        examples = (f" ({t.snapshot['train']} examples trained on, {t.snapshot['heldout']} held out for the gate)"
                    if "train" in t.snapshot and "heldout" in t.snapshot else "")
        console.print(f"retrain job {t.job_id}: {escape(t.verdict)}{examples} — {escape(t.reason)}")
    if out:
        _write_loop(report, tables, out, plot_loop)


def _default_collection(docs: Path | None) -> str:
    """``eval-loop-<folder>``; a folder called ``docs`` is named after its parent (``tts-handbook/docs``)."""
    where = (docs or Path(".")).resolve()
    if where.is_dir() and where.name == "docs" and where.parent.name:
        where = where.parent
    return f"eval-loop-{where.stem}"


def _loop_tables(report: LoopReport) -> list[Table]:
    from rag_engine.eval.loop_report import KEPT_COLUMNS, TABLE_COLUMNS, kept_rows, table_rows  # lazy: the engine

    main = Table(title=f"Learning loop on {report.collection}: {report.train_questions} train pairs, "
                       f"{report.test_questions} test questions")
    for i, col in enumerate(TABLE_COLUMNS):
        main.add_column(col, justify="left" if i in (0, 1, 7, 13) else "right", overflow="fold")
    for cells in table_rows(report):
        main.add_row(*(escape(c) for c in cells))
    kept = Table(title="Generated-and-kept answers vs the extractive answer to the same questions")
    for i, col in enumerate(KEPT_COLUMNS):
        kept.add_column(col, justify="left" if i == 0 else "right")
    for cells in kept_rows(report):
        kept.add_row(*cells)
    return [main, kept]


def _write_loop(report: LoopReport, tables: list[Table], out: Path,
                plot: Callable[[LoopReport, Path], None]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "loop.json").write_text(json.dumps(report.as_dict(), indent=2))
    text = Console(file=StringIO(), width=200, record=True)
    for table in tables:
        text.print(table)
    (out / "loop.txt").write_text(text.export_text())
    plot(report, out / "loop.png")
    console.print(f"wrote {out / 'loop.json'}, {out / 'loop.txt'}, {out / 'loop.png'}")
