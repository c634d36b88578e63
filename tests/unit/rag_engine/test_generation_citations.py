"""parse_citations: [n] markers -> Citation, renumbered per document from [1], invalid numbers dropped."""

from __future__ import annotations

from rag_engine.generation.citations import parse_citations
from rag_engine.values import SearchHit


def _hits(n: int) -> list[SearchHit]:
    return [
        SearchHit(chunk_id=100 + i, document_id=10 + i, collection_id=1, title=f"Doc {i}",
                  source_uri=f"file:///doc{i}.md", heading_path=f"H{i}", text=f"text {i}", score=1.0 / i)
        for i in range(1, n + 1)
    ]


def test_single_multi_and_adjacent_markers_renumbered_in_order_of_first_appearance() -> None:
    text, cites = parse_citations("Deploys are on Tuesday [2]. Rollbacks use the tool [3, 1][2].", _hits(3))
    assert text == "Deploys are on Tuesday [1]. Rollbacks use the tool [1, 2, 3]."  # a run is one marker
    assert [(c.n, c.passage) for c in cites] == [(1, 2), (2, 3), (3, 1)]
    assert cites[0].chunk_id == 102 and cites[0].source_uri == "file:///doc2.md" and cites[0].heading_path == "H2"


def test_invalid_numbers_are_dropped_from_text_and_citations() -> None:
    text, cites = parse_citations("Twenty five days [1][7]. Carry over five [0]. Both [2, 9, 2].", _hits(2))
    assert text == "Twenty five days [1]. Carry over five. Both [2]."
    assert [(c.n, c.passage) for c in cites] == [(1, 1), (2, 2)]


def test_no_hits_means_no_citations() -> None:
    text, cites = parse_citations("The documents do not say [1].", [])
    assert text == "The documents do not say."
    assert cites == []


def test_whitespace_inside_markers_and_no_markers() -> None:
    assert [c.n for c in parse_citations("a [ 1 ,2 ] b", _hits(2))[1]] == [1, 2]
    assert parse_citations("plain answer", _hits(2)) == ("plain answer", [])
