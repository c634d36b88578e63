"""The interaction log: every question the bot was asked and what it answered.

One row per ask, written in one transaction that returns its id (feedback and
corrections refer to it). Failed asks are logged too, with status ``error``.
Retrieved chunks are stored with their scores, collections and titles so the
training set can rebuild the exact prompt the generator saw; the thread history
it was shown is stored as interaction ids and the collections that history drew
on, so access and training rules also apply to what came in through history.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from rag_engine.redact import redact_secrets
from rag_engine.scope import CollectionScope
from rag_engine.store.database import Database
from rag_engine.store.interactions import InteractionRepo
from rag_engine.values import Answer, AnswerStatus, Turn

ERROR_STATUS = AnswerStatus.ERROR.value


@dataclass(frozen=True, slots=True)
class InteractionContext:
    """Where a question came from (platform-neutral)."""

    platform: str  # slack | discord | cli | ...
    workspace_id: str  # team / guild id ("dm" for direct messages)
    channel_id: str
    thread_id: str | None
    user_key: str  # stable per person and platform, e.g. "slack:T1:U2"
    ephemeral: bool = False  # the answer is shown to the asker only: never history for anyone else


@dataclass(frozen=True, slots=True)
class RetrievedChunk:
    """One retrieved chunk as logged: enough to rebuild the prompt's passage block."""

    chunk_id: int
    score: float
    collection_id: int
    document_id: int | None = None
    title: str = ""
    heading_path: str = ""
    source_uri: str = ""


@dataclass(frozen=True, slots=True)
class InteractionRecord:
    """A stored interaction (the columns of ``interactions``)."""

    id: int
    created_at: datetime
    platform: str
    workspace_id: str
    channel_id: str
    thread_id: str | None
    user_key: str
    question: str
    collection_ids: list[int]
    retrieved: list[RetrievedChunk]
    passages: list[str]
    prompt_version: str | None
    generator: str | None
    adapter_version: str | None
    answer: str
    citations: list[dict[str, Any]]
    status: str
    fallback_reason: str | None
    flags: list[str]
    timings: dict[str, float] = field(default_factory=dict)
    ephemeral: bool = False
    history_ids: list[int] = field(default_factory=list)
    history_collection_ids: list[int] = field(default_factory=list)
    first_answer: str | None = None  # answer-first: the quoted answer shown before ``answer`` replaced it
    refined_at: datetime | None = None
    retriever_version: str | None = None  # the query adapter its search used (None: raw query embeddings)

    @property
    def retrieved_collection_ids(self) -> set[int]:
        return {c.collection_id for c in self.retrieved}


@dataclass(frozen=True, slots=True)
class History:
    """Earlier turns of a thread for the generator, and what they drew on (stored with the new ask)."""

    turns: list[Turn] = field(default_factory=list)
    interaction_ids: tuple[int, ...] = ()
    collection_ids: frozenset[int] = frozenset()  # the turns' retrieved and history collections


def log_interaction(
    db: Database,
    ctx: InteractionContext,
    question: str,
    answer: Answer | None,
    collection_ids: list[int] | None,
    *,
    error: str | None = None,
    interaction_id: int | None = None,
    history: History | None = None,
) -> int:
    """Store one ask and return its ``interactions.id``.

    ``interaction_id`` (taken from the table's sequence beforehand) makes a
    retried write idempotent: a second insert of the same id is a key conflict.

    ``answer=None`` records a failed ask (status ``error``, ``error`` kept as the
    reason). An answer whose generator did not report the passages it showed
    (extractive, not-found) is stored with the retrieved hit texts instead.
    ``history`` is the thread history the generator was given.
    """
    if answer is None and not error:
        raise ValueError("log_interaction needs an answer or an error")
    values: dict[str, Any] = {
        "platform": ctx.platform,
        "workspace_id": ctx.workspace_id,
        "channel_id": ctx.channel_id,
        "thread_id": ctx.thread_id,
        "user_key": ctx.user_key,
        "question": question,
        "collection_ids": list(collection_ids or []),
        "ephemeral": ctx.ephemeral,
        "history_ids": list(history.interaction_ids) if history else [],
        "history_collection_ids": sorted(history.collection_ids) if history else [],
    }
    if interaction_id is not None:
        values["id"] = interaction_id
    if answer is None:
        values.update(status=ERROR_STATUS, fallback_reason=_reason(str(error), db))
    else:
        hits = answer.hits
        values.update(
            retrieved=[
                asdict(RetrievedChunk(h.chunk_id, float(h.score), h.collection_id, h.document_id, h.title,
                                      h.heading_path, h.source_uri))
                for h in hits
            ],
            passages=list(answer.passages) if answer.passages else [h.text for h in hits],
            prompt_version=answer.prompt_version,
            generator=answer.generator,
            adapter_version=answer.adapter_version,
            retriever_version=answer.retriever_version,
            answer=answer.text,
            citations=[_citation_dict(c) for c in answer.citations],
            status=AnswerStatus(answer.status).value,
            fallback_reason=_reason(error or answer.fallback_reason, db),
            search_query=answer.metadata.get("search_query"),
            flags=list(answer.flags),
            timings={k: float(v) for k, v in answer.timings.items()},
        )
    return InteractionRepo(db).add(values)


ABSTAINED = "not_supported: the model found no answer in the passages"  # a refinement that said "not found"


