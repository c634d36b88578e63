"""Web source sync throughput: a generated site (fixed-seed paragraphs) served locally, synced into
a fresh embedded database twice — the first sync downloads, extracts, chunks and embeds every
page; the second, with nothing changed, must download no page body (all 304s).

    .venv/bin/python benchmarks/source_sync.py [--pages 2000] [--backend torch|onnx-int8]
    .venv/bin/python benchmarks/source_sync.py --pages 2000 --crawl-only   # connector alone, no database

The site is served by another process (so its work does not share this process's GIL) and counts
the page bodies it sent. Time shares come from what the connector reports (HTTP time; link,
canonical and main-content extraction) and from a timer around the embedder; "other" is the rest
of the sync (Markdown parsing, chunking, hashing, database writes, the commit).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_TOPICS = ["expenses", "travel", "parking", "onboarding", "security", "laptops", "vacation", "payroll",
           "benefits", "incidents", "releases", "code review", "on-call", "hiring", "offices", "training"]
_SUBJECTS = ["The team", "Every employee", "A manager", "The finance department", "New staff", "The on-call engineer",
             "Each contractor", "The security team", "The office manager", "A reviewer"]
_VERBS = ["must submit", "should review", "can request", "is expected to approve", "needs to document",
          "may book", "has to report", "will receive", "should archive", "can schedule"]
_OBJECTS = ["the monthly report", "a written summary", "the travel form", "an incident ticket", "the access request",
            "the signed contract", "a short design note", "the equipment order", "the quarterly plan",
            "a copy of every receipt"]
_TAILS = ["within five working days", "before the end of the quarter", "through the internal portal",
          "after the team lead agrees", "unless the amount exceeds 500 dollars", "in the shared drive",
          "on the first Monday of the month", "with the approver in copy", "before travelling abroad",
          "as described in the policy appendix"]


def _sentence(rng: random.Random, topic: str) -> str:
    s = f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} for {topic} {rng.choice(_TAILS)}"
    if rng.random() < 0.3:
        s += f", and the limit is {rng.randint(2, 90) * 10} dollars"
    return s + "."


def make_site(pages: int, seed: int = 7) -> dict[str, str]:
    """path -> HTML: a home page, section pages, and ``pages`` articles of 3-6 paragraphs each."""
    rng = random.Random(seed)
    per_section = 50
    sections = max(1, -(-pages // per_section))
    site: dict[str, str] = {}
    menu = " ".join(f'<a href="/s{i}/">Section {i}</a>' for i in range(min(sections, 12)))

    def page(title: str, body: str, links: list[str]) -> str:
        related = " ".join(f'<a href="{h}">{h}</a>' for h in links)
        return (f"<!doctype html><html><head><title>{title} | Handbook</title>"
                f'<link rel="canonical" href="PATH"></head><body><header><nav>{menu}</nav></header>'
                f"<main><article><h1>{title}</h1>{body}</article><aside>Related: {related}</aside></main>"
                "<footer>Copyright 2026 Example Corp. Privacy. Terms. Careers.</footer></body></html>")

    site["/"] = page("Handbook", "<p>The company handbook: policies and how-tos.</p>",
                     [f"/s{i}/" for i in range(sections)])
    n = 0
    for s in range(sections):
        arts = [f"/s{s}/p{j}" for j in range(per_section) if n + j < pages]
        site[f"/s{s}/"] = page(f"Section {s}", "<p>Pages of this section.</p>", arts)
        for path in arts:
            topic = rng.choice(_TOPICS)
            paras = "".join("<p>" + " ".join(_sentence(rng, topic) for _ in range(rng.randint(3, 6))) + "</p>"
                            for _ in range(rng.randint(3, 6)))
            site[path] = page(f"{topic.title()} rule {n}", paras, ["/", f"/s{s}/", *rng.sample(arts, 2)])
            n += 1
    return {path: html.replace('href="PATH"', f'href="{path}"') for path, html in site.items()}


def _serve(pages: int, port_queue: Any) -> None:
    from rag_engine.testing.web_site import LocalSite, Page

    with LocalSite() as site:
        for path, html in make_site(pages).items():
            site.state.pages[path] = Page(html)
        site.state.robots = "User-agent: *\nDisallow: /private/\n"
        site.state.pages["/__stats"] = Page("", etag=False, modified=None, content_type="application/json")
        port_queue.put(site.origin)

        original = site.state.pages

        class Stats(dict[str, Page]):
            def get(self, key: str, default: Any = None) -> Any:
                if key == "/__stats":
                    hits = site.state.hits
                    return Page(json.dumps({"bodies": sum(h.body for h in hits), "requests": len(hits)}),
                                etag=False, modified=None, content_type="application/json")
                return super().get(key, default)

        site.state.pages = Stats(original)
        while True:
            time.sleep(3600)


def _server_stats(origin: str) -> dict[str, int]:
    with urllib.request.urlopen(origin + "/__stats", timeout=10) as r:  # noqa: S310 - our own local server
        stats: dict[str, int] = json.loads(r.read())
    # the stats request itself is counted as a body: leave it out
    return {"bodies": stats["bodies"], "requests": stats["requests"]}


class TimedEmbedder:
    """The embedder, with the time spent in ``embed_documents`` added up."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.seconds = 0.0
        self.texts = 0

    def embed_documents(self, texts: list[str]) -> Any:
        started = time.perf_counter()
        try:
            return self._inner.embed_documents(texts)
        finally:
            self.seconds += time.perf_counter() - started
            self.texts += len(texts)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _row(label: str, seconds: float, pages: int, stats: Any, embed_s: float, chunks: int,
         bodies: int, requests: int) -> dict[str, Any]:
    other = max(0.0, seconds - stats.fetch_s - stats.parse_s - embed_s)
    share = (lambda x: round(100 * x / seconds, 1)) if seconds else (lambda x: 0.0)
    return {"sync": label, "pages": pages, "seconds": round(seconds, 2), "pages_per_s": round(pages / seconds, 2),
            "page_bodies": bodies, "requests": requests, "chunks": chunks,
            "fetch_pct": share(stats.fetch_s), "parse_pct": share(stats.parse_s), "embed_pct": share(embed_s),
            "other_pct": share(other), "connector": asdict(stats)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=2000, help="article pages (plus a home and section pages)")
    parser.add_argument("--backend", choices=["torch", "onnx-int8"], default="torch")
    parser.add_argument("--crawl-only", action="store_true", help="the connector alone: no database, no embedding")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    args = parser.parse_args()

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    server = ctx.Process(target=_serve, args=(args.pages, queue), daemon=True)
    server.start()
    origin = queue.get(timeout=120)
    total_pages = len(make_site(args.pages))
    try:
        rows = _crawl_only(origin, total_pages) if args.crawl_only else _full(origin, total_pages, args.backend)
    finally:
        server.terminate()
    from rich.console import Console
    from rich.table import Table

    mode = "crawl only (connector, no database or embedding)" if args.crawl_only else f"full sync, {args.backend}"
    table = Table(title=f"Web source sync: {total_pages} pages served locally, {mode}")
    for col in ("sync", "pages", "s", "pages/s", "bodies", "requests", "chunks", "fetch %", "parse %", "embed %",
                "other %"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(r["sync"], str(r["pages"]), f"{r['seconds']:.1f}", f"{r['pages_per_s']:.1f}",
                      str(r["page_bodies"]), str(r["requests"]), str(r["chunks"]), f"{r['fetch_pct']:.1f}",
                      f"{r['parse_pct']:.1f}", f"{r['embed_pct']:.1f}", f"{r['other_pct']:.1f}")
    Console(width=140).print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"source_sync-{total_pages}-{'crawl' if args.crawl_only else args.backend}.json"
    (args.out / name).write_text(json.dumps({"pages": total_pages, "mode": mode, "rows": rows}, indent=2))


def _crawl_only(origin: str, pages: int) -> list[dict[str, Any]]:
    """changes() and fetch() of every page, then changes() again: what the connector costs alone."""
    from rag_engine.connectors.web import WebConfig, WebConnector

    rows = []
    with tempfile.TemporaryDirectory(prefix="ragbot-web-bench-") as tmp:
        conn = WebConnector(WebConfig(url=origin + "/", max_pages=pages + 10, max_depth=5), Path(tmp))
        cursor = None
        for label in ("first", "second (unchanged)"):
            before = _server_stats(origin)
            started = time.perf_counter()
            changes = conn.changes(cursor)
            for item in changes.changed:
                conn.fetch(item)
            seconds = time.perf_counter() - started
            after = _server_stats(origin)
            cursor = changes.cursor
            rows.append(_row(label, seconds, pages, conn.stats, 0.0, 0, after["bodies"] - before["bodies"] - 1,
                             after["requests"] - before["requests"] - 1))
        conn.close()
    return rows


def _full(origin: str, pages: int, backend: str) -> list[dict[str, Any]]:
    from app.configs import engine_config
    from app.settings import Settings
    from rag_engine.connectors.web import WebConfig, WebConnector
    from rag_engine.embedding import build_embedder
    from rag_engine.engine import RagEngine
    from rag_engine.source_admin import add_source
    from rag_engine.store.sources import SourceRow
    from rag_engine.sync import SourceSyncer

    cache = ROOT / "benchmarks" / "out" / "data"  # the cached ONNX export, as benchmarks/ingest.py
    embedder = TimedEmbedder(build_embedder(engine_config(Settings(data_dir=cache, embedding_backend=backend))
                                            .embedding))
    embedder.embed_documents(["warm-up"])
    rows = []
    with tempfile.TemporaryDirectory(prefix="ragbot-web-bench-") as tmp:
        settings = Settings(data_dir=Path(tmp), embedding_backend=backend, generator_backend="extractive")
        engine = RagEngine(engine_config(settings), embedder=embedder, generator=None, reranker=None)
        made: list[WebConnector] = []

        def factory(source: SourceRow, cache_dir: Path) -> WebConnector:
            made.append(WebConnector(WebConfig.model_validate(source.config), cache_dir))
            return made[-1]

        source = add_source(engine.store, "bench", "web", {"url": origin + "/", "max_pages": pages + 10},
                            "site", every_s=None)
        syncer = SourceSyncer(engine.store, engine.ingestor, Path(tmp), connector_factory=factory)
        for label in ("first", "second (unchanged)"):
            before = _server_stats(origin)
            embedder.seconds = 0.0
            report = syncer.sync(source.id)
            after = _server_stats(origin)
            if report.status != "synced":
                raise SystemExit(f"sync {label}: {report.status} {report.error}")
            rows.append(_row(label, report.seconds, pages, made[-1].stats, embedder.seconds, report.chunks,
                             after["bodies"] - before["bodies"] - 1, after["requests"] - before["requests"] - 1))
            print(label, report.as_result() | {"cursor": f"{len(report.cursor or '')} chars"}, flush=True)
        engine.close()
        if engine.db.embedded is not None:
            engine.db.embedded.stop()
    return rows


if __name__ == "__main__":
    main()
