"""Question analysis rules: answer types, units, qualifiers, entities, CJK questions and follow-ups."""

from __future__ import annotations

import pytest

from rag.query import analyze, expand_for_retrieval, resolve_followup, split_preamble
from rag.types import Turn

TYPES = [
    ("How much did the council approve for the new library?", "money", None),
    ("How much is the subsidy in dollars?", "money", "USD"),
    ("In yen, how much does the bill set aside?", "money", "JPY"),
    ("Converted to US dollars, how much goes to chips?", "money", "USD"),
    ("What revenue did the port report for 2024?", "money", None),
    ("What is the total budget of the ministry?", "money", None),
    ("By what percentage did sales rise?", "percent", "%"),
    ("What share of the package is direct equity?", "percent", "%"),
    ("What is the unemployment rate?", "percent", "%"),
    ("How many companies make up the group?", "count", "count"),
    ("What chip node, in nanometres, is the firm working toward?", "measure", "nm"),
    ("In which year was the company founded?", "year", "year"),
    ("When will the arena open?", "date", "date"),
    ("Who negotiated the deal?", "person", None),
    ("Who is the firm's main rival in logic chips?", "organization", None),
    ("Which carmaker leads the consortium?", "organization", None),
    ("Which carmakers belong to the consortium?", "list", None),
    ("Which country is Washington pressing?", "place", None),
    ("Why did Japan accept the deal?", "explanation", None),
    ("日本执政党计划每年筹集多少资金支持半导体？", "money", None),
    ("日美联合研究项目将获得多少日元？", "money", "JPY"),
    ("ASRA由多少家公司组成？", "count", "count"),
    ("Rapidus计划在哪一年实现量产？", "year", "year"),
    ("経済産業省の予算の総額はいくらですか？", "money", None),
    ("直接出資の割合は何%ですか？", "percent", "%"),
    ("従業員は何人ですか？", "count", "count"),
    ("Library budget: amount earmarked for the reading room?", "money", None),
    ("In the end, what cut of the fares does the operator keep?", "percent", "%"),
    ("What monthly capacity is the bakery planning for its new oven?", "count", "count"),
    ("What size is the city's bicycle market projected to reach?", "money", None),
    ("What is the estimated bill for getting the ferry into volume service?", "money", None),
    ("Name the Dutch firm that supplies the canteen.", "organization", None),
    ("Name the bakeries that supply the canteen.", "list", None),
    ("港口运营的金融机构是哪里？", "organization", None),
    ("港口の運営を担う金融機関はどこですか？", "organization", None),
]


@pytest.mark.parametrize(("question", "kind", "unit"), TYPES, ids=[t[0][:40] for t in TYPES])
def test_answer_type_and_unit(question: str, kind: str, unit: str | None) -> None:
    a = analyze(question)
    assert (a.answer_type, a.unit) == (kind, unit)


def test_figures_in_the_question_are_not_the_unit_asked() -> None:
    a = analyze("What share of the $550 billion package is direct equity?")
    assert a.unit == "%" and [q.unit for q in a.figures] == ["USD"]


@pytest.mark.parametrize(("question", "qualifier"), [
    ("How much does Japan spend on chips every year?", "annual"),
    ("What is the yearly fund worth?", "annual"),
    ("How much was in last year's extra budget?", "previous"),
    ("What did it receive before that?", "previous"),
    ("How much has Rapidus received so far?", "cumulative"),
    ("Since 2021, how much in total has Tokyo put in?", "cumulative"),
    ("What is the overall budget?", "total"),
    ("When was the story about the subsidy published?", "published"),
    ("那篇报道是哪天发布的？", "published"),
])
def test_qualifiers(question: str, qualifier: str) -> None:
    assert qualifier in analyze(question).qualifiers


def test_years_and_sources() -> None:
    a = analyze("According to the November report, how much will the market grow by 2029 since 2021?")
    assert ("by", 2029) in a.years and ("since", 2021) in a.years
    assert a.source_months == (11,)


def test_entities_with_aliases_and_demonyms() -> None:
    a = analyze("How much is Japan budgeting for its joint research with America?")
    forms = {f for g in a.entities for f in g}
    assert {"japan", "us", "united states"} <= forms
    b = analyze("When are the prototypes due to reach its American customer?")
    assert not b.entities  # a demonym used as an adjective is not a place the answer must mention


def test_count_nouns_and_rate_subject() -> None:
    assert analyze("How many new schools is the city opening?").count_nouns[-1] == "school"
    assert analyze("What interest rate will the bank charge?").rate_subject == ("interest",)
    assert "polic" in analyze("How much does the city spend on its police force?").purpose


