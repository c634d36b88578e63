"""``ragbot lora`` (alias ``ragbot adapters``): list, activate, roll back, retrain, bootstrap, status; and
``ragbot report``.

Changes are written to the audit log with actor ``cli:<os user>``, like the
same operations given through the chat admin command.
"""

from __future__ import annotations

import functools
import getpass
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar

import typer
from rich.markup import escape
from rich.table import Table

from app.cli.common import console, err_console, friendly_errors, settings
from app.configs import engine_config, store_config
from app.worker import Worker
from bot.types import Actor
from rag_engine.embedding import build_embedder
from rag_engine.store import Store
from rag_engine.store.database import Database, SchemaNotReady
from rag_engine.store.migrate import current_revision, ensure_schema, head_revision
from rag_engine.training import registry

if TYPE_CHECKING:
    from app.settings import Settings
    from rag_engine.training.bootstrap import Derived

lora_app = typer.Typer(help="LoRA adapters of the generator: list, activate, roll back, retrain.", no_args_is_help=True)
P = ParamSpec("P")
R = TypeVar("R")


def register(app: typer.Typer) -> None:
    app.add_typer(lora_app, name="lora")
    # the pre-0.2 name, kept for one release
    app.add_typer(lora_app, name="adapters", hidden=True, deprecated=True)
    app.command("report")(report)


