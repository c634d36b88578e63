"""The console's changes, each behind a CSRF-checked form and written to the audit table:
correction review, LoRA adapter activation / rollback / retrain, collection grants, syncing a source.

They call the same functions as the chat admin command and the CLI (``bot.admin_ops``,
``rag_engine.feedback``, ``rag_engine.training.registry``, ``bot.access``, ``bot.source_ops``),
so a rule enforced there holds here too.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.console.web import audited, back_to, checked_form, console_of
from bot import access, admin_ops, source_ops
from rag_engine.feedback import record_correction, review_correction
from rag_engine.training import registry

MAX_CORRECTION_CHARS = 4000


async def review(request: Request) -> Response:
    """approve | reject | edit (an admin's corrected text, approved, replacing the user's, which is rejected)."""
    session, form = await checked_form(request)
    console = console_of(request)
    correction_id = int(request.path_params["correction_id"])
    decision = request.path_params["decision"]
    reviewer = session.actor.user_key
    if decision in ("approve", "reject"):
        def decide() -> str:
            report = admin_ops.review_corrections(console.db, [correction_id], approve=decision == "approve",
                                                  reviewer=reviewer)
            if not report.ok:
                raise LookupError(report.message())
            return report.message()

        await audited(request, session, "feedback", {"args": [decision, str(correction_id)]}, decide)
    elif decision == "edit":
        text = str(form.get("text") or "").strip()

        def edit() -> str:
            if not text or len(text) > MAX_CORRECTION_CHARS:
                raise ValueError(f"an edited correction needs 1-{MAX_CORRECTION_CHARS} characters")
            outcome = review_correction(console.db, correction_id, approve=False, reviewer=reviewer)
            new_id = record_correction(console.db, outcome.interaction_id, reviewer, text, is_admin=True)
            return (f"Correction {correction_id} edited: the edited text is correction {new_id}, approved as "
                    f"training data; the original is kept, rejected.")

        await audited(request, session, "feedback", {"args": ["edit", str(correction_id)], "text": text}, edit)
    else:
        return Response("unknown decision", status_code=404)
    return back_to("/corrections")


async def activate(request: Request) -> Response:
    session, _ = await checked_form(request)
    console = console_of(request)
    version = request.path_params["version"]

    def run() -> str:
        change = registry.activate(console.db, version,
                                   base_model=registry.base_model_id(console.engine_config.generation))
        return f"LoRA adapter {version} is active (was {change.previous or 'the base model'})."

    await audited(request, session, "adapters", {"args": ["activate", version]}, run)
    return back_to("/adapters")


async def rollback(request: Request) -> Response:
    session, _ = await checked_form(request)
    db = console_of(request).db
    await audited(request, session, "rollback", {},
                  lambda: admin_ops.rollback(db, session.actor.user_key).message)
    return back_to("/adapters")


async def retrain(request: Request) -> Response:
    session, _ = await checked_form(request)
    console = console_of(request)
    queued: list[int] = []

    def run() -> str:
        # retrieval learns too, queued first: jobs are claimed oldest first, and its seconds must not wait
        # behind hours of LoRA training
        search = admin_ops.request_retrieval_retrain(console.db, session.actor.user_key)
        req = admin_ops.request_retrain(console.db, console.engine_config, session.actor.user_key)
        queued.append(req.job_id)
        also = f" Retrieval retrain: job {search.job_id}{'' if search.created else ' (already open)'}."
        return (f"Queued retrain job {req.job_id}." if req.created else
                f"A retrain is already queued or running: job {req.job_id}.") + also

    ok, _ = await audited(request, session, "retrain", {}, run)
    return back_to(f"/jobs/{queued[0]}" if ok and queued else "/adapters")


async def rule(request: Request) -> Response:
    """grant | exclude | revoke a collection for platform / workspace / channel (``*``: every channel)."""
    session, form = await checked_form(request)
    store = console_of(request).store
    sub = request.path_params["sub"]
    name, platform, workspace, channel = (str(form.get(k) or "").strip()
                                          for k in ("collection", "platform", "workspace", "channel"))
    if sub not in ("grant", "exclude", "revoke"):
        return Response("unknown rule action", status_code=404)

    def run() -> str:
        if platform not in access.PLATFORMS:
            raise ValueError(f"platform must be one of {', '.join(sorted(access.PLATFORMS))}")
        (coll,) = store.collections.resolve([name])
        where = f"{platform}/{workspace or '-'}/{channel}"
        if sub == "revoke":
            return f"Removed {store.access_rules.revoke(coll.id, platform, workspace, channel)} rule(s) for {name} " \
                   f"in {where}."
        access.set_access(store, coll.id, platform, workspace, channel, sub)
        return f"{'Granted' if sub == 'grant' else 'Excluded'} {name} for {where}."

    await audited(request, session, "collections",
                  {"args": [sub, name, channel], "platform": platform, "workspace": workspace}, run)
    return back_to("/collections")


async def sync_source(request: Request) -> Response:
    """Queue a ``source_sync`` job for ``ragbot worker`` (or find the open one) and follow it on its job page."""
    session, _ = await checked_form(request)
    console = console_of(request)
    name = request.path_params["name"]
    queued: list[int] = []

    def run() -> str:
        found = source_ops.queue_sync(console.db, console.store, name, session.actor.user_key)
        queued.append(found.job_id)
        return found.message

    ok, _ = await audited(request, session, "sources", {"args": ["sync", name]}, run)
    return back_to(f"/jobs/{queued[0]}" if ok and queued else "/sources")


def routes() -> list[Route]:
    return [
        Route("/corrections/{correction_id:int}/{decision}", review, methods=["POST"]),
        Route("/adapters/rollback", rollback, methods=["POST"]),
        Route("/adapters/retrain", retrain, methods=["POST"]),
        Route("/adapters/{version}/activate", activate, methods=["POST"]),
        Route("/collections/{sub}", rule, methods=["POST"]),
        Route("/sources/{name}/sync", sync_source, methods=["POST"]),
    ]
