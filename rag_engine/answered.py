"""Accepted chat answers: a document for retrieval and a curated example for training.

A thread whose human answer was accepted (who may accept, and which collection it goes to, is the
bot core's policy: ``bot/answered_threads.py``) is stored twice: as a document of that collection
(the question and the accepted answer, with the message's link as its URL), so later questions in
the channels that read the collection find it; and, when the collection allows training, as a
curated Q&A example for the next retrain. The training set applies the same rule again when it is
built (``rag_engine.training.dataset``), so a collection whose training is switched off later
gives no example either.

One accepted answer is one document and one example, both keyed by the answer's own URI: accepting
it again changes nothing, accepting it after an edit rewrites both, withdrawing removes both.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from rag_engine import collections as cols
from rag_engine.eval.scores import normalize_answer
from rag_engine.ingest import Ingestor
from rag_engine.sources import RELATIVE_PATH
from rag_engine.store import Store
from rag_engine.training.curated import MAX_ANSWER_CHARS, MAX_QUESTION_CHARS
from rag_engine.values import Record

TITLE_CHARS = 120
ANSWERED_KIND = "answered_thread"  # documents.metadata["kind"] of these documents


@dataclass(frozen=True, slots=True)
class AcceptedAnswer:
    uri: str  # the accepted message, e.g. slack://T1/C1/<thread ts>/<message ts>: the document's source_uri
    url: str | None  # its permalink / jump URL: what citations link to
    label: str  # where readers are told it is from when there is no link ("Slack thread in C1")
    question: str
    answer: str


@dataclass(frozen=True, slots=True)
class AcceptOutcome:
    collection: str
    document: Literal["written", "unchanged"]
    example: Literal["added", "unchanged", "not_allowed"]  # not_allowed: the collection disallows training


def example_hash(accepted: AcceptedAnswer) -> str:
    """The curated example's ``content_hash``: the answer's URI and its normalized text (an edit is new)."""
    parts = ["answered", accepted.uri, normalize_answer(accepted.question), normalize_answer(accepted.answer)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def accept_answer(store: Store, ingestor: Ingestor, accepted: AcceptedAnswer, collection: str) -> AcceptOutcome:
    """Store ``accepted`` in ``collection`` (which must exist: the caller decided and granted it) and, if
    that collection allows training, as a curated example. Idempotent."""
    question, answer = accepted.question.strip()[:MAX_QUESTION_CHARS], accepted.answer.strip()[:MAX_ANSWER_CHARS]
    if not question or not answer:
        raise ValueError("an accepted thread needs a question and an answer")
    coll = cols.require(store.collections, collection)
    title = " ".join(question.split())
    title = title if len(title) <= TITLE_CHARS else title[:TITLE_CHARS - 1].rstrip() + "…"
    metadata: dict[str, str] = {RELATIVE_PATH: accepted.label, "kind": ANSWERED_KIND}
    if accepted.url:
        metadata["url"] = accepted.url
    record = Record(accepted.uri, title, f"Question: {question}\n\nAccepted answer: {answer}", metadata)
    report = ingestor.ingest_records([record], coll.name, visibility=coll.visibility)
    if report.skipped:
        raise ValueError(f"the accepted thread could not be stored: {report.skipped[0][1]}")
    document: Literal["written", "unchanged"] = "written" if report.documents_written else "unchanged"
    repo = store.training_examples
    if not coll.allow_training:  # the document, but never an example (and none left from an earlier acceptance)
        repo.remove_curated(accepted.uri)
        return AcceptOutcome(coll.name, document, "not_allowed")
    digest = example_hash(AcceptedAnswer(accepted.uri, accepted.url, accepted.label, question, answer))
    repo.remove_curated(accepted.uri, keep_hash=digest)  # an edited answer replaces its earlier example
    added, _ = repo.add_curated([{"question": question, "answer": answer, "source": accepted.uri,
                                  "collection_id": coll.id, "content_hash": digest}])
    return AcceptOutcome(coll.name, document, "added" if added else "unchanged")


def withdraw_answer(store: Store, uri: str, collection: str) -> bool:
    """Remove the document and the example of the accepted answer ``uri``; whether there was one."""
    coll = store.collections.get(collection)
    examples = store.training_examples.remove_curated(uri)
    documents = store.documents.prune(coll.id, lambda found: found == uri) if coll is not None else 0
    return bool(examples or documents)
