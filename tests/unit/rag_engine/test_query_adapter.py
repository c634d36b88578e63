"""Query adapters on synthetic embeddings: training helps held-out questions, the gate refuses what does not.

The synthetic task: documents are random unit vectors; a question's vector is its document's
seen through a fixed distortion (plus noise), which raw cosine search undoes badly and a
linear query map can learn. Questions about the held-out documents are never trained on.
"""

from __future__ import annotations

import numpy as np
import pytest

from rag_engine.query_transform import QueryAdapter
from rag_engine.training.query_adapter import PairTensors, TrainParams, train_query_adapter
from rag_engine.training.retrieval_gate import RetrievalScores, judge, score_rankings

DIM, DOCS, TRAIN = 32, 1000, 200


@pytest.fixture(scope="module")
def task() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    docs = rng.normal(size=(DOCS, DIM))
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    distortion = np.eye(DIM) + 2.0 * rng.normal(size=(DIM, DIM)) / np.sqrt(DIM)
    questions = docs @ distortion + 0.02 * rng.normal(size=(DOCS, DIM))
    questions /= np.linalg.norm(questions, axis=1, keepdims=True)
    return docs.astype(np.float32), questions.astype(np.float32)


def _pairs(questions: np.ndarray, docs: np.ndarray, targets: np.ndarray) -> PairTensors:
    n = len(targets)
    return PairTensors(queries=questions[:n], positives=docs[targets], group=np.arange(n),
                       positive_ids=targets.astype(np.int64), negatives=np.zeros((n, 0, DIM), np.float32),
                       negative_ids=np.zeros((n, 0), np.int64))


def _scores(task: tuple[np.ndarray, np.ndarray], ids: np.ndarray, adapter: QueryAdapter | None) -> RetrievalScores:
    docs, questions = task
    q = questions[ids] if adapter is None else adapter.apply(questions[ids])
    rankings = [list(np.argsort(-row)[:10]) for row in q @ docs.T]
    return score_rankings(rankings, [{int(i): 1} for i in ids])


HELDOUT = np.arange(DOCS - 200, DOCS)


def test_training_improves_heldout_hits(task):
    docs, questions = task
    adapter, stats = train_query_adapter(_pairs(questions, docs, np.arange(TRAIN)), TrainParams(rank=0, epochs=20))
    before, after = _scores(task, HELDOUT, None), _scores(task, HELDOUT, adapter)
    assert stats.last_loss < stats.first_loss
    assert after.hit1 >= before.hit1 + 0.15, (before, after)
    assert after.hit5 > before.hit5 and after.ndcg10 > before.ndcg10
    assert judge(after, before, None, margin=0.05).passed


def test_low_rank_adapter_also_learns(task):
    docs, questions = task
    adapter, _ = train_query_adapter(_pairs(questions, docs, np.arange(TRAIN)), TrainParams(rank=8, epochs=20))
    assert adapter.rank == 8
    assert _scores(task, HELDOUT, adapter).hit1 > _scores(task, HELDOUT, None).hit1 + 0.1


def test_gate_refuses_an_adapter_trained_on_shuffled_pairs(task):
    docs, questions = task
    shuffled = np.random.default_rng(1).permutation(TRAIN)  # each question paired with someone else's document
    adapter, _ = train_query_adapter(_pairs(questions, docs, shuffled), TrainParams(rank=0, epochs=20))
    before, after = _scores(task, HELDOUT, None), _scores(task, HELDOUT, adapter)
    verdict = judge(after, before, None, margin=0.01)
    assert not verdict.passed and "nDCG@10" in verdict.reason


def test_gate_compares_with_the_better_of_raw_and_active():
    raw = RetrievalScores(0.50, 0.40, 0.60, 10)
    active = RetrievalScores(0.60, 0.50, 0.70, 10)
    better_than_raw_only = RetrievalScores(0.58, 0.50, 0.70, 10)
    verdict = judge(better_than_raw_only, raw, active, margin=0.01, active_version="q3")
    assert not verdict.passed and verdict.reference == "q3"
    assert judge(RetrievalScores(0.62, 0.5, 0.70, 10), raw, active, 0.01, active_version="q3").passed
    assert not judge(RetrievalScores(0.70, 0.6, 0.65, 10), raw, active, 0.01).passed  # hit@5 fell
    assert not judge(RetrievalScores(0.0, 0.0, 0.0, 0), raw, None, 0.0).passed  # nothing to judge by


