"""``RagEngine``: the one object the bot core talks to (ingest, search, answer)."""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from rag_engine import collections as cols
from rag_engine.abstention import decide
from rag_engine.attribution import content_rejection, rejection, support
from rag_engine.config import EngineConfig
from rag_engine.embedding import Embedder, build_embedder
from rag_engine.extractive import ExtractiveAnswerer
from rag_engine.followup import standalone_question
from rag_engine.generation.abstain import is_abstention
from rag_engine.generation.ask_back import clarifying_question
from rag_engine.generation.base import Generator, GeneratorBusy, fallback_code
from rag_engine.generation.citations import parse_citations
from rag_engine.generation.factory import build_generator
from rag_engine.generation.pool import GenerationPool
from rag_engine.generation.streaming import StreamingGenerator
from rag_engine.ingest import Ingestor, Progress
from rag_engine.pipe_tables import restore_tables
from rag_engine.progress import OnProgress, ProgressEvent, report
from rag_engine.query_transform import ActiveQueryAdapter
from rag_engine.redact import redact_secrets
from rag_engine.retrieval import Reranker, Retriever
from rag_engine.safety import injection_flags
from rag_engine.scope import CollectionScope
from rag_engine.store import Store as Store  # re-exported: the bot core's type for ``engine.store``
from rag_engine.store.database import Database as Database  # re-exported: the type of ``engine.db``
from rag_engine.store.migrate import ensure_schema
from rag_engine.streaming import AnswerStream, StreamEnd, StreamPiece
from rag_engine.training.watch import AdapterWatcher
from rag_engine.values import (
    Answer,
    AnswerStatus,
    FallbackCode,
    GeneratedText,
    IngestReport,
    Record,
    SearchHit,
    SearchMode,
    Turn,
)

log = logging.getLogger(__name__)

NOT_FOUND_TEXT = "I couldn't find this in the documents I can see here, so I won't guess."
FOLLOWUP_REWRITTEN = "followup_rewritten"  # flag: retrieval searched ``metadata["search_query"]``, not the question


class _Unset(enum.Enum):
    """A typed "not given" marker: ``None`` already means "no generator" / "no reranker"."""

    UNSET = enum.auto()


_UNSET = _Unset.UNSET


