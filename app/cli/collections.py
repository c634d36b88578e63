"""``ragbot collections``: create collections, set their visibility, and say which
chat locations may read them. Every change is written to the audit log (actor
``cli:<os user>``), like the same commands given through ``/ragbot-admin``."""

from __future__ import annotations

import getpass
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from app.cli.common import console, friendly_errors, settings
from app.configs import engine_config, store_config
from bot.types import Actor
from rag_engine import collections as cols
from rag_engine.embedding import build_embedder
from rag_engine.store import Store
from rag_engine.store.database import Database, SchemaNotReady
from rag_engine.store.migrate import current_revision, ensure_schema, head_revision

if TYPE_CHECKING:
    from rag_engine.collections import Visibility

collections_app = typer.Typer(help="Collections and which channels may read them.", no_args_is_help=True)

PlatformOpt = Annotated[str, typer.Option("--platform", "-p", help="slack, discord, cli or * (every platform).")]
WorkspaceOpt = Annotated[str, typer.Option("--workspace", "-w",
                                           help="Slack team id / Discord guild id, or * (every one).")]
ChannelOpt = Annotated[str | None, typer.Option("--channel", "-c", help="Channel id, or * (every channel).")]
DmOpt = Annotated[bool, typer.Option("--dm", help="Every direct message on the platform instead of a channel "
                                                 "(DM rules name no workspace).")]


def register(app: typer.Typer) -> None:
    app.add_typer(collections_app, name="collections")


def _open_db() -> Database:
    """The database, migrated; collections need no embedder unless the schema must be created."""
    s = settings()
    db = Database.from_config(store_config(s))
    if current_revision(db) != head_revision():
        if not db.is_embedded:
            raise SchemaNotReady("the database schema is not up to date: run `ragbot db upgrade` first")
        ensure_schema(db, build_embedder(engine_config(s).embedding).dim)
    return db


def _actor() -> Actor:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no user name in a bare container
        user = "unknown"
    return Actor("cli", user)


def _audited(db: Database, action: str, args: dict[str, Any], run: Callable[[], str]) -> str:
    """Run a change, audit it (ok or not), and return its message."""
    from bot.audit import write_audit  # lazy: pulls rag_engine.engine (parsers, yaml)

    try:
        message = run()
    except Exception as exc:
        write_audit(Store(db), _actor(), action, args, ok=False, result=str(exc))
        raise
    write_audit(Store(db), _actor(), action, args, ok=True, result=message)
    return message


def _location(platform: str, workspace: str, channel: str | None, dm: bool) -> tuple[str, str, str]:
    if dm == (channel is not None):
        raise ValueError("give either --channel CHANNEL_ID (or --channel '*') or --dm")
    return platform, workspace, "dm" if channel is None else channel


@collections_app.command("list")
@friendly_errors
def list_collections() -> None:
    """Collections with their visibility, size and access rules."""
    db = _open_db()
    found = Store(db).collections.list_all()
    table = Table(title="Collections")
    for col in ("name", "visibility", "training", "documents", "chunks", "embedder"):
        table.add_column(col)
    for c in found:
        table.add_row(c.name, c.visibility, "on" if c.allow_training else "off", str(c.documents), str(c.chunks),
                      c.embedding_model or "")
    console.print(table)
    rules = Store(db).access_rules.list()
    if rules:
        rules_table = Table(title="Access rules (most specific wins; public = everywhere unless excluded)")
        for col in ("collection", "access", "platform", "workspace", "channel"):
            rules_table.add_column(col)
        for r in rules:
            rules_table.add_row(r.collection, r.access, r.platform, r.workspace_id or "-", r.channel_id)
        console.print(rules_table)
    elif not found:
        console.print("no collections yet: `ragbot ingest PATH -c NAME` or `ragbot collections create NAME`")


@collections_app.command("create")
@friendly_errors
def create(
    name: str,
    private: Annotated[bool, typer.Option("--private", help="Readable only where granted.")] = False,
    training: Annotated[bool | None, typer.Option("--training/--no-training",
                                                     help="Use its feedback for retraining (default: public only).")]
    = None,
) -> None:
    """Create an empty collection (public unless --private)."""
    db = _open_db()
    visibility: Visibility = "private" if private else "public"

    def run() -> str:
        c = cols.create(Store(db).collections, name, visibility=visibility, allow_training=training)
        return f"Created {c.visibility} collection {c.name} (training {'on' if c.allow_training else 'off'})."

    console.print(_audited(db, "collections", {"args": ["create", name], "visibility": visibility,
                                               "training": training}, run))


@collections_app.command("set")
@friendly_errors
def set_collection(
    name: str,
    private: Annotated[bool | None, typer.Option("--private/--public", help="Change the visibility.")] = None,
    training: Annotated[bool | None, typer.Option("--training/--no-training", help="Allow retraining on it.")]
    = None,
) -> None:
    """Change a collection's visibility or training permission.

    Making a collection private also turns training off unless --training is given:
    a shared adapter must not learn from what only some channels may read.
    """
    if private is None and training is None:
        raise ValueError("nothing to change: give --private/--public and/or --training/--no-training")
    db = _open_db()
    visibility: Visibility | None = None if private is None else ("private" if private else "public")
    if private and training is None:
        training = False

    def run() -> str:
        c = Store(db).collections.update(name, visibility=visibility, allow_training=training)
        return f"{c.name}: {c.visibility}, training {'on' if c.allow_training else 'off'}."

    console.print(_audited(db, "collections", {"args": ["set", name], "visibility": visibility,
                                               "training": training}, run))


def _rule_command(sub: str, name: str, platform: str, workspace: str, channel: str | None, dm: bool) -> None:
    from bot import access  # lazy: pulls rag_engine.engine (parsers, yaml)

    where = _location(platform, workspace, channel, dm)
    db = _open_db()
    store = Store(db)

    def run() -> str:
        (coll,) = store.collections.resolve([name])
        label = "/".join(where)
        if sub == "revoke":
            n = store.access_rules.revoke(coll.id, *where)
            if not n:
                raise ValueError(f"there is no rule for {name} at {label} (see `ragbot collections list`)")
            return f"Removed the rule for {name} at {label}."
        access.set_access(store, coll.id, *where, sub)
        verb = "Granted" if sub == "grant" else "Excluded"
        return f"{verb} {name} ({coll.visibility}) at {label}."

    console.print(_audited(db, "collections", {"args": [sub, name], "platform": where[0], "workspace": where[1],
                                               "channel": where[2]}, run))


@collections_app.command("grant")
@friendly_errors
def grant(name: str, platform: PlatformOpt, workspace: WorkspaceOpt = "*", channel: ChannelOpt = None,
          dm: DmOpt = False) -> None:
    """Let a location read a collection (needed for private ones)."""
    _rule_command("grant", name, platform, workspace, channel, dm)


@collections_app.command("exclude")
@friendly_errors
def exclude(name: str, platform: PlatformOpt, workspace: WorkspaceOpt = "*", channel: ChannelOpt = None,
            dm: DmOpt = False) -> None:
    """Keep a location from reading a collection (also a public one)."""
    _rule_command("exclude", name, platform, workspace, channel, dm)


@collections_app.command("revoke")
@friendly_errors
def revoke(name: str, platform: PlatformOpt, workspace: WorkspaceOpt = "*", channel: ChannelOpt = None,
           dm: DmOpt = False) -> None:
    """Remove the grant or exclusion for exactly this location."""
    _rule_command("revoke", name, platform, workspace, channel, dm)
