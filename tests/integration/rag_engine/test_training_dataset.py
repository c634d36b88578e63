"""The training set: which feedback becomes an example, collection rules, dedup,
split, export/import (real database, extractive engine: no model needed)."""

from __future__ import annotations

import dataclasses
import json

import pytest
from typer.testing import CliRunner

from app.configs import engine_config
from rag_engine.feedback import record_correction, record_vote, review_correction
from rag_engine.interactions import log_interaction, record_refinement
from rag_engine.scope import CollectionScope
from rag_engine.store import Store
from rag_engine.training.curated import import_lines
from rag_engine.training.dataset import Passage, TrainingExample, build_training_set, read_jsonl, split, write_jsonl
from tests.support.training import CTX, DOCS, SECRET_DOC, one_torch_thread

__all__ = ["one_torch_thread"]


@pytest.fixture()
def docs(engine):
    engine.ingest_records(DOCS, "handbook")
    engine.ingest_records([SECRET_DOC], "secret", visibility="private")
    return engine


def _ask(engine, question, collections=("handbook",)) -> int:
    answer = engine.answer(question, engine.scope_for(list(collections)))
    return log_interaction(engine.db, CTX, question, answer, engine.collection_ids(list(collections)))


def _retrieve(engine):
    return lambda q, ids: engine.retriever.search(q, CollectionScope.of(ids), 3, None)


def _all(ts):
    return {e.question: e for e in ts.train + ts.heldout}


def _approved(db, interaction_id: int, user_key: str, text: str) -> int:
    """A user's correction, then an admin's approval (before it, it is no training data)."""
    correction_id = record_correction(db, interaction_id, user_key, text, is_admin=False)
    review_correction(db, correction_id, approve=True, reviewer="slack:UADMIN")
    return correction_id


def test_votes_and_corrections_make_examples(docs, settings):
    db = docs.db
    up = _ask(docs, "How many vacation days do I get per year?")
    record_vote(db, up, "u1", 1)
    record_vote(db, up, "u2", 1)
    record_vote(db, up, "u3", -1)  # net positive
    corrected = _ask(docs, "When is the office open?")
    record_vote(db, corrected, "u1", 1)
    _approved(db, corrected, "u2", "From eight to six [1].")
    admin_wins = _ask(docs, "How do I book travel?")
    record_correction(db, admin_wins, "admin", "Through the travel desk [1].", is_admin=True)
    _approved(db, admin_wins, "u9", "Ask a friend.")  # later, approved, but not an admin's
    record_correction(db, admin_wins, "u8", "Ask the travel desk.", is_admin=False)  # never approved
    down = _ask(docs, "Where are passwords stored?")
    record_vote(db, down, "u1", -1)
    tie = _ask(docs, "Can I paste secrets into chat?")
    record_vote(db, tie, "u1", -1)
    record_vote(db, tie, "u2", 1)
    _ask(docs, "On which days are production deploys?")  # no feedback at all

    ts = build_training_set(db, engine_config(settings).training)
    got = _all(ts)
    assert set(got) == {"How many vacation days do I get per year?", "When is the office open?",
                        "How do I book travel?"}
    upvoted = got["How many vacation days do I get per year?"]
    assert upvoted.origin == "upvote" and upvoted.source_id == up and upvoted.passages
    assert "twenty five days" in " ".join(p.text for p in upvoted.passages)
    assert got["When is the office open?"].answer == "From eight to six [1]."  # correction beats the answer
    assert got["When is the office open?"].origin == "correction"
    assert got["How do I book travel?"].answer == "Through the travel desk [1]."
    assert got["How do I book travel?"].origin == "admin_correction"
    assert ts.excluded["downvoted"] == 1 and ts.excluded["no positive feedback"] == 1  # kept for reporting
    assert ts.excluded["correction awaiting review"] == 1
    assert ts.snapshot["train"] + ts.snapshot["heldout"] == 3 and len(ts.snapshot["sha256"]) == 64


