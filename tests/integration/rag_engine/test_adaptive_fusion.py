"""``fusion=adaptive`` through the real retriever and ``eval retrieval --mode adaptive``, on a small fixture."""

from __future__ import annotations

import pytest

from rag_engine.eval.beir import load_beir
from rag_engine.eval.retrieval_eval import evaluate_retrieval
from rag_engine.fusion import adaptive
from rag_engine.retrieval import Retriever
from tests.support.eval_data import write_beir

CORPUS = {
    "d1": ("", "To request VPN access, open a ticket with the IT desk and install the client."),
    "d2": ("", "Team dinners are reimbursed up to seventy five dollars per person with receipts."),
    "d3": ("", "The office kitchen is cleaned every Friday afternoon by the facilities crew."),
    "d4": ("Parking", "Staff parking permits are issued by reception on the ground floor."),
}
QUERIES = {"q1": "vpn access request", "q2": "how much can we spend on a team meal", "q3": "parking permit"}
QRELS = {"q1": {"d1": 1}, "q2": {"d2": 1}, "q3": {"d4": 1}}


@pytest.fixture()
def tiny(engine, tmp_path):
    root = write_beir(tmp_path / "tiny", CORPUS, QUERIES, QRELS)
    return load_beir(root)


def test_retriever_fuses_adaptively_when_configured(engine, tiny):
    evaluate_retrieval(engine, tiny, "tiny", modes=["lexical"])  # ingests
    scope = engine.scope_for(["tiny"])
    retriever = Retriever(engine.store.chunks, engine.embedder,
                          engine.config.retrieval.model_copy(update={"fusion": "adaptive"}))
    hits = retriever.search("vpn access request", scope, 4, "hybrid")
    assert hits[0].source_uri == "beir:d1"
    # the scores are the adaptive rule's over the same two runs the retriever asked for
    cids = scope.ids()
    with engine.store.chunks.searching() as search:
        cfg = retriever.config
        qv = engine.embedder.embed_query("vpn access request")
        vector = search.vector(qv, cids, cfg.candidate_depth, cfg.hnsw_ef_search)
        lexical = retriever.lexical_candidates(search, "vpn access request", cids, cfg.candidate_depth)
    fused, weight = adaptive(vector, lexical, cfg.candidate_depth)
    assert 0.0 < weight < 1.0 and abs(weight - 0.7) > 0.01  # not the fixed weights under another name
    assert [h.score for h in hits] == pytest.approx(sorted(fused.values(), reverse=True)[:len(hits)])
    # a per-call override gives the same ranking from a convex-configured retriever, whose own scores differ
    fixed = Retriever(engine.store.chunks, engine.embedder,
                      engine.config.retrieval.model_copy(update={"fusion": "convex"}))
    same = fixed.search("vpn access request", scope, 4, "hybrid", fusion="adaptive")
    assert [h.chunk_id for h in same] == [h.chunk_id for h in hits]
    assert [h.score for h in fixed.search("vpn access request", scope, 4, "hybrid")] != [h.score for h in hits]


def test_eval_retrieval_runs_the_adaptive_mode(engine, tiny):
    result = evaluate_retrieval(engine, tiny, "tiny", modes=["hybrid", "adaptive"])
    assert [m.mode for m in result.modes] == ["hybrid", "adaptive"]
    adaptive_metrics = result.mode("adaptive").metrics
    assert adaptive_metrics["recall@100"] == pytest.approx(1.0)
    assert adaptive_metrics["ndcg@10"] > 0.6
    with pytest.raises(ValueError, match="unknown mode"):
        evaluate_retrieval(engine, tiny, "tiny", modes=["adaptive-ish"])
