"""Answer metrics (SQuAD normalization, token F1, ROUGE-L, BLEU) and ranking metrics against hand-computed values."""

from __future__ import annotations

import math

import pytest

from rag_engine.eval.retrieval_eval import evaluate_run
from rag_engine.eval.scores import (
    bleu,
    exact_match,
    latency_summary,
    normalize_answer,
    percentile,
    rouge_l,
    score_answers,
    token_f1,
)


def test_squad_normalization():
    assert normalize_answer("  The  Quick, brown fox! ") == "quick brown fox"
    assert normalize_answer("An apple a day") == "apple day"
    assert exact_match("The answer is 42.", "answer is 42") == 1.0
    assert exact_match("42", "43") == 0.0


def test_token_f1_by_hand():
    # pred: request vpn access in ithelp channel (6); ref: ask in ithelp channel (4); common 3
    assert token_f1("Request VPN access in the it-help channel.", "Ask in the it-help channel") == pytest.approx(0.6)
    assert token_f1("x b b c", "b b d") == pytest.approx(2 * (2 / 4) * (2 / 3) / (2 / 4 + 2 / 3))  # multiset overlap
    assert token_f1("a b b c", "b b d") == pytest.approx(2 / 3)  # "a" is an article: dropped
    assert token_f1("nothing shared", "entirely different") == 0.0
    assert token_f1("", "") == 1.0 and token_f1("", "x") == 0.0


def test_rouge_l_by_hand():
    # LCS("the cat sat", "the cat sat on mat") = 3 tokens: P = 1, R = 3/5
    assert rouge_l("the cat sat", "the cat sat on mat") == pytest.approx(2 * 1 * 0.6 / 1.6)
    assert rouge_l("identical words here", "identical words here") == pytest.approx(1.0)
    assert rouge_l("alpha", "omega") == 0.0


def test_bleu_is_corpus_level_and_scaled():
    refs = ["the deploy window is tuesday and thursday mornings"]
    assert bleu(refs, refs) == pytest.approx(1.0)
    assert bleu(["completely unrelated words appear here now"], refs) < 0.05
    with pytest.raises(ValueError):
        bleu(["a"], [])


def test_aggregates():
    scores = score_answers(["Paris", "the Berlin wall"], ["paris", "Rome"])
    assert scores.n == 2
    assert scores.exact_match == pytest.approx(0.5)
    assert scores.token_f1 == pytest.approx(0.5)
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == pytest.approx(2.5)
    lat = latency_summary([0.010, 0.020, 0.030])
    assert lat["p50_ms"] == pytest.approx(20.0) and lat["p95_ms"] == pytest.approx(29.0)


def test_ranking_metrics_by_hand():
    qrels = {"q1": {"d1": 2, "d2": 1}, "q2": {"d3": 1}, "q3": {"d4": 1}}
    run = {
        "q1": {"d2": 3.0, "x": 2.0, "d1": 1.0},  # relevant at ranks 1 (grade 1) and 3 (grade 2)
        "q2": {"y": 2.0, "d3": 1.0},  # relevant at rank 2
        # q3 retrieved nothing
    }
    got = evaluate_run(qrels, run)
    dcg1 = 1 / math.log2(2) + 2 / math.log2(4)
    idcg1 = 2 / math.log2(2) + 1 / math.log2(3)
    ndcg2 = (1 / math.log2(3)) / 1.0
    assert got["ndcg@10"] == pytest.approx((dcg1 / idcg1 + ndcg2 + 0) / 3)
    assert got["mrr@10"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert got["recall@10"] == pytest.approx((1 + 1 + 0) / 3)
    assert got["recall@100"] == pytest.approx(got["recall@10"])
