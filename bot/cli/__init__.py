"""The ``ragbot`` command line (typer + rich).

Each area registers its commands from its own module; this file only wires them.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="ragbot",
    help="Answers your team's questions from your documents, in Slack and Discord.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

from bot.cli import core  # noqa: E402  (registration side effects)

core.register(app)
