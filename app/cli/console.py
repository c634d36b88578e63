"""``ragbot console``: the admin console in the browser (see docs/console.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.common import console, friendly_errors, settings
from app.cli.lora import open_db
from app.configs import bot_config, engine_config


def register(app: typer.Typer) -> None:
    app.command("console")(run_console)


@friendly_errors
def run_console(
    host: Annotated[str, typer.Option(help="Address to bind; keep 127.0.0.1 and put a TLS reverse proxy in "
                                           "front to reach it from elsewhere (docs/console.md).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8765,
) -> None:
    """Serve the admin console; admins sign in with the link `/ragbot-admin console` gives them."""
    import uvicorn  # lazy: only this command serves HTTP

    from app.console import ConsoleConfig, build_console_app  # lazy: starlette and jinja2, for this command only

    s = settings()
    config = ConsoleConfig.from_settings(s)
    with open_db() as db:
        app = build_console_app(db, config, engine_config(s), bot_config(s))
        console.print(f"ragbot console on http://{host}:{port} (links point to {config.public_url}); "
                      "sign in with `/ragbot-admin console` in Slack or Discord")
        uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=False, server_header=False)
