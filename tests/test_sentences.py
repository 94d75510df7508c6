"""Sentence splitter: a table of made-up hard cases, each checked against exact sentences and offsets."""

from __future__ import annotations

import pytest

from rag.sentences import split_sentences

CASES = {
    "abbreviations": (
        "The U.S. and the U.K. signed a pact with Acme Corp. and Beta Inc. on Monday. "
        "Mr. Tanaka met Dr. Sato at No. 5 Main St. in Jan. of last year. "
        "Prices rose, e.g. rice, i.e. the staple, by approx. 3% overall.",
        ["The U.S. and the U.K. signed a pact with Acme Corp. and Beta Inc. on Monday.",
         "Mr. Tanaka met Dr. Sato at No. 5 Main St. in Jan. of last year.",
         "Prices rose, e.g. rice, i.e. the staple, by approx. 3% overall."],
    ),
    "abbreviation ends a sentence": (
        "The new plant will be built in the U.S. The company said costs are rising.",
        ["The new plant will be built in the U.S.", "The company said costs are rising."],
    ),
    "decimals and amounts": (
        "Sales hit $7.9B in 2024, up 1.23 points. The budget is ¥1.23 trillion ($8.1B). Margins were 3.5%.",
        ["Sales hit $7.9B in 2024, up 1.23 points.", "The budget is ¥1.23 trillion ($8.1B).",
         "Margins were 3.5%."],
    ),
    "one-line bullets with run-on headings": (
        "Market Outlook - Demand for widgets will grow 5% next year [1]. - Supply is expected to stay "
        "tight [2]. Price Trends - Prices rose 3.2% in May.",
        ["Market Outlook", "Demand for widgets will grow 5% next year [1].", "Supply is expected to stay tight [2].",
         "Price Trends", "Prices rose 3.2% in May."],
    ),
    "dash inside a sentence is not a heading": (
        "The deal - signed last year - was worth 12 billion euros.",
        ["The deal - signed last year - was worth 12 billion euros."],
    ),
    "CJK punctuation without spaces": (
        "政府将投入1万亿日元。企业表示欢迎！这是真的吗？是的。",
        ["政府将投入1万亿日元。", "企业表示欢迎！", "这是真的吗？", "是的。"],
    ),
    "Japanese closing brackets": (
        "社長は「投資を続ける。」と述べた。株価は上がった。",
        ["社長は「投資を続ける。」と述べた。", "株価は上がった。"],
    ),
    "footnote marks stay with their sentence": (
        "Output fell sharply [1][4]. Funding rose.[2] Next steps are unclear.[3][5] Done.",
        ["Output fell sharply [1][4].", "Funding rose.[2]", "Next steps are unclear.[3][5]", "Done."],
    ),
    "missing space after a period": (
        "The firms agreed on closer collaboration.Nikkei Asia claims the deal is large.",
        ["The firms agreed on closer collaboration.", "Nikkei Asia claims the deal is large."],
    ),
    "domains and versions are not boundaries": (
        "Visit example.com for details. Version 3.5 ships in Q2.",
        ["Visit example.com for details.", "Version 3.5 ships in Q2."],
    ),
    "quotes and parentheses after the period": (
        'He said, "We will build it." Then he left. (This was expected.) Analysts agreed.',
        ['He said, "We will build it."', "Then he left.", "(This was expected.)", "Analysts agreed."],
    ),
    "line breaks end headings and list items": (
        "Key Findings\nRevenue grew 10%\n- Costs fell 2%\n- Margins improved\n\nOutlook stable",
        ["Key Findings", "Revenue grew 10%", "Costs fell 2%", "Margins improved", "Outlook stable"],
    ),
    "a long Title Case heading line is not glued to the paragraph": (
        "Inside The Bold Plan To Secure The Future Of Semiconductor Supply Chains In Asia\n"
        "Japan is rolling out a sweeping package.\r\nIt follows a trade deal.",
        ["Inside The Bold Plan To Secure The Future Of Semiconductor Supply Chains In Asia",
         "Japan is rolling out a sweeping package.", "It follows a trade deal."],
    ),
    "hard-wrapped prose continues across a line break": (
        "The ministry said on Tuesday that it would expand the subsidy programme to\n"
        "cover smaller firms as well. The minister said the programme would help the firms of\n"
        "Japan and Korea.",
        ["The ministry said on Tuesday that it would expand the subsidy programme to\ncover smaller firms as well.",
         "The minister said the programme would help the firms of\nJapan and Korea."],
    ),
    "lower-cased lead": (
        "the plan costs 41 billion yen. this is a large sum. with a target date of 2030, it is ambitious.",
        ["the plan costs 41 billion yen.", "this is a large sum.", "with a target date of 2030, it is ambitious."],
    ),
    "ellipsis": (
        "Now about that ban... The talks continue. He paused... and went on.",
        ["Now about that ban...", "The talks continue.", "He paused... and went on."],
    ),
    "question and exclamation marks": (
        "Why does it matter? Because it does! Really.",
        ["Why does it matter?", "Because it does!", "Really."],
    ),
    "inline bullet characters": (
        "Highlights • Output rose 4% • Prices fell",
        ["Highlights", "Output rose 4%", "Prices fell"],
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_split_cases(name: str) -> None:
    text, expected = CASES[name]
    spans = split_sentences(text)
    assert [text[s.start:s.end] for s in spans] == expected
    for s in spans:
        assert text[s.start:s.end] == text[s.start:s.end].strip()


def test_offsets_are_absolute_within_a_range() -> None:
    prefix = "Boilerplate here.\n\n"
    body = "First sentence is here. Second one costs $2.5 billion."
    text = prefix + body + "\n\nTrailing junk."
    spans = split_sentences(text, len(prefix), len(prefix) + len(body))
    assert [text[s.start:s.end] for s in spans] == ["First sentence is here.", "Second one costs $2.5 billion."]
    assert spans[0].start == len(prefix)
    assert spans[-1].end == len(prefix) + len(body)


def test_punctuation_only_pieces_are_not_sentences() -> None:
    text = "The companies halted production. ®\n\n***\n\n[1]"
    assert [text[s.start:s.end] for s in split_sentences(text)] == ["The companies halted production."]


def test_empty_and_whitespace() -> None:
    assert split_sentences("") == []
    assert split_sentences(" \n\n\t ") == []