def record_refinement(db: Database, interaction_id: int, refined: Answer) -> bool:
    """What became of an answer-first reply's refinement: the model's answer, or why the quoted one stays.

    A model's answer that passed the grounding check (``Answer.generated``) replaces the logged
    answer, the quoted text kept in ``first_answer``; any other outcome only records the reason
    (status ``fallback``). Either way the refinement's timings are added as ``refine_<stage>``,
    next to those of the answer shown first. Feedback already given stays on the interaction.
    False if the ask was not found (or was already replaced).
    """
    repo = InteractionRepo(db)
    timings = {f"refine_{k}": float(v) for k, v in refined.timings.items()}
    if not refined.generated:
        reason = _reason(refined.fallback_reason or ABSTAINED, db)
        return repo.update(interaction_id, {"status": AnswerStatus.FALLBACK.value, "fallback_reason": reason},
                           add_timings=timings)
    return repo.replace_answer(interaction_id, {
        "passages": list(refined.passages) if refined.passages else [h.text for h in refined.hits],
        "prompt_version": refined.prompt_version,
        "generator": refined.generator,
        "adapter_version": refined.adapter_version,
        "answer": refined.text,
        "citations": [_citation_dict(x) for x in refined.citations],
        "status": AnswerStatus(refined.status).value,
    }, add_timings=timings)


def set_thread(db: Database, interaction_id: int, *, platform: str, channel_id: str, thread_id: str) -> bool:
    """Make a logged ask the start of ``thread_id``, so follow-ups there get it as history.

    For answers whose thread is only known once posted (a slash command's answer
    starts its own thread). Only an ask logged in that channel with no thread yet
    is changed; False if there was none.
    """
    return InteractionRepo(db).set_thread(interaction_id, platform=platform, channel_id=channel_id,
                                          thread_id=thread_id)


def _reason(reason: str | None, db: Database) -> str | None:
    """A fallback reason may be an exception's text (a URL with credentials): never stored as is."""
    return redact_secrets(reason, db.config.secrets)[:2000] if reason else reason


def get_interaction(db: Database, interaction_id: int) -> InteractionRecord | None:
    row = InteractionRepo(db).get(interaction_id)
    return record_from_row(row) if row is not None else None


def thread_history(db: Database, platform: str, channel_id: str, thread_id: str, limit: int, *,
                   readable: CollectionScope, user_key: str) -> History:
    """The last ``limit`` turns of a thread (user question, assistant answer, ...), oldest first.

    ``limit`` counts turns, like ``GenerationConfig.history_turns``. A turn is history
    only if every collection it drew on (retrieved and through its own history)
    is in ``readable``, the asking location's readable collections *now*: a
    revoked grant also withdraws the answers given under it. An ephemeral
    answer is history only for its own asker (``user_key``). Failed asks are
    skipped: an error message is not something to build on.
    """
    if limit <= 0:
        return History()
    allowed = readable.ids()
    found = InteractionRepo(db).thread_rows(platform, channel_id, thread_id, limit, readable=allowed,
                                            user_key=user_key, skip_status=ERROR_STATUS)
    kept: list[tuple[Any, list[Turn]]] = []  # newest first; each row gives its question and answer
    room = limit
    for row in found:
        if room <= 0:
            break
        turns = [Turn("user", row.question)] + ([Turn("assistant", row.answer)] if row.answer else [])
        kept.append((row, turns[-room:]))
        room -= len(kept[-1][1])
    kept.reverse()
    drew_on = {int(item["collection_id"]) for row, _ in kept for item in row.retrieved or []}
    drew_on.update(cid for row, _ in kept for cid in row.history_collection_ids or [])
    return History(turns=[turn for _, turns in kept for turn in turns],
                   interaction_ids=tuple(row.id for row, _ in kept), collection_ids=frozenset(drew_on))


def record_from_row(row: Any) -> InteractionRecord:
    return InteractionRecord(
        id=row.id,
        created_at=row.created_at,
        platform=row.platform,
        workspace_id=row.workspace_id,
        channel_id=row.channel_id,
        thread_id=row.thread_id,
        user_key=row.user_key,
        question=row.question,
        collection_ids=list(row.collection_ids or []),
        retrieved=[_retrieved_from_json(item) for item in row.retrieved or []],
        passages=list(row.passages or []),
        prompt_version=row.prompt_version,
        generator=row.generator,
        adapter_version=row.adapter_version,
        answer=row.answer,
        citations=list(row.citations or []),
        status=row.status,
        fallback_reason=row.fallback_reason,
        flags=list(row.flags or []),
        timings=dict(row.timings or {}),
        ephemeral=bool(row.ephemeral),
        history_ids=list(row.history_ids or []),
        history_collection_ids=list(row.history_collection_ids or []),
        first_answer=getattr(row, "first_answer", None),
        refined_at=getattr(row, "refined_at", None),
        retriever_version=getattr(row, "retriever_version", None),
    )


def _retrieved_from_json(item: dict[str, Any]) -> RetrievedChunk:
    known = {k: item[k] for k in RetrievedChunk.__dataclass_fields__ if k in item}
    return RetrievedChunk(**known)


def _citation_dict(citation: Any) -> dict[str, Any]:
    return {
        "n": citation.n,
        "chunk_id": citation.chunk_id,
        "document_id": citation.document_id,
        "title": citation.title,
        "source_uri": citation.source_uri,
        "heading_path": citation.heading_path,
        "passage": citation.passage,  # the prompt's marker: training maps readers' numbers back through it
        "display_path": citation.display_path,  # what a reader may be shown (source_uri is the server's path)
        "url": citation.url,
    }
