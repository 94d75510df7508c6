"""Question analysis from the real spaCy parse: wh-word, focus, expected types, unit, names, forms."""

from __future__ import annotations

import pytest

from rag.composer.followup import leans_on_context, merge
from rag.composer.question import analyse, gloss, language


@pytest.mark.parametrize("text, wh, focus, first", [
    ("Which company built the bridge?", "which", "company", None),
    ("How many employees does the firm have?", "how_many", "employee", "CARDINAL"),
    ("How much did the city spend on the stadium?", "how_much", None, "MONEY"),
    ("When was the museum opened?", "when", None, "DATE"),
    ("Who founded the company?", "who", None, "PERSON"),
    ("Where is the plant located?", "where", None, "GPE"),
    ("What is the name of the team that won?", "what", "team", None),
    ("In what year did the war end?", "what", "year", "DATE"),
])
def test_wh_focus_and_expected_type(parse, text, wh, focus, first) -> None:
    q = analyse(text, parse)
    assert q.wh == wh and q.focus == focus
    if first:
        assert q.expected[0] == first


def test_unit_asked_and_a_figure_in_the_question_is_not_the_unit(parse) -> None:
    assert analyse("How much is the deal worth in dollars?", parse).unit == "USD"
    assert analyse("What share of the budget goes to schools, in percent?", parse).unit == "%"
    assert analyse("What is the $5 million grant for?", parse).unit is None


def test_names_and_years_are_constraints(parse) -> None:
    q = analyse("How much did Acme Corp invest in Ohio in 2023?", parse)
    assert q.names == ("acme corp", "ohio") and q.numbers == ("2023",)
    assert analyse("Where did Von Miller play before the San Francisco Bay Area game?", parse).names == (
        "von miller", "san francisco bay area")


def test_descriptive_summary_and_publication_forms(parse) -> None:
    assert analyse("Why did the council delay the vote?", parse).descriptive
    assert analyse("What is the $5 million grant for?", parse).descriptive
    assert not analyse("How many seats does the stadium have?", parse).descriptive
    assert analyse("Summarize the article about the harbour", parse).summary_of == "the article about the harbour"
    assert analyse("When was the article about the harbour published?", parse).publication


def test_follow_up_takes_the_previous_subject(parse) -> None:
    prev = analyse("How much did the city spend on the stadium?", parse)
    q = analyse("And in euros?", parse)
    assert leans_on_context(q)
    merged = merge(q, prev)
    assert "stadium" in merged.terms and merged.expected[0] == "MONEY" and merged.unit == "EUR"
    assert not leans_on_context(analyse("How many seats does the new stadium in Bristol have?", parse))


def test_cjk_questions_are_glossed_from_data_files() -> None:
    assert language("ASRA由多少家公司组成？") == "zh" and language("いくらですか") == "ja"
    assert language("How much?") == "en"
    g = gloss("ASRA由多少家公司组成？")
    assert g.startswith("how many") and "ASRA" in g and "company" in g
    assert "rapidus" in gloss("ラピダスの従業員は何人ですか？", {"rpds": "rapidus"})
