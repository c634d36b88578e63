"""Short answer codes: what users see and quote instead of interaction ids.

Interaction ids come from a sequence that each process draws from in blocks
(spare ids for database outages), so consecutive answers can be numbered 1
and 34, and the numbers tell anyone who compares them when the bot restarted.
Users instead see a code: the id put through a keyed Feistel permutation and
written in Crockford base32 — ``7KQM2D``. Codes look unrelated to each other,
are unique (the permutation is a bijection), and decode back to the id where
users quote them (``ragbot feedback show CODE``).

Ids below 2**30 get 6 characters, then 8, 10 and 12 characters as the domain
grows; the length of a code tells its domain, so decoding needs no lookup.
"""

from __future__ import annotations

import hashlib
import hmac

from bot.config import BotConfig

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U
DOMAIN_BITS = (30, 40, 50, 60)  # 6, 8, 10 and 12 characters
ROUNDS = 4
DEFAULT_KEY = b"ragbot answer codes"  # opaque at a glance; set answer_code_key so outsiders cannot decode
_READ_AS = {"I": "1", "L": "1", "O": "0"}  # what people misread or mistype, as Crockford reads them
_IGNORED = " -#"


class AnswerCodes:
    """Encode interaction ids as short codes and back, under one key."""

    def __init__(self, key: bytes = DEFAULT_KEY) -> None:
        if not key:
            raise ValueError("the answer code key must not be empty")
        self._key = key

    @classmethod
    def from_config(cls, config: BotConfig) -> AnswerCodes:
        key = config.answer_code_key.get_secret_value() if config.answer_code_key else ""
        return cls(key.encode() if key else DEFAULT_KEY)

    def encode(self, interaction_id: int) -> str:
        if interaction_id < 1 or interaction_id >= 1 << DOMAIN_BITS[-1]:
            raise ValueError(f"no answer code for id {interaction_id}")
        bits = next(b for b in DOMAIN_BITS if interaction_id < 1 << b)
        value = self._permute(interaction_id, bits, forward=True)
        return "".join(ALPHABET[(value >> shift) & 31] for shift in range(bits - 5, -1, -5))

    def decode(self, code: str) -> int | None:
        """The id behind ``code`` (any case, dashes and spaces ignored), or None if it is not a code."""
        cleaned = "".join(_READ_AS.get(ch, ch) for ch in code.upper() if ch not in _IGNORED)
        bits = len(cleaned) * 5
        if bits not in DOMAIN_BITS or any(ch not in ALPHABET for ch in cleaned):
            return None
        value = 0
        for ch in cleaned:
            value = value << 5 | ALPHABET.index(ch)
        interaction_id = self._permute(value, bits, forward=False)
        tier = DOMAIN_BITS.index(bits)
        lowest = 1 << DOMAIN_BITS[tier - 1] if tier else 1
        # an id that fits a shorter code has no code of this length: one code per id
        return interaction_id if interaction_id >= lowest else None

    def _permute(self, value: int, bits: int, *, forward: bool) -> int:
        """A balanced Feistel network on ``bits``-bit values (its own inverse when run backwards)."""
        half = bits // 2
        mask = (1 << half) - 1
        left, right = value >> half, value & mask
        rounds = range(ROUNDS) if forward else range(ROUNDS - 1, -1, -1)
        for r in rounds:
            if forward:
                left, right = right, left ^ self._round(bits, r, right, mask)
            else:
                left, right = right ^ self._round(bits, r, left, mask), left
        return left << half | right

    def _round(self, bits: int, r: int, half: int, mask: int) -> int:
        digest = hmac.new(self._key, f"{bits}:{r}:{half}".encode(), hashlib.sha256).digest()
        return int.from_bytes(digest[:8], "big") & mask


def parse_answer_ref(text: str, codes: AnswerCodes) -> int | None:
    """An answer as people quote it: its code (``7KQM2D``) or, for operators, ``#123`` — else None."""
    text = text.strip()
    if text.startswith("#") and text[1:].isdigit():
        value = int(text[1:])
        return value if value > 0 else None
    return codes.decode(text)
