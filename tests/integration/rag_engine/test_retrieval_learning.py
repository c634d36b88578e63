"""Retrieval learning on the real database: which feedback becomes a (question, chunk) pair, hard negatives,
the pipeline's gate, and activation / rollback changing vector search from the next question on."""

from __future__ import annotations

import numpy as np
import pytest

from rag_engine.feedback import record_correction, record_vote, review_correction
from rag_engine.interactions import log_interaction
from rag_engine.query_transform import QueryAdapter
from rag_engine.store.retrieval_pairs import RetrievalPairRepo
from rag_engine.training import retrieval_registry as registry
from rag_engine.training.curated import import_lines
from rag_engine.training.retrieval_pairs import mine_negatives, mine_pairs
from rag_engine.training.retrieval_pipeline import train_retrieval
from tests.conftest import make_engine_config
from tests.support.training import CTX, DOCS, SECRET_DOC


@pytest.fixture()
def docs(engine):
    engine.ingest_records(DOCS, "handbook")
    engine.ingest_records([SECRET_DOC], "secret", visibility="private")  # private: no training by default
    yield engine
    registry.deactivate(engine.db)  # the scratch database is shared: leave raw query embeddings


def _ask(engine, question, collections=("handbook",)) -> int:
    answer = engine.answer(question, engine.scope_for(list(collections)))
    return log_interaction(engine.db, CTX, question, answer, engine.collection_ids(list(collections)))


def _doc_of(engine, chunk_ids) -> set[str]:
    return {r.source_uri for r in RetrievalPairRepo(engine.db).chunks(list(chunk_ids))}


def test_pairs_follow_feedback_and_collection_training_rules(docs, scratch_dir):
    db = docs.db
    up = _ask(docs, "How many vacation days do I get per year?")
    record_vote(db, up, "u1", 1)
    corrected = _ask(docs, "When is the office open?")
    cid = record_correction(db, corrected, "u2", "From eight to six [1].", is_admin=False)
    review_correction(db, cid, approve=True, reviewer="slack:UADMIN")
    pending = _ask(docs, "How do I book travel?")
    record_correction(db, pending, "u3", "Through the travel desk.", is_admin=False)  # never approved
    down = _ask(docs, "Where are passwords stored?")
    record_vote(db, down, "u1", -1)
    secret = _ask(docs, "What is the salary band for a staff engineer?", ("handbook", "secret"))
    record_vote(db, secret, "u1", 1)  # it read a collection that does not allow training
    report = import_lines(db, [
        '{"question": "Which hotels are approved?", "answer": "Hotels up to 150 euros per night.", '
        '"source": "mem://travel", "collection": "handbook"}',
        '{"question": "Who reviews salary bands?", "answer": "The compensation committee.", '
        '"source": "mem://salaries", "collection": "secret"}',
        '{"question": "When are salary bands reviewed?", "answer": "Every March.", "source": "mem://salaries"}',
        '{"question": "How do deploys work?", "answer": "Open a pull request."}',
    ])
    assert report.added == 4 and not report.errors

    pairs = mine_pairs(db, make_engine_config(scratch_dir).training)
    got = {p.question: p for p in pairs.train + pairs.heldout}
    assert set(got) == {"How many vacation days do I get per year?", "When is the office open?",
                        "Which hotels are approved?"}
    assert got["How many vacation days do I get per year?"].origin == "upvote"
    upvoted = got["How many vacation days do I get per year?"]
    cited = {c["chunk_id"] for c in docs.store.interactions.get(up).citations}
    assert set(upvoted.positives) == cited and "mem://vacation" in _doc_of(docs, upvoted.positives)
    assert got["When is the office open?"].origin == "correction"
    assert _doc_of(docs, got["When is the office open?"].positives) == {"mem://remote"}
    assert got["Which hotels are approved?"].origin == "curated"
    assert _doc_of(docs, got["Which hotels are approved?"].positives) == {"mem://travel"}
    assert all(p.reviewed for p in pairs.heldout)  # only reviewed pairs judge a candidate
    secret_cid = docs.collection_ids(["secret"])[0]
    assert all(secret_cid not in p.collection_ids for p in got.values())
    assert pairs.excluded["collection does not allow training"] == 2  # the secret ask and the secret curated line
    assert pairs.excluded["curated: source document not indexed"] == 1  # salaries, looked for where training is ok
    assert pairs.excluded["curated: no source document"] == 1
    assert pairs.excluded["downvoted"] == 1


