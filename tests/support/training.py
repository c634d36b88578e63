"""Shared pieces for the feedback / training / worker tests: a tiny model, a small
handbook given as records, questions with reference answers, and helpers that
go through the real API (engine, interaction log, feedback)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.configs import engine_config
from rag_engine.engine import RagEngine
from rag_engine.feedback import record_correction, record_vote, review_correction
from rag_engine.interactions import InteractionContext, log_interaction
from rag_engine.values import Record
from tests.conftest import make_settings

DOCS = [
    Record("mem://vacation", "Vacation policy", "Every employee gets twenty five days of paid vacation per year. "
           "Vacation requests go to your manager at least two weeks ahead."),
    Record("mem://carryover", "Vacation carry over", "Unused vacation days carry over to the next year, up to five "
           "days. Sick leave is separate from vacation and needs a doctor's note after three days."),
    Record("mem://remote", "Remote work", "Remote work is allowed two days a week. The office is open from eight "
           "to six."),
    Record("mem://expenses", "Expenses", "Expenses are reimbursed within thirty days when you submit the receipt "
           "in the finance portal."),
    Record("mem://travel", "Travel", "Travel must be booked through the travel desk. Hotels up to one hundred "
           "and fifty euros per night are approved without review."),
    Record("mem://deploy", "Deploy process", "Open a pull request, get one review, merge to main, and the "
           "pipeline deploys to staging. Production deploys happen on Tuesday and Thursday."),
    Record("mem://oncall", "On call", "On call engineers answer pages within fifteen minutes. Incidents get a "
           "postmortem within a week."),
    Record("mem://security", "Security", "Passwords are stored in the password manager; never paste secrets "
           "into chat. Security questions go to the security team channel."),
]

SECRET_DOC = Record("mem://salaries", "Salary bands", "The salary band for a staff engineer is confidential and "
                    "reviewed every March by the compensation committee.")

# (question, reference answer): answers share the handbook's phrasing, so a
# model that learns from some of them predicts the held-out ones better.
QA = [
    ("How many vacation days do I get per year?",
     "Every employee gets twenty five days of paid vacation per year [1]."),
    ("When do vacation requests go to my manager?",
     "Vacation requests go to your manager at least two weeks ahead [1]."),
    ("Do unused vacation days carry over?", "Unused vacation days carry over to the next year, up to five days [1]."),
    ("When do I need a doctor's note for sick leave?", "Sick leave needs a doctor's note after three days [1]."),
    ("How many days a week can I work remotely?", "Remote work is allowed two days a week [1]."),
    ("When is the office open?", "The office is open from eight to six [1]."),
    ("How fast are expenses reimbursed?",
     "Expenses are reimbursed within thirty days when you submit the receipt [1]."),
    ("Where do I submit expense receipts?", "You submit the receipt in the finance portal [1]."),
    ("How do I book travel?", "Travel must be booked through the travel desk [1]."),
    ("Which hotels are approved without review?",
     "Hotels up to one hundred and fifty euros per night are approved without review [1]."),
    ("How do I get code to staging?",
     "Open a pull request, get one review, merge to main, and the pipeline deploys to staging [1]."),
    ("On which days are production deploys?", "Production deploys happen on Tuesday and Thursday [1]."),
    ("How quickly must on call engineers answer pages?", "On call engineers answer pages within fifteen minutes [1]."),
    ("When is a postmortem due after an incident?", "Incidents get a postmortem within a week [1]."),
    ("Where are passwords stored?", "Passwords are stored in the password manager [1]."),
    ("Can I paste secrets into chat?", "No, never paste secrets into chat [1]."),
    ("Where do security questions go?", "Security questions go to the security team channel [1]."),
    ("Who approves my vacation?", "Vacation requests go to your manager [1]."),
]

CTX = InteractionContext("slack", "T1", "C1", None, "slack:T1:U1")


def tiny_settings(data_dir: Path, model: Path, adapters: Path, **overrides):
    base = {
        "generator_backend": "transformers", "generator_model": str(model), "generator_device": "cpu",
        "max_new_tokens": 6, "adapter_dir": adapters, "adapter_poll_s": 0.2,
        "train_learning_rate": 3e-2, "train_epochs": 8, "train_batch_size": 4, "train_max_tokens": 384, "lora_r": 8,
        "lora_alpha": 16, "lora_dropout": 0.0, "train_heldout_fraction": 0.25, "eval_generate_max": 2,
        "promotion_margin": 0.02, "worker_heartbeat_s": 0.2, "min_relevance": 0.1, "search_k": 2,
        "min_grounded_fraction": 0.0,  # a tiny random model cannot write grounded text; the adapter path is under test
    }
    base.update(overrides)
    return make_settings(data_dir, **base)


def open_engine(settings, db, embedder) -> RagEngine:
    engine = RagEngine(engine_config(settings), db=db, embedder=embedder, reranker=None)
    engine.ingest_records(DOCS, "handbook")
    return engine


def ask_and_correct(engine: RagEngine, qa=QA, collection: str = "handbook", ctx: InteractionContext = CTX,
                    admin: bool = False, approve: bool = True) -> list[int]:
    """Ask each question through the engine, log it, and correct it with the reference answer
    (a user's correction is then approved by an admin unless ``approve`` is false)."""
    ids = []
    collection_ids = engine.collection_ids([collection])
    for question, reference in qa:
        answer = engine.answer(question, engine.scope_for([collection]))
        interaction_id = log_interaction(engine.db, ctx, question, answer, collection_ids)
        correction_id = record_correction(engine.db, interaction_id, ctx.user_key, reference, is_admin=admin)
        if approve and not admin:
            review_correction(engine.db, correction_id, approve=True, reviewer="slack:T1:UADMIN")
        ids.append(interaction_id)
    return ids


def ask_and_vote(engine: RagEngine, questions, vote: int, collection: str = "handbook",
                 ctx: InteractionContext = CTX) -> list[int]:
    ids = []
    for question in questions:
        answer = engine.answer(question, engine.scope_for([collection]))
        interaction_id = log_interaction(engine.db, ctx, question, answer, engine.collection_ids([collection]))
        record_vote(engine.db, interaction_id, ctx.user_key, vote)
        ids.append(interaction_id)
    return ids


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    from rag_engine.testing.tiny_models import make_tiny_llama

    return make_tiny_llama(tmp_path_factory.mktemp("tiny-train") / "llama", max_positions=512)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models gain nothing from intra-op threads, and on a busy machine the
    threads' spin-waiting makes them several times slower: use one, then restore."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