def test_cjk_glossary_and_katakana() -> None:
    a = analyze("ラピダスの従業員は何人ですか？")
    assert "employe" in a.terms and a.kana == ("rpds",)
    assert "semiconductor" in expand_for_retrieval("半导体补贴是多少？")
    assert expand_for_retrieval("How much?") == "How much?"


def turns(*questions: str) -> list[Turn]:
    return [Turn("user", q) for q in questions]


@pytest.mark.parametrize(("question", "history", "expect_in", "expect_out"), [
    ("and in dollars?", ["How much will ASRA receive in yen?"], ["ASRA", "dollars"], ["yen"]),
    ("what about Rapidus?", ["How much government money has ASRA received so far?"], ["Rapidus", "so far"], ["ASRA"]),
    ("What about securing materials?", ["How much is Japan putting into the joint research with the US?"],
     ["securing materials", "How much"], ["joint research"]),
    ("And what did it get before that?", ["How big is ASRA's new government subsidy?"], ["ASRA", "before that"], []),
    ("美元呢？", ["项目获得多少日元？"], ["美元"], ["日元"]),
    ("and in 2024?", ["What was the port's revenue in 2023?"], ["2024"], ["2023"]),
])
def test_followups_resolve_against_previous_question(question: str, history: list[str], expect_in: list[str],
                                                     expect_out: list[str]) -> None:
    got = resolve_followup(question, turns(*history))
    for s in expect_in:
        assert s in got, got
    for s in expect_out:
        assert s not in got, got


def test_followup_uses_the_resolved_chain() -> None:
    got = resolve_followup("and in euros?", turns("How much is the city spending on transit in yen?", "and in dollars?"))
    assert "transit" in got and "euros" in got and "dollars" not in got


@pytest.mark.parametrize("question", [
    "How many seats will the Northshore Arena have?",
    "Which companies are building the arena?",
])
def test_standalone_questions_are_unchanged(question: str) -> None:
    assert resolve_followup(question, turns("How much does the arena cost?")) == question
    assert resolve_followup(question, []) == question


@pytest.mark.parametrize("text", ["", "   ", "?", "\x00garbage\x01", "x" * 10_000, "¿Cuánto cuesta el estadio?",
                                  "이것은 얼마입니까?"])
def test_odd_questions_never_raise(text: str) -> None:
    a = analyze(text)
    assert a.answer_type
    assert isinstance(resolve_followup(text, turns("How much?")), str)


def test_question_paraphrases_map_to_news_wording() -> None:
    a = analyze("What's the estimated bill for getting the chips into volume production?")
    assert {"cost", "mass", "estim"} <= set(a.terms) and "bill" not in a.terms
    assert "bill" in analyze("When will the budget bill for the port pass?").terms  # a law, not an amount


def test_cjk_names_must_be_found_like_english_names() -> None:
    a = analyze("台积电熊本工厂获得了多少日本政府补贴？")
    assert ("kumamoto",) in a.entities and any("tsmc" in g for g in a.entities)
    unknown = analyze("哈伯顿港口收入多少？")  # an unglossed three-character run: most likely a name
    assert any(g == ("哈伯顿",) for g in unknown.entities)
    assert analyze("ASRA由多少家公司组成？").entities == (("asra",),)  # a glossed verb is no name


@pytest.mark.parametrize(("question", "owner"), [
    ("What is Norway's annual budget for battery research?", "norway"),
    ("How much has Sweden allocated to battery research?", "sweden"),
    ("How many employees does Bluewater Capital have?", "bluewater capital"),
    ("What is the city budget of Rotterdam?", "rotterdam"),
])
def test_owner_of_the_asked_figure(question: str, owner: str) -> None:
    assert any(owner in g for g in analyze(question).owners)


def test_a_name_that_is_not_the_owner_is_no_owner() -> None:
    assert not analyze("How much will the city spend on trams compared with Rotterdam?").owners
    assert not analyze("Which company is leading the harbour ferry alliance?").owners  # not a figure question


def test_measured_property_asked_for() -> None:
    yield_ = analyze("What yield has Voltaro achieved on its pilot line?")
    assert yield_.answer_type == "percent" and yield_.properties and "yield" in yield_.properties[0]
    revenue = analyze("How much revenue did Voltaro make last year?").properties
    assert revenue and {"sale", "revenu"} <= revenue[0]
    assert not analyze("What is Harbourton's unemployment rate?").properties  # a percentage is itself a rate
    assert not analyze("How much will the Northshore Arena cost?").properties


@pytest.mark.parametrize("question", ["How many companies belong to ASRA?", "How many companies make up the group?",
                                      "How many companies are members of the NCC?",
                                      "How many companies a year join the alliance?"])
