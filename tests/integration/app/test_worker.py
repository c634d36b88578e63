"""The worker: one job per claim across workers, death and re-queue, failure, shutdown, lost jobs."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import text

from app.worker import JobContext, Worker
from rag_engine import jobs
from rag_engine.training.trainer import TrainingInterrupted
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parents[3]


def _settings(scratch_dir, **overrides):
    return make_settings(scratch_dir, **{"worker_heartbeat_s": 0.1, "worker_stale_after_s": 60, **overrides})


def _wait_for(condition, attempts: int = 300, pause: float = 0.1):
    """Poll until ``condition()`` is truthy (bounded), returning its value."""
    for _ in range(attempts):
        value = condition()
        if value:
            return value
        time.sleep(pause)
    raise AssertionError("condition never became true")


def test_two_workers_never_run_the_same_job(db, scratch_dir):
    ids = [jobs.enqueue(db, "echo", {"n": i}).job_id for i in range(20)]
    ran: list[tuple[str, int]] = []
    lock = threading.Lock()

    def echo(ctx: JobContext) -> dict:
        with lock:
            ran.append((ctx.worker.worker_id, ctx.job.id))
        return {"n": ctx.job.payload["n"]}

    workers = [Worker(_settings(scratch_dir), db, worker_id=f"w{i}", handlers={"echo": echo}) for i in range(2)]
    barrier = threading.Barrier(2)

    def drain(worker: Worker) -> None:
        barrier.wait()
        while worker.run_once() is not None:
            pass

    threads = [threading.Thread(target=drain, args=(w,)) for w in workers]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert Counter(job_id for _, job_id in ran) == Counter(ids)  # each exactly once
    for i, job_id in enumerate(ids):
        job = jobs.get(db, job_id)
        assert job.status == "done" and job.result == {"n": i} and job.attempts == 1


_DOOMED = textwrap.dedent("""
    import sys, time
    from app.configs import store_config
    from app.settings import Settings
    from app.worker import Worker
    from rag_engine.store.database import Database

    settings = Settings(_env_file=None, database_url=sys.argv[1], data_dir=sys.argv[2], worker_heartbeat_s=0.1)

    def hang(ctx):
        print("running", ctx.job.id, flush=True)
        time.sleep(600)

    Worker(settings, Database.from_config(store_config(settings)), worker_id="doomed",
           handlers={"echo": hang}).run_once()
