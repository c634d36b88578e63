"""Live text of stream replies: shown as it settles, never showing a mention or credential split over pieces."""

from __future__ import annotations

from bot.sanitize import ZWSP
from bot.streaming import LiveTextBuilder
from bot.types import LiveText


def feed(builder: LiveTextBuilder, pieces: list[str]) -> list[LiveText]:
    shown = [builder.add(p) for p in pieces]
    return [s for s in shown if s is not None]


def test_deltas_add_up_to_the_text_shown() -> None:
    builder = LiveTextBuilder(limit=1000)
    shown = feed(builder, ["Request ", "the Remote", " Access role", " [1].\n", "Done"])
    assert "".join(s.delta for s in shown) == shown[-1].text == "Request the Remote Access role [1]."
    last = builder.finish()
    assert last is not None and last.text == "Request the Remote Access role [1].\nDone" and last.delta == "\nDone"


def test_a_word_is_held_back_until_it_is_complete() -> None:
    builder = LiveTextBuilder(limit=1000)
    assert builder.add("Hel") is None and builder.add("lo") is None
    shown = builder.add(" wor")
    assert shown is not None and shown.text == "Hello"


def test_a_mention_split_over_pieces_is_never_shown_live() -> None:
    builder = LiveTextBuilder(limit=1000)
    shown = feed(builder, ["Ask ", "<!chan", "nel> and ", "@ev", "eryone ", "now "])
    text = shown[-1].text
    assert "<!channel>" not in text and "@everyone" not in text and f"@{ZWSP}everyone" in text
    assert all("<!" not in s.delta for s in shown)


def test_a_secret_split_over_pieces_is_redacted_before_it_is_shown() -> None:
    builder = LiveTextBuilder(limit=1000)
    shown = feed(builder, ["the key is ", "sk-abcdefghij", "klmnopqrstuvwxyz0123 ", "ok "])
    assert shown and "sk-abcdefghijklmnop" not in shown[-1].text and "ok" in shown[-1].text


def test_live_text_stops_at_the_limit() -> None:
    builder = LiveTextBuilder(limit=20)
    shown = feed(builder, ["word " * 3, "word " * 3, "word " * 3])
    assert shown and len(shown[-1].text) <= 20 and builder.stalled and builder.finish() is None
