"""Quantities in news text: money, percentages, counts, years, dates and measures, each normalized to an
absolute value and a unit with its character span, so answers can be checked figure by figure."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

__all__ = ["Quantity", "currency_of", "extract_figures", "figures_equal", "format_value", "hedge_start",
           "normalize_unit"]


@dataclass(frozen=True, slots=True)
class Quantity:
    """One figure: `text == source[start:end]`; `value` is absolute ("41 billion yen" -> 4.1e10), `high` the
    upper end of a range, `approx` a normalized hedge ("about", "over", "nearly", "up to", "at least", "under")."""

    text: str
    start: int
    end: int
    value: float
    unit: str
    kind: str  # money | percent | count | year | date | measure | duration
    approx: str | None = None
    high: float | None = None


# --- vocabularies --------------------------------------------------------------------------------------

_SCALES = {
    "thousand": 1e3, "k": 1e3, "million": 1e6, "m": 1e6, "mn": 1e6, "mln": 1e6, "billion": 1e9, "b": 1e9,
    "bn": 1e9, "bln": 1e9, "trillion": 1e12, "t": 1e12, "tn": 1e12, "trn": 1e12, "lakh": 1e5, "crore": 1e7,
}
_CJK_SCALES = {
    "万亿": 1e12, "萬億": 1e12, "兆": 1e12, "千亿": 1e11, "千億": 1e11, "百亿": 1e10, "百億": 1e10,
    "十亿": 1e9, "十億": 1e9, "亿": 1e8, "億": 1e8, "千万": 1e7, "千萬": 1e7, "百万": 1e6, "百萬": 1e6,
    "十万": 1e5, "十萬": 1e5, "万": 1e4, "萬": 1e4, "千": 1e3,
}
_PREFIX_CURRENCY = {
    "us$": "USD", "u.s.$": "USD", "nt$": "TWD", "hk$": "HKD", "a$": "AUD", "au$": "AUD", "c$": "CAD",
    "ca$": "CAD", "s$": "SGD", "jp¥": "JPY", "cn¥": "CNY", "rmb": "CNY", "$": "USD", "¥": "JPY", "￥": "JPY",
    "€": "EUR", "£": "GBP", "₩": "KRW", "₹": "INR", "rs": "INR", "rs.": "INR",
}
_CODES = ("USD", "JPY", "EUR", "CNY", "GBP", "TWD", "KRW", "HKD", "INR", "AUD", "CAD", "SGD", "CHF")
_WORD_CURRENCY = [  # longest first: the regex alternation tries them in this order
    (r"japanese\s+yen", "JPY"), (r"yen", "JPY"),
    (r"(?:new\s+)?taiwan(?:ese)?\s+dollars?", "TWD"), (r"nt\s+dollars?", "TWD"),
    (r"hong\s+kong\s+dollars?", "HKD"), (r"australian\s+dollars?", "AUD"), (r"canadian\s+dollars?", "CAD"),
    (r"singapore\s+dollars?", "SGD"), (r"u\.?s\.?\s+dollars?", "USD"), (r"american\s+dollars?", "USD"),
    (r"dollars?", "USD"), (r"euros?", "EUR"), (r"pounds?\s+sterling", "GBP"), (r"pounds?", "GBP"),
    (r"yuan", "CNY"), (r"renminbi", "CNY"), (r"korean\s+won", "KRW"), (r"rupees?", "INR"),
    (r"swiss\s+francs?", "CHF"),
]
_CJK_CURRENCY = {
    "日元": "JPY", "日圆": "JPY", "日幣": "JPY", "円": "JPY", "美元": "USD", "美金": "USD", "米ドル": "USD",
    "ドル": "USD", "欧元": "EUR", "ユーロ": "EUR", "英镑": "GBP", "ポンド": "GBP", "人民币": "CNY",
    "人民元": "CNY", "新台币": "TWD", "台币": "TWD", "港元": "HKD", "港币": "HKD", "韩元": "KRW",
    "ウォン": "KRW", "元": "CNY",
}
_MEASURES = [
    (r"nanomet(?:er|re)s?|nm|纳米|ナノメートル|ナノ", "nm"), (r"gigawatt[\s-]?hours?|GWh", "GWh"),
    (r"megawatt[\s-]?hours?|MWh", "MWh"), (r"gigawatts?|GW", "GW"), (r"megawatts?|MW", "MW"),
    (r"kilomet(?:er|re)s?|km", "km"), (r"square\s+met(?:er|re)s?|sq\s?m|m2|㎡", "m2"), (r"hectares?", "ha"),
    (r"acres?", "acre"), (r"tonnes?|tons?|metric\s+tons?", "tonne"), (r"inch(?:es)?", "inch"),
    (r"millimet(?:er|re)s?|mm", "mm"), (r"seats", "seats"),
]
_DURATIONS = [(r"years?", "years"), (r"months?", "months"), (r"weeks?", "weeks"), (r"days?", "days"),
              (r"hours?", "hours"), (r"decades?", "decades"), (r"个月|か月|ヶ月|カ月", "months")]
_MONTHS = {
    "january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6, "july": 7, "august": 8,
    "september": 9, "october": 10, "november": 11, "december": 12, "jan": 1, "feb": 2, "mar": 3, "apr": 4,
    "jun": 6, "jul": 7, "aug": 8, "sep": 9, "sept": 9, "oct": 10, "nov": 11, "dec": 12,
}
_WORD_NUMBERS = {
    "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "dozen": 12,
}
_APPROX_BEFORE = [
    (r"approximately|approx\.|about|around|roughly|some|an estimated|estimated|circa|c\.|~|约合|大约|约|約|およそ|ほぼ", "about"),
    (r"nearly|almost|close to|just under|近|近く", "nearly"),
    (r"more than|over|above|exceeding|in excess of|upwards of|just over|超过|超過|逾|超", "over"),
    (r"up to|as much as|as many as|at most|a maximum of|最大|最高", "up to"),
    (r"at least|no less than|至少|少なくとも", "at least"),
    (r"less than|fewer than|under|below|不到|不足", "under"),
]
_APPROX_AFTER = [(r"左右|前後|程度|ほど", "about"), (r"以上|超|強|余り|余|多", "over"), (r"弱|未満|以下", "under")]
# Nouns after a 1800-2100 number that make it a count, not a year ("2000 employees").
_COUNT_NOUNS = frozenset(
    "people employees workers staff jobs companies firms units homes households residents students users "
    "customers members shares vehicles cars chips wafers stores branches seats cases patients".split())
_YEAR_CUES = frozenset(
    "in by since until till from of to before after during through year fiscal early late mid around circa "
    "spring summer autumn fall winter between and end start beginning".split())

# --- patterns -------------------------------------------------------------------------------------------

_NUM = r"(?:\d{1,3}(?:,\d{3})+(?![\d])|\d+)(?:\.\d+)?"
_LB = r"(?<![A-Za-z\d_.,])"  # a number starts a token: not "S2E12", not the "500" of "1,500"
_SCALE_ANY = r"(?:trillion|billion|million|thousand|crore|lakh|trn|tn|bln|bn|mln|mn|[tbmk])(?![A-Za-z])"
_SCALE_WORD = r"(?:trillion|billion|million|thousand|crore|lakh|trn|tn|bln|bn|mln|mn)(?![A-Za-z])"
_CJK_SCALE = "|".join(sorted(_CJK_SCALES, key=len, reverse=True))
_PREFIX = (r"(?:US\$|U\.S\.\s?\$|NT\$|HK\$|AU?\$|CA?\$|S\$|JP¥|CN¥|RMB|Rs\.?|" + "|".join(_CODES)
           + r"|[$¥￥€£₩₹])")
_EN_CUR = "|".join(p for p, _ in _WORD_CURRENCY) + "|" + "|".join(_CODES) + "|RMB"
_CJK_CUR = "|".join(sorted(_CJK_CURRENCY, key=len, reverse=True))
_SUFFIX_CUR = rf"(?:(?:{_EN_CUR})(?![A-Za-z])|{_CJK_CUR})"
_RANGE = r"\s?(?:-|–|—|~|〜|to)\s?"

_I = re.IGNORECASE
_SKIP = re.compile(r"\[\s*\d+(?:\s*[,–-]\s*\d+)*\s*\]|\b\d{1,2}:\d{2}(?::\d{2})?\b|\b\d+\s?:\s?\d+\b|"
                   r"\b[A-Za-z]+\d+[A-Za-z]+\d+\b")
_MONTH_RE = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DATE_DMY = re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+({_MONTH_RE})\.?,?\s+(\d{{4}})\b", _I)
_DATE_MDY = re.compile(rf"\b({_MONTH_RE})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b", _I)
_DATE_ISO = re.compile(r"(?<![\d.])(\d{4})([-/.])(\d{1,2})\2(\d{1,2})(?![\d])")
_DATE_CJK = re.compile(r"(\d{4})\s?年\s?(\d{1,2})\s?月(?:\s?(\d{1,2})\s?[日号])?")
_DATE_MY = re.compile(rf"\b({_MONTH_RE})\.?,?\s+(\d{{4}})\b", _I)
_CJK_AMOUNT = re.compile(rf"{_LB}(?P<pre>{_PREFIX}\s?)?(?P<body>(?:{_NUM}\s?(?:{_CJK_SCALE}))+)"
                         rf"(?P<suf>{_CJK_CUR}|(?:{_EN_CUR})(?![A-Za-z]))?", _I)
_CJK_PART = re.compile(rf"({_NUM})\s?({_CJK_SCALE})")
_MONEY_PRE = re.compile(
    rf"{_LB}(?P<pre>{_PREFIX})\s?(?P<n1>{_NUM})(?:\s?(?P<s1>{_SCALE_ANY}))?"
    rf"(?:{_RANGE}(?:{_PREFIX})?\s?(?P<n2>{_NUM})(?:\s?(?P<s2>{_SCALE_ANY}))?)?"
    rf"(?:\s?(?P<suf>{_SUFFIX_CUR}))?(?![A-Za-z\d])", _I)
_MONEY_SUF = re.compile(
    rf"{_LB}(?P<n1>{_NUM})(?:\s?(?P<s1>{_SCALE_WORD}))?(?:{_RANGE}(?P<n2>{_NUM})(?:\s?(?P<s2>{_SCALE_WORD}))?)?"
    rf"\s?(?P<suf>{_SUFFIX_CUR})", _I)
_PERCENT = re.compile(
    rf"{_LB}(?P<n1>{_NUM})(?:{_RANGE}(?P<n2>{_NUM}))?\s?(?P<suf>%|％|percent(?:age points?)?(?![A-Za-z])|"
    rf"per\s?cent(?![A-Za-z])|pct(?![A-Za-z])|パーセント)", _I)
_MEASURE = re.compile(
    rf"{_LB}(?P<n1>{_NUM})(?:{_RANGE}(?P<n2>{_NUM}))?(?:\s?|-)(?P<suf>"
    + "|".join(f"(?:{p})" for p, _ in _MEASURES) + r")(?![A-Za-z])", _I)
_DURATION = re.compile(
    rf"{_LB}(?P<n1>{_NUM})(?:{_RANGE}(?P<n2>{_NUM}))?(?:\s?|-)(?P<suf>"
    + "|".join(f"(?:{p})" for p, _ in _DURATIONS) + r")(?![A-Za-z])", _I)
_FISCAL = re.compile(r"\bFY\s?'?(\d{4}|\d{2})\b")
_WORDNUM = re.compile(r"\b(" + "|".join(_WORD_NUMBERS) + r")(?=[\s-]+[A-Za-z])", _I)
_BARE = re.compile(rf"{_LB}(?P<n1>{_NUM})(?:\s?(?P<s1>{_SCALE_WORD}))?(?![A-Za-z\d])", _I)
_APPROX_BEFORE_RE = [(re.compile(rf"(?:^|[^A-Za-z])(?P<hedge>(?:{p})\s*(?:of\s+)?)$", _I), n) for p, n in _APPROX_BEFORE]
_APPROX_AFTER_RE = [(re.compile(rf"^\s?(?:{p})"), n) for p, n in _APPROX_AFTER]
_MEASURE_RES = [(re.compile(rf"^(?:{p})$", _I), u) for p, u in _MEASURES]
_DURATION_RES = [(re.compile(rf"^(?:{p})$", _I), u) for p, u in _DURATIONS]
_WORD_CURRENCY_RES = [(re.compile(rf"^(?:{p})$", _I), c) for p, c in _WORD_CURRENCY]
_PREV_WORD = re.compile(r"([A-Za-z]+)[\s-]*$")
_NEXT_WORD = re.compile(r"^[\s-]*([A-Za-z]+)")
_LETTER_HYPHEN = re.compile(r"[A-Za-z]-$")
_CJK_NONCOUNT_AFTER = re.compile(r"^\s?[月日号時时点分秒]")


# --- helpers --------------------------------------------------------------------------------------------

def _num(s: str) -> Decimal:
    return Decimal(s.replace(",", ""))


def _currency(token: str | None) -> str | None:
    if not token:
        return None
    t = token.strip()
    if t in _CJK_CURRENCY:
        return _CJK_CURRENCY[t]
    low = re.sub(r"\s+", "", t.lower())
    if low in _PREFIX_CURRENCY:
        return _PREFIX_CURRENCY[low]
    if t.upper() in _CODES:
        return t.upper()
    if t.upper() == "RMB":
        return "CNY"
    for rx, code in _WORD_CURRENCY_RES:
        if rx.match(t):
            return code
    return None


def currency_of(word: str) -> str | None:
    """The ISO code a currency word or symbol names ("yen", "dollars", "$", "円"), or None."""
    return _currency(word)


def _scale(token: str | None) -> Decimal:
    return Decimal(_SCALES[token.lower()]) if token else Decimal(1)


def hedge_start(text: str, start: int) -> int | None:
    """Where the hedge words just before a figure begin ("more than 1,100" -> the offset of "more")."""
    lo = max(0, start - 24)
    for rx, _ in _APPROX_BEFORE_RE:
        m = rx.search(text[lo:start])
        if m:
            return lo + m.start("hedge")
    return None


def _approx(text: str, start: int, end: int) -> str | None:
    before = text[max(0, start - 24):start]
    for rx, name in _APPROX_BEFORE_RE:
        if rx.search(before):
            return name
    after = text[end:end + 3]
    for rx, name in _APPROX_AFTER_RE:
        if rx.match(after):
            return name
    return None


def _valid_date(y: int, m: int, d: int) -> bool:
    return 1800 <= y <= 2100 and 1 <= m <= 12 and 0 <= d <= 31


class _Collector:
    """Accumulates quantities while keeping spans disjoint: earlier patterns claim text first."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.spans: list[tuple[int, int]] = []
        self.out: list[Quantity] = []

    def free(self, start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e in self.spans)

    def claim(self, start: int, end: int) -> None:
        self.spans.append((start, end))

    def add(self, start: int, end: int, value: float, unit: str, kind: str, high: float | None = None) -> None:
        self.claim(start, end)
        self.out.append(Quantity(self.text[start:end], start, end, value, unit, kind,
                                 _approx(self.text, start, end), high))


