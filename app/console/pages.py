"""The console's read-only pages: interactions, corrections queue, LoRA adapters and jobs,
collections and grants, sources and their sync state, feedback over time, the audit trail."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.console import charts
from app.console.source_state import source_states, when
from app.console.web import console_of, page, session_of, signed_out
from app.report import feedback_by_day
from bot import admin_ops
from rag_engine import jobs
from rag_engine.feedback import feedback_counts, pending_corrections
from rag_engine.interactions import get_interaction
from rag_engine.training import registry
from rag_engine.values import AnswerStatus

PAGE_SIZE = 50
QUEUE_SIZE = 100
STATUSES = [s.value for s in AnswerStatus]
VOTES = ["up", "down", "none"]


async def interactions(request: Request) -> Response:
    if session_of(request) is None:
        return signed_out(request)
    console = console_of(request)
    q = request.query_params
    filters = {"text": q.get("text", "").strip()[:200], "channel_id": q.get("channel", "").strip()[:200],
               "status": q.get("status", "") if q.get("status") in STATUSES else "",
               "vote": q.get("vote", "") if q.get("vote") in VOTES else ""}
    offset = max(0, _int(q.get("offset")) or 0)
    rows = await run_in_threadpool(console.store.interactions.search, **filters, limit=PAGE_SIZE + 1, offset=offset)
    return page(request, "interactions.html", rows=rows[:PAGE_SIZE], more=len(rows) > PAGE_SIZE, offset=offset,
                page_size=PAGE_SIZE, filters=filters, statuses=STATUSES, votes=VOTES)


async def interaction(request: Request) -> Response:
    if session_of(request) is None:
        return signed_out(request)
    console = console_of(request)
    interaction_id = int(request.path_params["interaction_id"])

    def load() -> tuple[Any, Any]:
        return get_interaction(console.db, interaction_id), console.store.feedback.for_interaction(interaction_id)

    record, (votes, corrections) = await run_in_threadpool(load)
    if record is None:
        return page(request, "error.html", status_code=404, message=f"no interaction {interaction_id}")
    return page(request, "interaction.html", i=record, votes=votes, corrections=corrections)


async def corrections(request: Request) -> Response:
    if session_of(request) is None:
        return signed_out(request)
    found, total = await run_in_threadpool(pending_corrections, console_of(request).db, QUEUE_SIZE)
    return page(request, "corrections.html", pending=found, total=total)


async def adapters(request: Request) -> Response:
    if session_of(request) is None:
        return signed_out(request)
    console = console_of(request)

    def load() -> tuple[Any, Any]:
        return registry.list_adapters(console.db), admin_ops.status(console.db, console.engine_config)

    found, state = await run_in_threadpool(load)
    return page(request, "adapters.html", adapters=found, state=state, metric=charts.metric,
                margin=console.config.promotion_margin)


async def adapters_chart(request: Request) -> Response:
    if session_of(request) is None:
        return Response(status_code=401)
    found = await run_in_threadpool(registry.list_adapters, console_of(request).db)
    svg = await run_in_threadpool(charts.adapters_svg, list(reversed(found)))
    return Response(svg, media_type="image/svg+xml")


async def job(request: Request) -> Response:
    if session_of(request) is None:
        return signed_out(request)
    job_id = int(request.path_params["job_id"])
    found = await run_in_threadpool(jobs.get, console_of(request).db, job_id)
    if found is None:
        return page(request, "error.html", status_code=404, message=f"no job {job_id}")
    return page(request, "job.html", job=found, open=found.status in ("queued", "running"))


async def collections(request: Request) -> Response:
    if session_of(request) is None:
        return signed_out(request)
    store = console_of(request).store

    def load() -> tuple[Any, Any]:
        return store.collections.list_all(), store.access_rules.list()

    found, rules = await run_in_threadpool(load)
    return page(request, "collections.html", collections=found, rules=rules)


async def sources(request: Request) -> Response:
    if session_of(request) is None:
        return signed_out(request)
    console = console_of(request)

    def load() -> list[Any]:
        open_syncs = jobs.open_jobs(console.db, kinds=[jobs.SOURCE_SYNC])
        return source_states(console.store.sources.all(), open_syncs, datetime.now(UTC))

    return page(request, "sources.html", sources=await run_in_threadpool(load), when=when)


async def feedback(request: Request) -> Response:
    if session_of(request) is None:
        return signed_out(request)
    db = console_of(request).db

    def load() -> tuple[Any, Any]:
        return feedback_by_day(db), feedback_counts(db)

    daily, counts = await run_in_threadpool(load)
    return page(request, "feedback.html", daily=list(reversed(daily[-60:])), counts=counts)


async def feedback_chart(request: Request) -> Response:
    if session_of(request) is None:
        return Response(status_code=401)
    daily = await run_in_threadpool(feedback_by_day, console_of(request).db)
    svg = await run_in_threadpool(charts.feedback_svg, daily[-60:])
    return Response(svg, media_type="image/svg+xml")


async def audit(request: Request) -> Response:
    if session_of(request) is None:
        return signed_out(request)
    entries = await run_in_threadpool(console_of(request).store.audit.recent, 200)
    return page(request, "audit.html", entries=entries)


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isascii() and value.isdigit() and len(value) < 10 else None


def routes() -> list[Route]:
    return [
        Route("/interactions", interactions),
        Route("/interactions/{interaction_id:int}", interaction),
        Route("/corrections", corrections),
        Route("/adapters", adapters),
        Route("/adapters/chart.svg", adapters_chart),
        Route("/jobs/{job_id:int}", job),
        Route("/collections", collections),
        Route("/sources", sources),
        Route("/feedback", feedback),
        Route("/feedback/chart.svg", feedback_chart),
        Route("/audit", audit),
    ]
