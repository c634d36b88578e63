"""``ragbot eval retrieval --retriever-version``: a learned version measured side by side with the active one."""

from __future__ import annotations

import numpy as np
import pytest

from rag_engine.eval.beir import load_beir
from rag_engine.eval.retrieval_eval import RetrieverVersion, evaluate_retrieval, pinned, retriever_versions
from rag_engine.query_transform import QueryAdapter
from rag_engine.training import retrieval_registry as registry
from tests.support.eval_data import write_beir

CORPUS = {
    "d1": ("", "To request VPN access, open a ticket with the IT desk and install the client."),
    "d2": ("", "Team dinners are reimbursed up to seventy five dollars per person with receipts."),
    "d3": ("", "The office kitchen is cleaned every Friday afternoon by the facilities crew."),
    "d4": ("", "Staff parking permits are issued by reception on the ground floor."),
    "d5": ("", "Laptops are replaced every three years; ask IT for a new one."),
}
QUERIES = {"q1": "how do I get vpn access", "q2": "are team dinners paid back", "q3": "who cleans the kitchen",
           "q4": "where do I get a parking permit"}
QRELS = {"q1": {"d1": 1}, "q2": {"d2": 1}, "q3": {"d3": 1}, "q4": {"d4": 1}}


def _register(engine, version: str, matrix: np.ndarray, *, model: str | None = None) -> None:
    registry.register(engine.db, version=version, adapter=QueryAdapter(matrix.astype(np.float32)),
                      embedding_model=model or engine.embedder.model_name, data_snapshot={}, metrics={},
                      status="candidate")


def _served_by(engine, version: RetrieverVersion) -> str | None:
    """The retriever version a vector search reports while ``version`` is pinned."""
    with pinned(engine, version):
        return engine.retriever.retrieve(QUERIES["q1"], engine.scope_for(["tiny"]), mode="vector").retriever_version


def test_a_version_is_compared_with_the_active_one(engine, tmp_path):
    ds = load_beir(write_beir(tmp_path / "tiny", CORPUS, QUERIES, QRELS))
    dim = engine.embedder.dim
    scramble = np.linalg.qr(np.random.default_rng(0).normal(size=(dim, dim)))[0]  # a harmful "adapter"
    _register(engine, "q1", np.eye(dim))
    _register(engine, "q2", scramble)

    versions = retriever_versions(engine, "q2")
    assert [v.label for v in versions] == ["raw", "q2"]  # nothing active: raw queries are the reference
    result = evaluate_retrieval(engine, ds, "tiny", modes=["lexical", "vector", "hybrid"], versions=versions)
    assert [m.mode for m in result.modes] == ["lexical", "vector [raw]", "vector [q2]", "hybrid [raw]", "hybrid [q2]"]
    assert result.mode("vector [raw]").metrics["ndcg@10"] > result.mode("vector [q2]").metrics["ndcg@10"] + 0.2
    assert engine.retriever.query_adapter is not None and engine.retriever.query_adapter.current() == (None, None)
    assert [_served_by(engine, v) for v in versions] == [None, "q2"]  # a pinned version is named, not "raw"

    registry.activate(engine.db, "q1")
    versions = retriever_versions(engine, "q2")
    assert [v.label for v in versions] == ["active q1", "q2"]
    assert [_served_by(engine, v) for v in versions] == ["q1", "q2"]
    result = evaluate_retrieval(engine, ds, "tiny", modes=["vector"], versions=versions)
    identity = result.mode("vector [active q1]").metrics["ndcg@10"]
    assert identity == pytest.approx(1.0)  # the identity matrix searches as raw queries do
    assert result.mode("vector [q2]").metrics["ndcg@10"] < identity


def test_unknown_or_misfitting_version_is_a_clear_error(engine):
    with pytest.raises(ValueError, match="no retrieval version 'q9'"):
        retriever_versions(engine, "q9")
    _register(engine, "q3", np.eye(engine.embedder.dim), model="another-embedder")
    with pytest.raises(ValueError, match="fits embedder another-embedder"):
        retriever_versions(engine, "q3")