def test_hard_negatives_are_top_hits_that_are_not_positives(docs, scratch_dir):
    import_lines(docs.db, ['{"question": "How many vacation days do I get?", "answer": "Twenty five days.", '
                           '"source": "mem://vacation", "collection": "handbook"}'])
    found = mine_pairs(docs.db, make_engine_config(scratch_dir).training)
    pair = (found.train + found.heldout)[0]
    repo = RetrievalPairRepo(docs.db)
    negatives = mine_negatives(repo, docs.store.chunks, docs.embedder.embed_query(pair.question), pair, 3, 40)
    assert len(negatives) == 3 and not set(negatives) & set(pair.positives)
    assert "mem://vacation" not in _doc_of(docs, negatives)
    assert "mem://carryover" in _doc_of(docs, negatives)  # the nearest other page is the hardest negative


def test_gate_keeps_a_candidate_that_does_not_improve_and_leaves_search_alone(docs, scratch_dir):
    sources = {"How many vacation days do I get?": "vacation", "Can unused vacation carry over?": "carryover",
               "How many remote days a week?": "remote", "How fast are expenses paid back?": "expenses",
               "Who books travel?": "travel", "When are production deploys?": "deploy",
               "How fast must pages be answered?": "oncall", "Where are passwords kept?": "security"}
    import_lines(docs.db, [f'{{"question": "{q}", "answer": "See the page.", "source": "mem://{s}"}}'
                           for q, s in sources.items()])
    config = make_engine_config(scratch_dir, retrieval_promotion_margin=1.0, retrieval_train_epochs=3)
    result = train_retrieval(docs.db, docs.embedder, docs.store.chunks, config.training,
                             retrieval=config.retrieval)
    assert result.status == "rejected" and not result.verdict.passed
    assert result.candidate.questions >= 1 and "margin" in result.verdict.reason
    listed = registry.list_versions(docs.db)
    assert [v.version for v in listed] == [result.version] and listed[0].status == "rejected"
    assert listed[0].metrics["baseline"]["questions"] == result.candidate.questions
    assert registry.active(docs.db) is None and docs.retriever.query_adapter.current() == (None, None)


def _pointing_at(query_vector: np.ndarray, target: np.ndarray) -> QueryAdapter:
    """A rank-one map sending ``query_vector`` (unit) onto ``target``: the search then finds target's chunk."""
    return QueryAdapter(np.outer(query_vector, target).astype(np.float32), rank=1)


def test_activate_and_rollback_switch_vector_search_at_once(docs):
    question = "How many vacation days do I get per year?"
    scope = docs.scope_for(["handbook"])

    def top() -> str:
        return docs.search(question, scope, 3, "vector")[0].source_uri

    assert top() == "mem://vacation"
    qv = docs.embedder.embed_query(question)
    chunk_of = {r.source_uri: r.chunk_id for r in RetrievalPairRepo(docs.db).chunks(list(range(1, 200)))}
    vectors = RetrievalPairRepo(docs.db).embeddings([chunk_of["mem://security"], chunk_of["mem://deploy"]])
    versions = []
    for uri in ("mem://security", "mem://deploy"):
        version = registry.next_version(docs.db)
        registry.register(docs.db, version=version, adapter=_pointing_at(qv, vectors[chunk_of[uri]]),
                          embedding_model=docs.embedder.model_name, data_snapshot={}, metrics={}, status="candidate")
        versions.append(version)
    registry.activate(docs.db, versions[0], embedding_model=docs.embedder.model_name)
    assert top() == "mem://security"  # the next search, same process, no wait
    registry.activate(docs.db, versions[1])
    assert top() == "mem://deploy"
    hit = docs.search(question, scope, 3, "vector")[0]
    assert hit.vector_score == pytest.approx(float(qv @ vectors[chunk_of["mem://deploy"]]), abs=1e-3)  # raw cosine
    assert registry.rollback(docs.db).version == versions[0]
    assert top() == "mem://security"
    assert registry.rollback(docs.db).version is None
    assert top() == "mem://vacation"
    with pytest.raises(registry.NothingToRollBack):
        registry.rollback(docs.db)


