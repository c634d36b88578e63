"""``build_console_app``: the console's routes, middleware and shared state in one Starlette app."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from app.console import actions, pages, signin
from app.console.config import ConsoleConfig
from app.console.sessions import SessionStore
from app.console.web import Console, SecurityHeaders, http_error
from bot.config import BotConfig
from rag_engine.config import EngineConfig
from rag_engine.store.database import Database

HERE = Path(__file__).parent


def build_console_app(db: Database, config: ConsoleConfig, engine_config: EngineConfig, bot_config: BotConfig,
                      sessions: SessionStore | None = None) -> Starlette:
    """The console app over ``db``; ``sessions`` lets a test control the clock."""
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    routes = [
        *signin.routes(), *pages.routes(), *actions.routes(),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)],
                    exception_handlers={HTTPException: http_error})
    app.state.console = Console(db, config, engine_config, bot_config,
                                sessions or SessionStore(config.session_ttl_s), templates)
    return app
