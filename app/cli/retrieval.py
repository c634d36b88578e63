"""``ragbot retrieval``: query adapters learned from feedback - train, list, activate, roll back.

The retrieval counterpart of ``ragbot lora``: a version is a learned transform of
query embeddings (``rag_engine.training.retrieval_pipeline``). Training runs here (it
takes seconds on a CPU; ``--queue`` leaves it to a running worker), judges the candidate
on held-out questions and activates it only when the gate passes it. Running bots apply
the active version from their next question on. Changes are written to the audit log
with actor ``cli:<os user>``.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from app.cli.common import console, friendly_errors, settings
from app.cli.lora import audited, cli_user, lookup_errors, metric, open_db, split_sizes, status_style
from app.configs import engine_config

retrieval_app = typer.Typer(help="Retrieval versions (query adapters learned from feedback): train, list, activate, "
                                 "roll back.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(retrieval_app, name="retrieval")


@retrieval_app.command("train")
@friendly_errors
@lookup_errors
def train(
    activate: Annotated[bool, typer.Option("--activate/--no-activate",
                                           help="Activate the candidate when the gate passes it.")] = True,
    queue: Annotated[bool, typer.Option("--queue", help="Queue it as a job for a running `ragbot worker` "
                                                         "instead of training here.")] = False,
) -> None:
    """Mine (question, chunk) pairs from feedback, train a query adapter, judge it on held-out questions,
    keep it, and activate it when it beats what searches today by the margin."""
    if queue:
        if not activate:
            raise typer.BadParameter("a queued retrieval retrain activates what the gate passes; "
                                     "train here for --no-activate", param_hint="--no-activate")
        _queue()
        return
    from rag_engine.embedding import build_embedder  # lazy: loads torch / the embedding model
    from rag_engine.store import Store  # lazy: with the embedder above
    from rag_engine.training.retrieval_pipeline import train_retrieval  # lazy: pulls the training modules

    config = engine_config(settings())
    with open_db() as db:
        embedder = build_embedder(config.embedding)

        def run() -> str:
            with console.status("Mining pairs and training the query adapter…", spinner="dots"):
                result = train_retrieval(db, embedder, Store(db).chunks, config.training,
                                         retrieval=config.retrieval, activate=activate)
            snap = result.snapshot
            return (f"Retrieval version {result.version}: {result.status} ({result.verdict.reason}); "
                    f"{snap['train']} train / {snap['heldout']} held-out questions, {snap['rows']} pairs, "
                    f"{result.stats.seconds:.1f}s training.")

        console.print(audited(db, "retrieval", {"args": ["train", *([] if activate else ["--no-activate"])]}, run),
                      markup=False)


def _queue() -> None:
    from bot import admin_ops  # lazy: pulls rag_engine.engine (parsers, yaml)

    with open_db() as db:
        def run() -> str:
            req = admin_ops.request_retrieval_retrain(db, f"cli:{cli_user()}")
            return f"Queued retrieval retrain job {req.job_id}." if req.created else \
                f"A retrieval retrain is already queued or running: job {req.job_id}."

        console.print(audited(db, "retrieval", {"args": ["train", "--queue"]}, run), markup=False)


@retrieval_app.command("list")
@friendly_errors
def list_versions() -> None:
    """Every retrieval version with its status and held-out numbers (newest first)."""
    from rag_engine.store.collections import CollectionRepo  # lazy: keeps `ragbot --help` fast
    from rag_engine.training import retrieval_registry as registry  # lazy: with the line above

    with open_db() as db:
        found = registry.list_versions(db)
        names = {str(c.id): c.name for c in CollectionRepo(db).list_all()}
    if not found:
        console.print("no retrieval versions yet: `ragbot retrieval train`")
        return
    table = Table(title="Retrieval versions (query adapters)")
    for col in ("version", "status", "created", "data", "nDCG@10", "raw", "hit@5", "raw", "hit@1", "rank",
                "fusion", "prev"):
        table.add_column(col, no_wrap=col in ("version", "status"))
    for v in found:
        cand, base = (v.metrics.get(k) or {} for k in ("candidate", "baseline"))
        table.add_row(
            v.version, status_style(v.status), f"{v.created_at:%m-%d %H:%M}", split_sizes(v.data_snapshot),
            metric(cand.get("ndcg10")), metric(base.get("ndcg10")), metric(cand.get("hit5")), metric(base.get("hit5")),
            metric(cand.get("hit1")), str(v.rank or "full"),
            registry.describe_weights(v, names),
            v.previous_version or "",
        )
    console.print(table)
    console.print("data = train/held-out questions; numbers on held-out questions: the version, and raw query "
                  "embeddings (no adapter); fusion = the vector weight it learned per collection (others: as "
                  "configured)")


@retrieval_app.command("activate")
@friendly_errors
@lookup_errors
def activate(version: str) -> None:
    """Make VERSION the active retrieval version (a rejected one too: your call); applies from the next question."""
    from rag_engine.training import retrieval_registry as registry  # lazy: keeps `ragbot --help` fast

    s = settings()
    with open_db() as db:
        def run() -> str:
            change = registry.activate(db, version, embedding_model=engine_config(s).embedding.embedding_model)
            return f"Retrieval version {version} is active (was {change.previous or 'raw query embeddings'})."

        console.print(audited(db, "retrieval", {"args": ["activate", version]}, run), markup=False)


@retrieval_app.command("rollback")
@friendly_errors
@lookup_errors
def rollback() -> None:
    """Restore the retrieval version active before the current one (or raw query embeddings)."""
    from rag_engine.training import retrieval_registry as registry  # lazy: keeps `ragbot --help` fast

    with open_db() as db:
        def run() -> str:
            change = registry.rollback(db)
            return f"Rolled back {change.previous}; now {change.version or 'raw query embeddings'}."

        console.print(audited(db, "retrieval", {"args": ["rollback"]}, run), markup=False)

