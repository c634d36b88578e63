"""The engine's generator path: attribution, fallback on failure, unloadable models."""

from __future__ import annotations

from app.configs import engine_config
from rag_engine.engine import RagEngine
from rag_engine.values import AnswerStatus, GeneratedText
from tests.conftest import make_settings


class ParaphrasingGenerator:
    """A stand-in model that answers from passage 2 without writing citation markers."""

    name = "paraphraser"

    def generate(self, question, hits, history):
        return GeneratedText(text=f"{hits[1].text.split('.')[0]}.", model=self.name,
                             passages=tuple(h.text for h in hits[:3]))


class FailingGenerator:
    name = "broken"

    def generate(self, question, hits, history):
        raise RuntimeError("CUDA out of memory")


def _docs(tmp_path):
    (tmp_path / "vpn.md").write_text("# VPN\n\nRequest VPN access in #it-help with /it vpn-request.\n")
    (tmp_path / "mfa.md").write_text("# MFA\n\nVPN logins require a YubiKey tap as the second factor.\n")
    return tmp_path


def test_unmarked_generated_answer_gets_citations(db, embedder, settings, tmp_path):
    engine = RagEngine(engine_config(settings), db=db, embedder=embedder, generator=ParaphrasingGenerator(),
                       reranker=None)
    engine.ingest([_docs(tmp_path)], "default")
    answer = engine.answer("which second factor does a VPN login require from me every time I sign in?",
                           engine.every_collection())
    assert answer.status is AnswerStatus.ANSWERED and answer.generator == "paraphraser"
    assert answer.text.endswith("[1]") or answer.text.endswith("[2]")
    cited = answer.citations[0]
    assert cited.chunk_id == answer.hits[1].chunk_id  # the passage it paraphrased, not simply the top one


def test_generator_failure_falls_back_to_extractive(db, embedder, settings, tmp_path):
    engine = RagEngine(engine_config(settings), db=db, embedder=embedder, generator=FailingGenerator(), reranker=None)
    engine.ingest([_docs(tmp_path)], "default")
    answer = engine.answer("how do I get VPN access?", engine.every_collection())
    assert answer.status is AnswerStatus.FALLBACK
    assert "CUDA out of memory" in answer.fallback_reason
    assert answer.generator == "extractive" and "#it-help" in answer.text and answer.citations


def test_model_that_cannot_load_falls_back_and_keeps_answering(db, embedder, scratch_dir, tmp_path):
    settings = make_settings(scratch_dir, generator_backend="transformers", generator_model=str(tmp_path / "nope"))
    engine = RagEngine(engine_config(settings), db=db, embedder=embedder, reranker=None)
    docs = tmp_path / "docs"
    docs.mkdir()
    engine.ingest([_docs(docs)], "default")
    for _ in range(2):
        answer = engine.answer("how do I get VPN access?", engine.every_collection())
        assert answer.status is AnswerStatus.FALLBACK
        assert "nope" in answer.fallback_reason
        assert "#it-help" in answer.text


class FixedGenerator:
    """A stand-in model that always writes ``text``, shown the top three passages."""

    def __init__(self, name, text):
        self.name, self.text = name, text

    def generate(self, question, hits, history):
        return GeneratedText(text=self.text, model=self.name, passages=tuple(h.text for h in hits[:3]))


def InventingGenerator():  # noqa: N802 - reads as the class it stands for
    """Fluent facts in no passage."""
    return FixedGenerator("inventor", "The VPN is set up by the facilities team. Ask at the front desk for a badge.")


def test_ungrounded_generated_answer_is_replaced_by_the_extractive_one(db, embedder, settings, tmp_path):
    engine = RagEngine(engine_config(settings), db=db, embedder=embedder, generator=InventingGenerator(), reranker=None)
    engine.ingest([_docs(tmp_path)], "default")
    answer = engine.answer("how do I get VPN access?", engine.every_collection())
    assert answer.status is AnswerStatus.FALLBACK and "not supported" in answer.fallback_reason
    assert "facilities" not in answer.text and "#it-help" in answer.text


def test_grounding_check_can_be_switched_off(db, embedder, scratch_dir, tmp_path):
    settings = make_settings(scratch_dir, min_grounded_fraction=0.0)
    engine = RagEngine(engine_config(settings), db=db, embedder=embedder, generator=InventingGenerator(), reranker=None)
    engine.ingest([_docs(tmp_path)], "default")
    answer = engine.answer("how do I get VPN access?", engine.every_collection())
    assert answer.status is AnswerStatus.ANSWERED and "facilities" in answer.text


def NamingGenerator():  # noqa: N802 - reads as the class it stands for
    """A close paraphrase of passage 1 that adds a product name no passage has."""
    return FixedGenerator("namer", "Request VPN access in #it-help with /it vpn-request, then log in with Okta [1].")


def test_a_close_paraphrase_naming_what_no_passage_has_is_replaced(db, embedder, settings, tmp_path):
    engine = RagEngine(engine_config(settings), db=db, embedder=embedder, generator=NamingGenerator(), reranker=None)
    engine.ingest([_docs(tmp_path)], "default")
    answer = engine.answer("how do I get VPN access?", engine.every_collection())
    assert answer.status is AnswerStatus.FALLBACK and "'Okta'" in answer.fallback_reason
    assert "Okta" not in answer.text and "#it-help" in answer.text