def _dates(c: _Collector) -> None:
    text = c.text
    for m in _DATE_ISO.finditer(text):
        y, mo, d = int(m.group(1)), int(m.group(3)), int(m.group(4))
        if _valid_date(y, mo, d) and d > 0 and c.free(m.start(), m.end()):
            c.add(m.start(), m.end(), y * 10000 + mo * 100 + d, "date", "date")
    for m in _DATE_DMY.finditer(text):
        d, mo, y = int(m.group(1)), _MONTHS[m.group(2).lower()], int(m.group(3))
        if _valid_date(y, mo, d) and d > 0 and c.free(m.start(), m.end()):
            c.add(m.start(), m.end(), y * 10000 + mo * 100 + d, "date", "date")
    for m in _DATE_MDY.finditer(text):
        mo, d, y = _MONTHS[m.group(1).lower()], int(m.group(2)), int(m.group(3))
        if _valid_date(y, mo, d) and d > 0 and c.free(m.start(), m.end()):
            c.add(m.start(), m.end(), y * 10000 + mo * 100 + d, "date", "date")
    for m in _DATE_CJK.finditer(text):
        y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
        if _valid_date(y, mo, d) and c.free(m.start(), m.end()):
            c.add(m.start(), m.end(), y * 10000 + mo * 100 + d, "date", "date")
    for m in _DATE_MY.finditer(text):
        mo, y = _MONTHS[m.group(1).lower()], int(m.group(2))
        if m.group(1).lower() == "may" and m.group(1)[0].islower():
            continue  # "may 2025" is rarely a month; "May 2025" is
        if _valid_date(y, mo, 0) and c.free(m.start(), m.end()):
            c.add(m.start(), m.end(), y * 10000 + mo * 100, "date", "date")


