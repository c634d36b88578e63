"""Issue 18 item 5: a PDF's chunks keep their pages, and an answer citing one links to ``#page=N``.

A generated quarterly report (known tables on known pages) is ingested through the real ingestion
path (parse worker, chunking, Postgres); a question for one table cell is asked through the real
BotCore, and what the Slack and Discord renderers would post is checked. Real database, real
embedder, extractive answers."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from adapters.discord.render import render_reply
from adapters.slack.blocks import reply_messages
from app.configs import bot_config, engine_config
from bot.core import BotCore
from bot.types import Actor, AskRequest, Location
from rag_engine.engine import RagEngine
from rag_engine.pdf_pages import CHUNK_PAGES
from rag_engine.store import schema as t
from rag_engine.testing.report_pdfs import write_report
from tests.conftest import make_settings

BASE = "https://files.example.com/reports/"


@pytest.fixture()
def reported(engine, db, tmp_path):
    docs = tmp_path / "reports"
    docs.mkdir()
    known = write_report(docs / "q2-report.pdf", 1, seed=5, filler_pages=2)
    settings = make_settings(tmp_path, source_url_base=[f"reports={BASE}"])
    rag = RagEngine(engine_config(settings), db=db, embedder=engine.embedder, generator=None, reranker=None)
    report = rag.ingest([docs], "reports")
    assert not report.skipped and report.documents_written == 1
    return known, rag, BotCore(bot_config(settings), rag)


def test_chunks_keep_their_pages(reported, db):
    known, rag, _ = reported
    with db.connect() as conn:
        title, metadata = conn.execute(select(t.documents.c.title, t.documents.c.metadata)).one()
        n_chunks = len(conn.execute(select(t.chunks.c.id)).all())
    assert title == known.title  # not the accession number in the PDF's metadata
    assert len(metadata[CHUNK_PAGES]) == n_chunks and set(metadata[CHUNK_PAGES]) == set(range(1, known.pages + 1))
    expenses = known.tables[1]
    label, values = expenses.rows[0]
    hits = rag.search(f"{label} expense {expenses.columns[0]}", rag.scope_for(["reports"]), k=3)
    assert hits[0].page == expenses.page and f"{label} — " in hits[0].text and values[0] in hits[0].text


async def test_an_answer_cites_the_page_in_its_link(reported):
    known, _, core = reported
    expenses = known.tables[1]
    label, values = expenses.rows[1]
    reply = await core.ask(AskRequest(Actor("slack", "U1"), Location("slack", "T1", "C1"),
                                      f"How much did {known.company} spend on {label.lower()} in "
                                      f"{expenses.columns[0]}?"))
    assert reply.kind == "answer" and values[0] in reply.text, reply.text
    source = reply.sources[0]
    assert source.url == f"{BASE}q2-report.pdf#page={expenses.page}"
    assert f"(p. {expenses.page})" in source.heading_path
    slack = json.dumps([m.payload() for m in reply_messages(reply)])
    discord = json.dumps([[m.content, [e.to_dict() for e in m.embeds]] for m in render_reply(reply)])
    assert f"<{source.url}|" in slack and f"(<{source.url}>)" in discord


def test_a_broken_pdf_is_skipped_with_its_reason_and_loses_nothing(reported, tmp_path):
    known, rag, _ = reported
    docs = tmp_path / "reports"
    good = (docs / "q2-report.pdf").read_bytes()
    (docs / "q2-report.pdf").write_bytes(good[: len(good) // 3])  # the next version arrives damaged
    (docs / "notes.md").write_text("# Notes\n\nThe audit committee meets every March.\n")
    report = rag.ingest([docs], "reports", prune=True)
    assert [(p.rsplit("/", 1)[-1], "unreadable PDF" in why) for p, why in report.skipped] == [("q2-report.pdf", True)]
    assert report.documents_written == 1 and report.documents_pruned == 0  # the other file, and nothing dropped
    label, values = known.tables[1].rows[0]
    hits = rag.search(f"{label} expense {known.tables[1].columns[0]}", rag.scope_for(["reports"]), k=3)
    assert hits[0].source_uri.endswith("q2-report.pdf") and values[0] in hits[0].text  # the last good version
