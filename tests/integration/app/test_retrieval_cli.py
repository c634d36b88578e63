"""``ragbot retrieval`` and the report's retrieval table, on the scratch database."""

from __future__ import annotations

import numpy as np
from typer.testing import CliRunner

from rag_engine import jobs
from rag_engine.query_transform import QueryAdapter
from rag_engine.store import Store
from rag_engine.training import retrieval_registry as registry


def _version(db, metrics=None) -> str:
    version = registry.next_version(db)
    registry.register(db, version=version, adapter=QueryAdapter.identity(384), embedding_model="default",
                      data_snapshot={"train": 5, "heldout": 2}, metrics=metrics or {}, status="candidate")
    return version


def test_retrieval_cli(db, scratch_dir, tmp_path):
    from app.cli import app

    q1 = _version(db, {"candidate": {"ndcg10": 0.61, "hit5": 0.8, "hit1": 0.5}, "baseline": {"ndcg10": 0.55},
                       "reason": "nDCG@10 <raw> 0.550 -> 0.610", "vector_weights": {"987654": 0.35}})
    q2 = _version(db)
    env = {"RAGBOT_DATA_DIR": str(scratch_dir), "COLUMNS": "200"}
    runner = CliRunner()

    def ragbot(*args):
        return runner.invoke(app, list(args), env=env)

    try:
        out = ragbot("retrieval", "activate", q1)
        assert out.exit_code == 0 and f"{q1} is active (was raw query embeddings)" in out.output
        assert f"{q2} is active (was {q1})" in ragbot("retrieval", "activate", q2).output
        listing = ragbot("retrieval", "list")
        assert listing.exit_code == 0 and q1 in listing.output and "0.610" in listing.output
        assert "#987654 0.35" in listing.output  # the fusion weight it learned (no such collection: its id)
        assert f"now {q1}" in ragbot("retrieval", "rollback").output
        assert "now raw query embeddings" in ragbot("retrieval", "rollback").output
        none_left = ragbot("retrieval", "rollback")
        assert none_left.exit_code == 1 and "nothing to roll back" in none_left.output
        missing = ragbot("retrieval", "activate", "q999")
        assert missing.exit_code == 1 and "no retrieval version 'q999'" in missing.output
        nothing = ragbot("retrieval", "train")
        assert nothing.exit_code == 1 and "no retrieval training pairs" in nothing.output
        queued = ragbot("retrieval", "train", "--queue")
        job = jobs.open_jobs(db, kinds=[jobs.RETRIEVAL_RETRAIN])
        assert queued.exit_code == 0 and len(job) == 1 and f"Queued retrieval retrain job {job[0].id}" in queued.output
        assert job[0].requested_by.startswith("cli:")
        again = ragbot("retrieval", "train", "--queue")
        assert f"already queued or running: job {job[0].id}" in again.output
        assert ragbot("retrieval", "train", "--queue", "--no-activate").exit_code == 2
        report = ragbot("report", "--out", str(tmp_path / "r.html"))
        page = (tmp_path / "r.html").read_text()
        assert report.exit_code == 0 and "Retrieval versions" in page and q1 in page and "0.610" in page
        assert "&lt;raw&gt;" in page and "#987654 0.35" in page  # escaped; the learned weight
        actions = [(e.action, e.ok) for e in Store(db).audit.recent()]
        assert ("retrieval", True) in actions and ("retrieval", False) in actions
    finally:
        registry.deactivate(db)
    assert np.array_equal(registry.load(db, q1).matrix, np.eye(384, dtype=np.float32))