def _amounts(c: _Collector) -> None:
    text = c.text
    for m in _CJK_AMOUNT.finditer(text):
        if not c.free(m.start(), m.end()):
            continue
        value = float(sum(_num(n) * Decimal(_CJK_SCALES[s]) for n, s in _CJK_PART.findall(m.group("body"))))
        unit = _currency(m.group("suf")) or _currency((m.group("pre") or "").strip())
        if unit:
            c.add(m.start(), m.end(), value, unit, "money")
        else:
            c.add(m.start(), m.end(), value, "count", "count")
    for rx in (_MONEY_PRE, _MONEY_SUF):
        for m in rx.finditer(text):
            if not c.free(m.start(), m.end()):
                continue
            unit = _currency(m.groupdict().get("pre")) or _currency(m.group("suf"))
            if unit is None:
                continue
            s1, s2 = m.group("s1"), m.group("s2")
            low = float(_num(m.group("n1")) * _scale(s1 or s2))
            high = float(_num(m.group("n2")) * _scale(s2 or s1)) if m.group("n2") else None
            c.add(m.start(), m.end(), low, unit, "money", high)


def _ranged(c: _Collector, rx: re.Pattern[str], kind: str, unit_of) -> None:
    for m in rx.finditer(c.text):
        if not c.free(m.start(), m.end()):
            continue
        unit = unit_of(m.group("suf"))
        if unit is None:
            continue
        n1 = float(_num(m.group("n1")))
        if kind == "duration" and unit == "years" and m.group("n2") is None and 1800 <= n1 <= 2100:
            continue  # "2025 year-end" is a year, not a duration
        high = float(_num(m.group("n2"))) if m.group("n2") else None
        c.add(m.start(), m.end(), n1, unit, kind, high)