def test_a_vote_on_the_quoted_text_is_not_a_vote_on_the_models_answer_that_replaced_it(docs, settings):
    """Answer-first: a 👍 given before the refinement rated the quote, which the log no longer holds."""
    db = docs.db
    scope = docs.scope_for(["handbook"])
    early, late = "How many vacation days do I get per year?", "When is the office open?"
    ids = {}
    for question in (early, late):
        first = docs.answer(question, scope)
        ids[question] = log_interaction(db, CTX, question, first, docs.collection_ids(["handbook"]))
    record_vote(db, ids[early], "u1", 1)  # on the quote, still shown
    for question in (early, late):
        first = docs.answer(question, scope)
        refined = dataclasses.replace(first, text=f"The model's answer to {question} [1].", generator="echo-model",
                                      fallback_code=None, fallback_reason=None)
        assert refined.generated and record_refinement(db, ids[question], refined)
    record_vote(db, ids[late], "u1", 1)  # on the model's answer

    ts = build_training_set(db, engine_config(settings).training)
    got = _all(ts)
    assert set(got) == {late}
    assert got[late].answer.startswith("The model's answer to") and got[late].origin == "upvote"
    assert ts.excluded["voted before the model's answer replaced the quoted one"] == 1
    record_vote(db, ids[early], "u2", 1)  # another user, on the model's answer
    assert set(_all(build_training_set(db, engine_config(settings).training))) == {early, late}
    assert build_training_set(db, engine_config(settings).training).excluded[
        "voted before the model's answer replaced the quoted one"] == 0  # u1's stale vote hides behind u2's


def test_the_same_vote_repeated_on_the_models_answer_counts_for_it(docs, settings):
    """A 👍 on the quote, then the same 👍 again once the model's answer replaced it: it now rates that answer."""
    db = docs.db
    question = "How many vacation days do I get per year?"
    first = docs.answer(question, docs.scope_for(["handbook"]))
    interaction = log_interaction(db, CTX, question, first, docs.collection_ids(["handbook"]))
    record_vote(db, interaction, "u1", 1)
    refined = dataclasses.replace(first, text="The model's answer [1].", generator="echo-model",
                                  fallback_code=None, fallback_reason=None)
    assert record_refinement(db, interaction, refined)
    assert set(_all(build_training_set(db, engine_config(settings).training))) == set()
    outcome = record_vote(db, interaction, "u1", 1)
    assert not outcome.created and not outcome.changed
    got = _all(build_training_set(db, engine_config(settings).training))
    assert got[question].answer == "The model's answer [1]." and got[question].origin == "upvote"


def test_private_collection_interactions_never_reach_the_exported_set(docs, settings, tmp_path):
    db = docs.db
    public = _ask(docs, "How do I book travel?")
    _approved(db, public, "u1", "Through the travel desk [1].")
    private = _ask(docs, "What is the staff engineer salary band?", ["secret"])
    record_correction(db, private, "u1", "It is confidential [1].", is_admin=True)
    mixed = _ask(docs, "Who reviews salary bands and where do I book travel?", ["handbook", "secret"])
    record_vote(db, mixed, "u1", 1)

    out = tmp_path / "train.jsonl"
    n = write_jsonl(build_training_set(db, engine_config(settings).training), out)
    text = out.read_text()
    assert n == 1 and "travel desk" in text
    assert "confidential" not in text and "compensation committee" not in text and "salary" not in text.lower()

    # allowing training on the private collection lets its examples in
    Store(db).collections.update("secret", allow_training=True)
    allowed = build_training_set(db, engine_config(settings).training)
    assert "confidential" in json.dumps([e.to_json() for e in allowed.train + allowed.heldout])


