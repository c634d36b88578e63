"""Suggested prompts for an assistant thread: the questions most asked, and answered, where the user is.

Taken from the interaction log, under the same access rules as an answer: only questions asked where
every collection searched is readable at the asking location (the assistant thread, a DM), from the
channel the user is looking at and the channels they asked in themselves, never private answers.
"""

from __future__ import annotations

from bot import access
from bot.sanitize import clean_question, sanitize_output
from bot.types import Actor, Location
from rag_engine.engine import Store
from rag_engine.values import AnswerStatus

MAX_PROMPTS = 4  # Slack shows at most four suggested prompts
MAX_QUESTION_CHARS = 300  # a suggestion is a question someone would type, not a pasted document
_ANSWERED = (AnswerStatus.ANSWERED.value, AnswerStatus.FALLBACK.value)


def suggested_questions(store: Store, location: Location, actor: Actor, *, context_channel: str | None = None,
                        limit: int = MAX_PROMPTS) -> list[str]:
    """Up to ``limit`` questions for ``actor`` asking at ``location``, most asked first (none when nothing
    is readable there). ``context_channel``: the channel the user is viewing, whose questions count too."""
    scope = access.collection_scope(store, location, outsider=actor.is_external)
    if scope.is_empty or limit <= 0:
        return []
    channels = [c for c in (context_channel, location.channel_id) if c]
    found = store.interactions.most_asked(location.platform, location.workspace_id, channel_ids=channels,
                                          asker=actor.user_key, readable=scope.ids(), statuses=_ANSWERED,
                                          limit=limit * 3)  # room for the ones dropped below
    questions: list[str] = []
    for raw in found:
        question = sanitize_output(clean_question(raw), limit=MAX_QUESTION_CHARS + 1)
        if question and len(question) <= MAX_QUESTION_CHARS and question.casefold() not in \
                {q.casefold() for q in questions}:
            questions.append(question)
    return questions[:limit]
