"""``BotCore``: the platform-neutral bot. Adapters turn platform events into calls
here and render the typed results; every rule (limits, access, admin rights,
sanitization, logging of interactions and feedback) lives on this side."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from bot import access, admin_ops, messages, metrics, source_ops
from bot.answer_codes import AnswerCodes
from bot.audit import write_audit
from bot.commands import ADMIN_USAGE, AdminCommand, CommandError, parse_admin_command
from bot.config import BotConfig
from bot.console_link import console_link
from bot.fallback_notes import QUOTED_FIRST, fallback_note
from bot.ingest_roots import chat_ingest_paths
from bot.lifecycle import SHUTTING_DOWN, InFlight, admitted
from bot.messages import ASK_USAGE, UNAVAILABLE  # re-exported: the adapters show them too
from bot.permissions import (
    RULE_ACTIONS,
    AdminScope,
    admin_scope,
    can_run,
    global_grounds,
    is_global_admin,
    refusal_message,
)
from bot.progress import ProgressRelay, ShowProgress
from bot.ratelimit import AskLimits, TokenBucketLimiter
from bot.sanitize import clean_question, redact_secrets, sanitize_output
from bot.streaming import STREAM_REPLACED, LiveTextBuilder
from bot.suggestions import suggested_questions
from bot.tenants import NOT_ENABLED, tenant_allowed
from bot.types import ActionResult, Actor, AskRequest, FinalReply, LiveText, Location, Reply, ReplyKind, SourceRef
from bot.write_queue import DurableWrites, QueueFull, Submitted
from rag_engine import collections as cols
from rag_engine.engine import RagEngine, Refine
from rag_engine.errors import DatabaseUnavailable
from rag_engine.generation.citations import cited_sources
from rag_engine.interactions import History, InteractionContext, record_refinement, thread_history
from rag_engine.scope import CollectionScope
from rag_engine.streaming import AnswerStream, StreamEnd, StreamPiece
from rag_engine.values import Answer, AnswerStatus, Citation

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_CORRECTION_CHARS = 4000

_KIND_BY_STATUS: dict[AnswerStatus, ReplyKind] = {
    AnswerStatus.ANSWERED: "answer",
    AnswerStatus.FALLBACK: "answer",
    AnswerStatus.NOT_FOUND: "not_found",
    AnswerStatus.ASK_BACK: "ask_back",
    AnswerStatus.ERROR: "error",
}


class BotCore:
    def __init__(self, config: BotConfig, engine: RagEngine) -> None:
        self.config = config
        self.engine = engine
        self.db = engine.db
        self.store = engine.store  # the repositories: the core's only door to the database
        self.limits = AskLimits(
            TokenBucketLimiter(config.rate_limit_user_per_min, config.rate_limit_user_burst),
            TokenBucketLimiter(config.rate_limit_channel_per_min, config.rate_limit_channel_burst),
        )
        # interaction and feedback writes: retried, queued while the database is away
        self.writes = DurableWrites(self.store, config)
        self.in_flight = InFlight()  # closed when the process stops: see bot/lifecycle.py
        # asks get threads of their own: in the default executor (min(32, cores + 4) threads) a burst of asks
        # would wait there untimed, before the generation pool's queue timeout could answer them extractively
        self._ask_threads = ThreadPoolExecutor(max_workers=config.ask_threads, thread_name_prefix="ragbot-ask")
        self.codes = AnswerCodes.from_config(config)  # the short ids users see instead of interaction ids

    # -- asking ------------------------------------------------------------------
    @admitted(lambda: Reply("refused", SHUTTING_DOWN))
    async def ask(self, req: AskRequest, on_progress: ShowProgress | None = None) -> Reply:
        """``on_progress``: shows retrieval progress (loading states); the reply waits for it (briefly)."""
        if not tenant_allowed(req.location, self.config):  # a workspace this deployment does not serve
            return Reply("refused", NOT_ENABLED)
        # a re-delivery (Slack retry, gateway replay) is silent: no message, no rate-limit token
        if req.event_id and not await self._first_delivery_or_unknown(req):
            return Reply("duplicate", "")
        question = clean_question(req.text)
        if not question:
            return Reply("usage", ASK_USAGE)
        if len(question) > self.config.max_question_chars:
            return Reply("refused", messages.question_too_long(len(question), self.config.max_question_chars))
        wait = self.limits.check(req.actor.user_key, _channel_key(req.location))
        if wait:
            return Reply("rate_limited", messages.rate_limited(wait), retry_after_s=wait)
        relay = ProgressRelay(on_progress, asyncio.get_running_loop()) if on_progress else None
        try:
            return await self._in_ask_thread(self._answer, req, question, relay)
        except DatabaseUnavailable:
            metrics.observe_error("database")
            return Reply("error", UNAVAILABLE)
        finally:
            if relay is not None:
                await relay.drain()

    async def start_thread(self, reply: Reply, location: Location, thread_id: str) -> None:
        """The posted ``reply`` starts thread ``thread_id``: follow-ups there get its ask as history.

        For answers logged before their message existed (a slash command's, whose
        message id is only known once posted). Best effort: a lost link costs the
        follow-ups their context, never the answer.
        """
        if reply.interaction_id is None:
            return
        try:
            await asyncio.to_thread(self.writes.set_thread, reply.interaction_id, location.platform,
                                    location.channel_id, thread_id)
        except (DatabaseUnavailable, QueueFull) as exc:
            log.warning("answer %s could not be linked to its thread: %s", reply.interaction_id, exc)

    @admitted(lambda: list[str]())
    async def suggested_questions(self, actor: Actor, location: Location, *,
                                  context_channel: str | None = None) -> list[str]:
        """Questions to offer where ``actor`` opens an assistant thread (``bot.suggestions``); none in a
        workspace this deployment does not serve or while the database is away."""
        if not tenant_allowed(location, self.config):
            return []
        try:
            return await asyncio.to_thread(suggested_questions, self.store, location, actor,
                                           context_channel=context_channel)
        except DatabaseUnavailable:
            return []

    def close(self, flush_timeout_s: float = 5.0) -> None:
        """Give writes queued during a database outage up to ``flush_timeout_s`` to land."""
        self._ask_threads.shutdown(wait=False)
        self.writes.close(flush_timeout_s)

    async def _in_ask_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """``asyncio.to_thread`` on the asks' own threads (context variables travel along, as there)."""
        call = functools.partial(contextvars.copy_context().run, fn, *args)
        return await asyncio.get_running_loop().run_in_executor(self._ask_threads, call)

    async def _first_delivery_or_unknown(self, req: AskRequest) -> bool:
        """False only for a delivery already seen; with the database away it cannot tell, and the
        checks that need no database still answer (the answer itself will say it is unavailable)."""
        try:
            return await asyncio.to_thread(self._first_delivery, req)
        except DatabaseUnavailable:
            return True

    def _first_delivery(self, req: AskRequest) -> bool:
        return self.store.processed_events.first_delivery(f"{req.location.platform}:{req.event_id}")

    def _answer(self, req: AskRequest, question: str, on_progress: ProgressRelay | None = None) -> Reply:
        ctx = InteractionContext(req.location.platform, req.location.workspace_id, req.location.channel_id,
                                 req.thread_id, req.actor.user_key, ephemeral=req.ephemeral)
        scope = access.collection_scope(self.store, req.location, outsider=req.actor.is_external)
        if scope.is_empty:
            return Reply("refused", messages.NO_COLLECTIONS_HERE)
        history = History()
        if req.thread_id:  # only turns whose collections this location may read now
            history = thread_history(self.db, req.location.platform, req.location.channel_id, req.thread_id,
                                     self.engine.config.generation.history_turns, readable=scope,
                                     user_key=req.actor.user_key)
        refine: Refine | None = None
        try:
            if self.config.reply_mode == "final":
                answer = self.engine.answer(question, scope, history.turns, on_progress=on_progress)
            elif self.config.reply_mode == "stream":
                streamed = self.engine.answer_stream(question, scope, history.turns, on_progress=on_progress)
                if not isinstance(streamed, Answer):  # the model writes it: the adapter shows it as it comes
                    reply = Reply("answer", "")
                    reply.stream = functools.partial(self._streamed, streamed, ctx, question, scope, history,
                                                     req.location.platform)
                    return reply
                answer = streamed
            else:
                answer, refine = self.engine.answer_first(question, scope, history.turns, on_progress=on_progress)
        except DatabaseUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure is an error reply, logged with its traceback
            return self._failed(exc, "answering failed", ctx, question, scope, history)
        interaction_id = self.writes.log_interaction(ctx, question, answer, scope, history=history)
        metrics.observe_answer(req.location.platform, answer)
        reply = self.render(answer, interaction_id)
        if refine is not None and reply.kind == "answer":
            reply.fallback_note = QUOTED_FIRST
            reply.refine = functools.partial(self._refined, refine, interaction_id)
        return reply

    async def _streamed(self, stream: AnswerStream, ctx: InteractionContext, question: str, scope: CollectionScope,
                        history: History, platform: str) -> AsyncIterator[LiveText | FinalReply]:
        """A stream reply: the model's text as ``LiveText`` while it writes, then the logged, rendered answer.

        The engine's stream runs on an ask thread; its pieces cross to the event loop through a queue.
        """
        loop = asyncio.get_running_loop()
        items: asyncio.Queue[StreamPiece | StreamEnd | Exception] = asyncio.Queue()

        def pump() -> None:
            try:
                for item in stream:
                    loop.call_soon_threadsafe(items.put_nowait, item)
            except Exception as exc:  # noqa: BLE001 - handed to the loop, which answers with an error reply
                loop.call_soon_threadsafe(items.put_nowait, exc)

        pumping = asyncio.ensure_future(self._in_ask_thread(pump))
        live = LiveTextBuilder(self.config.max_answer_chars)
        while True:
            item = await items.get()
            if not isinstance(item, StreamPiece):
                break
            shown = live.add(item.text)
            if shown is not None:
                yield shown
        await pumping
        generated = isinstance(item, StreamEnd) and item.answer.generated
        if generated:
            shown = live.finish()  # the last word, held back until now
            if shown is not None:
                yield shown
        reply = await self._in_ask_thread(self._stream_reply, item, ctx, question, scope, history, platform)
        yield FinalReply(reply, replaced=not generated)

    def _failed(self, exc: Exception, what: str, ctx: InteractionContext, question: str, scope: CollectionScope,
                history: History) -> Reply:
        """The error reply to an answer that failed, logged as an interaction with its error and answer code."""
        log.error(what, exc_info=exc)
        metrics.observe_error("answer")
        interaction_id = self.writes.log_interaction(ctx, question, None, scope,
                                                     error=f"{type(exc).__name__}: {exc}"[:500], history=history)
        code = self.answer_code(interaction_id) if interaction_id else None
        return Reply("error", messages.answer_failed(code), interaction_id=interaction_id, answer_code=code)

    def _stream_reply(self, end: StreamEnd | Exception, ctx: InteractionContext, question: str,
                      scope: CollectionScope, history: History, platform: str) -> Reply:
        """Log a streamed answer (or its failure) and render it; a quoted answer says it replaced the stream."""
        if isinstance(end, Exception):
            return self._failed(end, "streaming an answer failed", ctx, question, scope, history)
        answer = end.answer
        interaction_id = self.writes.log_interaction(ctx, question, answer, scope, history=history)
        metrics.observe_answer(platform, answer)
        reply = self.render(answer, interaction_id)
        if reply.kind == "answer" and not answer.generated:
            reply.fallback_note = " ".join(filter(None, [STREAM_REPLACED, reply.fallback_note]))
        return reply

    async def _refined(self, refine: Refine, interaction_id: int | None) -> Reply | None:
        """An answer-first reply's second step: the model's answer as the Reply that replaces the quoted
        one, or None (the quoted one stays; the interaction log says why). Skipped once the bot is stopping."""
        if not self.in_flight.enter():
            return None
        try:
            return await self._in_ask_thread(self._refine, refine, interaction_id)
        finally:
            self.in_flight.leave()

    def _refine(self, refine: Refine, interaction_id: int | None) -> Reply | None:
        try:
            refined = refine()
        except Exception:  # the engine falls back on every model failure; anything else must not cost the answer
            log.exception("refining answer %s failed", interaction_id)
            return None
        if interaction_id is not None:
            try:
                self.writes.queue.submit("refinement", functools.partial(record_refinement, self.db, interaction_id,
                                                                         refined))
            except Exception as exc:  # noqa: BLE001 - the log row keeps the quoted answer; the reply goes on
                log.warning("the refinement of answer %s was not logged: %s", interaction_id, exc)
        if not refined.generated:
            log.info("answer %s stays quoted: %s", interaction_id, refined.fallback_reason or refined.status.value)
            return None
        reply = self.render(refined, interaction_id)
        reply.refined = True
        return reply

    def render(self, answer: Answer, interaction_id: int | None) -> Reply:
        kind = _KIND_BY_STATUS[answer.status]
        sources = [] if kind in ("not_found", "ask_back") else _source_refs(answer.citations)
        meta = {"generator": answer.generator, "status": answer.status.value}
        if answer.adapter_version:
            meta["adapter"] = answer.adapter_version
        if answer.fallback_code:
            meta["fallback"] = answer.fallback_code.value
        text = sanitize_output(answer.text, limit=self.config.max_answer_chars)
        if kind == "not_found":
            text = f"{text} {messages.NOT_FOUND_NEXT_STEP}"
        return Reply(kind, text, sources, interaction_id=interaction_id,
                     answer_code=self.answer_code(interaction_id) if interaction_id else None,
                     feedback_enabled=interaction_id is not None, meta=meta,
                     fallback_note=fallback_note(answer.fallback_code) if kind == "answer" else None)

    def answer_code(self, interaction_id: int) -> str:
        """The short code users see for an answer (an id no answer can have is shown as ``#id``)."""
        try:
            return self.codes.encode(interaction_id)
        except ValueError:
            return f"#{interaction_id}"

    # -- feedback ----------------------------------------------------------------
    @admitted(lambda: ActionResult(False, SHUTTING_DOWN))
    async def vote(self, actor: Actor, interaction_id: int, vote: int, reason: str | None = None, *,
                   location: Location | None = None) -> ActionResult:
        """``location``: where the button was clicked (a workspace the bot does not serve is refused)."""
        if location is not None and not tenant_allowed(location, self.config):
            return ActionResult(False, NOT_ENABLED)
        label = "👍" if vote > 0 else "👎"
        done = await self._feedback_write(interaction_id, self.writes.record_vote, interaction_id,
                                          actor.user_key, vote, (reason or "")[:1000] or None)
        if isinstance(done, ActionResult):  # refused
            return done
        if done.queued:  # the database is away: the vote waits in memory and is written when it is back
            metrics.observe_feedback("up" if vote > 0 else "down")
            return ActionResult(True, f"Thanks for the {label}! (I'll save it as soon as my database is back.)",
                                data={"changed": True, "queued": True})
        if done.result is not None and not done.result.created and not done.result.changed:
            return ActionResult(True, f"You already voted {label} on this answer.", data={"changed": False})
        metrics.observe_feedback("up" if vote > 0 else "down")
        return ActionResult(True, f"Thanks for the {label}!", data={"changed": True})

    @admitted(lambda: ActionResult(False, SHUTTING_DOWN))
    async def correct(self, actor: Actor, interaction_id: int, text: str, *,
                      location: Location | None = None) -> ActionResult:
        """``location``: where the correction was given (a workspace the bot does not serve is refused)."""
        if location is not None and not tenant_allowed(location, self.config):
            return ActionResult(False, NOT_ENABLED)
        text = (text or "").strip()
        if not text:
            return ActionResult(False, messages.CORRECTION_EMPTY)
        if len(text) > MAX_CORRECTION_CHARS:
            return ActionResult(False, messages.correction_too_long(MAX_CORRECTION_CHARS))
        wait = self.limits.check_user(actor.user_key)  # the ask budget: corrections are not a free channel
        if wait:
            return ActionResult(False, messages.corrections_rate_limited(wait), data={"retry_after_s": wait})
        # approving corrections acts on the shared LoRA adapter: only a global admin's are approved on entry
        approved = is_global_admin(actor, self.config)
        done = await self._feedback_write(interaction_id, self.writes.record_correction, interaction_id,
                                          actor.user_key, text, is_admin=approved)
        if isinstance(done, ActionResult):  # refused
            return done
        metrics.observe_feedback("correction")
        use = ("As an admin's, it is approved and will be used in the next retraining." if approved else
               "An admin reviews corrections before they are used for training.")
        if done.queued:
            return ActionResult(True, f"Thanks — I'll save your correction as soon as my database is back. {use}",
                                data={"queued": True, "approved": approved})
        return ActionResult(True, f"Thanks — your correction was saved. {use}", data={"approved": approved})

    async def _feedback_write(self, interaction_id: int, write: Callable[..., Submitted[T]], *args: Any,
                              **kwargs: Any) -> Submitted[T] | ActionResult:
        """Run a feedback write off the loop: what became of it, or the refusal to show."""
        try:
            return await asyncio.to_thread(write, *args, **kwargs)
        except LookupError:
            return ActionResult(False, messages.unknown_answer(self.answer_code(interaction_id)))
        except ValueError as exc:
            return ActionResult(False, str(exc))
        except (DatabaseUnavailable, QueueFull):
            return ActionResult(False, UNAVAILABLE)

    # -- admin -------------------------------------------------------------------
    @admitted(lambda: ActionResult(False, SHUTTING_DOWN))
    async def admin(self, actor: Actor, location: Location, text: str) -> ActionResult:
        served = tenant_allowed(location, self.config)
        try:
            command = parse_admin_command(text)
        except CommandError as exc:  # not a command: answered, not audited
            return ActionResult(False, str(exc) if served else NOT_ENABLED)
        if command.action == "help" and served:
            return ActionResult(True, ADMIN_USAGE)
        try:
            return await asyncio.to_thread(self._admin, actor, location, command)
        except DatabaseUnavailable:
            return ActionResult(False, UNAVAILABLE)

    def _admin(self, actor: Actor, location: Location, command: AdminCommand) -> ActionResult:
        """Run an admin command. Exactly one audit row, whether it is allowed, refused or fails."""
        result = ActionResult(False, "failed: interrupted")  # replaced unless a BaseException escapes
        try:
            result = self._authorized_admin(actor, location, command)
        except (ValueError, LookupError, cols.CollectionNotFound) as exc:
            result = ActionResult(False, str(exc))
        except DatabaseUnavailable:
            result = ActionResult(False, UNAVAILABLE)
            raise
        except Exception as exc:
            log.exception("admin command %s failed", command.name)
            result = ActionResult(False, redact_secrets(f"Sorry, `{command.name}` failed unexpectedly "
                                                        f"({type(exc).__name__}: {str(exc)[:200]})."))
        finally:
            write_audit(self.store, actor, command.action, command.audit_args(), ok=result.ok, result=result.message)
        return result

    def _authorized_admin(self, actor: Actor, location: Location, command: AdminCommand) -> ActionResult:
        """Refuse unless the workspace is served and the actor's admin scope covers the command."""
        if not tenant_allowed(location, self.config):
            return ActionResult(False, NOT_ENABLED)
        scope = admin_scope(actor, location, self.config)
        if scope is None:
            return ActionResult(False, refusal_message(None, command.name))
        if command.name in RULE_ACTIONS:  # decided on the collection and the rule's target
            return self._collection_rule(scope, location, command)
        if not can_run(scope, command.name):
            return ActionResult(False, refusal_message(scope, command.name))
        return self._run_admin(actor, location, command)

    def _run_admin(self, actor: Actor, location: Location, command: AdminCommand) -> ActionResult:
        if command.action == "retrain":  # the generator's adapter and the retrieval version both learn from feedback
            # retrieval first: jobs are claimed oldest first, and its seconds must not wait behind hours of LoRA
            search = admin_ops.request_retrieval_retrain(self.db, actor.user_key)
            req = admin_ops.request_retrain(self.db, self.engine.config, actor.user_key)
            verb = "Queued" if req.created else "A retrain is already queued or running:"
            also = (f"queued retrieval job {search.job_id}" if search.created
                    else f"retrieval job {search.job_id} is already open")
            return ActionResult(True, f"{verb} job {req.job_id}; {also}.",
                                data={"job_id": req.job_id, "retrieval_job_id": search.job_id})
        if command.action == "status":
            status = admin_ops.status(self.db, self.engine.config)
            lines = status.to_lines()
            return ActionResult(True, lines[0] if lines else "status", detail_lines=lines[1:],
                                data={"status": status})
        if command.action == "rollback" and command.args == ("retrieval",):
            undone = admin_ops.rollback_retrieval(self.db, actor.user_key)
            return ActionResult(True, undone.message, data={"result": undone})
        if command.action == "rollback":
            result = admin_ops.rollback(self.db, actor.user_key)
            return ActionResult(True, result.message, data={"result": result})
        if command.action == "ingest":
            return self._ingest(command)
        if command.action == "feedback":
            return self._feedback_review(actor, command)
        if command.action == "sources":  # a global admin's only (can_run): sources serve the whole deployment
            return self._sources(actor, command)
        if command.action == "console":  # a global admin's only (can_run): the link opens a console session
            link = console_link(self.config, actor, global_grounds(actor, self.config) or "")
            return ActionResult(True, link.message, detail_lines=[link.url])  # audited: the message, not the link
        return self._collections(location, command)

    def _ingest(self, command: AdminCommand) -> ActionResult:
        """Chat ingestion: below RAGBOT_INGEST_ROOTS only, no symbolic links, into an existing collection
        (a mistyped name must not become a new public collection)."""
        paths = chat_ingest_paths(command.args, self.config.ingest_roots)  # PathRefused is a ValueError
        collection = command.options.get("collection", "default")
        try:
            report = self.engine.ingest(paths, collection, create=False, follow_symlinks=False)
        except cols.CollectionNotFound as exc:
            return ActionResult(False, f"{exc}. Ingesting never creates a collection: create it first with "
                                       "`collections create NAME --private` (or `--public`).")
        msg = (f"Ingested into {collection}: {report.documents_written} written, "
               f"{report.documents_unchanged} unchanged, {len(report.skipped)} skipped.")
        return ActionResult(True, msg, detail_lines=[f"skipped {p}: {r}" for p, r in report.skipped])

    def _sources(self, actor: Actor, command: AdminCommand) -> ActionResult:
        """``sources list`` / ``sources sync NAME`` (queued for the worker: the bot never syncs itself)."""
        if command.args[0] == "list":
            headline, lines = source_ops.source_lines(self.store)
            return ActionResult(True, headline, detail_lines=lines)
        queued = source_ops.queue_sync(self.db, self.store, command.args[1], actor.user_key)
        return ActionResult(True, queued.message, data={"job_id": queued.job_id})

    def _feedback_review(self, actor: Actor, command: AdminCommand) -> ActionResult:
        """``feedback pending | approve ID... | reject ID...``: what becomes training data."""
        sub, *ids = command.args
        if sub == "pending":
            headline, lines = admin_ops.pending_review(self.db)
            return ActionResult(True, headline, detail_lines=lines)
        report = admin_ops.review_corrections(self.db, [int(i) for i in ids], approve=sub == "approve",
                                              reviewer=actor.user_key)
        return ActionResult(report.ok, report.message())

    def _collections(self, location: Location, command: AdminCommand) -> ActionResult:
        sub, *args = command.args
        if sub == "list":
            found = self.store.collections.list_all()
            lines = [f"{c.name}: {c.visibility}, {c.documents} documents, {c.chunks} chunks, "
                     f"training {'on' if c.allow_training else 'off'}" for c in found]
            return ActionResult(True, f"{len(found)} collections", detail_lines=lines)
        name = args[0]
        if sub == "create":
            visibility = command.options["visibility"]  # the parser requires --private or --public
            cols.create(self.store.collections, name, visibility="private" if visibility == "private" else "public")
            return ActionResult(True, f"Created {visibility} collection {name}.")
        raise ValueError(f"unknown collections command {sub}")

    def _collection_rule(self, scope: AdminScope, location: Location, command: AdminCommand) -> ActionResult:
        """grant / exclude / revoke: allowed by the collection's visibility and the rule's target."""
        sub, name, *rest = command.args
        (coll,) = self.store.collections.resolve([name])
        platform, workspace, channel = access.rule_keys(location, rest[0] if rest else "here")
        if not can_run(scope, command.name, workspace_id=workspace, private=coll.visibility == "private",
                       dm=channel == access.DM_CHANNEL):
            return ActionResult(False, refusal_message(scope, command.name))
        where = "DMs" if channel == access.DM_CHANNEL else f"channel {channel}"
        if sub == "revoke":
            n = self.store.access_rules.revoke(coll.id, platform, workspace, channel)
            return ActionResult(True, f"Removed {n} rule(s) for {name} in {where}.")
        access.set_access(self.store, coll.id, platform, workspace, channel, "grant" if sub == "grant" else "exclude")
        return ActionResult(True, f"{'Granted' if sub == 'grant' else 'Excluded'} {name} for {where}.")


def _channel_key(location: Location) -> str:
    return f"{location.platform}:{location.workspace_id}:{location.channel_id}"


def _source_refs(citations: list[Citation]) -> list[SourceRef]:
    """One entry per cited document, listing every section cited from it."""
    refs = []
    for source in cited_sources(citations):
        c = source.citation
        # display_path and url, never source_uri: that is the server's absolute path
        refs.append(SourceRef(n=source.n, title=sanitize_output(c.title, limit=200),
                              location=sanitize_output(c.display_path, limit=300), url=c.url,
                              heading_path=sanitize_output("; ".join(source.sections), limit=200)))
    return refs
