"""Training pairs from the ingested documents themselves: a tuned adapter before any feedback.

Three kinds of question are read off the chunks of collections that allow
training (never any other collection):

- ``heading``: a section heading becomes a question ("How to X" -> "How do I X?",
  a heading that is a question stays one, otherwise "What does <title> say about
  <heading>?"), answered by the first one or two sentences of that section;
- ``faq``: a sentence that ends with "?" (or starts with "Q:") followed by its
  answer, the next one or two sentences that are not questions ("A:" removed);
- ``definition``: a sentence "X is a/an/the ...", "X are the ...", "X means ..."
  or "X refers to ..." gives "What is X?" / "What does X mean?", answered by that
  sentence (and the next one when it goes on about X with "It"/"This"/"They").

Answers cite their passage the way the generator is trained to cite: ``[n]`` at
the end of the answer, before its final full stop (``dataset``'s targets, and
the prompt's rules). The curated examples the pairs are stored as get their
passages retrieved when the training set is built, so the stored answer cites
``[1]`` meaning "the passage the answer was drawn from", and
:func:`cite_retrieved` renumbers it to that passage's place among the retrieved
ones (or drops the example when none of them holds the answer).

**Support rule** (a pair is kept only when both hold):

1. every answer sentence occurs verbatim (whitespace aside) in the passage, and
2. the question's topic (the heading, the FAQ question, the defined term)
   shares a content word with the answer: a word of 3+ letters that is not a
   stop word, compared on its first 5 letters (so "reviews" meets "review").

Pairs are de-duplicated by normalized question (the first one wins), capped per
document and in total (documents take turns, so a small cap still covers many),
and come out in a fixed order: the same chunks always give the same pairs.

No "not in the documents" negatives here: the training set (``dataset``) adds
them to every source's pairs (``train_negative_share``).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from rag_engine.chunking import split_sentences
from rag_engine.eval.scores import normalize_answer
from rag_engine.store.database import Database
from rag_engine.store.training_examples import TrainingExampleRepo

SOURCE = "bootstrap"  # curated_examples.source of the pairs made here
OWN_PASSAGE = "[1]"  # the stored answer's marker: "the passage this answer was drawn from"
DEFAULT_MAX_PAIRS = 200
DEFAULT_PER_DOCUMENT = 8
MAX_ANSWER_CHARS = 320  # a second sentence is added only while the answer stays this short

Kind = Literal["heading", "faq", "definition"]
KINDS: tuple[Kind, ...] = ("heading", "faq", "definition")

_STOP = frozenset("""
a about after all also an and any are as at be been before but by can cannot could did do does done each for from
get gets got had has have how i if in into is it its just may me more most must my no not of on one only or other
our out over own per should so some such than that the their them then there these they this those through to too
under up us use used very via was we were what when where which while who why will with within without would you
your yours say says said page section
""".split())
_QUESTION_WORDS = ("how", "what", "when", "where", "who", "why", "which", "can", "do", "does", "is", "are",
                   "should", "may", "will")
_WORD = re.compile(r"[a-z0-9]+")
_MARKER = re.compile(r"\s*\[\d+(?:\s*,\s*\d+)*\]")
_LIST_NUMBER = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_DEFINITION = re.compile(
    r"^(?P<article>(?:An?|The)\s+)?(?P<term>[\w`][\w\-./'`]*(?:\s+[\w\-./'`]+){0,3}?)\s+"
    r"(?P<verb>is an?|is the|are the|means|refers to)\s+(?P<rest>.+)$"
)
_PRONOUNS = frozenset({"it", "this", "that", "there", "these", "those", "they", "he", "she", "we", "you", "i",
                       "everything", "nothing", "nobody", "everyone", "someone", "what", "which", "who", "here"})
_INLINE_ITEM = re.compile(r"\s+[-*+]\s+(?=\S)")  # "... first. - Second item" (lines joined by the chunker)
_DANGLING_NUMBER = re.compile(r"(?:^|\s)\d+[.)]$")  # "To get it: 1." - a list cut off by the sentence split
_SITE_SUFFIX = re.compile(r"\s+[–—|]\s+")  # "Expense Policy – Northwind Labs Handbook"
_CLAIM_END = re.compile(r"(?<=[.!?])\s+")  # the support check splits answers at every full stop
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,;:!?])")
_CONTINUES = re.compile(r"^(?:It|This|They|These)\b")


@dataclass(frozen=True, slots=True)
class SourceChunk:
    """A chunk as the bootstrap reads it (from ``TrainingExampleRepo.trainable_chunks``)."""

    chunk_id: int
    document_id: int
    collection_id: int
    title: str
    source_uri: str
    ordinal: int
    heading_path: str
    text: str


@dataclass(frozen=True, slots=True)
class Pair:
    """One derived question with its answer (citing ``[1]``, its own passage)."""

    kind: Kind
    question: str
    answer: str
    passage: str
    source: str  # the document's source URI
    collection_id: int
    document_id: int
    topic: str  # what the question asks about: heading, FAQ question or defined term


@dataclass(slots=True)
class Derived:
    """The pairs kept, and per kind how many were found and why others were dropped."""

    pairs: list[Pair]
    found: Counter[str] = field(default_factory=Counter)  # kind -> candidates
    dropped: Counter[str] = field(default_factory=Counter)  # reason -> count

    def kept(self) -> Counter[str]:
        return Counter(p.kind for p in self.pairs)


# -- derivation (pure) ---------------------------------------------------------------
def derive_pairs(chunks: Iterable[SourceChunk], *, max_pairs: int = DEFAULT_MAX_PAIRS,
                 per_document: int = DEFAULT_PER_DOCUMENT) -> Derived:
    """Pairs from ``chunks``: derived, checked (the support rule), de-duplicated, capped, in a fixed order."""
    ordered = sorted(chunks, key=lambda c: (c.collection_id, c.source_uri, c.ordinal, c.chunk_id))
    derived = Derived(pairs=[])
    seen_questions: set[str] = set()
    seen_sections: set[tuple[int, str]] = set()
    by_document: dict[int, list[Pair]] = defaultdict(list)
    for chunk in ordered:
        first_of_section = (chunk.document_id, chunk.heading_path) not in seen_sections
        seen_sections.add((chunk.document_id, chunk.heading_path))
        candidates = [*(_heading_pairs(chunk) if first_of_section else []), *_faq_pairs(chunk),
                      *_definition_pairs(chunk)]
        for pair in candidates:
            derived.found[pair.kind] += 1
            reason = unsupported_reason(pair)
            if reason is not None:
                derived.dropped[f"{pair.kind}: {reason}"] += 1
                continue
            key = normalize_answer(pair.question)
            if key in seen_questions:
                derived.dropped[f"{pair.kind}: duplicate question"] += 1
                continue
            if len(by_document[pair.document_id]) >= per_document:
                derived.dropped[f"{pair.kind}: over the per-document cap"] += 1
                continue
            seen_questions.add(key)
            by_document[pair.document_id].append(pair)
    derived.pairs = _take_turns(list(by_document.values()), max_pairs)
    over = sum(len(v) for v in by_document.values()) - len(derived.pairs)
    if over:
        derived.dropped["over --max-pairs"] += over
    return derived


def unsupported_reason(pair: Pair) -> str | None:
    """Why ``pair`` breaks the support rule (module docstring), or None when it is supported."""
    if not _holds(pair.passage, pair.answer):
        return "answer not in the passage"
    if not content_stems(pair.topic) & content_stems(pair.answer):
        return "question shares no content word with the answer"
    return None


def content_stems(text: str) -> set[str]:
    """Content words of ``text`` (3+ letters, no stop words), cut to their first 5 letters."""
    return {w[:5] for w in _WORD.findall(text.lower()) if len(w) >= 3 and w not in _STOP}


def cite_retrieved(answer: str, passages: Sequence[str]) -> str | None:
    """A stored bootstrap answer with its ``[1]`` ("own passage") renumbered to the first of the
    retrieved ``passages`` that holds every answer sentence; None when none does."""
    for n, passage in enumerate(passages, start=1):
        if _holds(passage, answer):
            return answer.replace(OWN_PASSAGE, f"[{n}]")
    return None


def _holds(passage: str, answer: str) -> bool:
    """Every sentence of ``answer`` (its markers removed) occurs in ``passage``, whitespace aside."""
    text = _squash(passage)
    claims = [c for c in _CLAIM_END.split(_squash(_MARKER.sub("", answer))) if c]
    return bool(claims) and all(c in text for c in claims)


def _heading_pairs(chunk: SourceChunk) -> list[Pair]:
    parts = [p.strip() for p in chunk.heading_path.split(">") if p.strip()]
    title = _readable(_SITE_SUFFIX.split(chunk.title.strip())[0])
    if not parts or normalize_answer(_readable(parts[-1])).startswith(normalize_answer(title)):
        return []  # the document's own top (its title, maybe with an abbreviation): no section to ask about
    heading = _readable(parts[-1])
    answer = _answer_from(_sentences(chunk.text))
    if answer is None:
        return []
    return [_pair("heading", heading_question(heading, title), answer, chunk, heading)]


def heading_question(heading: str, title: str) -> str:
    """A question a reader would ask that the section under ``heading`` answers."""
    heading = heading.rstrip(" :.")
    lowered = heading.lower()
    if heading.endswith("?"):
        return heading
    if lowered.startswith("how to "):
        return f"How do I {heading[7:]}?"
    if lowered.split(" ", 1)[0] in _QUESTION_WORDS:  # short ones ("Who to ask") need their page for context
        return f"{heading}?" if len(heading.split()) >= 4 else f"{title}: {heading[:1].lower()}{heading[1:]}?"
    subject = heading if _has_inner_capital(heading) else heading[:1].lower() + heading[1:]
    return f"What does {title} say about {subject}?"


def _faq_pairs(chunk: SourceChunk) -> list[Pair]:
    sentences = _sentences(chunk.text)
    pairs: list[Pair] = []
    for i, sentence in enumerate(sentences):
        question = re.sub(r"^Q:\s*", "", _LIST_NUMBER.sub("", sentence)).strip()
        if not question.endswith("?") or len(question.split()) < 3 or question.count('"') % 2:
            continue
        following: list[str] = []
        for nxt in sentences[i + 1:]:
            if nxt.rstrip().endswith("?"):
                break
            following.append(re.sub(r"^A:\s*", "", nxt).strip())
        answer = _answer_from(following)
        if answer is not None:
            pairs.append(_pair("faq", question, answer, chunk, question))
    return pairs


def _definition_pairs(chunk: SourceChunk) -> list[Pair]:
    sentences = _sentences(chunk.text)
    pairs: list[Pair] = []
    for i, sentence in enumerate(sentences):
        match = _DEFINITION.match(_LIST_NUMBER.sub("", sentence))
        if match is None or not _answer_sentence(sentence):
            continue
        term, first = match["term"].strip(), match["term"].split()[0]
        if first.lower() in _PRONOUNS or first.lower() in _STOP or not content_stems(term) or \
                (not match["article"] and not first[:1].isupper()):
            continue
        term = f"{match['article'].lower()}{term}" if match["article"] else term
        question = f"What does {term} mean?" if match["verb"] in ("means", "refers to") else f"What is {term}?"
        parts = [sentence]
        nxt = sentences[i + 1] if i + 1 < len(sentences) else ""
        if _CONTINUES.match(nxt) and _answer_sentence(nxt) and len(sentence) + len(nxt) + 1 <= MAX_ANSWER_CHARS:
            parts.append(nxt)
        pairs.append(_pair("definition", question, _cite(parts), chunk, term))
    return pairs


def _answer_from(sentences: Sequence[str]) -> str | None:
    """The first one or two answer-like sentences (both only while short), cited; None when the first is not one."""
    sentences = [_LIST_NUMBER.sub("", s) for s in sentences[:2]]
    if not sentences or not _answer_sentence(sentences[0]):
        return None
    parts = [sentences[0]]
    if len(sentences) > 1 and _answer_sentence(sentences[1]) and \
            len(sentences[0]) + len(sentences[1]) + 1 <= MAX_ANSWER_CHARS:
        parts.append(sentences[1])
    return _cite(parts)


def _answer_sentence(sentence: str) -> bool:
    """Prose that can stand as an answer: 4-60 words, ends a statement, no table cells or markers."""
    words = sentence.split()
    return (4 <= len(words) <= 60 and sentence.rstrip()[-1:] in ".!" and "|" not in sentence
            and "```" not in sentence and _DANGLING_NUMBER.search(sentence) is None
            and _MARKER.search(sentence) is None and len(sentence) <= MAX_ANSWER_CHARS)


def _cite(parts: Sequence[str]) -> str:
    """Join the answer sentences and cite the passage before the final full stop."""
    text = " ".join(p.strip() for p in parts)
    end = text[-1] if text[-1] in ".!" else ""
    return f"{(text[:-1] if end else text).rstrip()} {OWN_PASSAGE}{end}"


def _pair(kind: Kind, question: str, answer: str, chunk: SourceChunk, topic: str) -> Pair:
    return Pair(kind, question, answer, chunk.text, chunk.source_uri, chunk.collection_id, chunk.document_id, topic)


def _take_turns(groups: list[list[Pair]], limit: int) -> list[Pair]:
    """Round-robin over the documents (in their order) up to ``limit`` pairs."""
    out: list[Pair] = []
    depth = 0
    while len(out) < limit and any(depth < len(g) for g in groups):
        for group in groups:
            if depth < len(group) and len(out) < limit:
                out.append(group[depth])
        depth += 1
    return out


def _readable(text: str) -> str:
    """An ALL-CAPS heading in sentence case (short words that are not stop words stay as acronyms)."""
    if not any(ch.isalpha() for ch in text) or text.upper() != text:
        return text
    words = [w if (len(w) <= 3 and w.lower() not in _STOP and w.isalpha()) else w.lower() for w in text.split()]
    joined = " ".join(words)
    return joined[:1].upper() + joined[1:]


def _has_inner_capital(text: str) -> bool:
    """A capital after the first letter ("SLO budget", "Incident Commander"): a name, keep its case."""
    return any(ch.isupper() for ch in text[1:])


def _sentences(text: str) -> list[str]:
    """Sentences as the chunker splits them, with list items run into one line split apart again."""
    return [part.strip() for s in split_sentences(text) for part in _INLINE_ITEM.split(s) if part.strip()]


def _squash(text: str) -> str:
    """Single spaces, none before punctuation ("date ." in text from HTML is "date.")."""
    return _SPACE_BEFORE_PUNCT.sub(r"\1", " ".join(text.split()))


# -- the database side ---------------------------------------------------------------
def load_chunks(db: Database, collection_ids: Sequence[int] | None = None) -> list[SourceChunk]:
    """Chunks of the training-allowed collections (of ``collection_ids`` only, when given)."""
    return [SourceChunk(r.chunk_id, r.document_id, r.collection_id, r.title, r.source_uri, r.ordinal,
                        r.heading_path, r.text)
            for r in TrainingExampleRepo(db).trainable_chunks(collection_ids)]


def store_pairs(db: Database, pairs: Sequence[Pair]) -> tuple[int, int]:
    """Store ``pairs`` as curated examples with source ``bootstrap``; (added, already there)."""
    rows: list[dict[str, object]] = [
        {"question": p.question, "answer": p.answer, "source": SOURCE, "collection_id": p.collection_id,
         "content_hash": content_hash(p.question, p.answer, p.collection_id)}
        for p in pairs
    ]
    return TrainingExampleRepo(db).add_curated(rows) if rows else (0, 0)


def content_hash(question: str, answer: str, collection_id: int | None) -> str:
    """The curated import's identity of a pair (``rag_engine.training.curated``), so re-runs add nothing twice."""
    return hashlib.sha256(
        "\n".join([normalize_answer(question), normalize_answer(answer), str(collection_id)]).encode()
    ).hexdigest()
