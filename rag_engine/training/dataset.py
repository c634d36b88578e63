"""The training set: (question, passages as shown, answer) built from feedback.

Sources, strongest first when the same question appears more than once:

1. an admin's correction of an interaction,
2. anyone's correction that an admin approved (the latest one),
3. a curated example (imported Q&A history; passages retrieved now),
4. an interaction whose votes add up to 👍 (the answer as given).

**Negatives** (``train_negative_share`` of the training side, seeded): a
question shown passages retrieved for another question of the set (none of
them its own, none stating its answer), with the abstention sentence as the
target, so the model learns to say the documents do not say instead of
answering from unrelated text. They train only, never judge a candidate.

A correction awaiting review (or rejected) is no training data, and a 👎
without an approved correction is left out (both counted). An example is usable
only when *every* collection among its retrieved chunks and among those its
thread history drew on allows training, so an adapter never learns text from a
collection some channel may not see.

**Reviewed** examples are those a person vouched for: curated examples (an
operator imported them) and approved corrections. 👍 answers are not reviewed:
a vote says someone liked an answer, not that it is right. The held-out split,
which the promotion gate judges candidates by, holds reviewed examples only;
👍 examples always train. Within the reviewed ones the split is by a hash of
the normalized question, so it is stable as data grows and the same question
never lands on both sides.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from rag_engine.config import TrainingConfig
from rag_engine.eval.scores import normalize_answer
from rag_engine.generation.abstain import ABSTAIN_TEXT
from rag_engine.generation.ask_back import content_words
from rag_engine.generation.citations import passage_markers
from rag_engine.interactions import record_from_row
from rag_engine.store.database import Database
from rag_engine.store.training_examples import TrainingExampleRepo
from rag_engine.training import bootstrap
from rag_engine.values import AnswerStatus, SearchHit

Origin = Literal["admin_correction", "correction", "curated", "upvote", "negative"]
_PRIORITY: dict[str, int] = {"admin_correction": 4, "correction": 3, "curated": 2, "upvote": 1, "negative": 0}
# a person vouched for these answers: only they may judge a candidate adapter
REVIEWED_ORIGINS: frozenset[str] = frozenset({"admin_correction", "correction", "curated"})
_VOTED_STATUSES = {AnswerStatus.ANSWERED.value, AnswerStatus.FALLBACK.value}


def is_upvoted(row: Any) -> bool:
    """A rated interaction (``TrainingExampleRepo.rated_interactions``) whose logged answer users voted up."""
    return (row.score or 0) > 0 and row.status in _VOTED_STATUSES


def not_upvoted_reason(row: Any) -> str:
    """Why a rated interaction without an approved correction is no example, for the report. A vote cast on
    an answer-first reply's quoted text before the model's answer replaced it is not a vote on what was
    logged (the model's text and citations), so it counts for neither."""
    if (row.score or 0) < 0:
        return "downvoted"
    if row.stale_votes:
        return "voted before the model's answer replaced the quoted one"
    return "no positive feedback"


# Finds passages for a curated example: (question, allowed collection ids) -> hits.
Retrieve = Callable[[str, list[int]], list[SearchHit]]


@dataclass(frozen=True, slots=True)
class Passage:
    title: str
    heading_path: str
    text: str


@dataclass(frozen=True, slots=True)
class TrainingExample:
    question: str
    answer: str
    passages: tuple[Passage, ...]
    origin: Origin
    source_id: int  # interactions.id or curated_examples.id
    collection_ids: tuple[int, ...]

    @property
    def key(self) -> str:
        """Identity for de-duplication and the split: the normalized question."""
        return question_key(self.question)

    @property
    def reviewed(self) -> bool:
        """Curated or an approved correction: may be held out (see the module docstring)."""
        return self.origin in REVIEWED_ORIGINS

    def hits(self) -> list[SearchHit]:
        """The passages as hits, for the generator's prompt builder (marker ``[n]`` = passage n)."""
        return [
            SearchHit(chunk_id=0, document_id=0, collection_id=0, title=p.title, source_uri="",
                      heading_path=p.heading_path, text=p.text, score=0.0)
            for p in self.passages
        ]

    def to_json(self, split: str | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "question": self.question,
            "answer": self.answer,
            "passages": [{"title": p.title, "heading_path": p.heading_path, "text": p.text} for p in self.passages],
            "origin": self.origin,
            "source_id": self.source_id,
            "collection_ids": list(self.collection_ids),
        }
        if split is not None:
            data["split"] = split
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainingExample:
        return cls(
            question=data["question"], answer=data["answer"],
            passages=tuple(Passage(p.get("title", ""), p.get("heading_path", ""), p["text"])
                           for p in data.get("passages", [])),
            origin=data.get("origin", "curated"), source_id=int(data.get("source_id", 0)),
            collection_ids=tuple(data.get("collection_ids", [])),
        )


@dataclass(slots=True)
class TrainingSet:
    train: list[TrainingExample]
    heldout: list[TrainingExample]
    excluded: Counter[str] = field(default_factory=Counter)  # reason -> count
    snapshot: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.train) + len(self.heldout)


