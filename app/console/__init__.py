"""``ragbot console``: the admin console in the browser (one small Starlette app, server-rendered).

Composition-root code: it reads and changes data only through the engine's public functions,
the store's repositories and the bot's policy functions (admin operations, audit, permissions).
"""

from app.console.asgi import build_console_app
from app.console.config import ConsoleConfig

__all__ = ["ConsoleConfig", "build_console_app"]
