"""``ragbot sources``: add, list, sync and remove the sources documents are synced from (a git
repository today). Adding and removing are written to the audit log (actor ``cli:<os user>``).

A scheduled source (``--every``) is synced by ``ragbot worker``; ``ragbot sources sync`` syncs now.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

import typer
from rich.markup import escape
from rich.table import Table

from app.cli.common import console, err_console, friendly_errors, open_engine, settings
from app.cli.lora import audited, open_db
from rag_engine import jobs
from rag_engine.source_admin import (
    add_source,
    describe_counts,
    describe_schedule,
    parse_interval,
    remove_source,
    require_source,
)
from rag_engine.store import Store

if TYPE_CHECKING:
    from rag_engine.collections import Visibility
    from rag_engine.store.sources import SourceRow
    from rag_engine.sync import SyncReport

sources_app = typer.Typer(help="Sources documents are synced from (git, web sites, Slack and Discord channels, "
                          "Confluence), and their syncs.",
                          no_args_is_help=True)
add_app = typer.Typer(help="Add a source.", no_args_is_help=True)
sources_app.add_typer(add_app, name="add")

_URLISH = re.compile(r"^[a-z][a-z0-9+.-]*://|^[\w.-]+@[\w.-]+:")  # https://…, ssh://…, git@host:path


def register(app: typer.Typer) -> None:
    app.add_typer(sources_app, name="sources")


def _default_name(repo: str) -> str:
    stem = re.sub(r"\.git$", "", repo.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1])
    return re.sub(r"[^a-z0-9._-]+", "-", stem.lower()).strip("-._") or "repo"


def _add(kind: str, source_name: str, config: dict[str, Any], collection: str, every: str | None, *,
         private: bool = False, label: str | None = None, also: str = "") -> None:
    """What every ``sources add <kind>`` does once its configuration is built: add the source (audited),
    then say where its documents go (``also``: more of that) and how to sync it now."""
    every_s = parse_interval(every) if every else None
    visibility: Visibility = "private" if private else "public"
    with open_db() as db:
        def run() -> str:
            s = add_source(Store(db), source_name, kind, config, collection, every_s=every_s, visibility=visibility)
            return (f"Added {label or kind} source {s.name} -> collection {s.collection_name}{also} "
                    f"({describe_schedule(s.schedule_s)}).")

        console.print(audited(db, "sources", {"args": ["add", kind, source_name], "collection": collection,
                                              "config": config, "every_s": every_s}, run), markup=False)
    console.print(f"run `ragbot sources sync {source_name}` to sync it now", markup=False)


_Every = Annotated[str | None, typer.Option(
    "--every", help="Sync schedule for `ragbot worker`, e.g. 30m, 1h, 1d (default: only on request).")]
_Private = Annotated[bool, typer.Option(help="Create the collection as private if it does not exist.")]


@add_app.command("git")
@friendly_errors
def add_git(
    repo: Annotated[str, typer.Argument(help="A local repository path, or a URL git can clone.")],
    collection: Annotated[str, typer.Option("--collection", "-c", help="The collection its documents go to.")],
    url_base: Annotated[str | None, typer.Option(
        "--url-base", help="Web address of a file, {path} standing for its path in the repository, e.g. "
                           "https://github.com/org/repo/blob/main/{path}. Citations link there.")] = None,
    branch: Annotated[str | None, typer.Option(help="Branch to follow (default: the repository's default).")]
    = None,
    every: _Every = None,
    name: Annotated[str | None, typer.Option(help="Source name (default: from the repository).")] = None,
    subdir: Annotated[str, typer.Option(help="Only files below this folder of the repository.")] = "",
    token_env: Annotated[str | None, typer.Option(
        help="Environment variable holding an HTTPS token (read at each sync, never stored).")] = None,
    token_file: Annotated[str | None, typer.Option(
        help="File holding an HTTPS token (read at each sync, never stored).")] = None,
    token_user: Annotated[str | None, typer.Option(
        help="HTTPS user name sent with the token (default x-access-token, as GitHub wants; GitLab: oauth2).")]
    = None,
    private: _Private = False,
) -> None:
    """Add a git repository (markdown, text, HTML, PDF files at one branch); `sources sync` reads it."""
    if not _URLISH.match(repo):
        local = Path(repo).expanduser().resolve()
        if not local.is_dir():
            raise ValueError(f"{repo} is not a folder (give a local repository path or a URL)")
        repo = local.as_posix()
    config: dict[str, Any] = {"repo": repo, "branch": branch, "url_base": url_base, "subdir": subdir,
                              "token_env": token_env, "token_file": token_file, "token_user": token_user}
    config = {k: v for k, v in config.items() if v not in (None, "")}
    _add("git", name or _default_name(repo), config, collection, every, private=private)


@add_app.command("web")
@friendly_errors
def add_web(
    url: Annotated[str, typer.Argument(help="The start page, or a sitemap (a URL ending in .xml).")],
    collection: Annotated[str, typer.Option("--collection", "-c", help="The collection its pages go to.")],
    max_pages: Annotated[int | None, typer.Option(
        "--max-pages", help="Page requests per sync, 304s included (default 500).")] = None,
    max_depth: Annotated[int | None, typer.Option(
        "--max-depth", help="Links followed from the start page or the sitemap's pages (default 5).")] = None,
    every: _Every = None,
    name: Annotated[str | None, typer.Option(help="Source name (default: the site's host name).")] = None,
    sitemap: Annotated[bool, typer.Option(help="The URL is a sitemap even though it does not end in .xml.")]
    = False,
    delay: Annotated[float | None, typer.Option(
        "--delay", help="Seconds between page requests (robots.txt's Crawl-delay wins if longer).")] = None,
    private: _Private = False,
) -> None:
    """Add a web site: its pages on the same host, as robots.txt allows; `sources sync` crawls it."""
    config: dict[str, Any] = {"url": url, "sitemap": sitemap or None, "max_pages": max_pages,
                              "max_depth": max_depth, "delay_s": delay}
    config = {k: v for k, v in config.items() if v is not None}
    _add("web", name or _default_name(urlsplit(url).hostname or "site"), config, collection, every, private=private)


@add_app.command("confluence")
@friendly_errors
def add_confluence(
    url: Annotated[str, typer.Option(help="The site: https://acme.atlassian.net/wiki (Cloud) or your server's URL.")],
    space: Annotated[str, typer.Option(help="The space key, e.g. ENG.")],
    collection: Annotated[str, typer.Option("--collection", "-c", help="The collection its pages go to.")],
    email: Annotated[str | None, typer.Option(
        help="Cloud: the Atlassian account the API token belongs to. Without it the token is a Data Center "
             "personal access token.")] = None,
    token_env: Annotated[str | None, typer.Option(
        help="Environment variable holding the API token (read at each sync, never stored).")] = None,
    token_file: Annotated[str | None, typer.Option(
        help="File holding the API token (read at each sync, never stored).")] = None,
    skip_restricted: Annotated[bool, typer.Option(
        "--skip-restricted", help="Leave out pages with read restrictions (default: each restriction set "
                                  "goes to a private collection of its own, readable once granted).")] = False,
    every: _Every = None,
    name: Annotated[str | None, typer.Option(help="Source name (default: confluence-<space>).")] = None,
    private: _Private = False,
) -> None:
    """Add a Confluence space: its pages, their hierarchy as headings; `sources sync` reads it."""
    if not (token_env or token_file):
        raise ValueError("give the API token with --token-env VAR or --token-file PATH")
    config: dict[str, Any] = {"url": url, "space": space, "email": email, "token_env": token_env,
                              "token_file": token_file, "restricted": "skip" if skip_restricted else None}
    config = {k: v for k, v in config.items() if v not in (None, "")}
    _add("confluence", name or _default_name(f"confluence-{space}"), config, collection, every, private=private,
         label="Confluence")


def _channel_list(channels: str | None, everything: bool, every_one: str) -> list[str]:
    """The channels of ``--channels A,B`` (empty: ``--all``); exactly one of the two must be given."""
    picked = [c.strip() for c in (channels or "").split(",") if c.strip()]
    if bool(picked) == everything:
        raise ValueError(f"give either --channels ID,ID or --all ({every_one})")
    return picked


def _add_chat(kind: str, source_name: str, config: dict[str, Any], every: str | None) -> None:
    """Add a chat source writing public channels into the collection named by its prefix."""
    config = {k: v for k, v in config.items() if v not in (None, "", [])}
    collection = config["collection_prefix"]
    _add(kind, source_name, config, collection, every, also=f", private channels to {collection}-private-<channel>")


_TOKEN_ENV_HELP = "Environment variable holding the bot token (read at each sync, never stored; default {})."
_ChatEvery = Annotated[str | None, typer.Option(
    "--every", help="Sync schedule for `ragbot worker`, e.g. 30m, 1h (default: only on request).")]
_TokenFile = Annotated[str | None, typer.Option(help="File holding the bot token (read at each sync).")]
_CollectionPrefix = Annotated[str, typer.Option(
    "--collection-prefix", help="Public channels go to this collection, a private channel to "
                                "<prefix>-private-<channel id>, granted to that channel only.")]


@add_app.command("slack")
@friendly_errors
def add_slack(
    channels: Annotated[str | None, typer.Option(
        "--channels", help="Channel ids (or names) to sync, comma-separated; the bot must be a member.")] = None,
    everything: Annotated[bool, typer.Option("--all", help="Every channel the bot is a member of.")] = False,
    collection_prefix: _CollectionPrefix = "slack",
    every: _ChatEvery = None,
    name: Annotated[str | None, typer.Option(help="Source name (default: slack).")] = None,
    token_env: Annotated[str | None, typer.Option(help=_TOKEN_ENV_HELP.format("RAGBOT_SLACK_BOT_TOKEN"))] = None,
    token_file: _TokenFile = None,
    rescan_days: Annotated[float | None, typer.Option(
        "--rescan-days", help="Threads started this recently are read again at every sync, so their edits and "
                              "deletions follow (default 7).")] = None,
    full_every: Annotated[str | None, typer.Option(
        "--full-every", help="How often the whole history is listed again, for old threads (default 24h).")] = None,
    api_url: Annotated[str | None, typer.Option(
        "--api-url", help="The Web API's base URL (default https://slack.com/api/).", hidden=True)] = None,
) -> None:
    """Add Slack channels: each thread (message and replies) is a document linked by its permalink."""
    picked = _channel_list(channels, everything, "every channel the bot is in")
    full_h = parse_interval(full_every) / 3600 if full_every else None
    _add_chat("slack", name or "slack", {"collection_prefix": collection_prefix, "channels": picked,
                                         "token_env": token_env, "token_file": token_file,
                                         "rescan_days": rescan_days, "full_every_h": full_h, "api_url": api_url},
              every)


@add_app.command("discord")
@friendly_errors
def add_discord(
    guild: Annotated[str, typer.Option("--guild", help="The server (guild) id.")],
    channels: Annotated[str | None, typer.Option(
        "--channels", help="Forum (or text) channel ids to sync, comma-separated (default: every forum channel "
                           "the bot can read).")] = None,
    collection_prefix: _CollectionPrefix = "discord",
    every: _ChatEvery = None,
    name: Annotated[str | None, typer.Option(help="Source name (default: discord-<guild id>).")] = None,
    token_env: Annotated[str | None, typer.Option(help=_TOKEN_ENV_HELP.format("RAGBOT_DISCORD_TOKEN"))] = None,
    token_file: _TokenFile = None,
    rescan_days: Annotated[float | None, typer.Option(
        "--rescan-days", help="Threads active this recently are read again at every sync, so their edits "
                              "follow (default 7).")] = None,
    api_base: Annotated[str | None, typer.Option(
        "--api-base", help="The REST API's base URL (default https://discord.com/api/v10).", hidden=True)] = None,
) -> None:
    """Add a Discord server's forum channels: each thread is a document linked by its jump URL."""
    picked = [c.strip() for c in (channels or "").split(",") if c.strip()]
    _add_chat("discord", name or f"discord-{guild}", {"guild_id": guild, "collection_prefix": collection_prefix,
                                                      "channels": picked, "token_env": token_env,
                                                      "token_file": token_file, "rescan_days": rescan_days,
                                                      "api_base": api_base}, every)


