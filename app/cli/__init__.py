"""The ``ragbot`` command line (typer + rich).

Each area registers its commands from its own module; this file only wires them.
"""

from __future__ import annotations

import typer

from app.cli import (
    collections,
    console,
    discord,
    feedback,
    lora,
    retrieval,
    slack,
    sources,
    top_level,
    worker,
)
from app.cli import eval as eval_cli

app = typer.Typer(
    name="ragbot",
    help="Answers your team's questions from your documents, in Slack and Discord.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

top_level.register(app)
eval_cli.register(app)
slack.register(app)
discord.register(app)
collections.register(app)
sources.register(app)
lora.register(app)
retrieval.register(app)
feedback.register(app)
worker.register(app)
console.register(app)
