"""Prometheus metrics: the one registry every process exposes on ``/metrics``.

Label values are kept to small fixed sets (statuses, stages, exception names)
so a misbehaving input can never blow up the number of time series.
"""

from __future__ import annotations

import re

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from rag_engine.values import Answer, AnswerStatus

# Our own registry (not prometheus-client's global one) so a library that
# registers metrics of its own cannot collide with ours or leak into /metrics.
REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

STAGES = ("retrieve", "queue", "generate", "total")
FEEDBACK_KINDS = ("up", "down", "correction")
# Retrieval takes milliseconds, CPU generation tens of seconds: cover both.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120)

QUESTIONS = Counter("ragbot_questions", "Questions answered, by platform and answer status.",
                    ["platform", "status"], registry=REGISTRY)
ANSWER_SECONDS = Histogram("ragbot_answer_seconds", "Time to answer a question, per stage.",
                           ["stage"], buckets=LATENCY_BUCKETS, registry=REGISTRY)
FALLBACKS = Counter("ragbot_fallbacks", "Answers given extractively because the generator failed.",
                    ["reason_kind"], registry=REGISTRY)
FEEDBACK = Counter("ragbot_feedback", "Feedback received (thumbs up/down, corrections).",
                   ["kind"], registry=REGISTRY)
JOBS = Counter("ragbot_jobs", "Background jobs (retraining, ingestion) by kind and final status.",
               ["kind", "status"], registry=REGISTRY)
ERRORS = Counter("ragbot_errors", "Unexpected errors, by where they happened.", ["where"], registry=REGISTRY)
REJECTED_REQUESTS = Counter("ragbot_rejected_requests", "Requests refused before reaching the bot (e.g. a bad "
                            "Slack signature), by platform and reason.", ["platform", "reason"], registry=REGISTRY)

_TOKEN = re.compile(r"[^a-z0-9_]+")


def observe_answer(platform: str, answer: Answer) -> None:
    """Count one answered question: its status, per-stage latencies and any fallback."""
    QUESTIONS.labels(platform=label_value(platform), status=_status(answer)).inc()
    for stage in STAGES:
        seconds = answer.timings.get(stage)
        if seconds is not None and seconds >= 0:
            ANSWER_SECONDS.labels(stage=stage).observe(seconds)
    if answer.status == AnswerStatus.FALLBACK:
        FALLBACKS.labels(reason_kind=reason_kind(answer.fallback_reason)).inc()


def observe_feedback(kind: str) -> None:
    if kind not in FEEDBACK_KINDS:
        raise ValueError(f"feedback kind must be one of {', '.join(FEEDBACK_KINDS)} (got {kind!r})")
    FEEDBACK.labels(kind=kind).inc()


def observe_job(kind: str, status: str) -> None:
    JOBS.labels(kind=label_value(kind), status=label_value(status)).inc()


def observe_error(where: str) -> None:
    ERRORS.labels(where=label_value(where)).inc()


def observe_rejected_request(platform: str, reason: str) -> None:
    REJECTED_REQUESTS.labels(platform=label_value(platform), reason=label_value(reason)).inc()


def render() -> tuple[bytes, str]:
    """The registry in the Prometheus text format, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def reason_kind(reason: str | None) -> str:
    """A short, bounded label for a fallback reason.

    The engine writes reasons as ``"<FallbackCode>: <detail>"`` (``"not_supported: ..."``): the
    part before the first colon names the kind; the rest (free text) is dropped.
    """
    if not reason:
        return "unknown"
    head = reason.split(":", 1)[0].strip()
    if not head or len(head) > 60:
        return "other"
    return label_value(head)


def label_value(value: str) -> str:
    """snake_case, at most 40 characters: callers' strings become safe label values."""
    cleaned = _TOKEN.sub("_", _snake(str(value))).strip("_")[:40]
    return cleaned or "unknown"


def _status(answer: Answer) -> str:
    status: AnswerStatus | str = answer.status  # a plain string from an older or foreign answer
    return status.value if isinstance(status, AnswerStatus) else label_value(str(status))


def _snake(value: str) -> str:
    # "TimeoutError" -> "timeout_error", "APIConnectionError" -> "api_connection_error"
    value = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", value)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", value).lower()