@sources_app.command("list")
@friendly_errors
def list_sources() -> None:
    """Sources with their schedule, last success, counts and last error."""
    with open_db() as db:
        found = Store(db).sources.all()
    if not found:
        console.print("no sources yet: `ragbot sources add git PATH_OR_URL --collection NAME`")
        return
    table = Table(title="Sources")
    for col in ("name", "kind", "collection", "schedule", "last success", "documents", "last sync", "error"):
        table.add_column(col, overflow="fold")
    for s in found:
        table.add_row(escape(s.name), s.kind, escape(s.collection_name), describe_schedule(s.schedule_s),
                      _when(s.last_success_at), str(s.documents),
                      describe_counts(s.last_counts), _error(s))
    console.print(table)


@sources_app.command("sync")
@friendly_errors
def sync(
    name: Annotated[str | None, typer.Argument(help="The source (default: every source).")] = None,
    queue: Annotated[bool, typer.Option("--queue", help="Queue the sync for `ragbot worker` instead.")] = False,
) -> None:
    """Sync now: ingest what changed since the last sync, remove what was deleted. Exit 1 if one failed."""
    if queue:
        with open_db() as db:
            targets = [require_source(Store(db), name)] if name else Store(db).sources.all()
            for s in targets:
                queued = jobs.enqueue(db, jobs.SOURCE_SYNC, {"source_id": s.id}, requested_by="cli")
                console.print(f"queued sync of {s.name} (job {queued.job_id})", markup=False)
        return
    from rag_engine.sync import SourceSyncer  # lazy: pulls the parsers

    engine = open_engine(generator=None)
    store = engine.store
    targets = [require_source(store, name)] if name else store.sources.all()
    if not targets:
        console.print("no sources yet: `ragbot sources add git PATH_OR_URL --collection NAME`")
        return
    syncer = SourceSyncer(store, engine.ingestor, engine.config.data_dir, engine.config.store.secrets)
    failed = 0
    for s in targets:
        with console.status(f"syncing {escape(s.name)}…"):
            report = syncer.sync(s.id)
        _print_report(report)
        failed += report.status == "failed"
    if failed:
        raise typer.Exit(1)