def test_counted_noun_ends_at_the_relation_verb(question: str) -> None:
    assert analyze(question).count_nouns == ("compani",)


@pytest.mark.parametrize(("question", "slot"), [
    ("Which customer is Voltaro planning to send its first prototypes to?", "to"),
    ("To which carmaker will Voltaro deliver its prototypes?", "to"),
    ("Which firm did the city buy the ferries from?", "from"),
    ("Which company is leading the alliance?", None),
    ("Which buyer will receive Voltaro's first prototype cells?", "to"),
    ("Which customer gets the hospital's first devices?", "to"),
    ("Which supplier makes the electrodes?", "from"),
])
def test_recipient_slot_of_a_name_question(question: str, slot: str | None) -> None:
    assert analyze(question).slot == slot


def test_cjk_time_qualifier_and_common_words_are_no_names() -> None:
    a = analyze("自2021年确立半导体振兴战略以来，政府已向国内芯片和人工智能领域拨付了多少日元？")
    assert a.answer_type == "money" and a.unit == "JPY"
    assert ("since", 2021) in a.years and "cumulative" in a.qualifiers
    assert {"establish", "reviv", "domest", "sector", "alloc"} <= set(a.terms)
    assert not a.entities and not a.unknown  # glossed common words, not names the sources must contain


@pytest.mark.parametrize(("question", "asked"), [
    ("Japan took a smaller share of profits for tariff cuts. In yen, what might the relief be worth per year?",
     "In yen, what might the relief be worth per year?"),
    ("The arena cost climbed as steel prices rose. How many spectators will the stadium hold?",
     "How many spectators will the stadium hold?"),
    ("The U.S. Treasury sold bonds; what rate did it pay?", "what rate did it pay?"),
])
def test_the_interrogative_sentence_is_the_question(question: str, asked: str) -> None:
    assert split_preamble(question)[0] == asked


@pytest.mark.parametrize("question", ["How big is ASRA's subsidy? And what did it get before that?",
                                      "How much did the U.S. pay for it?", "What about Japan? And in yen?"])
def test_chains_of_questions_and_abbreviations_stay_whole(question: str) -> None:
    assert split_preamble(question) == (question, "")


def test_preamble_adds_context_but_not_the_answer_type_or_entities() -> None:
    a = analyze("The arena cost climbed as Kestrel raised steel prices. How many spectators will the stadium hold?")
    assert (a.answer_type, a.unit) == ("count", "count")
    assert a.count_nouns == ("spectat",)
    assert not a.entities and "cost" not in a.terms
    assert {"kestrel", "steel"} <= set(a.context) and not set(a.context) & set(a.terms)


@pytest.mark.parametrize("question", ["How many companies belong to the Toyota-led chip research association?",
                                      "How much did the Toyota-backed consortium raise?"])
def test_hyphenated_modifier_is_a_descriptor_not_an_owner(question: str) -> None:
    a = analyze(question)
    assert a.entities == (("toyota",),) and a.descriptors == (("toyota",),)
    assert not a.owners and "toyota" not in a.terms and "toyota" in a.context


def test_a_name_used_plainly_is_no_descriptor() -> None:
    a = analyze("How much did Toyota invest in the Toyota-led association?")
    assert not a.descriptors and a.owners == (("toyota",),)


def test_spender_is_the_agent_and_countries_are_exempt() -> None:
    assert analyze("How much did Toyota invest in Rapidus?").agents == (("toyota",),)
    assert not analyze("How much does Japan plan to spend on chips?").agents
    assert not analyze("What is Toyota's budget?").agents  # an owner, not a spender


@pytest.mark.parametrize(("question", "change"), [
    ("What was the growth in the ministry's overall budget?", True),
    ("What was the increase in the ferry fleet budget?", True),
    ("How much did the ferry fleet budget grow to?", False),
    ("How big was the increase in the budget to what level?", False),
])
def test_growth_question_asks_for_the_change(question: str, change: bool) -> None:
    assert ("change" in analyze(question).qualifiers) == change


def test_cjk_pieces_split_at_spaces_left_by_glossed_words() -> None:
    """Glossed words removed from a CJK run leave gaps: the pieces around them are separate words, not one
    long run taken for a name the sources must contain."""
    a = analyze("经产省新年度预算里给Rapidus安排了多少钱？")
    assert a.answer_type == "money"
    assert all(" " not in u for u in a.unknown)
    assert all(len(g) > 1 or " " not in g[0] for g in a.entities)


def test_market_size_question_asks_for_the_market_property() -> None:
    a = analyze("What size is Harbourton's own art market projected to reach by 2030?")
    assert any("market" in said for said in a.properties)
    assert not analyze("How much did Harbourton invest in the art market?").properties
