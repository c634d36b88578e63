"""What the console's handlers share: sessions on requests, CSRF, security headers, audited actions.

Every page needs a session (opened by a sign-in link, see ``signin.py``); every form carries the
session's CSRF token, checked before anything changes; every change writes one audit row with the
admin's platform identity, whether it worked or not.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.console.config import ConsoleConfig
from app.console.sessions import Session, SessionStore
from bot.audit import write_audit
from bot.config import BotConfig
from rag_engine.config import EngineConfig
from rag_engine.store import Store
from rag_engine.store.database import Database

log = logging.getLogger(__name__)
COOKIE = "ragbot_console"
MAX_FORM_BYTES = 64_000
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                                 b"frame-ancestors 'none'; base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),  # the sign-in link's token must not leak in a Referer
    (b"cache-control", b"no-store"),
]


@dataclass
class Console:
    """What the handlers share: the database, the configs, the open sessions, one-shot notices."""

    db: Database
    config: ConsoleConfig
    engine_config: EngineConfig
    bot_config: BotConfig
    sessions: SessionStore
    templates: Jinja2Templates
    store: Store = field(init=False)
    notices: dict[str, tuple[bool, str]] = field(default_factory=dict)  # session id -> the last action's outcome

    def __post_init__(self) -> None:
        self.store = Store(self.db)


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def session_of(request: Request) -> Session | None:
    return console_of(request).sessions.get(request.cookies.get(COOKIE))


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    """A rendered page with the session's CSRF token and the last action's notice."""
    console = console_of(request)
    session = session_of(request)
    notice = console.notices.pop(session.id, None) if session else None
    return console.templates.TemplateResponse(request, template, {"session": session, "notice": notice, **context},
                                              status_code=status_code)


def signed_out(request: Request) -> Response:
    return page(request, "signed_out.html", status_code=401)


async def checked_form(request: Request) -> tuple[Session, FormData]:
    """The session and the form of a POST whose CSRF token matches the session's; else 403."""
    session = session_of(request)
    if session is None:
        raise HTTPException(403, "not signed in (or the session expired): ask the bot for a new console link")
    if int(request.headers.get("content-length") or 0) > MAX_FORM_BYTES:
        raise HTTPException(413, "form too large")
    form = await request.form(max_files=0, max_fields=20)
    token = form.get("csrf")
    if not session.csrf_ok(token if isinstance(token, str) else None):
        raise HTTPException(403, "the form's CSRF token is missing or wrong: reload the page and try again")
    return session, form


async def audited(request: Request, session: Session, action: str, args: dict[str, Any],
                  run: Callable[[], str]) -> tuple[bool, str]:
    """Run a change off the event loop and write its one audit row (as the admin's platform identity)."""
    console = console_of(request)

    def work() -> tuple[bool, str]:
        ok, message = False, "failed: interrupted"
        try:
            message = run()
            ok = True
        except (LookupError, ValueError) as exc:  # not found, nothing to roll back, refused input
            message = str(exc.args[0]) if exc.args else str(exc)
        except Exception as exc:
            log.exception("console action %s failed", action)
            message = f"{action} failed unexpectedly ({type(exc).__name__})"
        finally:
            write_audit(console.store, session.actor, action, {**args, "via": "console"}, ok=ok, result=message)
        return ok, message

    ok, message = await run_in_threadpool(work)
    console.notices[session.id] = (ok, message)
    return ok, message


def back_to(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


class SecurityHeaders:
    """Adds the headers of ``SECURITY_HEADERS`` to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return page(request, "error.html", status_code=exc.status_code, message=exc.detail)