@sources_app.command("remove")
@friendly_errors
def remove(
    name: str,
    keep_documents: Annotated[bool, typer.Option(
        "--keep-documents", help="Keep its documents (no longer synced) instead of deleting them.")] = False,
) -> None:
    """Remove a source and, unless --keep-documents, its documents (out of search at once)."""
    data_dir = settings().data_dir
    with open_db() as db:
        def run() -> str:
            n = remove_source(Store(db), name, keep_documents=keep_documents, data_dir=data_dir)
            return f"Removed source {name}; {n} documents {'kept' if keep_documents else 'deleted'}."

        console.print(audited(db, "sources", {"args": ["remove", name], "keep_documents": keep_documents}, run),
                      markup=False)


def _print_report(r: SyncReport) -> None:
    if r.status == "failed":
        err_console.print(f"[bold red]{escape(r.source)}: failed[/] {escape(r.error or '')}")
        return
    if r.status != "synced":
        console.print(f"{escape(r.source)}: {r.status} (another sync of it is running or finished first)")
        return
    at = "" if (r.cursor or "").startswith("{") else f" at {(r.cursor or '')[:12]}"  # a commit, not a JSON cursor
    console.print(f"{escape(r.source)}:{at} — {r.changed} changed, {r.written} written, "
                  f"{r.unchanged} unchanged, {r.deleted} deleted, {r.chunks} chunks, {len(r.skipped)} skipped "
                  f"({r.seconds:.1f} s)")
    for item, reason in r.skipped:
        console.print(f"  [yellow]skipped[/] {escape(item)}: {escape(reason)}")



def _when(at: datetime | None) -> str:
    return at.astimezone().strftime("%Y-%m-%d %H:%M") if at else "never"


def _error(s: SourceRow) -> str:
    if not s.last_error:
        return ""
    retry = f"; retry after {_when(s.backoff_until)}" if s.backoff_until else ""
    return escape(f"{s.last_error[:160]} ({s.error_count} in a row{retry})")
