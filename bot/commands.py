"""Parsing of the admin command (``/ragbot-admin ...``) into typed commands.

``parse_admin_command`` accepts any string: it returns an ``AdminCommand`` or
raises ``CommandError`` (and nothing else) with a message that says what is
expected. Channel targets may be written as ids or as the platforms' channel
mentions (Slack ``<#C123|name>``, Discord ``<#123>``).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from bot.messages import command_too_long
from bot.sanitize import strip_control

AdminAction = Literal["help", "status", "retrain", "rollback", "ingest", "collections", "feedback", "console",
                      "sources"]

ADMIN_USAGE = """\
Usage: /ragbot-admin <command>
  status                              queue, last runs, active adapter, feedback since last training
  retrain                             queue a retraining job on the collected feedback
  rollback                            go back to the previous adapter
  rollback retrieval                  go back to the previous retrieval version (or raw query embeddings)
  ingest PATH... [--collection NAME]  ingest files below RAGBOT_INGEST_ROOTS into an existing collection
  collections list
  collections create NAME --private|--public
  collections grant|exclude|revoke NAME [here|CHANNEL_ID|#channel|*]
  feedback pending                    corrections awaiting review, oldest first
  feedback approve|reject ID...       approve corrections as training data, or reject them
  sources list                        synced sources: kind, collection, last success, counts, last error
  sources sync NAME                   queue a sync of the source for `ragbot worker`
  console                             a single-use sign-in link to the admin console in the browser"""

MAX_COMMAND_CHARS = 2000
MAX_NAME_CHARS = 100
MAX_REVIEW_IDS = 50
_SUBCOMMANDS = {"list", "create", "grant", "exclude", "revoke"}
_VISIBILITY_FLAGS = ("--private", "--public")
_CHANNEL_MENTION = re.compile(r"^<#([A-Za-z0-9]{1,64})(?:\|[^<>]{0,100})?>$")
_CHANNEL_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SOURCE_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")  # as rag_engine.source_admin names them


class CommandError(ValueError):
    """Input that is not a valid command; the message says what is expected."""


@dataclass(frozen=True, slots=True)
class AdminCommand:
    action: AdminAction
    args: tuple[str, ...] = ()
    options: dict[str, str] = field(default_factory=dict)

    def audit_args(self) -> dict[str, Any]:
        return {"args": list(self.args), **self.options}

    @property
    def name(self) -> str:
        """What permissions are decided on: the action, with the subcommand of ``collections`` / ``sources`` /
        ``rollback``."""
        with_sub = self.action in ("collections", "sources", "rollback") and self.args
        return f"{self.action} {self.args[0]}" if with_sub else self.action


def parse_admin_command(text: str) -> AdminCommand:
    text = strip_control(text or "")
    if len(text) > MAX_COMMAND_CHARS:
        raise CommandError(command_too_long(len(text), MAX_COMMAND_CHARS))
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise CommandError(f"could not parse the command ({exc}).\n{ADMIN_USAGE}") from None
    if not words or words[0].lower() in ("help", "-h", "--help"):
        return AdminCommand("help")
    action, rest = words[0].lower(), words[1:]
    if action == "rollback":
        return _rollback(rest)
    if action in ("status", "retrain", "console"):
        if rest:
            raise CommandError(f"`{action}` takes no arguments.\n{ADMIN_USAGE}")
        return AdminCommand(cast(AdminAction, action))  # one of the three just checked
    if action == "ingest":
        paths, options = _split_options(rest, {"--collection": "collection"})
        if not paths:
            raise CommandError(f"`ingest` needs at least one path.\n{ADMIN_USAGE}")
        if "collection" in options:
            _check_name(options["collection"])
        return AdminCommand("ingest", tuple(paths), options)
    if action == "collections":
        return _collections(rest)
    if action == "feedback":
        return _feedback(rest)
    if action == "sources":
        return _sources(rest)
    raise CommandError(f"unknown command `{_shown(action)}`.\n{ADMIN_USAGE}")


def _rollback(rest: list[str]) -> AdminCommand:
    """``rollback`` (the generator's adapter, as always) or ``rollback retrieval`` (the query adapter)."""
    if not rest:
        return AdminCommand("rollback")
    if len(rest) == 1 and rest[0].lower() == "retrieval":
        return AdminCommand("rollback", ("retrieval",))
    raise CommandError(f"`rollback` takes nothing (the adapter) or `retrieval` (the retrieval version).\n{ADMIN_USAGE}")


def _collections(rest: list[str]) -> AdminCommand:
    if not rest or rest[0].lower() not in _SUBCOMMANDS:
        raise CommandError(f"`collections` needs one of: {', '.join(sorted(_SUBCOMMANDS))}.\n{ADMIN_USAGE}")
    sub, args = rest[0].lower(), rest[1:]
    visibility = [a[2:] for a in args if sub == "create" and a in _VISIBILITY_FLAGS]
    args = [a for a in args if not (sub == "create" and a in _VISIBILITY_FLAGS)]
    unknown = [a for a in args if a.startswith("--")]
    if unknown:
        raise CommandError(f"unknown option {_shown(unknown[0])} for `collections {sub}`.")
    if sub == "list":
        if args:
            raise CommandError("`collections list` takes no arguments.")
        return AdminCommand("collections", ("list",))
    if not args:
        raise CommandError(f"`collections {sub}` needs a collection name.")
    most = 1 if sub == "create" else 2
    if len(args) > most:
        raise CommandError(f"too many arguments for `collections {sub}`.")
    _check_name(args[0])
    if len(args) == 2:
        args[1] = parse_channel_target(args[1])
    if sub == "create":  # who may read it is said, never assumed: a default would make a typo public
        if len(set(visibility)) != 1:
            raise CommandError("`collections create NAME` needs exactly one of --private (readable only where "
                               "granted) or --public (readable everywhere the bot answers).")
        return AdminCommand("collections", (sub, *args), {"visibility": visibility[0]})
    return AdminCommand("collections", (sub, *args))


def _feedback(rest: list[str]) -> AdminCommand:
    sub = rest[0].lower() if rest else ""
    if sub == "pending":
        if len(rest) > 1:
            raise CommandError("`feedback pending` takes no arguments.")
        return AdminCommand("feedback", ("pending",))
    if sub not in ("approve", "reject"):
        raise CommandError(f"`feedback` needs one of: pending, approve, reject.\n{ADMIN_USAGE}")
    ids = [part.removeprefix("#") for word in rest[1:] for part in word.split(",") if part]
    if not ids:
        raise CommandError(f"`feedback {sub}` needs the ids of the corrections (see `feedback pending`).")
    bad = next((i for i in ids if not (i.isascii() and i.isdigit() and len(i) <= 18)), None)
    if bad is not None:
        raise CommandError(f"`{_shown(bad)}` is not a correction id (a number from `feedback pending`).")
    if len(ids) > MAX_REVIEW_IDS:
        raise CommandError(f"at most {MAX_REVIEW_IDS} corrections at a time.")
    return AdminCommand("feedback", (sub, *dict.fromkeys(str(int(i)) for i in ids)))


def _sources(rest: list[str]) -> AdminCommand:
    sub = rest[0].lower() if rest else ""
    if sub == "list":
        if len(rest) > 1:
            raise CommandError("`sources list` takes no arguments.")
        return AdminCommand("sources", ("list",))
    if sub != "sync":
        raise CommandError(f"`sources` needs one of: list, sync NAME.\n{ADMIN_USAGE}")
    if len(rest) != 2 or rest[1].startswith("--"):
        raise CommandError("`sources sync` needs the name of one source (see `sources list`).")
    if not _SOURCE_NAME.fullmatch(rest[1].lower()):
        raise CommandError(f"`{_shown(rest[1])}` is not a source name (see `sources list`).")
    return AdminCommand("sources", ("sync", rest[1].lower()))


def parse_channel_target(word: str) -> str:
    """``here``, ``*`` (every channel), ``dm``, a channel id, or a channel mention → the id."""
    if word.lower() in ("here", "dm") or word == "*":
        return word.lower()
    mention = _CHANNEL_MENTION.match(word)
    if mention:
        return mention.group(1)
    if _CHANNEL_ID.match(word):
        return word
    raise CommandError(f"`{_shown(word)}` is not a channel: use here, *, a channel id or a #channel mention.")


def _check_name(name: str) -> None:
    if not name.strip() or len(name) > MAX_NAME_CHARS:
        raise CommandError(f"a collection name must be 1-{MAX_NAME_CHARS} characters.")


def _shown(word: str) -> str:
    """A user's word quoted back in a message, short and without backticks."""
    return word[:40].replace("`", "'")


def _split_options(words: list[str], known: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    positional: list[str] = []
    options: dict[str, str] = {}
    it = iter(words)
    for word in it:
        if word in known:
            value = next(it, None)
            if value is None:
                raise CommandError(f"{word} needs a value")
            options[known[word]] = value
        elif word.startswith("--"):
            raise CommandError(f"unknown option {_shown(word)}")
        else:
            positional.append(word)
    return positional, options
