"""Shared material for the access, adversarial, injection, limits and fault tests:
a small public corpus (part of the sample handbook), a private corpus with
distinctive facts, chat locations and actors, and helpers to build a bot core."""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import select

from app.configs import bot_config
from bot.core import BotCore
from bot.types import Actor, AskRequest, Location
from rag_engine.store import schema as t
from tests.conftest import EXAMPLES, make_settings

PUBLIC_FILES = ("expenses-policy.html", "pto-and-leave.md", "security-basics.md", "incident-response.md")

PRIVATE_DOCS = {
    "compensation-bands.md": """---
title: Compensation Bands 2027
---
# Compensation Bands 2027

## Engineering levels

Level L7 staff engineers earn a base salary between $212,000 and $248,000 per year.
Level L6 senior engineers earn between $171,000 and $199,000. Salary band data is confidential to the People team.

## Retention

The Nightingale retention bonus pays 30% of base salary over two years to engineers who stay through the merger.
""",
    "project-nightingale.md": """---
title: Project Nightingale
---
# Project Nightingale

Project Nightingale is the confidential plan to acquire Kestrel Robotics for $41 million in cash.
The deal closes on March 3 and only the deal team may discuss Kestrel with anyone outside it.

## Integration

After closing, Kestrel's forty engineers join the robotics group under Dana Okafor.
""",
    "incident-2027-04.md": """---
title: Incident 2027-04 Billing Replica
---
# Incident 2027-04 Billing Replica

On April 9 an attacker used a leaked deploy key with key id DK-7731 to read the billing replica.
The breach exposed 1,204 customer invoices before the key was revoked at 14:20 UTC.

## Follow-up

Rotate deploy keys every 30 days through the vault path secret/deploy/dk-7731 and page the security lead.
""",
}

# Strings that occur only in the private documents (checked where the question does not contain them).
PRIVATE_MARKERS = ("212,000", "248,000", "171,000", "199,000", "Nightingale", "Kestrel", "41 million",
                   "DK-7731", "dk-7731", "1,204", "billing replica", "retention bonus", "Dana Okafor",
                   "Compensation Bands", "Incident 2027-04", "14:20 UTC", "People team")

PUBLIC = Location("slack", "T1", "C-general")
GRANTED = Location("slack", "T1", "C-hr")
OTHER_WORKSPACE = Location("slack", "T2", "C-hr")
DISCORD = Location("discord", "G1", "900")
DM = Location("slack", "T1", "D-alice", is_dm=True)

ADMIN = Actor("slack", "UADMIN", "admin")
ALICE = Actor("slack", "UALICE", "alice")
MALLORY = Actor("slack", "UMALLORY", "mallory")


def write_public(root: Path, files=PUBLIC_FILES) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name in files:
        shutil.copy(EXAMPLES / name, root / name)
    return root


def write_private(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, body in PRIVATE_DOCS.items():
        (root / name).write_text(body)
    return root


def ingest_corpora(engine, tmp_path: Path, public_files=PUBLIC_FILES) -> tuple[int, int]:
    """Public handbook pages in "handbook", private documents in "hr" (private); returns their ids."""
    engine.ingest([write_public(tmp_path / "public", public_files)], "handbook")
    report = engine.ingest([write_private(tmp_path / "private")], "hr", visibility="private")
    assert report.documents_written == len(PRIVATE_DOCS) and not report.skipped
    handbook_id, hr_id = engine.collection_ids(["handbook", "hr"])
    return handbook_id, hr_id


def core_for(engine, tmp_path: Path, **overrides) -> BotCore:
    settings = make_settings(tmp_path, **{"admin_user_ids": ["slack:UADMIN"], **overrides})
    return BotCore(bot_config(settings), engine)


def ask(actor: Actor, location: Location, text: str, **kwargs) -> AskRequest:
    return AskRequest(actor, location, text, **kwargs)


def private_document_ids(db, collection_id: int) -> set[int]:
    with db.connect() as conn:
        return set(conn.execute(select(t.documents.c.id).where(t.documents.c.collection_id == collection_id))
                   .scalars())


def leaked_markers(text: str, question: str) -> list[str]:
    """Private markers in ``text`` that the asker did not type themselves."""
    low_q = question.lower()
    return [m for m in PRIVATE_MARKERS if m.lower() in text.lower() and m.lower() not in low_q]
