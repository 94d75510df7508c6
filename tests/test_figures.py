"""Table-driven tests of figure extraction: the forms real news uses, normalized to value + unit + span."""

from __future__ import annotations

import pytest

from rag.figures import extract_figures, figures_equal

# (text, [(figure text, value, unit, kind, approx)])
ROWS = [
    ("jumping to 41 billion yen.", [("41 billion yen", 41e9, "JPY", "money", None)]),
    ("to ¥1.23 trillion ($7.9B).", [("¥1.23 trillion", 1.23e12, "JPY", "money", None),
                                    ("$7.9B", 7.9e9, "USD", "money", None)]),
    ("a sweeping $550b investment", [("$550b", 550e9, "USD", "money", None)]),
    ("a $550B plan", [("$550B", 550e9, "USD", "money", None)]),
    ("Bold $550 Billion Plan", [("$550 Billion", 550e9, "USD", "money", None)]),
    ("up to ¥10t ($68b) annually", [("¥10t", 1e13, "JPY", "money", "up to"), ("$68b", 68e9, "USD", "money", None)]),
    ("a US$2.5bn deal", [("US$2.5bn", 2.5e9, "USD", "money", None)]),
    ("1,500 million yen", [("1,500 million yen", 1.5e9, "JPY", "money", None)]),
    ("1,500 million", [("1,500 million", 1.5e9, "count", "count", None)]),
    ("计划每年砸1万亿日元!", [("1万亿日元", 1e12, "JPY", "money", None)]),
    ("410億円を投じる", [("410億円", 4.1e10, "JPY", "money", None)]),
    ("総額1兆2300億円", [("1兆2300億円", 1.23e12, "JPY", "money", None)]),
    ("约1.5万亿元", [("1.5万亿元", 1.5e12, "CNY", "money", "about")]),
    ("5000亿美元", [("5000亿美元", 5e11, "USD", "money", None)]),
    ("€3bn for rail", [("€3bn", 3e9, "EUR", "money", None)]),
    ("a £450m grant", [("£450m", 4.5e8, "GBP", "money", None)]),
    ("RMB10bn of loans", [("RMB10bn", 1e10, "CNY", "money", None)]),
    ("HK$5 billion", [("HK$5 billion", 5e9, "HKD", "money", None)]),
    ("NT$1.2 trillion", [("NT$1.2 trillion", 1.2e12, "TWD", "money", None)]),
    ("about 6.5 billion USD", [("6.5 billion USD", 6.5e9, "USD", "money", "about")]),
    ("240 million euros", [("240 million euros", 2.4e8, "EUR", "money", None)]),
    ("350 million US dollars", [("350 million US dollars", 3.5e8, "USD", "money", None)]),
    ("$263.21 BN", [("$263.21 BN", 263.21e9, "USD", "money", None)]),
    ("$10-15 billion", [("$10-15 billion", 10e9, "USD", "money", None)]),
    ("approximately 920 billion yen", [("920 billion yen", 920e9, "JPY", "money", "about")]),
    ("over 10 trillion yen", [("10 trillion yen", 10e12, "JPY", "money", "over")]),
    ("nearly 5 trillion yen", [("5 trillion yen", 5e12, "JPY", "money", "nearly")]),
    ("a 4000% surge", [("4000%", 4000, "%", "percent", None)]),
    ("CAGR of 17.2%", [("17.2%", 17.2, "%", "percent", None)]),
    ("rose 12 percent", [("12 percent", 12, "%", "percent", None)]),
    ("fell 3.5 per cent", [("3.5 per cent", 3.5, "%", "percent", None)]),
    ("5–7%", [("5–7%", 5, "%", "percent", None)]),
    ("up to 90% of profits", [("90%", 90, "%", "percent", "up to")]),
    ("成長率50％", [("50％", 50, "%", "percent", None)]),
    ("ASRA, comprising 14 companies", [("14", 14, "count", "count", None)]),
    ("eight major Japanese corporations", [("eight", 8, "count", "count", None)]),
    ("a 45,000-seat stadium", [("45,000", 45000, "count", "count", None)]),
    ("14家公司", [("14", 14, "count", "count", None)]),
    ("2000 employees", [("2000", 2000, "count", "count", None)]),
    ("mass production by 2027 remains", [("2027", 2027, "year", "year", None)]),
    ("post-2030", [("2030", 2030, "year", "year", None)]),
    ("FY2025 budget", [("FY2025", 2025, "year", "year", None)]),
    ("2025年度予算", [("2025", 2025, "year", "year", None)]),
    ("Tokyo, Tuesday, 25 February 2025.", [("25 February 2025", 20250225, "date", "date", None)]),
    ("July 29, 2025", [("July 29, 2025", 20250729, "date", "date", None)]),
    ("7 Nov 2023", [("7 Nov 2023", 20231107, "date", "date", None)]),
    ("智通财经网·2025-11-06 04:16", [("2025-11-06", 20251106, "date", "date", None)]),
    ("2025年11月6日", [("2025年11月6日", 20251106, "date", "date", None)]),
    ("a pilot line by April 2025", [("April 2025", 20250400, "date", "date", None)]),
    ("2-nanometer technology", [("2-nanometer", 2, "nm", "measure", None)]),
    ("cutting edge 2nm chips", [("2nm", 2, "nm", "measure", None)]),
    ("a 3 nm process", [("3 nm", 3, "nm", "measure", None)]),
    ("2纳米芯片", [("2纳米", 2, "nm", "measure", None)]),
    ("more than 1 year old", [("1 year", 1, "years", "duration", "over")]),
    ("11 July 2023|S2E12|Listen Now", [("11 July 2023", 20230711, "date", "date", None)]),
    ("the market [1][4]", []),
    ("a 50:50 profit split", []),
    ("COVID-19 cases", []),
    ("5G networks", []),
    ("the 2nd largest", []),
]


