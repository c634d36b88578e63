"""``ragbot eval retrieval|answers``: quality numbers for the retrieval and answer paths."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from app.cli.common import console, friendly_errors, open_engine

eval_app = typer.Typer(help="Evaluate retrieval (BEIR data sets) and answers (QA files).", no_args_is_help=True)


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
                    help="vector | lexical | hybrid | hybrid+rerank (repeatable; default all available)")] = None,
    max_queries: Annotated[int | None, typer.Option(help="Evaluate only the first N judged queries.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the results as JSON.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Write a PNG of metrics and latency per mode.")] = None,
) -> None:
    """nDCG@10, Recall@10/100, MRR@10 and latency per search mode on a BEIR data set."""
    from rag_engine.eval.beir import load_beir
    from rag_engine.eval.retrieval_eval import available_modes, evaluate_retrieval, plot_retrieval

    dataset = load_beir(directory, split, max_queries=max_queries)
    engine = open_engine(generator=None)
    name = collection or f"eval-{dataset.name}-{engine.embedder.backend}"
    modes = mode or available_modes(engine)
    with _progress() as bar:
        ingest_task = bar.add_task(f"ingesting {dataset.name}", total=len(dataset.corpus))
        tasks: dict[str, int] = {}

        def on_query(m: str) -> None:
            if m not in tasks:
                tasks[m] = bar.add_task(m, total=len(dataset.queries))
            bar.advance(tasks[m])

        result = evaluate_retrieval(engine, dataset, name, modes=modes,
                                    on_document=lambda _uri: bar.advance(ingest_task), on_query=on_query)
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


def print_retrieval_table(result) -> None:
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
    from rag_engine.eval.answer_eval import evaluate_answers, load_qa, write_html

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
                      f"{value:.3f}" if isinstance(value, float) else str(value))
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
