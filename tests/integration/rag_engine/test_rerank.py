"""Cross-encoder reranking with a tiny BERT classifier built in the test and loaded by path."""

from __future__ import annotations

import pytest

from app.configs import engine_config
from rag_engine.rerank import CrossEncoderReranker, passage_text
from rag_engine.values import SearchHit
from tests.conftest import make_engine_config, make_settings
from tests.support.eval_data import build_tiny_cross_encoder


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory):
    return build_tiny_cross_encoder(tmp_path_factory.mktemp("tiny-cross-encoder"))


def _hit(i: int, text: str, title: str = "Handbook") -> SearchHit:
    return SearchHit(chunk_id=i, document_id=i, collection_id=1, title=title, source_uri=f"doc{i}.md",
                     heading_path="", text=text, score=1.0 / (i + 1))


PASSAGES = ["request vpn access from the it team", "the expense limit for a team dinner",
            "deploy on friday afternoon is not allowed", "per diem for a trip to seattle",
            "report a phishing email to security", "core hours and vacation days policy"]


def _independent_logits(path, query: str, passages: list[str]) -> list[float]:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    with torch.no_grad():
        enc = tok([query] * len(passages), passages, padding=True, truncation=True, return_tensors="pt")
        return model(**enc).logits[:, 0].tolist()


def test_reranker_orders_candidates_by_the_cross_encoder(tiny_cross_encoder):
    config = make_engine_config("/tmp/unused", reranker_model=str(tiny_cross_encoder))
    reranker = CrossEncoderReranker.from_config(config.retrieval, config.embedding)
    hits = [_hit(i, p) for i, p in enumerate(PASSAGES)]
    query = "how do i get vpn access"
    reranked = reranker.rerank(query, hits)

    logits = _independent_logits(tiny_cross_encoder, query, [passage_text(h) for h in hits])
    expected = sorted(range(len(hits)), key=lambda i: -logits[i])
    assert [h.chunk_id for h in reranked] == expected
    assert [h.chunk_id for h in reranked] != [h.chunk_id for h in hits]  # it really reorders
    assert all(h.rerank_score is not None for h in reranked)
    assert [h.rerank_score for h in reranked] == sorted((h.rerank_score for h in reranked), reverse=True)
    assert {h.chunk_id for h in reranked} == {h.chunk_id for h in hits}


def test_rerank_of_nothing_is_nothing(tiny_cross_encoder):
    reranker = CrossEncoderReranker(str(tiny_cross_encoder))
    assert reranker.rerank("anything", []) == []


def test_missing_reranker_setting_is_a_clear_error():
    with pytest.raises(ValueError, match="RAGBOT_RERANKER_MODEL"):
        config = make_engine_config("/tmp/unused")
        CrossEncoderReranker.from_config(config.retrieval, config.embedding)


def test_engine_reranks_only_the_top_candidates(db, embedder, scratch_dir, tiny_cross_encoder, tmp_path):
    from rag_engine.engine import RagEngine

    settings = make_settings(scratch_dir, reranker_model=str(tiny_cross_encoder), rerank_depth=3)
    engine = RagEngine(engine_config(settings), db=db, embedder=embedder,
                       generator=None)  # reranker built from settings
    assert isinstance(engine.retriever.reranker, CrossEncoderReranker)
    for i, p in enumerate(PASSAGES):
        (tmp_path / f"p{i}.md").write_text(f"# Page {i}\n\n{p.capitalize()}.\n")
    engine.ingest([tmp_path], "docs")
    scope = engine.scope_for(["docs"])
    fused = engine.retriever.search("vpn access for the team", scope, 6, "hybrid", rerank=False)
    reranked = engine.retriever.search("vpn access for the team", scope, 6, "hybrid")
    top = reranked[:3]
    assert {h.chunk_id for h in top} == {h.chunk_id for h in fused[:3]}  # the same top-3 candidates ...
    assert [h.rerank_score for h in top] == sorted((h.rerank_score for h in top), reverse=True)  # ... re-scored
    assert [h.chunk_id for h in reranked[3:]] == [h.chunk_id for h in fused[3:]]  # the rest keep their order
    assert all(h.rerank_score is None for h in reranked[3:])