""")


def test_job_of_a_killed_worker_is_picked_up_by_another(db, scratch_dir, tmp_path):
    job_id = jobs.enqueue(db, "echo", {"n": 7}).job_id
    proc = subprocess.Popen([sys.executable, "-c", _DOOMED, db.url, str(tmp_path)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.split() == ["running", str(job_id)], proc.stderr.read()
        first_beat = jobs.get(db, job_id).heartbeat_at
        _wait_for(lambda: jobs.get(db, job_id).heartbeat_at > first_beat)  # it is alive and heartbeating
    finally:
        proc.kill()  # SIGKILL: no cleanup, no goodbye
        proc.wait()
    job = jobs.get(db, job_id)
    assert (job.status, job.worker_id) == ("running", "doomed")

    rescuer = Worker(_settings(scratch_dir, worker_stale_after_s=0.5), db, worker_id="rescuer",
                     handlers={"echo": lambda ctx: {"n": ctx.job.payload["n"], "by": ctx.worker.worker_id}})
    run = _wait_for(rescuer.run_once)
    assert (run.job_id, run.status, run.result) == (job_id, "done", {"n": 7, "by": "rescuer"})
    job = jobs.get(db, job_id)
    assert job.status == "done" and job.attempts == 2 and job.worker_id == "rescuer"


def test_a_failing_job_is_recorded_and_the_worker_carries_on(db, scratch_dir):
    bad = jobs.enqueue(db, "echo", {"fail": True}).job_id
    good = jobs.enqueue(db, "echo", {"fail": False}).job_id

    def handler(ctx: JobContext) -> dict:
        if ctx.job.payload["fail"]:
            raise RuntimeError("disk full")
        return {"ok": True}

    worker = Worker(_settings(scratch_dir), db, handlers={"echo": handler})
    first, second = worker.run_once(), worker.run_once()
    assert (first.job_id, first.status, first.error) == (bad, "failed", "RuntimeError: disk full")
    assert (second.job_id, second.status) == (good, "done")
    assert jobs.get(db, bad).error == "RuntimeError: disk full" and worker.run_once() is None


def test_shutdown_mid_training_puts_the_job_back(db, scratch_dir, tmp_path):
    job_id = jobs.enqueue(db, jobs.RETRAIN).job_id

    def interrupted(ctx: JobContext) -> dict:
        ctx.worker.stop()  # SIGTERM arrives
        assert ctx.should_stop()
        raise TrainingInterrupted(3, tmp_path / "ckpt")

    worker = Worker(_settings(scratch_dir), db, handlers={jobs.RETRAIN: interrupted})
    run = worker.run_once()
    assert run.status == "requeued" and "step 3" in run.error
    job = jobs.get(db, job_id)
    assert job.status == "queued" and job.worker_id is None
    assert jobs.enqueue(db, jobs.RETRAIN).job_id == job_id  # still the one open retrain


def test_a_worker_that_lost_its_job_does_not_record_an_outcome(db, scratch_dir):
    job_id = jobs.enqueue(db, "echo").job_id

    def slow(ctx: JobContext) -> dict:
        # meanwhile the job is presumed dead and another worker takes it
        with ctx.db.begin() as conn:
            conn.execute(text("UPDATE jobs SET heartbeat_at = now() - interval '1 hour' WHERE id = :id"),
                         {"id": ctx.job.id})
        assert jobs.requeue_stale(ctx.db, 60) == [ctx.job.id]
        assert jobs.claim(ctx.db, "thief").id == ctx.job.id
        _wait_for(ctx.should_stop)  # the heartbeat notices
        return {"by": "loser"}

    run = Worker(_settings(scratch_dir), db, worker_id="loser", handlers={"echo": slow}).run_once()
    assert run.status == "lost"
    job = jobs.get(db, job_id)
    assert (job.status, job.worker_id, job.result) == ("running", "thief", None)


def test_a_heartbeat_after_the_outcome_is_recorded_is_not_a_lost_job(db, scratch_dir, monkeypatch, caplog):
    """The heartbeat stops only after the outcome is written: a beat in between finds the job done, not stolen."""
    job_id = jobs.enqueue(db, "echo").job_id
    finish = jobs.finish

    def finish_then_linger(*args: object) -> None:
        finish(*args)
        time.sleep(0.5)  # heartbeats every 0.1 s: several beat against the finished job

    monkeypatch.setattr(jobs, "finish", finish_then_linger)
    worker = Worker(_settings(scratch_dir), db, handlers={"echo": lambda ctx: {"ok": True}})
    run = worker.run_once()
    assert (run.job_id, run.status) == (job_id, "done") and jobs.get(db, job_id).status == "done"
    assert not worker.lost.is_set()
    assert "no longer owned" not in caplog.text


def test_worker_command_runs_one_job(db, scratch_dir):
    import signal

    from typer.testing import CliRunner

    from app.cli import app

    env = {"RAGBOT_DATA_DIR": str(scratch_dir), "RAGBOT_GENERATOR_BACKEND": "extractive"}
    before = signal.getsignal(signal.SIGINT)
    idle = CliRunner().invoke(app, ["worker", "--once"], env=env)
    assert idle.exit_code == 0 and "no queued jobs" in idle.output
    job_id = jobs.enqueue(db, jobs.RETRAIN, requested_by="cli:test").job_id
    ran = CliRunner().invoke(app, ["worker", "--once"], env=env)
    # the extractive backend cannot be retrained: the job finishes as skipped, with the reason
    assert ran.exit_code == 0 and f"job {job_id} (retrain): done - skipped" in ran.output
    assert jobs.get(db, job_id).result["decision"] == "skipped"
    assert signal.getsignal(signal.SIGINT) is before  # the command restores the handlers
