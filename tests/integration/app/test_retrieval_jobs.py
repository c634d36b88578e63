"""Retrieval retraining through the worker's job queue: queued by itself once feedback holds enough new pairs,
trained and judged by the gate, activated (or refused), and the answers that follow name the retriever version."""

from __future__ import annotations

import json
import random

import pytest

from app.report import build_report
from app.worker import Worker
from rag_engine import jobs
from rag_engine.feedback import record_vote
from rag_engine.interactions import log_interaction
from rag_engine.training import retrieval_registry as registry
from rag_engine.training.curated import import_lines
from rag_engine.training.dataset import is_heldout, question_key
from rag_engine.training.retrieval_jobs import AUTO_REQUESTER
from tests.conftest import make_settings
from tests.support.training import CTX, DOCS, QA

# Team jargon the embedder has never seen: each code name stands for one page. Raw queries find the page for
# half of the held-out questions; pairs from feedback teach the query adapter what the names mean.
CODE_NAMES = {"Bluebird": "vacation", "Heron": "deploy", "Kestrel": "expenses", "Osprey": "oncall"}
TEMPLATES = ["What does {c} cover?", "Tell me about {c}.", "Who do I ask about {c}?", "Where is {c} described?",
             "What are the rules of {c}?", "Explain {c} to me.", "Is there a page on {c}?", "How does {c} work?"]
QUESTIONS = [(t.format(c=c), page) for c, page in CODE_NAMES.items() for t in TEMPLATES]
HELDOUT_FRACTION = 0.25  # 9 of the 32 questions are held out (by hash), at least one per code name
QA_PAGES = ["vacation", "vacation", "carryover", "carryover", "remote", "remote", "expenses", "expenses",  # QA's pages
            "travel", "travel", "deploy", "deploy", "oncall", "oncall", "security", "security", "security", "vacation"]


@pytest.fixture()
def handbook(engine):
    engine.ingest_records(DOCS, "handbook")
    yield engine
    registry.deactivate(engine.db)  # the scratch database is shared: leave raw query embeddings


def _settings(scratch_dir, **overrides):
    return make_settings(scratch_dir, **{"retrieval_retrain_new_pairs": 5, "train_heldout_fraction": HELDOUT_FRACTION,
                                         **overrides})  # the default margin: nDCG@10 + 0.01


def _import(db, questions: list[str], pages: list[str]) -> None:
    """Curated Q&A (reviewed feedback: approved answers with their source page), one per question."""
    lines = [json.dumps({"question": q, "answer": "See the page.", "source": f"mem://{page}", "collection": "handbook"})
             for q, page in zip(questions, pages, strict=True)]
    report = import_lines(db, lines)
    assert report.added == len(questions) and not report.errors


def _worker(scratch_dir, engine, **overrides) -> Worker:
    worker = Worker(_settings(scratch_dir, **overrides), engine.db)
    worker.use_engine(engine)
    return worker


