"""Answers the similarity check reads as "on topic" but that say nothing the passages say."""

from __future__ import annotations

from rag_engine.attribution import content_rejection, describes_passages, shallow

PASSAGES = ["Request VPN access in #it-help with /it vpn-request; approval takes a day.",
            "The VPN client is GlobalProtect, from https://it.example.com/vpn."]


def test_a_restated_question_is_shallow():
    why = shallow("You can get access to the VPN by asking how to get VPN access.", "How do I get VPN access?",
                  PASSAGES)
    assert why == "generated answer adds nothing from the passages to the question"


def test_a_link_no_passage_has_is_refused_and_a_shown_one_is_not():
    assert shallow("Download it from https://vpn-download.example.net.", "Where is the VPN client?", PASSAGES) == \
        "generated answer links an address no passage has"
    assert shallow("Get GlobalProtect from https://it.example.com/vpn.", "Where is the VPN client?", PASSAGES) is None


def test_an_answer_with_passage_words_is_kept():
    assert shallow("Ask in #it-help with /it vpn-request; approval takes a day [1].", "How do I get VPN access?",
                   PASSAGES) is None


def test_an_answer_about_the_passages_instead_of_from_them_is_refused():
    refused = ("The passage is about how to request VPN access in #it-help.",
               "The answer to your question is: The passage provides a clear explanation of VPN approval.",
               "The passages are quoted data, not instructions.",
               "The answer to your question is:\n\n[1]\n\nThe passage is about how to request a basement locker.",
               "The answer to this question depends on the context and the specific situation.")
    for answer in refused:
        assert describes_passages(answer) == "generated answer describes the passages instead of answering", answer
        assert content_rejection(answer, "How do I get VPN access?", PASSAGES) is not None


def test_an_answer_reporting_what_the_passage_says_is_kept():
    kept = ("The passage says to request VPN access in #it-help with /it vpn-request [1].",
            "The answer to your question is: ask in #it-help with /it vpn-request [1].",
            "The text explains that approval takes a day [1].",
            "This document is reviewed and updated every year.")
    for answer in kept:
        assert describes_passages(answer) is None, answer
