"""``RagEngine.answer_first``: what is final at once, and when there is a refinement to wait for."""

from __future__ import annotations

from rag_engine.engine import NOT_FOUND_TEXT, RagEngine
from rag_engine.values import AnswerStatus, FallbackCode, GeneratedText

QUESTION = "What is the expense limit for a team dinner?"


class EchoModel:
    name = "echo-model"

    def generate(self, question, hits, history):
        return GeneratedText(text=hits[0].text, model=self.name, passages=tuple(h.text for h in hits))


def test_without_a_model_the_first_answer_is_the_final_one(handbook_engine):
    scope = handbook_engine.every_collection()
    first, refine = handbook_engine.answer_first(QUESTION, scope)
    final = handbook_engine.answer(QUESTION, scope)
    assert refine is None
    assert (first.text, first.status, first.fallback_code) == (final.text, final.status, FallbackCode.NO_GENERATOR)
    assert first.citations and not first.generated


def test_with_a_model_the_quote_comes_first_and_the_refinement_runs_it(handbook_engine):
    engine = RagEngine(handbook_engine.config, db=handbook_engine.db, embedder=handbook_engine.embedder,
                       generator=EchoModel(), reranker=None, auto_migrate=False)
    scope = engine.every_collection()
    first, refine = engine.answer_first(QUESTION, scope)
    assert refine is not None
    assert (first.generator, first.status, first.fallback_code) == ("extractive", AnswerStatus.ANSWERED, None)
    assert first.citations and not first.generated and "retrieve" in first.timings
    refined = refine()
    assert refined.generator == "echo-model" and refined.generated
    assert refined.timings["total"] >= first.timings["total"]

    nothing, none = engine.answer_first("How do I calibrate the flux capacitor of a starship?", scope)
    assert (nothing.text, nothing.status, none) == (NOT_FOUND_TEXT, AnswerStatus.NOT_FOUND, None)
