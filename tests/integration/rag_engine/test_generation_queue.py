"""Every generation of the engine takes a ``GenerationPool`` slot; a full queue answers extractively, saying so."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from app.configs import engine_config
from bot.fallback_notes import fallback_note
from rag_engine.embedding import Embedder
from rag_engine.engine import RagEngine
from rag_engine.store.database import Database
from rag_engine.values import AnswerStatus, FallbackCode, GeneratedText, SearchHit, Turn
from tests.conftest import make_settings

QUESTION = "how do I get VPN access?"


class BlockingGenerator:
    """Answers from the first passage once ``release`` is set; counts how many generate at once."""

    name = "blocking"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Event()
        self.running = 0
        self.peak = 0
        self._lock = threading.Lock()

    def generate(self, question: str, hits: list[SearchHit], history: list[Turn]) -> GeneratedText:
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        self.started.set()
        try:
            self.release.wait(10)
            return GeneratedText(text=f"{hits[0].text.splitlines()[-1]} [1]", model=self.name)
        finally:
            with self._lock:
                self.running -= 1


def _engine(db: Database, embedder: Embedder, scratch_dir: Path, tmp_path: Path, generator: BlockingGenerator,
            **settings: object) -> RagEngine:
    engine = RagEngine(engine_config(make_settings(scratch_dir, min_grounded_fraction=0, **settings)), db=db,
                       embedder=embedder,
                       generator=generator, reranker=None)
    (tmp_path / "vpn.md").write_text("# VPN\n\nRequest VPN access in #it-help with /it vpn-request.\n")
    engine.ingest([tmp_path], "default")
    return engine


def test_queue_timeout_answers_extractively_and_says_the_model_was_busy(db, embedder, scratch_dir, tmp_path):
    gen = BlockingGenerator()
    engine = _engine(db, embedder, scratch_dir, tmp_path, gen, generation_concurrency=1,
                     generation_queue_timeout_s=0.2)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(engine.answer, QUESTION, engine.every_collection())
        assert gen.started.wait(10)  # the only slot is taken
        busy = engine.answer(QUESTION, engine.every_collection())
        gen.release.set()
        generated = first.result(10)
    assert generated.status is AnswerStatus.ANSWERED and generated.generator == "blocking"
    assert busy.status is AnswerStatus.FALLBACK and busy.fallback_code is FallbackCode.QUEUE_TIMEOUT
    assert busy.generator == "extractive" and "#it-help" in busy.text and busy.citations
    assert busy.fallback_reason.startswith("queue_timeout: GeneratorBusy: generator busy: no free slot within 0.2 s")
    assert busy.timings["queue"] >= 0.2
    assert fallback_note(busy.fallback_code) == "Quoted from the documents: the model was busy."
    assert gen.peak == 1


def test_concurrency_one_runs_one_generation_at_a_time(db, embedder, scratch_dir, tmp_path):
    gen = BlockingGenerator()
    engine = _engine(db, embedder, scratch_dir, tmp_path, gen, generation_concurrency=1,
                     generation_queue_timeout_s=10)
    with ThreadPoolExecutor(3) as pool:
        asks = [pool.submit(engine.answer, QUESTION, engine.every_collection()) for _ in range(3)]
        assert gen.started.wait(10)
        time.sleep(0.3)  # the other two asks have retrieved and now queue for the slot
        assert gen.running == 1
        gen.release.set()
        answers = [a.result(10) for a in asks]
    assert all(a.status is AnswerStatus.ANSWERED for a in answers) and gen.peak == 1
    assert engine.generation_pool is not None and engine.generation_pool.concurrency == 1


def test_concurrency_two_lets_two_generate_at_once(db, embedder, scratch_dir, tmp_path):
    """The control for the test above: the setting is what bounds generation."""
    gen = BlockingGenerator()
    engine = _engine(db, embedder, scratch_dir, tmp_path, gen, generation_concurrency=2,
                     generation_queue_timeout_s=10)
    with ThreadPoolExecutor(3) as pool:
        asks = [pool.submit(engine.answer, QUESTION, engine.every_collection()) for _ in range(3)]
        deadline = time.monotonic() + 10
        while gen.running < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
        gen.release.set()
        assert all(a.result(10).status is AnswerStatus.ANSWERED for a in asks)
    assert gen.peak == 2
