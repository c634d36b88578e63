"""No repeated n-grams within the answer, the prompt excluded.

transformers' ``no_repeat_ngram_size`` counts every n-gram of the sequence, and
for a decoder-only model the sequence starts with the prompt: with n = 4 the
model could never write four tokens of a passage again, so it could not quote
"$75 per person" or a command name, and had to paraphrase amounts and names it
was told to copy. This processor bans only an n-gram the answer itself already
holds, which is what stops a small model's loops ("You should not panic. You
should not panic.").
"""

from __future__ import annotations

import torch
from transformers import LogitsProcessor


class AnswerNoRepeatNGram(LogitsProcessor):
    """Bans a token that would complete an n-gram already in the tokens after ``start``."""

    def __init__(self, size: int, start: int) -> None:
        self.size = size
        self.start = start

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        n = self.size
        for row, ids in enumerate(input_ids.tolist()):
            answer = ids[self.start:]
            if len(answer) < n:
                continue
            tail = tuple(answer[len(answer) - n + 1:])
            banned = {answer[i + n - 1] for i in range(len(answer) - n + 1) if tuple(answer[i:i + n - 1]) == tail}
            if banned:
                scores[row, sorted(banned)] = float("-inf")
        return scores
