"""Ingestion against the real embedded PostgreSQL: idempotency, change, prune, broken files."""

from __future__ import annotations

import shutil

from sqlalchemy import func, select, text

from rag_engine.store import schema as t


def _count(db, table) -> int:
    with db.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def _write_docs(root):
    root.mkdir(parents=True, exist_ok=True)
    (root / "vpn.md").write_text("---\ntitle: VPN\n---\n# VPN\n\nRequest VPN access in #it-help. "
                                 "You get a WireGuard profile within one business day.\n")
    (root / "expenses.txt").write_text("EXPENSES\n========\n\nTeam dinners are capped at $75 per person. "
                                       "File receipts in Expensify within 30 days.\n")
    (root / "notes.html").write_text("<html><head><title>Oncall</title></head><body><h1>Oncall</h1>"
                                     "<p>The on-call rotation changes every Monday at 10:00.</p></body></html>")


def test_second_ingest_writes_nothing(engine, db, tmp_path):
    _write_docs(tmp_path / "docs")
    first = engine.ingest([tmp_path / "docs"], "team")
    assert (first.files, first.documents_written, first.skipped) == (3, 3, [])
    chunks = _count(db, t.chunks)
    assert chunks == first.chunks_written > 0
    with db.connect() as conn:
        xmin_before = conn.execute(text("SELECT sum(xmin::text::bigint) FROM chunks")).scalar()

    second = engine.ingest([tmp_path / "docs"], "team")
    assert (second.documents_written, second.documents_unchanged, second.chunks_written, second.embedded) == \
        (0, 3, 0, 0)
    with db.connect() as conn:
        xmin_after = conn.execute(text("SELECT sum(xmin::text::bigint) FROM chunks")).scalar()
    assert xmin_after == xmin_before  # no row was rewritten
    assert _count(db, t.chunks) == chunks


def test_changed_file_replaces_its_chunks(engine, db, tmp_path):
    docs = tmp_path / "docs"
    _write_docs(docs)
    engine.ingest([docs], "team")
    (docs / "vpn.md").write_text("---\ntitle: VPN\n---\n# VPN\n\nVPN access now comes from the Access Portal.\n")
    report = engine.ingest([docs], "team")
    assert (report.documents_written, report.documents_unchanged) == (1, 2)
    with db.connect() as conn:
        texts = [r[0] for r in conn.execute(text(
            "SELECT c.text FROM chunks c JOIN documents d ON d.id = c.document_id WHERE d.title = 'VPN'"))]
    assert texts and all("Access Portal" in x for x in texts)
    assert not any("WireGuard" in x for x in texts)


def test_prune_deletes_documents_whose_files_are_gone(engine, db, tmp_path):
    docs = tmp_path / "docs"
    _write_docs(docs)
    engine.ingest([docs], "team")
    (docs / "notes.html").unlink()
    kept = engine.ingest([docs], "team")  # without --prune nothing is deleted
    assert kept.documents_pruned == 0 and _count(db, t.documents) == 3
    pruned = engine.ingest([docs], "team", prune=True)
    assert pruned.documents_pruned == 1
    with db.connect() as conn:
        titles = {r[0] for r in conn.execute(select(t.documents.c.title))}
        orphans = conn.execute(text("SELECT count(*) FROM chunks c LEFT JOIN documents d ON d.id = c.document_id "
                                    "WHERE d.id IS NULL")).scalar()
    assert titles == {"VPN", "EXPENSES"} and orphans == 0


def test_broken_file_is_skipped_and_the_rest_ingested(engine, tmp_path):
    docs = tmp_path / "docs"
    _write_docs(docs)
    (docs / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog")
    (docs / "binary.md").write_bytes(b"\x00\x01\x02\x03" * 100)
    (docs / "latin1.txt").write_bytes(b"caf\xe9")
    report = engine.ingest([docs, tmp_path / "missing"], "team")
    assert report.documents_written == 3
    reasons = dict(report.skipped)
    assert {p.rsplit("/", 1)[-1] for p in reasons} == {"broken.pdf", "binary.md", "latin1.txt", "missing"}
    assert any("PDF" in r for r in reasons.values())
    assert any("UTF-8" in r for r in reasons.values())


def test_unchanged_chunk_texts_reuse_embeddings(engine, tmp_path):
    docs = tmp_path / "docs"
    _write_docs(docs)
    shutil.copy(docs / "vpn.md", docs / "vpn-copy.md")
    report = engine.ingest([docs], "team")
    # the copy has the same chunk text: embedded once
    assert report.embedded == report.chunks_written - 1


def test_records_ingest_and_prune(engine):
    from rag_engine.values import Record

    recs = [Record(f"beir:{i}", f"Title {i}", f"Passage number {i} about subject {i}.") for i in range(5)]
    assert engine.ingest_records(recs, "beir").documents_written == 5
    again = engine.ingest_records(recs[:3], "beir", prune=True)
    assert (again.documents_unchanged, again.documents_pruned, again.embedded) == (3, 2, 0)
