"""``BotCore``: the platform-neutral bot. Adapters turn platform events into calls
here and render the typed results; every rule (limits, access, admin rights,
sanitization, logging of interactions and feedback) lives on this side."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from sqlalchemy.dialects.postgresql import insert

from bot import access, admin_ops, metrics
from bot.audit import write_audit
from bot.commands import ADMIN_USAGE, AdminCommand, CommandError, parse_admin_command
from bot.permissions import is_admin
from bot.ratelimit import AskLimits, TokenBucketLimiter
from bot.sanitize import clean_question, sanitize_output
from bot.types import ActionResult, Actor, AskRequest, Location, Reply, SourceRef
from bot.write_queue import DurableWrites, QueueFull
from rag_engine import collections as cols
from rag_engine.engine import RagEngine
from rag_engine.interactions import InteractionContext, thread_history
from rag_engine.settings import Settings
from rag_engine.store import schema as t
from rag_engine.store.database import Database, DatabaseUnavailable
from rag_engine.types import Answer, AnswerStatus, section_label

log = logging.getLogger(__name__)

ASK_USAGE = "Ask me a question about your team's documents, for example: `/ask how do I get VPN access?`"
UNAVAILABLE = "I'm temporarily unavailable (my database can't be reached). Please try again in a minute."
MAX_CORRECTION_CHARS = 4000

_KIND_BY_STATUS = {
    AnswerStatus.ANSWERED: "answer",
    AnswerStatus.FALLBACK: "answer",
    AnswerStatus.NOT_FOUND: "not_found",
    AnswerStatus.ASK_BACK: "ask_back",
    AnswerStatus.ERROR: "error",
}


class BotCore:
    def __init__(self, settings: Settings, engine: RagEngine) -> None:
        self.settings = settings
        self.engine = engine
        self.db: Database = engine.db
        self.limits = AskLimits(
            TokenBucketLimiter(settings.rate_limit_user_per_min, settings.rate_limit_user_burst),
            TokenBucketLimiter(settings.rate_limit_channel_per_min, settings.rate_limit_channel_burst),
        )
        # interaction and feedback writes: retried, queued while the database is away
        self.writes = DurableWrites(self.db, settings)

    # -- asking ------------------------------------------------------------------
    async def ask(self, req: AskRequest) -> Reply:
        question = clean_question(req.text)
        if not question:
            return Reply("usage", ASK_USAGE)
        if len(question) > self.settings.max_question_chars:
            return Reply("refused", f"Your question is {len(question):,} characters long; the limit is "
                                    f"{self.settings.max_question_chars:,}. Please shorten it and ask again.")
        wait = self.limits.check(req.actor.user_key, _channel_key(req.location))
        if wait:
            return Reply("rate_limited", f"You're asking faster than I can answer. Try again in {wait:.0f} s.",
                         retry_after_s=wait)
        try:
            if req.event_id and not await asyncio.to_thread(self._first_delivery, req):
                return Reply("duplicate", "")
            return await asyncio.to_thread(self._answer, req, question)
        except DatabaseUnavailable:
            metrics.observe_error("database")
            return Reply("error", UNAVAILABLE)

    def close(self) -> None:
        """Give writes queued during a database outage a last chance to land."""
        self.writes.close()

    def _first_delivery(self, req: AskRequest) -> bool:
        key = f"{req.location.platform}:{req.event_id}"
        with self.db.begin() as conn:
            row = conn.execute(insert(t.processed_events).values(event_key=key)
                               .on_conflict_do_nothing().returning(t.processed_events.c.event_key)).first()
        return row is not None

    def _answer(self, req: AskRequest, question: str) -> Reply:
        ctx = InteractionContext(req.location.platform, req.location.workspace_id, req.location.channel_id,
                                 req.thread_id, req.actor.user_key)
        collection_ids = access.allowed_collection_ids(self.db, req.location)
        history = []
        if req.thread_id:
            history = thread_history(self.db, req.location.platform, req.location.channel_id, req.thread_id,
                                     self.settings.history_turns)
        try:
            answer = self.engine.answer(question, collection_ids, history)
        except DatabaseUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - the user gets an honest message with an id to quote
            log.exception("answering failed")
            metrics.observe_error("answer")
            interaction_id = self.writes.log_interaction(ctx, question, None, collection_ids,
                                                         error=f"{type(exc).__name__}: {exc}"[:500])
            ref = f" (interaction {interaction_id}). The team can look it up by that id" if interaction_id else ""
            return Reply("error", f"Something went wrong while answering{ref}.", interaction_id=interaction_id)
        interaction_id = self.writes.log_interaction(ctx, question, answer, collection_ids)
        metrics.observe_answer(req.location.platform, answer)
        return self.render(answer, interaction_id)

    def render(self, answer: Answer, interaction_id: int | None) -> Reply:
        kind = _KIND_BY_STATUS[answer.status]
        sources = [] if kind in ("not_found", "ask_back") else [
            SourceRef(n=c.n, title=sanitize_output(c.title, limit=200), location=c.source_uri,
                      url=c.source_uri if c.source_uri.startswith(("http://", "https://")) else None,
                      heading_path=sanitize_output(section_label(c.title, c.heading_path), limit=200))
            for c in answer.citations
        ]
        meta = {"generator": answer.generator, "status": answer.status.value}
        if answer.adapter_version:
            meta["adapter"] = answer.adapter_version
        if answer.fallback_reason:
            meta["fallback"] = "extractive"
        return Reply(kind, sanitize_output(answer.text, limit=self.settings.max_answer_chars), sources,
                     interaction_id=interaction_id, feedback_enabled=interaction_id is not None, meta=meta)

    # -- feedback ----------------------------------------------------------------
    async def vote(self, actor: Actor, interaction_id: int, vote: int, reason: str | None = None) -> ActionResult:
        label = "👍" if vote > 0 else "👎"
        done, refusal = await self._feedback_write(interaction_id, self.writes.record_vote, interaction_id,
                                                   actor.user_key, vote, (reason or "")[:1000] or None)
        if refusal is not None:
            return refusal
        if done.queued:  # the database is away: the vote waits in memory and is written when it is back
            metrics.observe_feedback("up" if vote > 0 else "down")
            return ActionResult(True, f"Thanks for the {label}! (I'll save it as soon as my database is back.)",
                                data={"changed": True, "queued": True})
        if not done.result.created and not done.result.changed:
            return ActionResult(True, f"You already voted {label} on this answer.", data={"changed": False})
        metrics.observe_feedback("up" if vote > 0 else "down")
        return ActionResult(True, f"Thanks for the {label}!", data={"changed": True})

    async def correct(self, actor: Actor, interaction_id: int, text: str) -> ActionResult:
        text = (text or "").strip()
        if not text:
            return ActionResult(False, "A correction needs some text.")
        if len(text) > MAX_CORRECTION_CHARS:
            return ActionResult(False, f"Corrections are limited to {MAX_CORRECTION_CHARS:,} characters.")
        done, refusal = await self._feedback_write(interaction_id, self.writes.record_correction, interaction_id,
                                                   actor.user_key, text, is_admin=is_admin(actor, self.settings))
        if refusal is not None:
            return refusal
        metrics.observe_feedback("correction")
        if done.queued:
            return ActionResult(True, "Thanks — I'll save your correction as soon as my database is back; "
                                      "it will be used in the next retraining.", data={"queued": True})
        return ActionResult(True, "Thanks — your correction was saved and will be used in the next retraining.")

    async def _feedback_write(self, interaction_id: int, write, *args, **kwargs):
        """Run a feedback write off the loop: (its result, None), or (None, the refusal to show)."""
        try:
            return await asyncio.to_thread(write, *args, **kwargs), None
        except LookupError:
            return None, ActionResult(False, f"I can't find answer {interaction_id} any more.")
        except ValueError as exc:
            return None, ActionResult(False, str(exc))
        except (DatabaseUnavailable, QueueFull):
            return None, ActionResult(False, UNAVAILABLE)

    # -- admin -------------------------------------------------------------------
    async def admin(self, actor: Actor, location: Location, text: str) -> ActionResult:
        try:
            command = parse_admin_command(text)
        except CommandError as exc:
            return ActionResult(False, str(exc))
        if command.action == "help":
            return ActionResult(True, ADMIN_USAGE)
        try:
            return await asyncio.to_thread(self._admin, actor, location, command)
        except DatabaseUnavailable:
            return ActionResult(False, UNAVAILABLE)

    def _admin(self, actor: Actor, location: Location, command: AdminCommand) -> ActionResult:
        if not is_admin(actor, self.settings):
            result = ActionResult(False, "Sorry, only ragbot admins can run admin commands.")
        else:
            try:
                result = self._run_admin(actor, location, command)
            except (ValueError, LookupError, cols.CollectionNotFound) as exc:
                result = ActionResult(False, str(exc))
        write_audit(self.db, actor, command.action, command.audit_args(), ok=result.ok, result=result.message)
        return result

    def _run_admin(self, actor: Actor, location: Location, command: AdminCommand) -> ActionResult:
        if command.action == "retrain":
            req = admin_ops.request_retrain(self.db, self.settings, actor.user_key)
            verb = "Queued" if req.created else "A retrain is already queued or running:"
            return ActionResult(True, f"{verb} job {req.job_id}.", data={"job_id": req.job_id})
        if command.action == "status":
            status = admin_ops.status(self.db, self.settings)
            lines = status.to_lines()
            return ActionResult(True, lines[0] if lines else "status", detail_lines=lines[1:],
                                data={"status": status})
        if command.action == "rollback":
            result = admin_ops.rollback(self.db, self.settings, actor.user_key)
            return ActionResult(True, result.message, data={"result": result})
        if command.action == "ingest":
            collection = command.options.get("collection", "default")
            report = self.engine.ingest([Path(p) for p in command.args], collection)
            msg = (f"Ingested into {collection}: {report.documents_written} written, "
                   f"{report.documents_unchanged} unchanged, {len(report.skipped)} skipped.")
            return ActionResult(True, msg, detail_lines=[f"skipped {p}: {r}" for p, r in report.skipped])
        return self._collections(location, command)

    def _collections(self, location: Location, command: AdminCommand) -> ActionResult:
        sub, *args = command.args
        if sub == "list":
            with self.db.connect() as conn:
                found = cols.list_all(conn)
            lines = [f"{c.name}: {c.visibility}, {c.documents} documents, {c.chunks} chunks, "
                     f"training {'on' if c.allow_training else 'off'}" for c in found]
            return ActionResult(True, f"{len(found)} collections", detail_lines=lines)
        name = args[0]
        if sub == "create":
            visibility = "private" if command.options.get("private") else "public"
            with self.db.begin() as conn:
                cols.create(conn, name, visibility=visibility)
            return ActionResult(True, f"Created {visibility} collection {name}.")
        with self.db.connect() as conn:
            (coll,) = cols.resolve(conn, [name])
        target = args[1] if len(args) > 1 else "here"
        platform, workspace, channel = access.location_keys(location)
        if target != "here":
            channel = target
        if sub == "revoke":
            n = access.revoke(self.db, coll.id, platform, workspace, channel)
            return ActionResult(True, f"Removed {n} rule(s) for {name} in {channel}.")
        access.set_access(self.db, coll.id, platform, workspace, channel, "grant" if sub == "grant" else "exclude")
        return ActionResult(True, f"{'Granted' if sub == 'grant' else 'Excluded'} {name} for channel {channel}.")


def _channel_key(location: Location) -> str:
    return f"{location.platform}:{location.workspace_id}:{location.channel_id}"