def _lookup(table: list[tuple[re.Pattern[str], str]]):
    def unit_of(token: str) -> str | None:
        return next((u for rx, u in table if rx.match(token.strip())), None)
    return unit_of


def _plain_numbers(c: _Collector) -> None:
    text = c.text
    for m in _FISCAL.finditer(text):
        if c.free(m.start(), m.end()):
            y = int(m.group(1))
            c.add(m.start(), m.end(), y if y >= 100 else 2000 + y, "year", "year")
    for m in _WORDNUM.finditer(text):
        if c.free(m.start(), m.end()):
            c.add(m.start(), m.end(), _WORD_NUMBERS[m.group(1).lower()], "count", "count")
    for m in _BARE.finditer(text):
        start, end = m.start(), m.end()
        if not c.free(start, end):
            continue
        raw = m.group("n1")
        value = float(_num(raw) * _scale(m.group("s1")))
        after = text[end:end + 2]
        is_yearish = m.group("s1") is None and re.fullmatch(r"\d{4}", raw) is not None and 1800 <= value <= 2100
        if _LETTER_HYPHEN.search(text[max(0, start - 2):start]) and not is_yearish:
            continue  # "COVID-19", "F-35": part of a name
        if after.startswith(("年度", "年")) and re.fullmatch(r"\d{4}", raw):
            c.add(start, end, value, "year", "year")
            continue
        if _CJK_NONCOUNT_AFTER.match(after):
            continue
        if is_yearish:
            nxt = _NEXT_WORD.match(text[end:end + 20])
            prev = _PREV_WORD.search(text[max(0, start - 20):start])
            counted = nxt is not None and nxt.group(1).lower() in _COUNT_NOUNS
            cued = prev is not None and prev.group(1).lower() in _YEAR_CUES
            if cued or not counted:
                c.add(start, end, value, "year", "year")
                continue
        c.add(start, end, value, "count", "count")


