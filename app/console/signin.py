"""Sign-in by link and sign-out.

``GET /login?token=…`` only shows who the link is for and a button: link previews and
prefetchers follow GETs, and must not spend a single-use link. ``POST /login`` checks the
signature and expiry (``bot.console_token``), re-checks that a user-id admin is still one
(``bot.permissions``), spends the link's nonce once (``processed_events``, the store's
at-most-once record) and opens a session. Every sign-in, refused or not, is audited.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.console.web import COOKIE, audited, back_to, checked_form, console_of, page, session_of
from bot import console_token
from bot.audit import write_audit
from bot.permissions import global_grounds
from bot.types import Actor

NONCE_KEY = "console-link:"
SIGN_IN = "console sign-in"


async def login_form(request: Request) -> Response:
    console = console_of(request)
    token = request.query_params.get("token", "")
    if not token:
        return page(request, "signed_out.html", status_code=401)
    try:
        claims = console_token.verify(console.config.secret, token)
    except console_token.LinkRefused as exc:
        return page(request, "signed_out.html", status_code=401, problem=str(exc))
    return page(request, "login.html", claims=claims, token=token)


async def login(request: Request) -> Response:
    console = console_of(request)
    form = await request.form(max_files=0, max_fields=5)
    token = form.get("token")
    try:
        claims = console_token.verify(console.config.secret, token if isinstance(token, str) else "")
    except console_token.LinkRefused as exc:
        return page(request, "signed_out.html", status_code=401, problem=str(exc))
    actor = Actor(claims.platform, claims.user_id, claims.display_name or None)
    args = {"link": claims.nonce[:8], "grounds": claims.grounds}

    def spend() -> str | None:
        """None when the session may open; else why not (audited either way)."""
        problem = None
        if claims.grounds == "user id" and global_grounds(actor, console.bot_config) != "user id":
            problem = "you are no longer a ragbot admin (RAGBOT_ADMIN_USER_IDS)"
        elif not console.store.processed_events.first_delivery(NONCE_KEY + claims.nonce):
            problem = "this sign-in link was already used: run `/ragbot-admin console` again"
        write_audit(console.store, actor, SIGN_IN, args, ok=problem is None, result=problem or "session opened")
        return problem

    problem = await run_in_threadpool(spend)
    if problem is not None:
        return page(request, "signed_out.html", status_code=401, problem=problem)
    session = console.sessions.open(claims)
    response = back_to("/interactions")
    response.set_cookie(COOKIE, session.id, max_age=int(console.config.session_ttl_s), httponly=True,
                        secure=console.config.secure_cookie, samesite="lax", path="/")
    return response


async def logout(request: Request) -> Response:
    session, _ = await checked_form(request)
    await audited(request, session, "console sign-out", {}, lambda: "session closed")
    console_of(request).sessions.close(session.id)
    response = back_to("/login")
    response.delete_cookie(COOKIE, path="/")
    return response


async def home(request: Request) -> Response:
    return back_to("/interactions" if session_of(request) else "/login")


def routes() -> list[Route]:
    return [
        Route("/", home),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
    ]