def lookup_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """"Not found" and "nothing to roll back" print one line and exit 1."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except LookupError as exc:
            err_console.print(f"[bold red]error:[/] {exc.args[0] if exc.args else exc}")
            raise typer.Exit(1) from None

    return wrapper


@contextmanager
def open_db() -> Iterator[Database]:
    """The database, migrated to head (the embedded one is migrated on the spot); closed afterwards."""
    s = settings()
    db = Database.from_config(store_config(s))
    try:
        if current_revision(db) != head_revision():
            if not db.is_embedded:
                raise SchemaNotReady("the database schema is not up to date: run `ragbot db upgrade` first")
            ensure_schema(db, build_embedder(engine_config(s).embedding).dim)
        yield db
    finally:
        if db.close():
            logging.getLogger(__name__).info("embedded PostgreSQL stopped (no other process uses it)")


def cli_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in a bare container
        return "unknown"


def audited(db: Database, action: str, args: dict, run: Callable[[], str]) -> str:
    """Run an admin change, write its audit row (ok or not), return its message."""
    from bot.audit import write_audit  # lazy: pulls rag_engine.engine (parsers, yaml)

    actor = Actor("cli", cli_user())
    store = Store(db)
    try:
        message = run()
    except Exception as exc:
        write_audit(store, actor, action, args, ok=False, result=str(exc))
        raise
    write_audit(store, actor, action, args, ok=True, result=message)
    return message


@lora_app.command("list")
@friendly_errors
def list_adapters() -> None:
    """Every adapter with its status and evaluation numbers (newest first)."""
    with open_db() as db:
        found = registry.list_adapters(db)
    if not found:
        console.print("no adapters yet: `ragbot lora retrain`, then run `ragbot worker`")
        return
    table = Table(title="Adapters")
    table.add_column("version", no_wrap=True, min_width=7)
    table.add_column("status", no_wrap=True, min_width=8)
    for col in ("method", "created", "data", "NLL", "active", "base", "F1", "prev"):
        table.add_column(col)
    for a in found:
        m = a.metrics
        cand, base, act = (m.get(k) or {} for k in ("candidate", "base", "active"))
        table.add_row(
            a.version, status_style(a.status), a.method, f"{a.created_at:%m-%d %H:%M}", split_sizes(a.data_snapshot),
            metric(cand.get("nll")), metric(act.get("nll")), metric(base.get("nll")), metric(cand.get("token_f1")),
            a.previous_version or "",
        )
    console.print(table)
    console.print("data = train/held-out examples; NLL = held-out NLL per answer token of the adapter, the "
                  "adapter active when it was judged, and the base model")


@lora_app.command("activate")
@friendly_errors
@lookup_errors
def activate(version: str) -> None:
    """Make VERSION the active adapter (running bots switch within RAGBOT_ADAPTER_POLL_S)."""
    s = settings()
    with open_db() as db:
        def run() -> str:
            change = registry.activate(db, version, base_model=registry.base_model_id(engine_config(s).generation))
            return f"Adapter {version} is active (was {change.previous or 'the base model'})."

        console.print(audited(db, "adapters", {"args": ["activate", version]}, run))


@lora_app.command("import")
@friendly_errors
def import_(
    folder: Annotated[Path, typer.Argument(help="Folder with adapter_config.json and adapter_model.safetensors.")],
    activate: Annotated[bool, typer.Option("--activate", help="Make it the active adapter.")] = False,
) -> None:
    """Register a LoRA adapter trained elsewhere (e.g. the demo's); importing the same files again adds nothing."""
    from rag_engine.training.shipped import import_adapter  # lazy: the registry pulls the training modules

    config = engine_config(settings())
    with open_db() as db:
        def run() -> str:
            record = import_adapter(db, config.generation, config.training, folder, activate=activate)
            return f"Adapter {record.version} ({record.status}) from {folder}."

        console.print(audited(db, "adapters", {"args": ["import", str(folder), *(["--activate"] if activate else [])]},
                              run))


@lora_app.command("rollback")
@friendly_errors
@lookup_errors
def rollback() -> None:
    """Restore the adapter that was active before the current one (or the base model)."""
    from bot import admin_ops  # lazy: pulls rag_engine.engine (parsers, yaml)

    with open_db() as db:
        console.print(audited(db, "rollback", {}, lambda: admin_ops.rollback(db, f"cli:{cli_user()}").message))


@lora_app.command("retrain")
@friendly_errors
def retrain() -> None:
    """Queue a retrain (a running `ragbot worker` picks it up)."""
    from bot import admin_ops  # lazy: pulls rag_engine.engine (parsers, yaml)

    s = settings()
    with open_db() as db:
        def run() -> str:
            req = admin_ops.request_retrain(db, engine_config(s), f"cli:{cli_user()}")
            return f"Queued retrain job {req.job_id}." if req.created else \
                f"A retrain is already queued or running: job {req.job_id}."

        console.print(audited(db, "retrain", {}, run))


@lora_app.command("bootstrap")
@friendly_errors
def bootstrap(
    collection: Annotated[list[str] | None, typer.Option(
        "--collection", "-c", help="Collection to read (repeatable); default: every collection that allows training.")
    ] = None,
    max_pairs: Annotated[int, typer.Option(min=1, help="At most this many pairs in total.")] = 200,
    per_document: Annotated[int, typer.Option(min=1, help="At most this many pairs per document.")] = 8,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print counts and a sample; write nothing.")] = False,
    no_train: Annotated[bool, typer.Option("--no-train", help="Store the pairs, but queue no retrain.")] = False,
) -> None:
    """A tuned adapter before any feedback: Q&A pairs from the documents' headings, FAQ entries and
    definitions (training-allowed collections only), stored as curated examples, then a retrain through
    the gate, which activates the adapter when it passes."""
    from rag_engine.training import bootstrap as boot  # lazy: pulls yaml and the parsers

    s = settings()
    with open_db() as db:
        ids = _trainable_ids(db, collection)
        derived = boot.derive_pairs(boot.load_chunks(db, ids), max_pairs=max_pairs, per_document=per_document)
        _print_bootstrap_counts(derived)
        if dry_run:
            for pair in derived.pairs[:_SAMPLE]:
                console.print(f"[dim]{pair.kind}[/] {escape(pair.question)}\n    -> {escape(pair.answer)}  "
                              f"[dim]({escape(pair.source)})[/]", highlight=False)
            console.print(f"dry run: {len(derived.pairs)} pairs, nothing written")
            return
        args = {"collections": collection or "all allowing training", "max_pairs": max_pairs,
                "per_document": per_document, "train": not no_train}

        def store() -> str:
            added, existing = boot.store_pairs(db, derived.pairs)
            return f"Stored {added} bootstrap pairs as curated examples ({existing} were already there)."

        console.print(audited(db, "bootstrap", args, store))
        if not no_train:
            _retrain_now(db, s)


_SAMPLE = 12


def _trainable_ids(db: Database, names: list[str] | None) -> list[int] | None:
    """Ids of the named collections, each checked to allow training (None: all that do)."""
    if not names:
        return None
    found = Store(db).collections.resolve(names)
    refused = [c.name for c in found if not c.allow_training]
    if refused:
        raise ValueError(f"collection {', '.join(map(repr, refused))} does not allow training "
                         "(`ragbot collections set NAME --training` changes that)")
    return [c.id for c in found]


def _print_bootstrap_counts(derived: Derived) -> None:
    table = Table(title="Bootstrap pairs")
    for col in ("kind", "found", "kept"):
        table.add_column(col)
    kept = derived.kept()
    for kind in ("heading", "faq", "definition"):
        table.add_row(kind, str(derived.found[kind]), str(kept[kind]))
    table.add_row("total", str(sum(derived.found.values())), str(len(derived.pairs)))
    console.print(table)
    for reason, n in sorted(derived.dropped.items()):
        console.print(f"dropped {n}: {reason}", markup=False)


def _retrain_now(db: Database, s: Settings) -> None:
    """Queue a retrain (as `ragbot lora retrain`, audited) and run it here through the worker's job path,
    gate included; the pipeline activates the adapter when the gate passes it."""
    from bot import admin_ops  # lazy: pulls rag_engine.engine (parsers, yaml)

    def queue() -> str:
        req = admin_ops.request_retrain(db, engine_config(s), f"cli:{cli_user()}")
        return f"Queued retrain job {req.job_id}." if req.created else \
            f"A retrain is already queued or running: job {req.job_id}."

    console.print(audited(db, "retrain", {"via": "bootstrap"}, queue))
    run = Worker(s, db).run_once()
    if run is None:
        console.print("a running `ragbot worker` took the job; follow it with `ragbot lora status`")
        return
    result = run.result or {}
    console.print(f"job {run.job_id}: {run.status}"
                  + (f" - {result.get('decision')} {result.get('version') or ''}: {result.get('reason')}"
                     if result else "") + (f" - {run.error}" if run.error else ""), markup=False)
    if run.status == "failed":
        raise typer.Exit(1)


@lora_app.command("status")
@friendly_errors
def status() -> None:
    """Queue, last runs with their numbers, active adapter, feedback since the last training."""
    from bot import admin_ops  # lazy: pulls rag_engine.engine (parsers, yaml)

    with open_db() as db:
        lines = admin_ops.status(db, engine_config(settings())).to_lines()
    for line in lines:
        console.print(line, markup=False)


@friendly_errors
def report(out: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write.")] = Path("report.html")) -> None:
    """Write an HTML report: feedback over time and adapter metrics per version."""
    from app.report import write_report  # lazy: pulls the engine; matplotlib loads when it draws

    with open_db() as db:
        path = write_report(db, settings(), out)
    console.print(f"wrote {path}")


def status_style(status: str) -> str:
    """A version's status as the version listings (adapters, retrieval) show it."""
    return {"active": "[bold green]active[/]", "rejected": "[red]rejected[/]"}.get(status, status)


def split_sizes(snapshot: dict[str, Any]) -> str:
    """``train/held-out`` sizes of a version's data snapshot."""
    return f"{snapshot.get('train', '?')}/{snapshot.get('heldout', '?')}"


def metric(value: float | None) -> str:
    return "" if value is None else f"{float(value):.3f}"
