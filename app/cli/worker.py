"""``ragbot worker``: run queued jobs (retraining, source syncs) and queue the syncs of scheduled sources."""

from __future__ import annotations

import signal
from types import FrameType
from typing import Annotated

import typer

from app.cli.common import console, friendly_errors, settings, setup_logging, stopped_while_starting
from app.cli.lora import open_db
from app.worker import Worker


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)


@friendly_errors
def worker(
    once: Annotated[bool, typer.Option("--once", help="Run at most one job, then exit.")] = False,
    idle_s: Annotated[float, typer.Option(help="Seconds between polls of an empty queue.")] = 2.0,
    progress: Annotated[bool, typer.Option(help="Show a training progress bar.")] = True,
) -> None:
    """Claim and run jobs until stopped (Ctrl-C / SIGTERM checkpoint a running retrain and requeue it)."""
    s = settings()
    setup_logging(s)
    from bot.lifecycle import sigterm_interrupts  # lazy: pulls prometheus_client

    try:
        with sigterm_interrupts(), open_db() as db:  # the job loop installs its own handlers (below)
            _work(Worker(s, db, show_progress=progress), once, idle_s)
    except KeyboardInterrupt:  # stopped while opening the database
        raise stopped_while_starting(s) from None


def _work(w: Worker, once: bool, idle_s: float) -> None:
    def stop(signum: int, _frame: FrameType | None) -> None:
        console.print(f"stopping ({signal.Signals(signum).name}); a running job checkpoints and is re-queued")
        w.stop()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        _loop(w, once, idle_s)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _loop(w: Worker, once: bool, idle_s: float) -> None:
    if once:
        run = w.run_once()
        if run is None:
            console.print("no queued jobs")
            return
        console.print(f"job {run.job_id} ({run.kind}): {run.status}"
                      + (f" - {run.result.get('decision')} {run.result.get('version') or ''}: "
                         f"{run.result.get('reason')}" if run.result else "")
                      + (f" - {run.error}" if run.error else ""), markup=False)
        if run.status == "failed":
            raise typer.Exit(1)
        return
    console.print(f"worker {w.worker_id} waiting for jobs (Ctrl-C to stop)")
    w.run_forever(idle_s=idle_s)
