"""Issue 20 item 2: tables in quoted passages arrive readable, never as one line of pipes.

Chunks store a table flattened onto one line. The extractive answerer quotes its rows as
"Service: …; SLI: …" lines; a model that copies the flattened table gets it put back on lines of its
own, which Slack shows as one "• *first cell* — Header: cell; …" line per row and Discord as a code
block with aligned columns. Uses the handbook's SLO page.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.discord.table_blocks import tables_as_code
from adapters.slack.mrkdwn import to_mrkdwn
from app.configs import engine_config
from rag_engine.chunking import chunk_document
from rag_engine.engine import RagEngine
from rag_engine.parsing import parse_file
from rag_engine.pipe_tables import find_tables, restore_tables, row_sentences
from rag_engine.values import GeneratedText
from tests.conftest import EXAMPLES, make_settings
from tests.support.replies import PLATFORMS, ask

SLOS = EXAMPLES / "slos.md"
QUESTION = "What is the availability objective for the Public API?"
ROW = ("Service: Public API; SLI: Share of requests that do not return 5xx; Objective: **99.9%**; "
       "Window: 30 days rolling")
TABLE_SYNTAX = ("|---", "| Service |", "| Public API |")


def slo_table_chunk() -> str:
    chunks = chunk_document(parse_file(SLOS, max_bytes=10**6), max_tokens=200, overlap=40)
    return next(c.text for c in chunks if c.heading_path.endswith("Current SLOs"))


@pytest.fixture()
def slo_engine(engine, tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "slos.md").write_bytes(SLOS.read_bytes())
    engine.ingest([tmp_path / "docs"], "default")
    return engine


def test_a_flattened_table_in_a_chunk_is_found_with_its_rows():
    text = slo_table_chunk()
    assert "\n" not in text and "| |---------|" in text  # as stored: one line of pipes
    (table,) = find_tables(text)
    assert table.header == ("Service", "SLI", "Objective", "Window")
    assert len(table.rows) == 5 and row_sentences(table)[0] == ROW
    assert text[table.end:].strip().startswith("Internal tools")  # the prose after the table is not a row


def test_restore_puts_a_flattened_table_back_on_lines():
    flat = "Allowed: | Day | Window | |-----|:------:| | Friday | **09:00 – 12:00** | | Sunday | none | Later text."
    assert restore_tables(flat) == ("Allowed:\n\n| Day | Window |\n|-----|:------:|\n| Friday | **09:00 – 12:00** |\n"
                                    "| Sunday | none |\n\nLater text.")
    assert restore_tables("no table | here") == "no table | here"


def test_extractive_answer_quotes_table_rows_not_table_syntax(slo_engine):
    answer = slo_engine.answer(QUESTION, slo_engine.every_collection())
    assert f"- {ROW} [1]" in answer.text.split("\n")  # a row on a line of its own, cited
    assert not any(s in answer.text for s in TABLE_SYNTAX), answer.text


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_quoted_table_rows_read_as_rows_on_each_platform(platform, slo_engine, tmp_path):
    seen = await ask(platform, slo_engine, tmp_path, QUESTION)
    if platform == "slack":
        assert f"• {ROW.replace('**', '*')} [1]" in seen.text.split("\n")
    else:
        assert f"- {ROW} [1]" in seen.text.split("\n")
    assert not any(s in seen.text for s in TABLE_SYNTAX), seen.text


class TableCopyingModel:
    """A model that answers with the table exactly as the passage shows it: flattened, one line."""

    name = "table-copier"

    def generate(self, question, hits, history):
        n, hit = next((i, h) for i, h in enumerate(hits, start=1) if find_tables(h.text))
        table = find_tables(hit.text)[0]
        text = f"The current SLOs are: {hit.text[table.start:table.end]} [{n}]"
        return GeneratedText(text=text, model=self.name, passages=tuple(h.text for h in hits))


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_a_table_in_a_generated_answer_is_laid_out_for_each_platform(platform, db, embedder, scratch_dir,
                                                                         tmp_path):
    settings = make_settings(scratch_dir, min_grounded_fraction=0.0)  # the layout is under test, not grounding
    engine = RagEngine(engine_config(settings), db=db, embedder=embedder, generator=TableCopyingModel(), reranker=None)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "slos.md").write_bytes(SLOS.read_bytes())
    engine.ingest([tmp_path / "docs"], "default")

    seen = await ask(platform, engine, tmp_path, "What are the current SLOs for each service?")

    lines = seen.text.split("\n")
    if platform == "slack":
        assert ("• *Public API* — SLI: Share of requests that do not return 5xx; Objective: *99.9%*; "
                "Window: 30 days rolling") in lines
        assert ("• *Webhooks* — SLI: Share delivered within 60 seconds; Objective: *99%*; "
                "Window: 30 days rolling") in lines
    else:
        start = lines.index("```")
        header, rule, first = lines[start + 1:start + 4]
        assert header.split() == ["Service", "SLI", "Objective", "Window"] and set(rule) == {"-", " "}
        assert first.startswith("Public API  Share of requests")
        # columns line up: every cell of the Objective column starts where its header does
        column = header.index("Objective")
        assert [line[column:].split("  ")[0] for line in lines[start + 3:] if line[:1].strip()][:2] == [
            "99.9%", "< 250 ms"]
    assert not any(s in seen.text for s in TABLE_SYNTAX), seen.text


def test_renderers_lay_out_a_markdown_table():
    table = "| Step | Deadline |\n|------|----------|\n| Draft | **5 business days** |\n| Review | 10 days |"
    assert to_mrkdwn(table) == ["• *Draft* — Deadline: *5 business days*\n• *Review* — Deadline: 10 days"]
    assert tables_as_code(f"Deadlines:\n\n{table}\n\nThat's all.") == (
        "Deadlines:\n\n```\nStep    Deadline\n------  ---------------\nDraft   5 business days\n"
        "Review  10 days\n```\n\nThat's all.")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="|-: \nab*`", max_size=200))
def test_any_pipes_and_dashes_are_handled(text):
    """Whatever a document or a model writes: tables found in order, rows as wide as the header, and
    every renderer copes (an empty column once crashed the Discord layout)."""
    end = 0
    for table in find_tables(text):
        assert end <= table.start < table.end <= len(text) and text[table.start] == "|"
        assert all(len(row) == len(table.header) for row in table.rows)
        end = table.end
    assert restore_tables(restore_tables(text)) == restore_tables(text)
    tables_as_code(text)
    to_mrkdwn(text)
