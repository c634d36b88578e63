"""Loading a data set in the BEIR layout.

``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl`` (``_id``,
``text``) and ``qrels/<split>.tsv`` (``query-id``, ``corpus-id``, ``score``,
with a header line). Bad lines are reported with their file and line number.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag_engine.eval.jsonl import read_jsonl
from rag_engine.values import Record

SOURCE_PREFIX = "beir:"  # documents' source_uri is "beir:<corpus _id>"


class BeirFormatError(ValueError):
    """The directory is not a readable BEIR data set."""


@dataclass(slots=True)
class BeirDataset:
    name: str
    root: Path
    corpus: dict[str, tuple[str, str]]  # _id -> (title, text)
    queries: dict[str, str]  # only the queries that have judgments
    qrels: dict[str, dict[str, int]]  # query id -> {corpus id: grade}
    skipped_queries: list[str] = field(default_factory=list)  # judged in qrels but missing from queries.jsonl

    def records(self) -> Iterator[Record]:
        for doc_id, (title, text) in self.corpus.items():
            yield Record(source_uri=source_uri(doc_id), title=title, text=text)


def source_uri(doc_id: str) -> str:
    return f"{SOURCE_PREFIX}{doc_id}"


def doc_id_of(uri: str) -> str:
    return uri[len(SOURCE_PREFIX):] if uri.startswith(SOURCE_PREFIX) else uri


def load_beir(root: Path | str, split: str = "test", *, max_queries: int | None = None) -> BeirDataset:
    root = Path(root)
    for needed in ("corpus.jsonl", "queries.jsonl", f"qrels/{split}.tsv"):
        if not (root / needed).is_file():
            raise BeirFormatError(f"{root} is not a BEIR data set: {needed} is missing")
    corpus: dict[str, tuple[str, str]] = {}
    for n, obj in _jsonl(root / "corpus.jsonl"):
        if "_id" not in obj or "text" not in obj:
            raise BeirFormatError(f"corpus.jsonl line {n}: needs _id and text")
        corpus[str(obj["_id"])] = (str(obj.get("title") or ""), str(obj["text"]))
    all_queries: dict[str, str] = {}
    for n, obj in _jsonl(root / "queries.jsonl"):
        if "_id" not in obj or "text" not in obj:
            raise BeirFormatError(f"queries.jsonl line {n}: needs _id and text")
        all_queries[str(obj["_id"])] = str(obj["text"])
    qrels = _qrels(root / "qrels" / f"{split}.tsv")
    judged = [q for q in qrels if q in all_queries]
    if max_queries:
        judged = judged[:max_queries]
    if not judged:
        raise BeirFormatError(f"no query of qrels/{split}.tsv is in queries.jsonl")
    return BeirDataset(
        name=root.name, root=root, corpus=corpus, queries={q: all_queries[q] for q in judged},
        qrels={q: qrels[q] for q in judged}, skipped_queries=[q for q in qrels if q not in all_queries],
    )


def _jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    for n, obj in read_jsonl(path, BeirFormatError):
        if not isinstance(obj, dict):
            raise BeirFormatError(f"{path.name} line {n}: expected an object")
        yield n, obj


def _qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        rows = csv.reader(fh, delimiter="\t")
        header = next(rows, None)
        if header is None:
            raise BeirFormatError(f"{path.name} is empty")
        for n, row in enumerate(rows, 2):
            if not row:
                continue
            if len(row) < 3:
                raise BeirFormatError(f"{path.name} line {n}: expected query-id, corpus-id, score")
            try:
                grade = int(float(row[2]))
            except ValueError:
                raise BeirFormatError(f"{path.name} line {n}: score {row[2]!r} is not a number") from None
            qrels.setdefault(row[0], {})[row[1]] = grade
    return qrels
