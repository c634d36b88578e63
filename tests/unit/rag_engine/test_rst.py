"""reStructuredText section titles become heading paths, like Markdown's."""

from __future__ import annotations

from rag_engine.parsing import parse_bytes
from rag_engine.rst import rst_to_markdown

DOC = """\
=====
Guide
=====

Intro text.

.. _vpn:

VPN
===

Install WireGuard::

    wg-quick up corp

.. note::

   Ask IT first.

Details
-------

More.

Parking
=======

Free after six.
"""


def test_titles_become_levels_in_order_of_first_use():
    md = rst_to_markdown(DOC)
    assert [line for line in md.splitlines() if line.startswith("#")] == \
        ["# Guide", "## VPN", "### Details", "## Parking"]
    assert ".. note::" not in md and ".. _vpn:" not in md and "Ask IT first." in md


def test_parsed_sections_keep_their_heading_paths():
    doc = parse_bytes(DOC.encode(), "rst", fallback_title="guide")
    assert doc.title == "Guide"
    paths = {" > ".join(s.heading_path): s.text for s in doc.sections}
    assert "wg-quick up corp" in paths["Guide > VPN"]
    assert paths["Guide > VPN > Details"] == "More."
    assert paths["Guide > Parking"] == "Free after six."


def test_short_underlines_and_plain_text_are_not_titles():
    md = rst_to_markdown("A long line of text\n===\n\nSome --- dashes inline.\n")
    assert "#" not in md