def test_worker_queues_trains_and_promotes_a_query_adapter_then_answers_name_it(handbook, scratch_dir):
    db = handbook.db
    worker = _worker(scratch_dir, handbook)
    question = "How many vacation days do I get per year?"
    upvoted = log_interaction(db, CTX, question, handbook.answer(question, handbook.scope_for(["handbook"])),
                              handbook.collection_ids(["handbook"]))
    record_vote(db, upvoted, "slack:T1:U2", 1)
    assert worker.schedule_retrieval(force=True) is None  # one 👍 pair: below the threshold of 5 new pairs

    _import(db, [q for q, _ in QUESTIONS], [page for _, page in QUESTIONS])
    job_id = worker.schedule_retrieval(force=True)
    assert job_id is not None
    job = jobs.get(db, job_id)
    assert job is not None and job.kind == jobs.RETRIEVAL_RETRAIN and job.requested_by == AUTO_REQUESTER
    assert worker.schedule_retrieval(force=True) is None  # one open job at a time

    run = worker.run_once()
    assert run is not None and run.job_id == job_id and run.status == "done", run
    result = run.result or {}
    assert result["decision"] == "promoted", result
    version = result["version"]
    cand, base = result["metrics"]["candidate"], result["metrics"]["baseline"]
    assert cand["questions"] >= 8 and base["ndcg10"] < 0.8 and cand["ndcg10"] >= base["ndcg10"] + 0.2, result
    # the curated answers score what users would receive from each ranking: not worse, or it would be refused
    assert cand["answer_f1"] is not None and cand["answer_f1"] >= base["answer_f1"], result
    assert "answer token-F1" in result["reason"], result
    active = registry.active(db)
    assert active is not None and active.version == version and active.data_snapshot["train"] >= 16
    assert worker.schedule_retrieval(force=True) is None  # nothing new since that run

    # the serving engine reads the active version per question: the next answer is searched through it, logged so
    scope, asked = handbook.scope_for(["handbook"]), "Where can I read up on Heron?"
    answer = handbook.answer(asked, scope, mode="vector")
    assert answer.retriever_version == version and answer.hits[0].source_uri == "mem://deploy"
    logged = log_interaction(db, CTX, asked, answer, handbook.collection_ids(["handbook"]))
    assert handbook.store.interactions.get(logged).retriever_version == version
    assert handbook.store.interactions.get(upvoted).retriever_version is None  # answered before: raw queries
    assert handbook.answer(asked, scope, mode="lexical").retriever_version is None  # no vector search, no transform

    page = build_report(db, _settings(scratch_dir))
    assert "Answers by version" in page and f"<td>base model</td><td>{version}</td><td>1</td>" in page
    assert "<td>base model</td><td>raw queries</td><td>1</td><td>1</td>" in page  # the 👍 answer

    assert registry.rollback(db).version is None
    assert handbook.answer(asked, scope).retriever_version is None


def test_worker_job_refuses_an_adapter_trained_on_shuffled_pairs(handbook, scratch_dir):
    """Plain questions raw search answers well, their training pages shuffled among them (held-out ones stay
    right): the job trains a candidate, the gate refuses it, and search stays on raw queries. Served by vector
    search, so the harm shows in the ranking the gate judges (hybrid search's lexical side hides it here)."""
    db = handbook.db
    questions = [q for q, _ in QA]
    train = [i for i, q in enumerate(questions) if not is_heldout(question_key(q), HELDOUT_FRACTION)]
    assert 8 <= len(train) < len(QA)
    shuffled = list(QA_PAGES)
    order = list(train)
    random.Random(13).shuffle(order)
    for i, j in zip(train, order, strict=True):
        shuffled[i] = QA_PAGES[j]
    assert sum(shuffled[i] != QA_PAGES[i] for i in train) >= len(train) // 2
    _import(db, questions, shuffled)

    worker = _worker(scratch_dir, handbook, search_mode="vector")
    queued = jobs.enqueue(db, jobs.RETRIEVAL_RETRAIN, requested_by="slack:T1:UADMIN")  # as /ragbot-admin retrain
    run = worker.run_once()
    assert run is not None and run.job_id == queued.job_id and run.status == "done", run
    result = run.result or {}
    assert result["decision"] == "rejected", result
    cand, base = result["metrics"]["candidate"], result["metrics"]["baseline"]
    assert cand["ndcg10"] < base["ndcg10"] or cand["hit5"] < base["hit5"], result
    assert registry.active(db) is None
    assert [(v.version, v.status) for v in registry.list_versions(db)] == [(result["version"], "rejected")]
    assert handbook.answer(QA[0][0], handbook.scope_for(["handbook"])).retriever_version is None


def test_the_gate_judges_the_ranking_the_serving_mode_gives(handbook, scratch_dir):
    """The adapter moves only the vector search: served by lexical search alone, the same pairs that promote one
    above leave every held-out ranking as it was, so the candidate cannot clear the margin."""
    _import(handbook.db, [q for q, _ in QUESTIONS], [page for _, page in QUESTIONS])
    worker = _worker(scratch_dir, handbook, search_mode="lexical")
    jobs.enqueue(handbook.db, jobs.RETRIEVAL_RETRAIN, requested_by="cli")
    run = worker.run_once()
    assert run is not None and run.status == "done", run
    result = run.result or {}
    assert result["decision"] == "rejected" and "margin" in result["reason"], result
    assert result["metrics"]["candidate"] == result["metrics"]["baseline"]
    assert registry.active(handbook.db) is None