def test_a_version_for_another_embedder_is_never_applied(docs):
    question = "How many vacation days do I get per year?"
    scope = docs.scope_for(["handbook"])
    qv = docs.embedder.embed_query(question)
    far = -qv  # would turn the ranking upside down
    registry.register(docs.db, version="q900", adapter=_pointing_at(qv, far), embedding_model="another-model",
                      data_snapshot={}, metrics={}, status="candidate")
    with pytest.raises(ValueError, match="another-model"):
        registry.activate(docs.db, "q900", embedding_model=docs.embedder.model_name)
    registry.activate(docs.db, "q900")  # forced past the check: the search path still refuses it
    assert docs.search(question, scope, 3, "vector")[0].source_uri == "mem://vacation"


def test_a_learned_fusion_weight_is_fitted_and_served_for_its_collection_only(docs):
    from rag_engine.query_transform import PinnedQueryAdapter
    from rag_engine.retrieval import Retriever
    from rag_engine.training.fusion_weights import fit_vector_weights
    from rag_engine.training.retrieval_pairs import RetrievalPair

    question = "How many vacation days do I get per year?"
    cid = docs.collection_ids(["handbook"])[0]
    retriever = Retriever(docs.store.chunks, docs.embedder, docs.config.retrieval)
    vector_run, lexical_run = retriever.runs(question, docs.scope_for(["handbook"]), 10)
    assert vector_run and lexical_run
    # judged relevant: of the lexical list's top 3, the chunk vector search likes least
    lexical_order = sorted(lexical_run, key=lambda i: (-lexical_run[i], i))
    target = min(lexical_order[:3], key=lambda i: (vector_run.get(i, -1.0), i))
    vector_order = sorted(vector_run, key=lambda i: (-vector_run[i], i))
    assert vector_order.index(target) > lexical_order.index(target)
    pair = RetrievalPair(question, (target,), "curated", 0, (cid,))
    fitted = fit_vector_weights([pair], retriever, 0.7, min_questions=1)
    assert fitted[cid] < 0.7
    assert fit_vector_weights([pair], retriever, 0.7, min_questions=2) == {}  # too few questions: no move

    scope = docs.scope_for(["handbook"])
    lexical_top = [h.chunk_id for h in docs.retriever.search(question, scope, 5, "lexical", rerank=False)]
    hybrid_top = [h.chunk_id for h in docs.retriever.search(question, scope, 5, "hybrid", rerank=False)]
    served = Retriever(docs.store.chunks, docs.embedder, docs.config.retrieval, query_adapter=PinnedQueryAdapter(
        "q-test", QueryAdapter(np.eye(docs.embedder.dim, dtype=np.float32), vector_weights={cid: 0.0})))
    assert [h.chunk_id for h in served.search(question, scope, 5, "hybrid", rerank=False)] == lexical_top
    elsewhere = Retriever(docs.store.chunks, docs.embedder, docs.config.retrieval, query_adapter=PinnedQueryAdapter(
        "q-test", QueryAdapter(np.eye(docs.embedder.dim, dtype=np.float32), vector_weights={cid + 1000: 0.0})))
    assert [h.chunk_id for h in elsewhere.search(question, scope, 5, "hybrid", rerank=False)] == hybrid_top
    assert hybrid_top != lexical_top  # else the two checks above could not tell the weights apart