class RagEngine:
    """Retrieval-augmented answers over Postgres + pgvector.

    ``generator`` defaults to the configured backend (built on first answer,
    with the registry's active adapter loaded); pass ``None`` for extractive-only. Whatever happens in the generator, an
    answer comes back: failures fall back to the extractive answerer.
    """

    def __init__(
        self,
        config: EngineConfig,
        *,
        db: Database | None = None,
        embedder: Embedder | None = None,
        generator: Generator | _Unset | None = _UNSET,
        reranker: Reranker | _Unset | None = _UNSET,
        auto_migrate: bool | None = None,
    ) -> None:
        self.config = config
        self.db = db or Database.from_config(config.store)
        self.store = Store(self.db)  # the repositories; the bot core reaches the database only through these
        self.embedder = embedder or build_embedder(config.embedding)
        ensure_schema(self.db, self.embedder.dim, auto_upgrade=auto_migrate)
        if reranker is _UNSET:
            reranker = _build_reranker(config)
        query_adapter = ActiveQueryAdapter(self.store.query_adapters, self.embedder.model_name, self.embedder.dim)
        self.retriever = Retriever(self.store.chunks, self.embedder, config.retrieval, reranker,
                                   query_adapter=query_adapter)
        self.ingestor = Ingestor(self.store, self.embedder, config.ingest)
        self.extractive = ExtractiveAnswerer(self.embedder)
        self._generator = generator
        self._generator_error: str | None = None
        self._generator_lock = threading.Lock()
        self._pool: GenerationPool | None = None  # every generation of this process takes one of its slots
        # serves the registry's active adapter: checked when the generator is built (every command answers
        # with it) and, in long-running processes, started to follow activations and rollbacks
        self.adapter_watcher = AdapterWatcher(self.db, config, self._built_generator)

    # -- documents -------------------------------------------------------------
    def ingest(self, paths: Sequence[Path | str], collection: str = "default", *, prune: bool = False,
               progress: Progress | None = None, visibility: cols.Visibility = "public", create: bool = True,
               follow_symlinks: bool = True) -> IngestReport:
        """See ``Ingestor.ingest_paths``; chat ingestion passes ``create=False, follow_symlinks=False``."""
        return self.ingestor.ingest_paths([Path(p) for p in paths], collection, prune=prune, progress=progress,
                                          visibility=visibility, create=create, follow_symlinks=follow_symlinks)

    def ingest_records(self, records: Sequence[Record], collection: str, *, prune: bool = False,
                       progress: Progress | None = None, visibility: cols.Visibility = "public") -> IngestReport:
        return self.ingestor.ingest_records(records, collection, prune=prune, progress=progress,
                                            visibility=visibility)

    def collection_ids(self, collections: Sequence[str | int]) -> list[int]:
        """Ids of the named collections (names or ids, in the order given), each checked to have been
        embedded by our embedder; an unknown one raises ``CollectionNotFound``."""
        found = self.store.collections.resolve(list(collections))
        for c in found:
            cols.check_embedder(c, self.embedder.model_name, self.embedder.backend)
        return [c.id for c in found]

    def scope_for(self, collections: Sequence[str | int]) -> CollectionScope:
        """The scope of the named collections (one query; see ``collection_ids``)."""
        return CollectionScope.of(self.collection_ids(collections))

    def every_collection(self) -> CollectionScope:
        """Every collection there is now: for operator tools (CLI, evaluation, benchmarks), never for chat."""
        return CollectionScope.of(self.store.collections.ids())

    # -- retrieval and answers -------------------------------------------------
    def search(self, query: str, scope: CollectionScope, k: int | None = None,
               mode: SearchMode | None = None) -> list[SearchHit]:
        """Top-k chunks within ``scope`` (an empty scope finds nothing)."""
        return self.retriever.search(query, scope, k, mode)

    def answer(self, question: str, scope: CollectionScope, history: Sequence[Turn] | None = None, *,
               k: int | None = None, mode: SearchMode | None = None, on_progress: OnProgress | None = None) -> Answer:
        """An answer from the collections in ``scope`` only; an empty scope answers "not found".
        ``on_progress`` hears what retrieval is doing (``rag_engine.progress``), for loading states."""
        found = self._retrieve(question, scope, history, k, mode, on_progress)
        if isinstance(found, Answer):
            return found
        answer = self._ask_back(found.query, found.hits)
        if answer is None:
            answer = self._generate(question, found.hits, found.history)
        return found.finish(answer)

    def answer_first(self, question: str, scope: CollectionScope, history: Sequence[Turn] | None = None, *,
                     k: int | None = None, mode: SearchMode | None = None,
                     on_progress: OnProgress | None = None) -> tuple[Answer, Refine | None]:
        """The quoted (extractive) answer as soon as retrieval is done, and how to refine it.

        The refinement (None when no model could answer: none configured, or it failed to load) runs the
        generator exactly as ``answer`` does, grounding check included, and returns that answer; only one
        that ``Answer.generated`` should replace the quoted one. Not-found and ask-back answers are final.
        """
        found = self._retrieve(question, scope, history, k, mode, on_progress)
        if isinstance(found, Answer):
            return found, None
        answer = self._ask_back(found.query, found.hits)
        if answer is not None:
            return found.finish(answer), None
        if not self._may_generate():  # quoting is all there is: the same answer (and fallback code) as ``answer``
            return found.finish(self._generate(question, found.hits, found.history)), None
        t0 = time.perf_counter()
        result = self.extractive.generate(question, found.hits, found.history)
        text, citations = parse_citations(restore_tables(result.text), found.hits)
        quoted = Answer(text=text, citations=citations, hits=found.hits, generator=result.model,
                        timings={"generate": time.perf_counter() - t0}, passages=list(result.passages))
        first = found.finish(quoted)
        if first.status is not AnswerStatus.ANSWERED:  # nothing quotable: "not found" is final
            return first, None
        hits, turns = found.hits, found.history
        return first, lambda: found.finish(self._generate(question, hits, turns))

    def answer_stream(self, question: str, scope: CollectionScope, history: Sequence[Turn] | None = None, *,
                      k: int | None = None, mode: SearchMode | None = None,
                      on_progress: OnProgress | None = None) -> Answer | AnswerStream:
        """The model's answer as it is written (``RAGBOT_REPLY_MODE=stream``), or the final answer when no model
        writes one (not found, a clarifying question, no model configured or loadable).

        The stream runs the generator when iterated: ``StreamPiece``s of raw text (citations unresolved, not
        yet checked), then one ``StreamEnd`` with the answer exactly as ``answer`` would give it, grounding
        check included; when that is not ``Answer.generated``, the streamed text must not stand.
        """
        found = self._retrieve(question, scope, history, k, mode, on_progress)
        if isinstance(found, Answer):
            return found
        answer = self._ask_back(found.query, found.hits)
        if answer is not None:
            return found.finish(answer)
        if not self._may_generate():
            return found.finish(self._generate(question, found.hits, found.history))
        return self._streamed(question, found)

    def _streamed(self, question: str, found: _Retrieved) -> AnswerStream:
        for item in self._stream(question, found.hits, found.history):
            yield item if isinstance(item, StreamPiece) else StreamEnd(found.finish(item.answer))

    def _may_generate(self) -> bool:
        """A model is configured and not known to have failed to load (building it is the refinement's job)."""
        if self.generator_built:
            return self._built_generator() is not None
        return self.config.generation.generator_backend != "extractive"

    def _retrieve(self, question: str, scope: CollectionScope, history: Sequence[Turn] | None, k: int | None,
                  mode: SearchMode | None, on_progress: OnProgress | None = None) -> Answer | _Retrieved:
        """Search for ``question``: the passages to answer from, or the final "not found" answer."""
        started = time.perf_counter()
        turns = list(history or [])
        # retrieval searches a follow-up as a standalone question; the generator gets the question and the thread
        query = standalone_question(question, turns)
        report(on_progress, ProgressEvent("searching", collections=len(scope.collection_ids)))
        searched = self.retriever.retrieve(query, scope, k, mode)
        hits, served_by = searched.hits, searched.retriever_version
        retrieved = time.perf_counter() - started
        flags = injection_flags(hits)
        rewritten = {"search_query": query} if query != question else {}
        if rewritten:
            flags.append(FOLLOWUP_REWRITTEN)
        r = self.config.retrieval
        decision = decide(query, hits, r.abstention_rule, r.min_relevance)
        if decision.abstain:
            return Answer(text=NOT_FOUND_TEXT, hits=hits, status=AnswerStatus.NOT_FOUND,
                          timings={"retrieve": retrieved, "total": time.perf_counter() - started},
                          flags=flags, metadata={"best_similarity": decision.signals.top_cosine,
                                                 "abstention": {"rule": decision.rule, "score": decision.score},
                                                 **rewritten}, retriever_version=served_by)
        report(on_progress, ProgressEvent("reading", title=hits[0].title))
        return _Retrieved(query, hits, turns, flags, rewritten, started, retrieved, served_by)

    def _ask_back(self, question: str, hits: list[SearchHit]) -> Answer | None:
        clarification = clarifying_question(question, hits)
        if clarification is None:
            return None
        return Answer(text=clarification, hits=hits, status=AnswerStatus.ASK_BACK, generator="ask-back")

    def _generate(self, question: str, hits: list[SearchHit], history: list[Turn]) -> Answer:
        t0 = time.perf_counter()
        generator, pool = self.generator, self.generation_pool
        result: GeneratedText | None = None
        failure: Exception | None = None
        waited: float | None = None  # seconds spent queueing for a generation slot
        if generator is not None and pool is not None:
            try:
                with pool.slot():  # GeneratorBusy (answered extractively, "the model was busy") past the timeout
                    waited = time.perf_counter() - t0
                    result = generator.generate(question, hits, history)
                _require_text(result)
            except Exception as exc:  # noqa: BLE001 - any model failure falls back, the bot keeps answering
                failure = exc
        return self._complete(question, hits, history, generator, result, failure, t0, waited)

    def _stream(self, question: str, hits: list[SearchHit], history: list[Turn]) -> Iterator[StreamPiece | StreamEnd]:
        """``_generate``, handing out the model's text as it is decoded; the checked answer comes last.

        A backend that cannot stream hands out its whole text at once. Any failure, before or during the
        text, ends in the same fallback ``_generate`` gives (the pieces already handed out are then void).
        """
        t0 = time.perf_counter()
        generator, pool = self.generator, self.generation_pool
        result: GeneratedText | None = None
        failure: Exception | None = None
        waited: float | None = None
        if generator is not None and pool is not None:
            try:
                with pool.slot():
                    waited = time.perf_counter() - t0
                    if isinstance(generator, StreamingGenerator):
                        for item in generator.stream(question, hits, history):
                            if isinstance(item, GeneratedText):
                                result = item
                            elif item.text:
                                yield StreamPiece(item.text)
                    else:
                        result = generator.generate(question, hits, history)
                        if result.text:
                            yield StreamPiece(result.text)
                _require_text(result)
            except Exception as exc:  # noqa: BLE001 - as in _generate: the bot keeps answering
                failure = exc
        yield StreamEnd(self._complete(question, hits, history, generator, result, failure, t0, waited))

    def _complete(self, question: str, hits: list[SearchHit], history: list[Turn], generator: Generator | None,
                  result: GeneratedText | None, failure: Exception | None, t0: float, waited: float | None) -> Answer:
        """The answer from what the model gave (or the extractive one): checked, cited, with why it fell back."""
        status, code, reason = AnswerStatus.ANSWERED, None, None
        if generator is None and self._generator_error:
            status, code, reason = AnswerStatus.FALLBACK, FallbackCode.MODEL_UNAVAILABLE, self._generator_error
        elif generator is None:
            code = FallbackCode.NO_GENERATOR
        if failure is not None and generator is not None:
            if waited is None:
                waited = time.perf_counter() - t0
            busy = isinstance(failure, GeneratorBusy)
            log.log(logging.INFO if busy else logging.WARNING, "generator %s %s, answering extractively: %s",
                    generator.name, "busy" if busy else "failed", failure)
            # the reason is stored and may be shown: an error can quote a URL with its credentials
            reason = redact_secrets(f"{type(failure).__name__}: {failure}", self.config.store.secrets)[:500]
            status, code, result = AnswerStatus.FALLBACK, fallback_code(failure), None
        queued = waited or 0.0
        if result is None:
            result = self.extractive.generate(question, hits, history)
        if result.model != self.extractive.name and is_abstention(result.text):  # the model says the passages don't
            status, result = AnswerStatus.NOT_FOUND, replace(result, text=NOT_FOUND_TEXT)
        elif result.model != self.extractive.name:
            result, unsupported = self._check_grounding(question, result, hits, history)
            if unsupported:
                status, code, reason = AnswerStatus.FALLBACK, FallbackCode.NOT_SUPPORTED, unsupported
        text, citations = parse_citations(restore_tables(result.text), hits)
        return Answer(
            text=text, citations=citations, hits=hits, status=status,
            timings={"queue": queued, "generate": time.perf_counter() - t0 - queued},
            generator=result.model, adapter_version=result.adapter_version, prompt_version=result.prompt_version,
            fallback_code=code, fallback_reason=_fallback_reason(code, reason),
            passages=list(result.passages), metadata=self._adapter_problem(),
        )

    def delivered_text(self, question: str, result: GeneratedText, hits: list[SearchHit]) -> str:
        """What a user would receive for generated ``result``: it, or the extractive answer when the grounding
        check rejects it (the adapter gate scores candidates by this)."""
        return self._check_grounding(question, result, hits, [])[0].text

    def _check_grounding(self, question: str, result: GeneratedText, hits: list[SearchHit],
                         history: list[Turn]) -> tuple[GeneratedText, str | None]:
        """Cite unmarked answers post hoc; replace a mostly unsupported answer by the extractive one.

        Returns the answer to give and, when it replaced an unsupported one, why.
        """
        # checked against the passages exactly as shown (top ones, trimmed); [n] numbers them as ``hits`` does
        shown = [replace(h, text=text) for h, text in zip(hits, result.passages, strict=False)] or hits
        has_markers = bool(parse_citations(result.text, shown)[1])
        if has_markers and not self.config.generation.min_grounded_fraction:
            return result, None
        found = support(result.text, shown, len(shown), self.embedder)
        min_fraction = self.config.generation.min_grounded_fraction
        why = rejection(found, min_fraction) or (
            content_rejection(result.text, question, [h.text for h in shown]) if min_fraction else None)
        if why:
            log.info("%s: answering extractively", why)
            return self.extractive.generate(question, hits, history), why
        if not has_markers:
            result = replace(result, text=found.annotated)
        return result, None

    @property
    def generator(self) -> Generator | None:
        """The configured generator, built on first use (None = extractive only)."""
        if self._generator is _UNSET:
            with self._generator_lock:
                if self._generator is _UNSET:
                    self._generator = self._build_generator()
                    self.adapter_watcher.check()
        return self._built_generator()

    @property
    def generation_pool(self) -> GenerationPool | None:
        """The process' one limit on generations (``RAGBOT_GENERATION_CONCURRENCY``), around the generator.

        Built from the config on first use, once the generator is (None = extractive only); ``_generate`` takes
        a slot for every answer, so no ask generates outside the limit.
        """
        generator = self.generator
        if generator is not None and self._pool is None:
            with self._generator_lock:
                if self._pool is None:
                    self._pool = GenerationPool.from_config(generator, self.config.generation)
        return self._pool if generator is not None else None

    def _built_generator(self) -> Generator | None:
        """The generator once built; the watcher never builds it (building runs the watcher's check)."""
        return None if self._generator is _UNSET else self._generator

    def _adapter_problem(self) -> dict[str, str]:
        """``{"adapter_error": why}`` while the active adapter cannot be served and the base model answers."""
        error = self.adapter_watcher.last_error
        return {"adapter_error": error} if error and self._built_generator() is not None else {}

    @property
    def generator_built(self) -> bool:
        """True once the configured generator was built (or failed to build)."""
        return self._generator is not _UNSET

    @property
    def generator_error(self) -> str | None:
        """Why the configured generator could not be built (answers are extractive then)."""
        return self._generator_error

    def _build_generator(self) -> Generator | None:
        if self.config.generation.generator_backend == "extractive":
            return None
        try:
            return build_generator(self.config.generation)
        except Exception as exc:  # noqa: BLE001 - a model that cannot load must not stop the bot
            why = f"generator unavailable: {type(exc).__name__}: {exc}"
            self._generator_error = redact_secrets(why, self.config.store.secrets)[:500]
            log.error("%s; answering extractively", self._generator_error)
            return None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
        self.db.dispose()


