"""The Postgres job queue: singleton retrains, SKIP LOCKED claims, heartbeats, stale re-queue."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from sqlalchemy import text

from rag_engine import jobs


def _age_heartbeat(db, job_id: int, seconds: int) -> None:
    with db.begin() as conn:
        conn.execute(text("UPDATE jobs SET heartbeat_at = now() - make_interval(secs => :s) WHERE id = :id"),
                     {"s": seconds, "id": job_id})


def test_second_retrain_request_returns_the_open_job(db):
    first = jobs.enqueue(db, jobs.RETRAIN, requested_by="a")
    second = jobs.enqueue(db, jobs.RETRAIN, requested_by="b")
    assert first.created and not second.created and second.job_id == first.job_id
    claimed = jobs.claim(db, "w1")
    assert claimed.id == first.job_id
    running = jobs.enqueue(db, jobs.RETRAIN, requested_by="c")  # running counts as open too
    assert not running.created and running.job_id == first.job_id
    jobs.finish(db, first.job_id, "w1", {"ok": True})
    after = jobs.enqueue(db, jobs.RETRAIN, requested_by="d")
    assert after.created and after.job_id != first.job_id


def test_concurrent_retrain_requests_create_one_job(db):
    results: list[jobs.Enqueued] = []
    barrier = threading.Barrier(6)

    def request() -> None:
        barrier.wait()
        results.append(jobs.enqueue(db, jobs.RETRAIN, requested_by="x"))

    threads = [threading.Thread(target=request) for _ in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len({r.job_id for r in results}) == 1 and sum(r.created for r in results) == 1


def test_concurrent_claims_never_hand_out_a_job_twice(db):
    ids = [jobs.enqueue(db, "echo", {"n": i}).job_id for i in range(40)]
    claimed: list[tuple[str, int]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(4)

    def worker(name: str) -> None:
        barrier.wait()
        while (job := jobs.claim(db, name, kinds=["echo"])) is not None:
            with lock:
                claimed.append((name, job.id))
            jobs.finish(db, job.id, name, {"by": name})

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    counts = Counter(job_id for _, job_id in claimed)
    assert sorted(counts) == ids and set(counts.values()) == {1}
    assert all(jobs.get(db, i).status == "done" for i in ids)


def test_claim_respects_kinds_and_order(db):
    a = jobs.enqueue(db, "alpha").job_id
    b = jobs.enqueue(db, "beta").job_id
    assert jobs.claim(db, "w", kinds=["beta"]).id == b
    job = jobs.claim(db, "w")
    assert job.id == a and job.status == "running" and job.attempts == 1 and job.worker_id == "w"
    assert jobs.claim(db, "w") is None


def test_stale_job_is_requeued_and_old_owner_cannot_touch_it(db):
    job_id = jobs.enqueue(db, "echo").job_id
    jobs.claim(db, "dead")
    assert jobs.requeue_stale(db, 60) == []  # fresh heartbeat: left alone
    _age_heartbeat(db, job_id, 120)
    assert jobs.requeue_stale(db, 60) == [job_id]
    job = jobs.get(db, job_id)
    assert job.status == "queued" and job.worker_id is None and "dead" in job.error
    taken = jobs.claim(db, "alive")
    assert taken.id == job_id and taken.attempts == 2
    with pytest.raises(jobs.JobLost):
        jobs.heartbeat(db, job_id, "dead")
    with pytest.raises(jobs.JobLost):
        jobs.finish(db, job_id, "dead", {"stale": True})
    jobs.heartbeat(db, job_id, "alive")
    jobs.finish(db, job_id, "alive", {"ok": 1})
    assert jobs.get(db, job_id).result == {"ok": 1}


def test_a_job_that_keeps_killing_workers_fails_after_max_attempts(db):
    job_id = jobs.enqueue(db, "echo").job_id
    for attempt in range(jobs.DEFAULT_MAX_ATTEMPTS):
        assert jobs.claim(db, f"w{attempt}").id == job_id
        _age_heartbeat(db, job_id, 120)
        requeued = jobs.requeue_stale(db, 60)
    assert requeued == []
    job = jobs.get(db, job_id)
    assert job.status == "failed" and "gave up after 3 attempts" in job.error


def test_release_and_fail(db):
    a = jobs.enqueue(db, "echo").job_id
    jobs.claim(db, "w")
    jobs.release(db, a, "w", "shutting down")
    assert jobs.get(db, a).status == "queued"
    jobs.claim(db, "w")
    jobs.fail(db, a, "w", "boom")
    job = jobs.get(db, a)
    assert job.status == "failed" and job.error == "boom" and job.finished_at is not None
    assert [j.id for j in jobs.recent(db)] == [a] and jobs.open_jobs(db) == []
