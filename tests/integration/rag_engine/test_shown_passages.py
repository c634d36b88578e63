"""The engine judges a generated answer by the passages as shown (trimmed), and hears the model abstain."""

from __future__ import annotations

from app.configs import engine_config
from rag_engine.engine import NOT_FOUND_TEXT, RagEngine
from rag_engine.generation.abstain import ABSTAIN_TEXT
from rag_engine.values import AnswerStatus, GeneratedText


class ShowingGenerator:
    """A stand-in model: answers ``text`` having been shown ``shown`` (or the hits whole)."""

    name = "shown"

    def __init__(self, text: str, shown: tuple[str, ...] | None = None) -> None:
        self.text, self.shown = text, shown

    def generate(self, question, hits, history):
        shown = self.shown if self.shown is not None else tuple(h.text for h in hits[:3])
        return GeneratedText(text=self.text, model=self.name, passages=shown)


def _engine(db, embedder, settings, tmp_path, generator):
    (tmp_path / "vpn.md").write_text("# VPN\n\nThe office has a kitchen on every floor. "
                                     "Request VPN access in #it-help with /it vpn-request.\n")
    engine = RagEngine(engine_config(settings), db=db, embedder=embedder, generator=generator, reranker=None)
    engine.ingest([tmp_path], "default")
    return engine


ANSWER = "Request VPN access in #it-help with /it vpn-request."


def test_an_answer_is_supported_by_what_the_model_was_shown(db, embedder, settings, tmp_path):
    engine = _engine(db, embedder, settings, tmp_path, ShowingGenerator(ANSWER))
    answer = engine.answer("how do I get VPN access?", engine.every_collection())
    assert answer.status is AnswerStatus.ANSWERED and answer.generator == "shown" and answer.citations


def test_a_sentence_trimmed_out_of_the_prompt_cannot_support_the_answer(db, embedder, settings, tmp_path):
    trimmed = ("The office has a kitchen on every floor.",)  # the VPN sentence was cut before the model saw it
    engine = _engine(db, embedder, settings, tmp_path, ShowingGenerator(ANSWER, trimmed))
    answer = engine.answer("how do I get VPN access?", engine.every_collection())
    assert answer.status is AnswerStatus.FALLBACK and "not supported" in answer.fallback_reason
    assert answer.generator == "extractive"


def test_a_generated_abstention_is_a_not_found_answer(db, embedder, settings, tmp_path):
    engine = _engine(db, embedder, settings, tmp_path, ShowingGenerator(ABSTAIN_TEXT))
    answer = engine.answer("how do I get VPN access?", engine.every_collection())
    assert answer.status is AnswerStatus.NOT_FOUND and answer.text == NOT_FOUND_TEXT and not answer.citations
    assert answer.generator == "shown"
