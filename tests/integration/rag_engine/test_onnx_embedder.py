"""ONNX Runtime int8 embedder: exported once from the local model, close to fp32, never mixed with it."""

from __future__ import annotations

import numpy as np
import pytest

from app.configs import engine_config
from rag_engine.collections import EmbedderMismatch
from rag_engine.embedding import build_embedder
from rag_engine.embedding_onnx import MODEL_FILE, OnnxInt8Embedder
from tests.conftest import make_settings

SAMPLES = [
    "How do I get VPN access?",
    "Team dinners are reimbursed up to seventy five dollars per person.",
    "Production deploys happen on Tuesday and Thursday; never deploy on a Friday afternoon.",
    "Report phishing emails with the button in the mail client, then delete them.",
    "The per diem for Seattle covers meals and incidentals, hotels are booked through the travel desk.",
    "a",
]


@pytest.fixture(scope="module")
def onnx_settings(tmp_path_factory):
    return make_settings(tmp_path_factory.mktemp("onnx"), embedding_backend="onnx-int8")


@pytest.fixture(scope="module")
def onnx_embedder(onnx_settings):
    return build_embedder(engine_config(onnx_settings).embedding)  # the settings dispatch, as the engine does it


def test_vectors_are_close_to_fp32(onnx_embedder, embedder):
    assert isinstance(onnx_embedder, OnnxInt8Embedder)
    assert onnx_embedder.backend == "onnx-int8" and onnx_embedder.model_name == embedder.model_name
    assert onnx_embedder.dim == embedder.dim
    q8 = onnx_embedder.embed_documents(SAMPLES)
    fp32 = embedder.embed_documents(SAMPLES)
    assert q8.shape == fp32.shape and q8.dtype == np.float32
    assert np.allclose(np.linalg.norm(q8, axis=1), 1.0, atol=1e-4)
    cosines = (q8 * fp32).sum(axis=1)
    assert cosines.min() >= 0.99, cosines
    # the order of the batch does not change a text's vector (length-sorted batching)
    assert np.allclose(onnx_embedder.embed_documents(SAMPLES[::-1])[::-1], q8, atol=1e-5)
    # activations are quantized per batch, so a text alone differs slightly from the same text in a batch
    alone = onnx_embedder.embed_query(SAMPLES[0])
    assert float(alone @ fp32[0]) >= 0.99 and float(alone @ q8[0]) >= 0.99
    assert onnx_embedder.embed_documents([]).shape == (0, embedder.dim)


def test_export_is_cached(onnx_settings, onnx_embedder):
    exports = list((onnx_settings.cache_dir / "onnx").glob(f"*/{MODEL_FILE}"))
    assert len(exports) == 1
    before = exports[0].stat().st_mtime_ns
    again = OnnxInt8Embedder.from_config(engine_config(onnx_settings).embedding)
    assert exports[0].stat().st_mtime_ns == before  # loaded, not exported again
    assert np.allclose(again.embed_query("vpn"), onnx_embedder.embed_query("vpn"))


def test_backend_mismatch_is_refused(db, settings, engine, onnx_embedder, tmp_path):
    from rag_engine.engine import RagEngine

    (tmp_path / "vpn.md").write_text("# VPN\n\nRequest VPN access in the it-help channel.\n")
    onnx_engine = RagEngine(engine_config(settings), db=db, embedder=onnx_embedder, generator=None, reranker=None)
    report = onnx_engine.ingest([tmp_path], "team")
    assert report.chunks_written == 1
    hits = onnx_engine.search("how do I get vpn access", onnx_engine.scope_for(["team"]), k=1, mode="vector")
    assert hits and hits[0].source_uri.endswith("vpn.md")
    with pytest.raises(EmbedderMismatch, match="onnx-int8"):
        engine.search("how do I get vpn access", engine.scope_for(["team"]))  # fp32 queries against int8 documents
    with pytest.raises(EmbedderMismatch):
        engine.ingest([tmp_path], "team")
