"""Short answer codes: opaque, unique, and decoded back wherever users quote them."""

from __future__ import annotations

import itertools
import random

import pytest
from pydantic import SecretStr

from app.configs import bot_config
from bot.answer_codes import ALPHABET, AnswerCodes, parse_answer_ref
from tests.conftest import make_settings


def test_codes_round_trip_at_every_length():
    codes = AnswerCodes()
    rng = random.Random(20)
    ids = list(range(1, 2000)) + [(1 << b) + d for b in (30, 40, 50) for d in (-1, 0, 1)] + [(1 << 60) - 1]
    ids += [rng.randrange(1, 1 << 60) for _ in range(2000)]
    for interaction_id in ids:
        code = codes.encode(interaction_id)
        assert len(code) in (6, 8, 10, 12) and set(code) <= set(ALPHABET)
        assert codes.decode(code) == interaction_id
    assert len(codes.encode((1 << 30) - 1)) == 6 and len(codes.encode(1 << 30)) == 8


def test_codes_are_unique_and_hide_the_order_and_gaps_of_ids():
    codes = AnswerCodes()
    shown = [codes.encode(i) for i in range(1, 5001)]
    assert len(set(shown)) == len(shown)
    # neighbours share no visible structure: 1 and 2, or 1 and 34 (a restart), look unrelated
    assert sum(a[:3] == b[:3] for a, b in itertools.pairwise(shown)) < 10
    assert shown != sorted(shown)
    assert all(str(i) not in code for i, code in enumerate(shown, start=1) if i > 99)


def test_decoding_forgives_how_people_type_codes():
    codes = AnswerCodes()
    code = codes.encode(1234)
    assert codes.decode(code.lower()) == 1234
    assert codes.decode(f" {code[:3]}-{code[3:]} ") == 1234
    read_as = code.replace("0", "O").replace("1", "I")
    assert codes.decode(read_as) == 1234


@pytest.mark.parametrize("text", ["", "ABC", "1234567", "ABCDEU", "!!!!!!", "ABCDEFGHIJKLMN"])
def test_what_is_not_a_code_decodes_to_none(text):
    assert AnswerCodes().decode(text) is None


def test_an_id_has_exactly_one_code():
    codes = AnswerCodes()
    # what a small id would be in the 8-character domain is not a code: each id has one spelling
    value = codes._permute(1234, 40, forward=True)
    eight = "".join(ALPHABET[(value >> shift) & 31] for shift in range(35, -1, -5))
    assert codes.decode(eight) is None
    assert codes.decode(codes.encode(1234)) == 1234


def test_the_key_changes_every_code_and_comes_from_the_settings(tmp_path):
    default = AnswerCodes.from_config(bot_config(make_settings(tmp_path)))
    keyed = AnswerCodes.from_config(bot_config(make_settings(tmp_path, answer_code_key=SecretStr("team secret"))))
    assert default.encode(7) == AnswerCodes().encode(7)
    assert keyed.encode(7) != default.encode(7) and keyed.decode(keyed.encode(7)) == 7
    assert sum(keyed.decode(default.encode(i)) == i for i in range(1, 200)) < 3


def test_references_take_a_code_or_an_operators_raw_id():
    codes = AnswerCodes()
    assert parse_answer_ref(codes.encode(42), codes) == 42
    assert parse_answer_ref("#42", codes) == 42
    assert parse_answer_ref("#0", codes) is None and parse_answer_ref("no such code", codes) is None
    with pytest.raises(ValueError):
        codes.encode(0)