def test_duplicate_questions_keep_the_strongest_example(docs, settings):
    db = docs.db
    first = _ask(docs, "How do I book travel?")
    record_vote(db, first, "u1", 1)
    second = _ask(docs, "how do I book travel")  # same question, normalized
    _approved(db, second, "u2", "Through the travel desk [1].")
    third = _ask(docs, "How do I book travel?!")
    record_vote(db, third, "u3", 1)
    ts = build_training_set(db, engine_config(settings).training)
    assert len(ts) == 1 and (ts.train + ts.heldout)[0].answer == "Through the travel desk [1]."
    assert ts.excluded["duplicate question"] == 2


def test_split_is_deterministic_stable_and_never_empty():
    def ex(i):
        return TrainingExample(f"question number {i}?", f"answer {i}", (Passage("t", "", "p"),), "curated", i, (1,))

    examples = [ex(i) for i in range(60)]
    train, held = split(examples, 0.25)
    assert len(held) + len(train) == 60 and 5 <= len(held) <= 25
    _, again_held = split(list(reversed(examples)), 0.25)
    assert [e.key for e in again_held] == [e.key for e in held]
    grown_train, grown_held = split([*examples, *[ex(i) for i in range(60, 90)]], 0.25)
    assert {e.key for e in held} <= {e.key for e in grown_held}  # adding data never moves old examples
    assert not {e.key for e in grown_train} & {e.key for e in grown_held}
    two_train, two_held = split([ex(1), ex(2)], 0.01)
    assert len(two_train) == 1 and len(two_held) == 1


def test_imported_pairs_enter_the_training_set_with_retrieved_passages(docs, settings):
    db = docs.db
    lines = [
        json.dumps({"question": "How long until expenses are paid back?", "answer": "Within thirty days [1].",
                    "source": "faq", "collection": "handbook"}),
        json.dumps({"question": "Who approves hotels?", "answer": "Up to 150 euros needs no review [1]."}),
        json.dumps({"question": "What is my band?", "answer": "Confidential [1].", "collection": "secret"}),
        "not json",
        json.dumps({"question": "", "answer": "x"}),
        json.dumps({"question": "q", "answer": "a", "collection": "nope"}),
        json.dumps({"question": "How long until expenses are paid back?", "answer": "Within thirty days [1].",
                    "collection": "handbook"}),  # duplicate
    ]
    report = import_lines(db, lines)
    assert report.added == 3 and report.duplicates == 1
    assert [n for n, _ in report.errors] == [4, 5, 6]
    assert "not valid JSON" in report.errors[0][1] and "'question' is missing" in report.errors[1][1]
    assert "no collection named 'nope'" in report.errors[2][1]

    without_retriever = build_training_set(db, engine_config(settings).training)
    assert len(without_retriever) == 0 and without_retriever.excluded["curated: no retriever"] == 3

    ts = build_training_set(db, engine_config(settings).training, retrieve=_retrieve(docs))
    got = _all(ts)
    assert set(got) == {"How long until expenses are paid back?", "Who approves hotels?"}
    assert ts.excluded["collection does not allow training"] == 1  # the private one
    expenses = got["How long until expenses are paid back?"]
    assert expenses.origin == "curated" and "thirty days" in " ".join(p.text for p in expenses.passages)
    secret_id = docs.collection_ids(["secret"])[0]
    assert all(secret_id not in e.collection_ids for e in got.values())  # unscoped retrieval skips private text


def test_export_and_import_commands(docs, settings, scratch_dir, tmp_path):
    from app.cli import app

    db = docs.db
    record_correction(db, _ask(docs, "How do I book travel?"), "u1", "Through the travel desk [1].", is_admin=True)
    qa = tmp_path / "faq.jsonl"
    qa.write_text(json.dumps({"question": "When is the office open?", "answer": "Eight to six [1]."}) + "\n"
                  + "{broken\n")
    env = {"RAGBOT_DATA_DIR": str(scratch_dir), "RAGBOT_GENERATOR_BACKEND": "extractive"}
    runner = CliRunner()
    imported = runner.invoke(app, ["feedback", "import", str(qa), "--collection", "handbook"], env=env)
    assert imported.exit_code == 0, imported.output
    assert "imported 1 examples" in imported.output and "line 2" in imported.output

    out = tmp_path / "export.jsonl"
    exported = runner.invoke(app, ["feedback", "export", "--out", str(out)], env=env)
    assert exported.exit_code == 0, exported.output
    back = read_jsonl(out)
    questions = {e.question for e in back.train + back.heldout}
    assert questions == {"How do I book travel?", "When is the office open?"}
    assert all(json.loads(line)["split"] in ("train", "heldout") for line in out.read_text().splitlines())

    missing = runner.invoke(app, ["feedback", "import", str(tmp_path / "nope.jsonl")], env=env)
    assert missing.exit_code == 1 and "no such file" in missing.output