@lru_cache(maxsize=65_536)
def _extract(text: str) -> tuple[Quantity, ...]:
    c = _Collector(text)
    for m in _SKIP.finditer(text):
        c.claim(m.start(), m.end())
    _dates(c)
    _amounts(c)
    _ranged(c, _PERCENT, "percent", lambda s: "%")
    _ranged(c, _MEASURE, "measure", _lookup(_MEASURE_RES))
    _ranged(c, _DURATION, "duration", _lookup(_DURATION_RES))
    _plain_numbers(c)
    return tuple(sorted(c.out, key=lambda q: q.start))


def extract_figures(text: str) -> list[Quantity]:
    """Every quantity in `text`, in reading order, with spans into `text` (footnote marks and codes skipped)."""
    if not text or not isinstance(text, str):
        return []
    return list(_extract(text))


_UNIT_ALIASES = {"percent": "%", "pct": "%", "％": "%", "rmb": "CNY", "yen": "JPY", "dollars": "USD",
                 "yuan": "CNY", "nanometer": "nm", "nanometers": "nm"}


def normalize_unit(unit: str) -> str:
    """The canonical spelling of a unit: ISO codes upper-case, "%" for percent, others as given (lower-case)."""
    u = unit.strip()
    if u.lower() in _UNIT_ALIASES:
        return _UNIT_ALIASES[u.lower()]
    if u.upper() in _CODES:
        return u.upper()
    return u if u in ("GW", "MW", "GWh", "MWh") else u.lower()


def figures_equal(a_value: float, a_unit: str, b_value: float, b_unit: str) -> bool:
    """Same unit and the same value up to float rounding (scale matters: 1 billion != 1 trillion)."""
    try:
        return normalize_unit(a_unit) == normalize_unit(b_unit) and math.isclose(
            float(a_value), float(b_value), rel_tol=1e-6, abs_tol=1e-9)
    except (TypeError, ValueError):
        return False


def format_value(value: float, unit: str) -> str:
    """A readable rendering of a normalized figure, e.g. 4.1e10 JPY -> "41 billion JPY"."""
    if unit in ("year", "date", "count", "%") or abs(value) < 1e6:
        v = f"{value:,.10g}" if unit not in ("year", "date") else str(int(value))
        return f"{v}%" if unit == "%" else (v if unit in ("year", "date", "count") else f"{v} {unit}")
    for name, scale in (("trillion", 1e12), ("billion", 1e9), ("million", 1e6)):
        if abs(value) >= scale:
            return f"{value / scale:.10g} {name} {unit}"
    return f"{value:,.10g} {unit}"