def question_key(question: str) -> str:
    return hashlib.sha256(normalize_answer(question).encode()).hexdigest()


def is_heldout(key: str, fraction: float) -> bool:
    return int(key[:8], 16) / 0x1_0000_0000 < fraction


def build_training_set(db: Database, config: TrainingConfig, *, retrieve: Retrieve | None = None,
                       shown_passages: int | None = None) -> TrainingSet:
    """Collect, filter, de-duplicate and split the examples feedback has produced so far.

    ``retrieve`` finds passages for curated examples; without it they are
    skipped (counted as ``curated: no retriever``). ``shown_passages`` (the
    generator's ``generation_passages``) keeps that many of them, so a curated
    answer's citation points at a passage the prompt really shows.
    """
    built_at = datetime.now(UTC)
    repo = TrainingExampleRepo(db)
    allowed = repo.collection_training_flags()
    excluded: Counter[str] = Counter()
    candidates = [*_from_interactions(repo, allowed, excluded),
                  *_from_curated(repo, allowed, retrieve, excluded, shown_passages)]
    chosen = _deduplicate(candidates, excluded)
    train, heldout = split(chosen, config.train_heldout_fraction)
    train += negative_examples(train, config.train_negative_share, config.train_seed)
    snapshot = {
        "built_at": built_at.isoformat(),
        "train": len(train),
        "heldout": len(heldout),
        "origins": dict(Counter(e.origin for e in [*train, *heldout])),
        "excluded": dict(excluded),
        "sha256": _digest(chosen),
        "heldout_fraction": config.train_heldout_fraction,
    }
    return TrainingSet(train=train, heldout=heldout, excluded=excluded, snapshot=snapshot)


def split(examples: Sequence[TrainingExample], fraction: float) -> tuple[list[TrainingExample], list[TrainingExample]]:
    """Deterministic train / held-out split by question hash; only reviewed examples are held out.

    With two or more examples and ``fraction > 0``, neither side is left empty
    when that is possible: the reviewed example with the lowest hash moves to
    held-out (or the held-out one with the highest to train), which depends only
    on the set itself. Without any reviewed example the held-out side stays empty.
    """
    ordered = sorted(examples, key=lambda e: e.key)
    heldout = [e for e in ordered if e.reviewed and is_heldout(e.key, fraction)]
    train = [e for e in ordered if not (e.reviewed and is_heldout(e.key, fraction))]
    if fraction > 0 and len(ordered) >= 2:
        reviewed_train = [e for e in train if e.reviewed]
        if not heldout and reviewed_train:
            heldout = [reviewed_train[0]]
            train = [e for e in train if e is not reviewed_train[0]]
        elif not train:
            train, heldout = [heldout[-1]], heldout[:-1]
    return train, heldout


def negative_examples(examples: Sequence[TrainingExample], share: float, seed: int) -> list[TrainingExample]:
    """About ``share`` of the result (positives + negatives) as negatives, each question used at most once.

    A question is paired with the passages of another example of ``examples``
    (the next one, in a seeded order, that is unrelated: no passage in common and
    at most half of the question's answer words in its passages), and the
    target is :data:`ABSTAIN_TEXT`. Deterministic for the same examples and seed.
    """
    positives = [e for e in examples if e.origin != "negative"]
    if share <= 0 or len(positives) < 2:
        return []
    want = round(len(positives) * share / (1 - share))
    order = sorted(positives, key=lambda e: e.key)
    random.Random(seed).shuffle(order)
    negatives: list[TrainingExample] = []
    for i, example in enumerate(order):
        if len(negatives) >= want:
            break
        donor = next((d for d in order[i + 1:] + order[:i] if _unrelated(example, d)), None)
        if donor is not None:
            negatives.append(TrainingExample(example.question, ABSTAIN_TEXT, donor.passages, "negative",
                                             example.source_id, donor.collection_ids))
    return negatives


_MARKER_RE = re.compile(r"\[\s*\d+(?:\s*,\s*\d+)*\s*\]")


def _unrelated(example: TrainingExample, donor: TrainingExample) -> bool:
    """Whether ``donor``'s passages can stand for "passages that do not answer" ``example``."""
    if donor.key == example.key or {p.text for p in donor.passages} & {p.text for p in example.passages}:
        return False
    answer = set(content_words(_MARKER_RE.sub("", example.answer)))
    shown = set(content_words(" ".join(p.text for p in donor.passages)))
    return not answer or len(answer & shown) <= len(answer) / 2


