"""Shared pieces of the console tests: a database with interactions, votes, a pending correction and two
LoRA adapters (v2 active, replacing v1), a console app over it, and signed-in sessions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from app.configs import bot_config, engine_config
from app.console import ConsoleConfig, build_console_app
from app.console.sessions import SessionStore
from bot import console_token
from rag_engine.feedback import record_correction, record_vote
from rag_engine.interactions import InteractionContext, log_interaction
from rag_engine.training import registry
from rag_engine.values import Answer, AnswerStatus
from tests.conftest import make_settings

SECRET = "console-test-secret-0123456789"
ADMIN = ("slack", "UADMIN")


@dataclass(frozen=True)
class Seeded:
    answered: int  # an answer with a 👍
    fallback: int  # an extractive fallback with a 👎 and a pending correction
    correction: int  # the pending correction
    versions: tuple[str, str]  # v1 (retired), v2 (active, previous v1)


def console_settings(data_dir: Path, **overrides):
    return make_settings(data_dir, console_secret=SecretStr(SECRET), admin_user_ids=["slack:UADMIN"], **overrides)


def seed(db, settings, adapter_root: Path) -> Seeded:
    where = InteractionContext("slack", "T1", "C-HELP", None, "slack:U1")
    answered = log_interaction(db, where, "How many vacation days do I get?", Answer(
        "Every employee gets twenty five days of paid vacation per year [1].", generator="smollm2",
        passages=["Every employee gets twenty five days of paid vacation per year."]), [])
    fallback = log_interaction(db, InteractionContext("discord", "G1", "C-OPS", None, "discord:7"),
                               "When are production deploys?", Answer(
        "Production deploys happen on Tuesday and Thursday [1].", status=AnswerStatus.FALLBACK,
        fallback_reason="grounding: 3 of 4 sentences unsupported",
        passages=["Production deploys happen on Tuesday and Thursday."]), [])
    record_vote(db, answered, "slack:U1", 1)
    record_vote(db, fallback, "discord:7", -1, "too vague")
    correction = record_correction(db, fallback, "discord:7", "Production deploys are on Tuesdays and Thursdays, "
                                   "after the staging check.", is_admin=False)
    base = registry.base_model_id(engine_config(settings).generation)
    versions = []
    for n, (nll, f1) in enumerate([(2.10, 0.41), (1.85, 0.47)], start=1):
        version = registry.next_version(db)
        path = adapter_root / version
        path.mkdir(parents=True)
        (path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}))
        registry.register(db, version=version, method="lora", base_model=base, path=path,
                          data_snapshot={"train": 10 * n, "heldout": 4},
                          metrics={"candidate": {"nll": nll, "token_f1": f1}, "base": {"nll": 2.4}})
        registry.activate(db, version, base_model=base)
        versions.append(version)
    rejected = registry.next_version(db)  # a candidate the gate turned down: on the chart, never activated
    (adapter_root / rejected).mkdir(parents=True)
    (adapter_root / rejected / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}))
    registry.register(db, version=rejected, method="lora", base_model=base, path=adapter_root / rejected,
                      data_snapshot={"train": 26, "heldout": 4}, status="rejected",
                      metrics={"candidate": {"nll": 1.91, "token_f1": 0.44}, "active": {"nll": 1.85},
                               "base": {"nll": 2.4}})
    return Seeded(answered, fallback, correction, (versions[0], versions[1]))


def console_app(db, settings, sessions: SessionStore | None = None):
    return build_console_app(db, ConsoleConfig.from_settings(settings), engine_config(settings), bot_config(settings),
                             sessions=sessions)


def link_token(platform: str = ADMIN[0], user_id: str = ADMIN[1], grounds: str = "user id", ttl_s: float = 300,
               now: float | None = None) -> str:
    token, _ = console_token.issue(SECRET, platform=platform, user_id=user_id, display_name="Ada",
                                   grounds=grounds, ttl_s=ttl_s, now=now)
    return token