@pytest.mark.parametrize(("text", "expected"), ROWS, ids=[r[0][:30] for r in ROWS])
def test_extract_figures(text: str, expected: list[tuple]) -> None:
    got = extract_figures(text)
    assert [(q.text, q.unit, q.kind, q.approx) for q in got] == [(t, u, k, a) for t, _, u, k, a in expected]
    for q, (_, value, unit, _, _) in zip(got, expected, strict=True):
        assert figures_equal(q.value, q.unit, value, unit), (q, value)
        assert text[q.start:q.end] == q.text


def test_ranges_keep_their_upper_end() -> None:
    (q,) = extract_figures("$10-15 billion")
    assert q.value == 10e9 and q.high == 15e9
    (p,) = extract_figures("5–7%")
    assert p.high == 7


EQUAL_ROWS = [
    (41e9, "JPY", 41_000_000_000, "jpy", True),
    (263.21e9, "USD", 263_210_000_000, "USD", True),
    (12, "%", 12, "percent", True),
    (1e9, "JPY", 1e12, "JPY", False),  # scale matters: billion is not trillion
    (3.07e12, "JPY", 3.07e9, "USD", False),  # same digits, other unit and scale
    (350e6, "EUR", 350e6, "USD", False),  # same amount, other currency
    (2027, "year", 2027, "count", False),
    (14, "count", 14.0000000001, "count", True),
    (7.9e9, "USD", 7.91e9, "USD", False),
    ("x", "USD", 1, "USD", False),  # not a number: unequal, never an exception
]


@pytest.mark.parametrize(("av", "au", "bv", "bu", "same"), EQUAL_ROWS)
def test_figures_equal(av: float, au: str, bv: float, bu: str, same: bool) -> None:
    assert figures_equal(av, au, bv, bu) is same


@pytest.mark.parametrize("text", ["", "   ", "\x00\x01\x02", "no numbers here", "１２３" * 3000, "$" * 500])
def test_odd_text_never_raises(text: str) -> None:
    for q in extract_figures(text):
        assert text[q.start:q.end] == q.text
