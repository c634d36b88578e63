"""Follow-up questions made standalone before retrieval.

In a thread, "Does alcohol count?" only means something after "What's the
expense limit for a team dinner?". The generator sees the thread, but
retrieval sees one string, so a follow-up is searched together with the
subject of the thread: the content words of the last user question that stood
on its own (a chain of follow-ups keeps that subject; an acknowledgement such
as "thanks!" does not replace it). A question that names its own subject is
searched as asked, so a new topic inside a thread is not dragged back to the
old one.

A rule, not a model: it runs in microseconds on any CPU and is measured by
``benchmarks/followup.py`` (docs/retrieval.md, "Follow-up questions").
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag_engine.generation.ask_back import STOPWORDS, content_words
from rag_engine.values import Turn

# Words that say a question leans on the previous one.
_OPENERS = re.compile(r"^\s*(?:and|or|but|also|so|then|what about|how about|what if|same)\b", re.IGNORECASE)
_ANAPHORA = frozenset("it its it's that that's this they them their those these one ones same".split())
# Words that carry no subject of their own: acknowledgements and generic question verbs.
_GENERIC = frozenset(
    """
    thanks thank thx ok okay great cool nice perfect sure right up long soon often fast quickly take takes
    happen happens work works apply applies still too else again
    """.split()
)
MAX_OWN_TERMS = 2  # a question with at most this many subject words is read as a follow-up


def subject_terms(text: str) -> list[str]:
    """Content words that name a subject (lower-cased, possessives dropped, in order, no repeats)."""
    terms: list[str] = []
    for word in content_words(text.replace("’", "'")):
        word = word.split("'")[0]
        if word and word not in STOPWORDS and word not in _GENERIC and word not in terms:
            terms.append(word)
    return terms


def is_followup(question: str) -> bool:
    """Whether ``question`` leans on an earlier question instead of naming its subject."""
    if _OPENERS.match(question):
        return True
    own = subject_terms(question)
    words = {w.split("'")[0] for w in re.findall(r"[\w']+", question.lower().replace("’", "'"))}
    return len(own) <= MAX_OWN_TERMS or (bool(words & _ANAPHORA) and len(own) <= MAX_OWN_TERMS + 1)


def standalone_question(question: str, history: Sequence[Turn]) -> str:
    """The text to search for ``question`` asked after ``history`` (oldest turn first).

    A follow-up gets the thread's subject words appended; anything else (or a
    question with no earlier user turn) is returned unchanged.
    """
    subject: list[str] = []
    for turn in history:
        if turn.role == "user" and (not subject or not is_followup(turn.text)):
            subject = subject_terms(turn.text) or subject
    if not subject or not is_followup(question):
        return question
    own = set(subject_terms(question))
    extra = [t for t in subject if t not in own]
    return f"{question} {' '.join(extra)}" if extra else question
