"""Amounts in an answer sentence held strictly to the passage's amounts.

Embedding similarity cannot tell "$75" from "$75 per person" or "$57": a
sentence that changes an amount or drops its qualifier reads almost the same
as the passage. So the grounding check also requires that every number an
answer sentence states appears in the passage with the same unit, and that
where the passage qualifies it ("$75 per person", "$50/month", "$40 each"), the
sentence keeps the qualifier (or says it another way: "each person",
"monthly"). Tokens that mix digits and letters (SEV1, NW-44820, 10:00) must
appear in the passage as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CURRENCY = {"$": "$", "€": "€", "£": "£", "dollar": "$", "usd": "$", "euro": "€", "eur": "€", "pound": "£",
             "gbp": "£"}
_UNITS = {"%": "%", "percent": "%", "day": "day", "week": "week", "month": "month",
          "year": "year", "hour": "hour", "minute": "minute", "second": "second", "night": "night", "mile": "mile",
          "km": "km", "character": "character", "gb": "gb", "mb": "mb", "tb": "tb"}
_WORD_NUMBERS = {"one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
                 "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12"}
_MODIFIERS = frozenset("calendar working business full single consecutive paid".split())
# other ways to say a qualifier: "per person" is also "each attendee" or "a head"; "per month" is "monthly"
_SYNONYMS = {"person": {"person", "people", "head", "attendee", "employee", "diner", "guest", "participant"}}
_A_QUALIFIERS = frozenset("person head day week month year night hour".split())  # "$50 a month", "$75 a head"
_ADVERBS = {"daily": "day", "weekly": "week", "monthly": "month", "yearly": "year", "annually": "year",
            "annual": "year", "nightly": "night", "hourly": "hour"}
_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
_STRIP = "*`|"  # Markdown emphasis, code and table cells
_PUNCTUATION = ".,;:!?()[]{}\"'“”‘’"
_QUALIFIER_REACH = 7  # words after an amount that may still qualify it ("10 days of paid sick leave per year")


@dataclass(frozen=True, slots=True)
class Amount:
    value: str  # the number without thousands separators ("1500", "0.67"), or an identifier as written
    unit: str | None  # "$", "%", "day", … (None: a bare number); "id" for an identifier such as SEV1
    qualifier: str | None = None  # what the amount is per: "person", "month", "each"


def amounts(text: str, *, number_words: bool = False) -> list[Amount]:
    """The amounts stated in ``text``, each with its unit and the qualifier that follows it.

    A number word counts too ("three blocks" states 3), except "one" without a
    unit after it ("the first one"); with ``number_words`` (for passages, where
    a word is only ever evidence) "one" always counts.
    """
    tokens = _tokens(text)
    found: list[Amount] = []
    for i, token in enumerate(tokens):
        if token.isdigit() and tokens[i + 1: i + 2] == ["."] and (i == 0 or tokens[i - 1] == "."):
            continue  # a numbered list item's number
        currency, rest = (token[0], token[1:]) if token[:1] in "$€£" else (None, token)
        rest, _, per = rest.partition("/")
        if per and not per.isalpha():
            rest, per = rest + "/" + per, ""
        rest, percent = (rest[:-1], "%") if rest.endswith("%") else (rest, None)
        if _NUMBER.fullmatch(rest):
            value = rest.replace(",", "")
            value = value.rstrip("0").rstrip(".") if "." in value else value
            found.append(Amount(value, currency or percent or _unit_after(tokens, i),
                                _canonical(per) if per else _qualifier_after(tokens, i)))
        elif _has_digit(token):
            found.append(Amount(token, "id"))
        elif token in _WORD_NUMBERS and (number_words or token != "one" or _unit_after(tokens, i)):
            found.append(Amount(_WORD_NUMBERS[token], _unit_after(tokens, i), _qualifier_after(tokens, i)))
    return found


def keeps_amounts(sentence: str, passage: str) -> bool:
    """True when every amount in ``sentence`` is in ``passage`` with its unit and, if any, its qualifier."""
    stated = amounts(sentence)
    if not stated:
        return True
    available = amounts(passage, number_words=True)
    written = " ".join(_tokens(passage))
    said = " ".join(_tokens(sentence))
    for amount in stated:
        if amount.unit == "id":
            if amount.value not in written:
                return False
            continue
        matches = [a for a in available if a.value == amount.value and a.unit != "id"
                   and (amount.unit is None or a.unit == amount.unit)]
        if not any(a.qualifier is None or _says_qualifier(said, a.qualifier) for a in matches):
            return False
    return True


def _tokens(text: str) -> list[str]:
    """Lower-cased words without the punctuation around them, "." where a sentence or table cell ends;
    a range "1–3" becomes "1 – 3"."""
    text = text.replace("|", " . ")
    for ch in _STRIP:
        text = text.replace(ch, " ")
    text = re.sub(r"(?<=\d)\s*[–-]\s*(?=[$€£]?\d)", " – ", text.lower())
    tokens: list[str] = []
    for raw in text.split():
        word = raw.strip(_PUNCTUATION)
        if word:
            tokens.append(word)
        if raw.rstrip("\"'”’)]").endswith((".", "!", "?", ";")) and tokens and tokens[-1] != ".":
            tokens.append(".")
    return tokens


def _has_digit(text: str) -> bool:
    return any(ch.isdigit() for ch in text)


def _singular(word: str) -> str:
    if word in ("people", "persons"):
        return "person"
    return word[:-1] if word.endswith("s") and len(word) > 3 and not word.endswith("ss") else word


def _canonical(noun: str) -> str:
    """A qualifier's noun in one spelling: "people", "heads" and "attendee" are all "person"."""
    noun = _singular(noun)
    return next((key for key, same in _SYNONYMS.items() if noun in same), noun)


