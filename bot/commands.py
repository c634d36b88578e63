"""Parsing of the admin command (``/ragbot-admin ...``) into typed commands."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Literal

AdminAction = Literal["help", "status", "retrain", "rollback", "ingest", "collections"]

ADMIN_USAGE = """\
Usage: /ragbot-admin <command>
  status                              queue, last runs, active adapter, feedback since last training
  retrain                             queue a retraining job on the collected feedback
  rollback                            go back to the previous adapter
  ingest PATH... [--collection NAME]  ingest files on the bot's server
  collections list
  collections create NAME [--private]
  collections grant|exclude|revoke NAME [here|CHANNEL_ID|*]"""

_SUBCOMMANDS = {"list", "create", "grant", "exclude", "revoke"}


class CommandError(ValueError):
    """Input that is not a valid command; the message says what is expected."""


@dataclass(frozen=True, slots=True)
class AdminCommand:
    action: AdminAction
    args: tuple[str, ...] = ()
    options: dict[str, str] = field(default_factory=dict)

    def audit_args(self) -> dict:
        return {"args": list(self.args), **self.options}


def parse_admin_command(text: str) -> AdminCommand:
    try:
        words = shlex.split(text or "")
    except ValueError as exc:
        raise CommandError(f"could not parse the command ({exc}).\n{ADMIN_USAGE}") from None
    if not words or words[0].lower() in ("help", "-h", "--help"):
        return AdminCommand("help")
    action, rest = words[0].lower(), words[1:]
    if action in ("status", "retrain", "rollback"):
        if rest:
            raise CommandError(f"`{action}` takes no arguments.\n{ADMIN_USAGE}")
        return AdminCommand(action)  # type: ignore[arg-type]
    if action == "ingest":
        paths, options = _split_options(rest, {"--collection": "collection"})
        if not paths:
            raise CommandError(f"`ingest` needs at least one path.\n{ADMIN_USAGE}")
        return AdminCommand("ingest", tuple(paths), options)
    if action == "collections":
        if not rest or rest[0].lower() not in _SUBCOMMANDS:
            raise CommandError(f"`collections` needs one of: {', '.join(sorted(_SUBCOMMANDS))}.\n{ADMIN_USAGE}")
        sub, args = rest[0].lower(), rest[1:]
        flags = {"private": "true"} if "--private" in args else {}
        args = [a for a in args if a != "--private"]
        if sub == "list" and args:
            raise CommandError("`collections list` takes no arguments.")
        if sub != "list" and not args:
            raise CommandError(f"`collections {sub}` needs a collection name.")
        if len(args) > 2:
            raise CommandError(f"too many arguments for `collections {sub}`.")
        return AdminCommand("collections", (sub, *args), flags)
    raise CommandError(f"unknown command `{action[:40]}`.\n{ADMIN_USAGE}")


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
            raise CommandError(f"unknown option {word[:40]}")
        else:
            positional.append(word)
    return positional, options