def write_jsonl(training_set: TrainingSet, path: Path) -> int:
    """Write both splits (with a ``split`` field) to ``path``; returns the number of lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for name, examples in (("train", training_set.train), ("heldout", training_set.heldout)):
            for example in examples:
                out.write(json.dumps(example.to_json(name), ensure_ascii=False) + "\n")
    return len(training_set)


def read_jsonl(path: Path) -> TrainingSet:
    train: list[TrainingExample] = []
    heldout: list[TrainingExample] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            data = json.loads(line)
            (heldout if data.get("split") == "heldout" else train).append(TrainingExample.from_json(data))
    return TrainingSet(train=train, heldout=heldout)


# -- sources ---------------------------------------------------------------------
_Dated = tuple[TrainingExample, datetime]  # an example and when its answer was given


def _from_interactions(repo: TrainingExampleRepo, allowed: dict[int, bool], excluded: Counter[str]) -> list[_Dated]:
    found: list[_Dated] = []
    rows, unapproved = repo.rated_interactions()
    for status, n in unapproved:  # never training data; counted for the report
        excluded[f"correction {'awaiting review' if status == 'pending' else status}"] += n
    for row in rows:
        record = record_from_row(row)
        if row.correction is not None:
            origin: Origin = "admin_correction" if row.is_admin else "correction"
            answer, when = row.correction, row.corrected_at
        elif is_upvoted(row):
            origin, answer, when = "upvote", record.answer, record.created_at
        else:
            excluded[not_upvoted_reason(row)] += 1
            continue
        collection_ids = sorted(record.retrieved_collection_ids)
        if not record.passages or not record.retrieved:
            excluded["no passages"] += 1
            continue
        if not all(allowed.get(cid, False) for cid in collection_ids):
            excluded["collection does not allow training"] += 1
            continue
        if not all(allowed.get(cid, False) for cid in record.history_collection_ids):
            excluded["thread history from a collection that does not allow training"] += 1
            continue
        passages = tuple(Passage(r.title, r.heading_path, text)
                         for r, text in zip(record.retrieved, record.passages, strict=False))
        answer = passage_markers(answer, record.citations)  # readers' [n] (also in corrections) -> prompt's
        found.append((TrainingExample(record.question, answer.strip(), passages, origin, record.id,
                                      tuple(collection_ids)), when))
    return found


def cite_best_passage(answer: str, passages: Sequence[str]) -> str:
    """A curated answer without ``[n]`` cites the passage sharing most of its content words (the first on a tie):
    trained on uncited targets, the model would unlearn citing. Unchanged when it has a marker or no passage
    shares a word."""
    if _MARKER_RE.search(answer) or not passages:
        return answer
    words = set(content_words(answer))
    overlaps = [len(words & set(content_words(text))) for text in passages]
    best = max(range(len(passages)), key=lambda i: (overlaps[i], -i))
    return f"{answer} [{best + 1}]" if overlaps[best] else answer


def _from_curated(repo: TrainingExampleRepo, allowed: dict[int, bool], retrieve: Retrieve | None,
                  excluded: Counter[str], shown_passages: int | None = None) -> list[_Dated]:
    rows = repo.curated()
    if rows and retrieve is None:
        excluded["curated: no retriever"] += len(rows)
        return []
    trainable = sorted(cid for cid, ok in allowed.items() if ok)
    found: list[_Dated] = []
    for row in rows:
        if row.collection_id is not None and not allowed.get(row.collection_id, False):
            excluded["collection does not allow training"] += 1
            continue
        scope = [row.collection_id] if row.collection_id is not None else trainable
        hits = retrieve(row.question, scope) if scope else []  # type: ignore[misc]
        hits = [h for h in hits if allowed.get(h.collection_id, False)][:shown_passages or None]
        if not hits:
            excluded["no passages"] += 1
            continue
        answer = row.answer.strip()
        if row.source == bootstrap.SOURCE:  # its [1] means "the passage I came from": renumber it, or drop it
            cited = bootstrap.cite_retrieved(answer, [h.text for h in hits])
            if cited is None:
                excluded["bootstrap: own passage not retrieved"] += 1
                continue
            answer = cited
        else:
            answer = cite_best_passage(answer, [h.text for h in hits])
        passages = tuple(Passage(h.title, h.heading_path, h.text) for h in hits)
        collection_ids = tuple(sorted({h.collection_id for h in hits}))
        found.append((TrainingExample(row.question, answer, passages, "curated", row.id, collection_ids),
                      row.created_at))
    return found


def _deduplicate(candidates: Iterable[_Dated], excluded: Counter[str]) -> list[TrainingExample]:
    """One example per normalized question: strongest origin, then the newest."""
    best: dict[str, _Dated] = {}
    for example, when in candidates:
        if not example.answer:
            excluded["empty answer"] += 1
            continue
        current = best.get(example.key)
        if current is None:
            best[example.key] = (example, when)
            continue
        excluded["duplicate question"] += 1
        if (_PRIORITY[example.origin], when) > (_PRIORITY[current[0].origin], current[1]):
            best[example.key] = (example, when)
    return [example for example, _ in best.values()]


def _digest(examples: Sequence[TrainingExample]) -> str:
    h = hashlib.sha256()
    for example in sorted(examples, key=lambda e: e.key):
        h.update(json.dumps(example.to_json(), sort_keys=True, ensure_ascii=False).encode())
    return h.hexdigest()
