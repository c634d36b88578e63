"""The invented-content rule of ``rag_engine.invented``: what counts as a name, number or term, and when it
is found in the passages shown."""

from __future__ import annotations

from rag_engine.invented import invented_terms

PASSAGE = "Engineers get 30 days of PTO per year. The fee is 1,000 dollars. Ask Priya on the VPN team."


def test_a_name_or_figure_in_no_passage_is_invented():
    assert invented_terms("Engineers get 45 days of PTO through the Gold plan [1].", [PASSAGE]) == ["45", "Gold"]


def test_names_numbers_and_acronyms_found_in_a_passage_are_not():
    assert invented_terms("You get 30 days of PTO; the fee is 1,000 dollars [1]. Ask Priya [2].", [PASSAGE]) == []


def test_case_plurals_and_possessives_do_not_count_as_new():
    assert invented_terms("Ask the Engineer's lead, or priya, about VPNs.", [PASSAGE]) == []


def test_sentence_initial_capitals_markers_and_links_are_not_candidates():
    assert invented_terms("Yes. Certainly this holds [12]. See https://intranet.example/Wiki.", [PASSAGE]) == []


def test_the_users_own_terms_are_not_invented():
    assert invented_terms("The Gold plan is not mentioned.", [PASSAGE], question="What is the Gold plan?") == []


def test_checked_against_every_passage_shown():
    assert invented_terms("Priya runs Kubernetes.", [PASSAGE]) == ["Kubernetes"]
    assert invented_terms("Priya runs Kubernetes.", [PASSAGE, "We deploy on kubernetes."]) == []


def test_the_pronoun_i_and_lone_letters_are_not_names():
    assert invented_terms("Then I think you should ask, and I'm sure plan B works.", [PASSAGE]) == []
    assert invented_terms("Step 2 of plan B.", [PASSAGE]) == ["2"]