Refine = Callable[[], Answer]  # runs the generator for an answer-first reply: see ``RagEngine.answer_first``


def _require_text(result: GeneratedText | None) -> None:
    if result is None or not result.text.strip():
        raise RuntimeError("the generator returned an empty answer")


@dataclass(frozen=True, slots=True)
class _Retrieved:
    """What retrieval found for one question, and how an answer from it is completed."""

    query: str  # what was searched (the standalone form of a follow-up)
    hits: list[SearchHit]
    history: list[Turn]
    flags: list[str]
    rewritten: dict[str, str]
    started: float  # time.perf_counter() when the question arrived
    retrieved: float  # seconds retrieval took
    retriever_version: str | None = None  # the query adapter the vector search used (None: raw query)

    def finish(self, answer: Answer) -> Answer:
        """The answer with the retrieval's flags, search query and timings ("total" counts from the question)."""
        if not answer.text.strip():  # nothing quotable survived (e.g. every sentence was an injection)
            answer.text, answer.status, answer.citations = NOT_FOUND_TEXT, AnswerStatus.NOT_FOUND, []
        answer.flags = list(self.flags)
        answer.retriever_version = self.retriever_version
        answer.metadata.update(self.rewritten)
        answer.timings = {"retrieve": self.retrieved, **answer.timings,
                          "total": time.perf_counter() - self.started}
        return answer


def _fallback_reason(code: FallbackCode | None, detail: str | None) -> str | None:
    """``"<code>: <detail>"``: the code first, so the interaction log and metrics can group by it."""
    if code is None:
        return None
    return f"{code.value}: {detail}" if detail else code.value


def _build_reranker(config: EngineConfig) -> Reranker | None:
    if not config.retrieval.reranker_model:
        return None
    from rag_engine.rerank import CrossEncoderReranker  # written with the evaluation work

    return CrossEncoderReranker.from_config(config.retrieval, config.embedding)
