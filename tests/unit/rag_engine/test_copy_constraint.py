"""Copy-constrained decoding on a tiny random model: whatever the weights, the answer is made of passage sentences
(from a start or a clause) each closed by the right citation; unconstrained, the same model writes anything."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.configs import engine_config
from app.settings import Settings
from rag_engine.config import GenerationConfig
from rag_engine.generation.copy_constraint import CopyConstraint, tidy
from rag_engine.generation.transformers_backend import TransformersGenerator
from rag_engine.testing.tiny_models import make_tiny_llama
from rag_engine.values import SearchHit

QUESTION = "How many vacation days do I get?"
PASSAGES = ["Every employee gets twenty five vacation days per year. Unused days carry over until March.",
            "Limit: $75 per person; approval: your manager approves in advance. Deploys happen on Tuesday."]
_SEGMENT = re.compile(r"(.+?) \[(\d+)\]\.(?:\s+|$)")


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_llama(tmp_path_factory.mktemp("tiny") / "llama", max_positions=512)


def _config(tmp_path: Path, constraint: str, **extra: object) -> GenerationConfig:
    return engine_config(Settings(data_dir=tmp_path, max_new_tokens=40, generator_device="cpu",
                                  generation_constraint=constraint, **extra)).generation


def _hits() -> list[SearchHit]:
    return [SearchHit(chunk_id=i, document_id=i, collection_id=1, title=f"Page {i}", source_uri=f"file:///{i}.md",
                      heading_path="", text=text, score=1.0) for i, text in enumerate(PASSAGES, start=1)]


def _copied(segment: str, passage: str) -> bool:
    """``segment`` is a stretch of ``passage`` ending where a sentence ends (its full stop went to the citation);
    its first letter may have been capitalised."""
    return re.search(re.escape(segment) + r"[.!?)]?(?:\s|$)", passage, re.IGNORECASE) is not None


def test_a_copied_segment_and_its_citation_are_allowed_and_nothing_else(llama: Path, tmp_path: Path) -> None:
    tokenizer = TransformersGenerator(_config(tmp_path, "none"), model=llama).handle.tokenizer
    copy = CopyConstraint(tokenizer, PASSAGES, 0, max_new_tokens=100)
    answer = tokenizer.encode(" Every employee gets twenty five vacation days per year [1]. approval: your manager "
                              "approves in advance [2].", add_special_tokens=False)
    for k, token in enumerate(answer):
        assert token in copy.allowed(copy.state(tuple(answer[:k])), k), tokenizer.decode(answer[: k + 1])
    done = copy.state(tuple(answer))
    assert done.mode == "free" and done.segments == 2
    assert tokenizer.eos_token_id in copy.allowed(done, len(answer))  # may stop after a whole segment
    assert tokenizer.eos_token_id not in copy.allowed(copy.state(()), 0)  # but not before writing anything
    wrong_cite = tokenizer.encode(" Every employee gets twenty five vacation days per year [2].",
                                  add_special_tokens=False)
    k = len(tokenizer.encode(" Every employee gets twenty five vacation days per year [", add_special_tokens=False))
    assert wrong_cite[k] not in copy.allowed(copy.state(tuple(wrong_cite[:k])), k)
    mid = tokenizer.encode(" employee", add_special_tokens=False)[0]  # no start inside a clause
    assert mid not in copy.allowed(copy.state(()), 0)


@pytest.mark.parametrize("seed_words", [0, 1])
def test_constrained_answers_are_copied_and_cited_unconstrained_ones_are_not(
        llama: Path, tmp_path: Path, seed_words: int) -> None:
    question = QUESTION if not seed_words else "When do deploys happen?"
    free = TransformersGenerator(_config(tmp_path, "none", no_repeat_ngram_size=0), model=llama)
    copy = TransformersGenerator(_config(tmp_path, "copy"), model=llama)
    text = copy.generate(question, _hits(), []).text
    segments = _SEGMENT.findall(text)
    assert segments and "".join(f"{s} [{n}]. " for s, n in segments).strip() == text
    assert all(_copied(s, PASSAGES[int(n) - 1]) for s, n in segments), text
    loose = free.generate(question, _hits(), []).text
    assert not _SEGMENT.findall(loose) or not all(_copied(s, PASSAGES[int(n) - 1]) for s, n in _SEGMENT.findall(loose))
    streamed = list(copy.stream(question, _hits(), []))
    assert streamed[-1].text == text  # streaming answers the same, under the same constraint


def test_tidy_capitalises_each_segment() -> None:
    assert tidy(" approval: your manager approves [2]. every day [1].") == \
        "Approval: your manager approves [2]. Every day [1]."