def _topic(i: int) -> TrainingExample:
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo",
             "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango"]
    word = words[i]
    return TrainingExample(f"What does {word} mean?", f"{word.title()} means code {word}{i} [1].",
                           (Passage(word.title(), "", f"{word.title()} means code {word}{i} here."),), "curated", i,
                           (1,))


def test_negatives_pair_a_question_with_unrelated_passages_and_the_abstention_target():
    from rag_engine.generation.abstain import ABSTAIN_TEXT, is_abstention
    from rag_engine.training.dataset import negative_examples

    examples = [_topic(i) for i in range(20)]
    negatives = negative_examples(examples, 0.15, seed=13)
    assert len(negatives) == 4  # 15 % of the 24 examples then trained on
    own = {e.question: e.passages for e in examples}
    for negative in negatives:
        assert negative.origin == "negative" and negative.answer == ABSTAIN_TEXT and is_abstention(negative.answer)
        assert negative.passages in own.values() and negative.passages != own[negative.question]
        assert not negative.reviewed  # never held out, never judges a candidate
    assert len({n.question for n in negatives}) == 4
    again = negative_examples(list(reversed(examples)), 0.15, seed=13)
    assert [(n.question, n.passages) for n in again] == [(n.question, n.passages) for n in negatives]  # seeded
    assert negative_examples(examples, 0.15, seed=14) != negatives
    assert negative_examples(examples, 0.0, seed=13) == [] and negative_examples(examples[:1], 0.5, seed=13) == []


def test_negatives_never_borrow_passages_that_state_the_answer():
    from rag_engine.training.dataset import negative_examples

    examples = [_topic(i) for i in range(4)]
    # every other example's passage also states the alpha rule: alpha has no unrelated donor
    examples = [examples[0], *[TrainingExample(e.question, e.answer,
                                               (Passage("", "", e.passages[0].text + " Alpha means code alpha0."),),
                                               "curated", e.source_id, (1,)) for e in examples[1:]]]
    negatives = negative_examples(examples, 0.5, seed=13)
    assert negatives and "What does alpha mean?" not in {n.question for n in negatives}


def test_built_training_set_trains_on_negatives_and_holds_out_none(docs, scratch_dir):
    from tests.conftest import make_settings
    from tests.support.training import QA

    settings = make_settings(scratch_dir, train_negative_share=0.3, train_heldout_fraction=0.2)
    lines = [json.dumps({"question": q, "answer": a, "collection": "handbook"}) for q, a in QA[:10]]
    assert import_lines(docs.db, lines).added == 10
    one_hit = lambda q, ids: docs.retriever.search(q, CollectionScope.of(ids), 1, None)  # noqa: E731 - a test retriever
    ts = build_training_set(docs.db, engine_config(settings).training, retrieve=one_hit)
    negatives = [e for e in ts.train if e.origin == "negative"]
    positives = {e.question: e for e in ts.train if e.origin != "negative"}
    assert negatives and all(e.origin != "negative" for e in ts.heldout)
    assert len(negatives) == round(len(positives) * 0.3 / 0.7)
    for negative in negatives:
        assert negative.question in positives and negative.passages != positives[negative.question].passages
    assert ts.snapshot["origins"]["negative"] == len(negatives) and ts.snapshot["train"] == len(ts.train)
