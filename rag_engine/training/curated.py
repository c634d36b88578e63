"""Importing existing Q&A history (support FAQ, past tickets) as curated examples.

Each JSONL line is ``{"question": ..., "answer": ..., "source"?: ..., "collection"?: ...}``.
Bad lines are reported with their line number and skipped; good lines are
stored; a pair already imported (same question, answer and collection) is
counted as a duplicate, so importing the same file twice is harmless.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rag_engine.eval.scores import normalize_answer
from rag_engine.store.database import Database
from rag_engine.store.training_examples import TrainingExampleRepo

MAX_QUESTION_CHARS = 4000
MAX_ANSWER_CHARS = 8000


@dataclass(slots=True)
class ImportReport:
    added: int = 0
    duplicates: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line number, message)


def import_jsonl(db: Database, path: Path, *, collection: str | None = None) -> ImportReport:
    """Import a JSONL file; ``collection`` is the default for lines that name none."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not UTF-8 text: {exc}") from exc
    return import_lines(db, lines, collection=collection)


def import_lines(db: Database, lines: Iterable[str], *, collection: str | None = None) -> ImportReport:
    report = ImportReport()
    rows: list[dict[str, object]] = []
    repo = TrainingExampleRepo(db)
    known = repo.collection_ids()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = _parse(line, collection, known)
        except ValueError as exc:
            report.errors.append((number, str(exc)))
            continue
        rows.append(row)
    if rows:
        report.added, report.duplicates = repo.add_curated(rows)
    return report


def _parse(line: str, default_collection: str | None, known: dict[str, int]) -> dict[str, object]:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object with 'question' and 'answer'")
    question = _required_str(data, "question", MAX_QUESTION_CHARS)
    answer = _required_str(data, "answer", MAX_ANSWER_CHARS)
    source = data.get("source")
    if source is not None and not isinstance(source, str):
        raise ValueError("'source' must be a string")
    collection = data.get("collection", default_collection)
    collection_id = None
    if collection is not None:
        if not isinstance(collection, str) or collection not in known:
            raise ValueError(f"no collection named {collection!r} (create or ingest it first)")
        collection_id = known[collection]
    digest = hashlib.sha256(
        "\n".join([normalize_answer(question), normalize_answer(answer), str(collection_id)]).encode()
    ).hexdigest()
    return {"question": question.strip(), "answer": answer.strip(), "source": source,
            "collection_id": collection_id, "content_hash": digest}


def _required_str(data: dict[str, object], name: str, limit: int) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"'{name}' is missing or empty")
    if len(value) > limit:
        raise ValueError(f"'{name}' is too long ({len(value)} characters, at most {limit})")
    return value