def _unit_after(tokens: list[str], i: int) -> str | None:
    """The unit word after a number, past a range's end and modifiers ("1–3 working days": day)."""
    j = i + 1
    while j < len(tokens):
        word = tokens[j]
        if word == "–" and j + 1 < len(tokens) and _has_digit(tokens[j + 1]):
            j += 2
            continue
        if word in _MODIFIERS:
            j += 1
            continue
        if word == ".":
            return None
        return _CURRENCY.get(_singular(word)) or _UNITS.get(word) or _UNITS.get(_singular(word))
    return None


def _qualifier_after(tokens: list[str], i: int) -> str | None:
    """What a passage amount is per ("per person", "a month", "each"), within the next few words."""
    window = [w for w in tokens[i + 1: i + 1 + _QUALIFIER_REACH] if w not in _MODIFIERS]
    for j, word in enumerate(window):
        if word == "each":
            return "each"
        if word.startswith("/") and word[1:].isalpha():
            return _canonical(word[1:])
        if word in ("per", "a", "an"):
            noun = _canonical(window[j + 1]) if j + 1 < len(window) else ""
            if noun and (word == "per" or noun in _A_QUALIFIERS):  # not "$100 a customer meal"
                return noun
        if _has_digit(word) or word in (".", "and", "or", "–"):
            return None
    return None


def _says_qualifier(sentence: str, qualifier: str) -> bool:
    """Whether an answer sentence keeps a qualifier, in the passage's words or other ones."""
    if qualifier == "each":  # "$75 each": "per …" in the same sentence is usually about something else
        return re.search(r"\b(?:each|apiece)\b", sentence) is not None
    nouns = "|".join(sorted(_SYNONYMS.get(qualifier, {qualifier})))
    if re.search(rf"\b(?:per|each|every|a|an)\s+(?:[\w-]+\s+)?(?:{nouns})s?\b", sentence):
        return True
    if re.search(rf"/(?:{nouns})s?\b", sentence):
        return True
    return any(period == qualifier and re.search(rf"\b{adverb}\b", sentence) for adverb, period in _ADVERBS.items())
