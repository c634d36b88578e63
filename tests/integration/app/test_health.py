"""/healthz and /metrics: a real HTTP server on a free port, a real database.

The database-down test stops a DEDICATED embedded Postgres (stopping the shared
scratch server would break every other test).
"""

from __future__ import annotations

import socket
import threading

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.configs import store_config
from app.health import HealthServer
from bot import metrics
from rag_engine.store.database import Database
from rag_engine.values import Answer, AnswerStatus
from tests.conftest import make_settings


def get(server: HealthServer, path: str) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{server.port}{path}", timeout=30)


def sample(name: str, **labels: str) -> float:
    """Current value of one sample, read back through the /metrics text format."""
    payload, _ = metrics.render()
    for family in text_string_to_metric_families(payload.decode()):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


@pytest.fixture()
def own_db(tmp_path):
    db = Database.from_config(store_config(make_settings(tmp_path)))
    yield db
    db.dispose()  # pgserver stops the server when the test session ends


def test_healthz_follows_the_database_down_and_back_up(own_db):
    model = {"ok": True, "loaded": True, "name": "tiny-llama", "adapter_version": "v7"}
    with HealthServer(port=0, db=own_db, model_status=lambda: model) as server:
        assert server.port > 0
        up = get(server, "/healthz")
        assert up.status_code == 200
        assert up.json() == {"status": "ok", "database": True, "model": model, "adapter_version": "v7"}

        own_db.embedded.stop()
        down = get(server, "/healthz")
        assert down.status_code == 503
        assert down.json()["database"] is False
        assert down.json()["status"] == "unavailable"
        assert get(server, "/metrics").status_code == 200  # metrics keep working meanwhile

        own_db.embedded.start()
        back = get(server, "/healthz")
        assert back.status_code == 200
        assert back.json()["database"] is True


def test_a_model_that_failed_to_load_reports_degraded_not_down(db):
    def broken() -> dict:
        raise RuntimeError("CUDA out of memory")

    with HealthServer(port=0, db=db, model_status=lambda: {"ok": False, "error": "no weights"}) as server:
        body = get(server, "/healthz")
        assert (body.status_code, body.json()["status"], body.json()["database"]) == (200, "degraded", True)
    with HealthServer(port=0, db=db, model_status=broken) as server:
        body = get(server, "/healthz").json()
        assert body["status"] == "degraded"
        assert body["model"] == {"ok": False, "error": "RuntimeError"}


def test_a_hung_database_reports_unavailable_instead_of_hanging(tmp_path):
    """A server that accepts the TCP connection and never answers: connect_timeout is long
    here, so only the health check's own deadline can cut the ping short."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    release = threading.Event()

    def swallow() -> None:
        conn, _ = listener.accept()
        accepted.append(conn)
        release.wait(30)
        conn.close()

    threading.Thread(target=swallow, daemon=True).start()
    port = listener.getsockname()[1]
    settings = make_settings(tmp_path, db_connect_timeout_s=30.0)
    db = Database(f"postgresql+psycopg://ragbot:pw@127.0.0.1:{port}/ragbot", store_config(settings))
    server = HealthServer(port=0, db=db, ping_timeout_s=0.5)
    try:
        server.start()
        response = get(server, "/healthz")
        assert response.status_code == 503
        assert response.json()["database"] is False
        assert server._ping_in_flight is not None and not server._ping_in_flight.done()  # still stuck
        # a second check while the first ping hangs does not pile up another connection
        assert get(server, "/healthz").status_code == 503
        assert len(accepted) == 1
    finally:
        release.set()
        server.stop()
        listener.close()
        db.dispose()


def test_unknown_paths_are_404_and_stop_frees_the_port(db):
    server = HealthServer(port=0, db=db)
    server.start()
    port = server.port
    assert get(server, "/nope").status_code == 404
    server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.port


def test_metrics_count_a_real_answer(engine, tmp_path):
    doc = tmp_path / "leave.md"
    doc.write_text("# Parental leave\n\nEmployees get sixteen weeks of paid parental leave.\n")
    engine.ingest([doc], "ops-health")
    platform = "health_test"
    before_q = sample("ragbot_questions_total", platform=platform, status="answered")
    before_stage = {s: sample("ragbot_answer_seconds_count", stage=s) for s in metrics.STAGES}

    answer = engine.answer("How many weeks of parental leave do employees get?", engine.scope_for(["ops-health"]))
    assert answer.status == AnswerStatus.ANSWERED
    metrics.observe_answer(platform, answer)

    with HealthServer(port=0, db=engine.db) as server:
        response = get(server, "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert f'ragbot_questions_total{{platform="{platform}",status="answered"}} {before_q + 1}' in text
    for stage in metrics.STAGES:
        assert sample("ragbot_answer_seconds_count", stage=stage) == before_stage[stage] + 1
    assert "process_resident_memory_bytes" in text


def test_fallbacks_feedback_jobs_and_errors_are_counted():
    answer = Answer(text="x", status=AnswerStatus.FALLBACK, fallback_reason="TimeoutError: model took too long",
                    timings={"retrieve": 0.01, "total": 2.0})
    before = sample("ragbot_fallbacks_total", reason_kind="timeout_error")
    before_generate = sample("ragbot_answer_seconds_count", stage="generate")
    metrics.observe_answer("health_test", answer)
    assert sample("ragbot_fallbacks_total", reason_kind="timeout_error") == before + 1
    assert sample("ragbot_answer_seconds_count", stage="generate") == before_generate  # no such stage timed

    for kind in ("up", "down", "correction"):
        b = sample("ragbot_feedback_total", kind=kind)
        metrics.observe_feedback(kind)
        assert sample("ragbot_feedback_total", kind=kind) == b + 1
    with pytest.raises(ValueError, match="up, down, correction"):
        metrics.observe_feedback("meh")

    b = sample("ragbot_jobs_total", kind="retrain", status="succeeded")
    metrics.observe_job("retrain", "succeeded")
    assert sample("ragbot_jobs_total", kind="retrain", status="succeeded") == b + 1

    b = sample("ragbot_errors_total", where="slack_handler")
    metrics.observe_error("slack handler")
    assert sample("ragbot_errors_total", where="slack_handler") == b + 1


@pytest.mark.parametrize(("reason", "kind"), [
    ("TimeoutError: took 60s", "timeout_error"),
    ("generator unavailable: OSError: no weights", "generator_unavailable"),
    ("APIConnectionError: refused", "api_connection_error"),
    (None, "unknown"),
    ("x" * 500, "other"),  # free text without a kind never becomes a label of its own
])
def test_fallback_reasons_become_short_bounded_labels(reason, kind):
    assert metrics.reason_kind(reason) == kind
