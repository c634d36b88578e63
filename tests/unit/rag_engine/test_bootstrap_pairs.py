"""Bootstrap pairs derived from chunk texts: each kind found, unsupported pairs dropped, fixed order."""

from __future__ import annotations

import random

from rag_engine.training.bootstrap import (
    Pair,
    SourceChunk,
    cite_retrieved,
    derive_pairs,
    heading_question,
    unsupported_reason,
)


def chunk(document_id: int, ordinal: int, heading_path: str, text: str, title: str = "Handbook") -> SourceChunk:
    return SourceChunk(chunk_id=document_id * 100 + ordinal, document_id=document_id, collection_id=1, title=title,
                       source_uri=f"doc-{document_id}.md", ordinal=ordinal, heading_path=heading_path, text=text)


CHUNKS = [
    chunk(1, 0, "Expenses", "This page is about money.", title="Expenses"),
    chunk(1, 1, "Expenses > Receipts", "An itemised receipt is required for every expense over 25 dollars. "
          "Receipts are uploaded in the finance portal. Lost receipts need a note.", title="Expenses"),
    chunk(1, 2, "Expenses > Receipts", "Receipts older than ninety days are not reimbursed.",
          title="Expenses"),  # the same section again: its heading was asked about already
    chunk(2, 0, "Paging > FAQ", "Q: Who gets paged first when an alert fires? A: The primary on-call engineer "
          "gets paged first. The secondary is paged after ten minutes. Do you like pizza? Nobody here has ever "
          "answered that one."),
    chunk(3, 0, "Glossary > Terms", "A postmortem is a written review of an incident. It lists causes and "
          "follow-up actions. Beacon means the paging tool we use."),
    chunk(4, 0, "Misc > Lunch breaks", "Bring snacks to the fridge on Fridays."),  # shares no word with its heading
]


def by_kind(pairs: list[Pair], kind: str) -> dict[str, str]:
    return {p.question: p.answer for p in pairs if p.kind == kind}


def test_each_kind_is_found_and_cites_its_own_passage():
    derived = derive_pairs(CHUNKS)
    headings = by_kind(derived.pairs, "heading")
    assert headings == {"What does Expenses say about receipts?":
                        "An itemised receipt is required for every expense over 25 dollars. "
                        "Receipts are uploaded in the finance portal [1]."}
    faq = by_kind(derived.pairs, "faq")
    assert faq == {"Who gets paged first when an alert fires?":
                   "The primary on-call engineer gets paged first. The secondary is paged after ten minutes [1]."}
    definitions = by_kind(derived.pairs, "definition")
    assert definitions["What is a postmortem?"] == ("A postmortem is a written review of an incident. "
                                                   "It lists causes and follow-up actions [1].")
    assert definitions["What does Beacon mean?"] == "Beacon means the paging tool we use [1]."
    assert derived.kept() == {"heading": 1, "faq": 1, "definition": 2}
    assert all(unsupported_reason(p) is None for p in derived.pairs)


def test_unsupported_pairs_are_dropped_with_their_reason():
    derived = derive_pairs(CHUNKS)
    questions = {p.question for p in derived.pairs}
    assert "What does Misc say about lunch breaks?" not in questions  # no shared content word
    assert not any("pizza" in q for q in questions)  # its "answer" shares no word with it
    # "Lunch breaks" and "Terms" (whose first sentence defines a postmortem) share no word with their answers
    assert derived.dropped["heading: question shares no content word with the answer"] == 2
    assert derived.dropped["faq: question shares no content word with the answer"] == 1
    # an answer that is not in its passage (e.g. a sentence from elsewhere) is refused
    good = derived.pairs[0]
    forged = Pair(good.kind, good.question, "Receipts are optional [1].", good.passage, good.source,
                  good.collection_id, good.document_id, good.topic)
    assert unsupported_reason(forged) == "answer not in the passage"


def test_order_is_deterministic_and_caps_hold():
    shuffled = CHUNKS[:]
    random.Random(7).shuffle(shuffled)
    assert derive_pairs(shuffled).pairs == derive_pairs(CHUNKS).pairs
    capped = derive_pairs(CHUNKS, max_pairs=2)
    assert len(capped.pairs) == 2
    assert len({p.document_id for p in capped.pairs}) == 2  # documents take turns
    assert capped.dropped["over --max-pairs"] == 2
    one_each = derive_pairs(CHUNKS, per_document=1)
    assert [p.document_id for p in one_each.pairs] == [1, 2, 3]


def test_duplicate_questions_are_kept_once():
    twice = [*CHUNKS, chunk(5, 0, "Glossary > Terms", "A postmortem is a written review of an incident.")]
    derived = derive_pairs(twice)
    assert [p.question for p in derived.pairs].count("What is a postmortem?") == 1
    assert derived.dropped["definition: duplicate question"] == 1


def test_heading_questions():
    assert heading_question("How to request a laptop", "IT") == "How do I request a laptop?"
    assert heading_question("Can I work remotely?", "HR") == "Can I work remotely?"
    assert heading_question("Who to ask", "Expense Policy") == "Expense Policy: who to ask?"
    assert heading_question("Response time", "Code Review") == "What does Code Review say about response time?"


def test_cite_retrieved_points_at_the_passage_that_holds_the_answer():
    answer = "Beacon means the paging tool we use [1]."
    assert cite_retrieved(answer, ["Other text.", "Beacon means the paging tool we use. More."]) == \
        "Beacon means the paging tool we use [2]."
    assert cite_retrieved(answer, ["Beacon is something else."]) is None