def test_gate_refuses_a_better_ranking_that_gives_users_worse_answers():
    raw = RetrievalScores(0.50, 0.40, 0.60, 10, answer_f1=0.70)
    worse_answers = RetrievalScores(0.60, 0.50, 0.70, 10, answer_f1=0.65)
    verdict = judge(worse_answers, raw, None, margin=0.01)
    assert not verdict.passed and "what users receive gets worse" in verdict.reason
    passed = judge(RetrievalScores(0.60, 0.50, 0.70, 10, answer_f1=0.70), raw, None, margin=0.01)
    assert passed.passed and "answer token-F1 0.700 -> 0.700" in passed.reason
    # no reviewed answers to score (held-out questions without a reference): the ranking clauses decide alone
    assert judge(RetrievalScores(0.60, 0.50, 0.70, 10), RetrievalScores(0.50, 0.40, 0.60, 10), None, 0.01).passed


def test_adapter_round_trips_and_normalizes():
    rng = np.random.default_rng(2)
    adapter = QueryAdapter((np.eye(8) + 0.1 * rng.normal(size=(8, 8))).astype(np.float32), rank=4)
    again = QueryAdapter.from_bytes(adapter.to_bytes())
    assert again.rank == 4 and np.array_equal(again.matrix, adapter.matrix)
    q = rng.normal(size=(3, 8)).astype(np.float32)
    assert np.allclose(np.linalg.norm(again.apply(q), axis=1), 1.0, atol=1e-5)
    unit = q[0] / np.linalg.norm(q[0])
    assert np.allclose(QueryAdapter.identity(8).apply(unit), unit, atol=1e-6)


def test_learned_fusion_weights_round_trip_and_older_versions_load_without_them():
    import io

    adapter = QueryAdapter(np.eye(4, dtype=np.float32), rank=2, vector_weights={3: 0.35, 1: 0.9})
    again = QueryAdapter.from_bytes(adapter.to_bytes())
    assert dict(again.vector_weights) == {1: 0.9, 3: 0.35}
    buf = io.BytesIO()
    np.savez(buf, W=np.eye(4, dtype=np.float32), rank=np.array(0))  # the layout before weights were learned
    assert dict(QueryAdapter.from_bytes(buf.getvalue()).vector_weights) == {}


def test_a_search_over_several_collections_averages_their_weights():
    adapter = QueryAdapter(np.eye(4, dtype=np.float32), vector_weights={3: 0.3})
    assert adapter.vector_weight([3], 0.7) == pytest.approx(0.3)
    assert adapter.vector_weight([3, 5], 0.7) == pytest.approx(0.5)  # collection 5 keeps the configured weight
    assert adapter.vector_weight([5], 0.7) == 0.7
    assert QueryAdapter.identity(4).vector_weight([3], 0.7) == 0.7


def test_fitted_weight_follows_the_curves_and_stays_put_without_evidence():
    from rag_engine.training.fusion_weights import best_weight, ndcg_curve

    vector = {1: 0.9, 2: 0.8, 3: 0.1}
    lexical = {3: 12.0, 2: 1.0}
    curve = ndcg_curve(vector, lexical, {3: 1}, [0.0, 0.5, 0.7, 1.0])  # chunk 3: lexical's best, vector's worst
    assert curve[0] == pytest.approx(1.0) and curve[3] == pytest.approx(1 / np.log2(4))
    assert best_weight([curve], [0.0, 0.5, 0.7, 1.0], 0.7) == 0.0
    flat = [[0.5, 0.5, 0.5, 0.5]]
    assert best_weight(flat, [0.0, 0.5, 0.7, 1.0], 0.7) == 0.7  # every weight as good: the configured one
    assert best_weight([[1.0, 1.0, 0.0, 0.0], [0.0, 1.0, 0.5, 0.5]], [0.0, 0.5, 0.7, 1.0], 0.7) == 0.5


def test_other_positives_of_the_same_question_are_not_negatives():
    # two rows of one question (chunks 7 and 8) and one of another: row 0 must not be pushed away from chunk 8
    from rag_engine.training.query_adapter import _mask, _positive_sets

    data = PairTensors(queries=np.zeros((3, 2), np.float32), positives=np.zeros((3, 2), np.float32),
                       group=np.array([0, 0, 1]), positive_ids=np.array([7, 8, 9]),
                       negatives=np.zeros((3, 1, 2), np.float32), negative_ids=np.array([[9], [-1], [8]]))
    mask = _mask(np.arange(3), data, _positive_sets(data))
    # columns: positives 7, 8, 9, then negatives 9, -1 (padding), 8
    assert mask[0].tolist() == [False, True, False, False, True, True]
    assert mask[2].tolist() == [False, False, False, True, True, False]
