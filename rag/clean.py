"""Boilerplate detection for scraped articles: which regions of the original text are content.

Rules look at line shape, repetition, URL-likeness, position (lead / tail of the page), call-to-action
phrasing and widget-like runs of numbers; none is keyed to a particular site. Offsets always point into
the original text, which is never rewritten.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.types import Span

# Reasons a line is dropped; "meta" and "heading" lines are kept but cannot make a region on their own.
REPEAT, CTA, LINK, WIDGET, WIDGET_LABEL, SOURCES, NAV, TRAILING, TAIL, ORPHAN = (
    "repeated line", "call to action", "link", "widget", "widget label", "source-list stub",
    "navigation", "trailing tags", "page footer", "orphan meta/heading",
)

_CTA = re.compile(
    r"""^(?:
        subscribe\b.* | sign\s?(?:up|in)\b.* | log\s?in\b.* | register\b.{0,30} | download\b.{0,40}
      | (?:get|receive)\b.{0,20}\b(?:alerts?|newsletters?|updates)\b.* | .*\bnewsletters?\b.{0,30}
      | listen\s+now | watch\s+now | read\s+(?:more|next|also)\b.{0,40} | more\s+(?:about|from|on)\b.{0,40}
      | send\s+us\b.{0,30} | contact\s+us | follow\s+us\b.{0,30} | share\s+(?:this|on|via)\b.{0,30} | share
      | (?:other|more|related|recommended|similar|popular|trending|latest)\s+(?:stories|articles|posts|news|reads|content|reports|videos)\b.{0,30}
      | .*\byou\s+(?:might|may)\s+(?:also\s+)?(?:like|enjoy)\b.{0,10}
      | related\s*:.{0,80} | see\s+also\b.{0,60} | (?:tags?|topics?|filed\s+under)\s*:.{0,100}
      | (?:photo|image|picture|video|graphic|illustration)s?(?:\s+credit)?\s*:.{0,60}
      | podcasts? | advertisements? | sponsored(?:\s+content)? | click\s+here\b.{0,30}
      | powered\s+by\s+\S+ | .*\bprotection\s+status
      | (?:privacy\s+policy|terms\s+of\s+(?:use|service)|cookie\s+(?:policy|settings)).{0,40}
      | back\s+to\s+top | print | email | comments? | \d*\s*comments?
    )[.!:]?$""",
    re.I | re.X,
)
# Legal and age notices are dropped even when written as a full sentence.
_NOTICE = re.compile(
    r"""^(?:(?:copyright|©|\(c\)).{0,100} | .{0,60}\ball\s+rights\s+reserved\b.{0,40}
      | this\s+(?:article|story|post|page)\s+is\s+more\s+than\s+\w+\s+(?:years?|months?)\s+old\.?)$""",
    re.I | re.X,
)
_SOURCES = re.compile(
    r"^(?:sources?|references?|bronnen|bron|quellen|fuentes|fonti|参考(?:文献|资料)?|出典|来源|資料)\s*[:：]?$", re.I
)
_URL = re.compile(r"https?://\S+|www\.\S+|\b[\w-]+(?:\.[\w-]+)*\.(?:com|org|net|io|co|jp|cn|uk|de|nl|gov|edu|info|biz)\b\S*", re.I)
_URL_HINT = re.compile(r"https?:|www\.|\.(?:com|org|net|io)\b", re.I)
_WORD = re.compile(r"[^\W\d_][\w’'&.-]*")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")
_TERMINAL = re.compile(r"[.!?。！？…][\"'”’»)\]」』）]*(?:\s*\[\d+\])*\s*[^\w\s]?$")
_MONTH = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
          r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?")
DATE_PATTERN = re.compile(
    rf"""(?P<iso>\b(?P<y1>(?:19|20)\d\d)[-/.](?P<m1>\d{{1,2}})[-/.](?P<d1>\d{{1,2}})\b)
      | (?P<dmy>\b(?P<d2>\d{{1,2}})(?:st|nd|rd|th)?\s+(?P<m2>{_MONTH})\s*,?\s+(?P<y2>(?:19|20)\d\d)\b)
      | (?P<mdy>\b(?P<m3>{_MONTH})\s+(?P<d3>\d{{1,2}})(?:st|nd|rd|th)?\s*,?\s+(?P<y3>(?:19|20)\d\d)\b)
      | (?P<cjk>(?P<y4>(?:19|20)\d\d)\s*年\s*(?P<m4>\d{{1,2}})\s*月\s*(?P<d4>\d{{1,2}})\s*[日号])""",
    re.I | re.X,
)
_BYLINE = re.compile(r"^(?:by|from|published|updated|posted|written by|reporting by|editing by)\b", re.I)
_DESK = re.compile(r"\b(?:desk|staff\s+(?:writer|reporter)|newsroom|editorial\s+team)$", re.I)
# Tokens a number widget is made of: figures, currency, magnitude units, separators, labels like "BN".
_WIDGET_TOKEN = re.compile(
    r"^(?:[$€£¥₹]?[\d.,:/%-]+[%]?|[$€£¥₹]|bn|mn|b|m|k|t|billion|million|trillion|usd|eur|jpy|cny|yoy|cagr|[|/·•-])$",
    re.I,
)


@dataclass(frozen=True, slots=True)
class LineVerdict:
    """One non-blank line and what cleaning decided: kind is content, heading, meta, or dropped."""

    start: int
    end: int
    text: str
    kind: str
    reason: str | None = None

    @property
    def kept(self) -> bool:
        return self.kind != "dropped"


def content_spans(text: str) -> list[Span]:
    """Kept regions of text: maximal runs of kept lines (blank lines inside allowed), trimmed."""
    verdicts = classify_lines(text)
    return [Span(v[0].start, v[-1].end) for v in _regions(verdicts) if v]


def dropped_lines(text: str) -> list[LineVerdict]:
    """The lines cleaning drops, each with its reason (for debugging and tests)."""
    return [v for v in classify_lines(text) if not v.kept]


def classify_lines(text: str) -> list[LineVerdict]:
    """A verdict for every non-blank line of text, in order."""
    lines = _nonblank_lines(text)
    kinds: list[tuple[str, str | None]] = [_line_rule(t) for _, _, t in lines]
    _mark_repeats(lines, kinds)
    _mark_widget_labels(lines, kinds)
    _mark_tail(text, lines, kinds)
    _mark_lead_and_trailing(text, lines, kinds)
    verdicts = [LineVerdict(s, e, t, k, r) for (s, e, t), (k, r) in zip(lines, kinds, strict=True)]
    # A region of only bylines, dates and headings is page furniture, not content.
    orphaned = set()
    for region in _regions(verdicts):
        if not any(v.kind == "content" and is_substantial(v.text) for v in region):
            orphaned.update(id(v) for v in region)
    return [LineVerdict(v.start, v.end, v.text, "dropped", ORPHAN) if id(v) in orphaned else v for v in verdicts]


def _nonblank_lines(text: str) -> list[tuple[int, int, str]]:
    """(start, end, stripped text) of each non-blank line; start/end exclude surrounding whitespace."""
    out = []
    for m in re.finditer(r"[^\n]+", text):
        raw = m.group(0)
        stripped = raw.strip()
        if stripped:
            s = m.start() + (len(raw) - len(raw.lstrip()))
            out.append((s, s + len(stripped), stripped))
    return out


def _regions(verdicts: list[LineVerdict]) -> list[list[LineVerdict]]:
    """Runs of consecutive kept lines (only blank lines between them)."""
    regions: list[list[LineVerdict]] = [[]]
    for v in verdicts:
        if v.kept:
            regions[-1].append(v)
        elif regions[-1]:
            regions.append([])
    return [r for r in regions if r]


def word_count(line: str) -> int:
    """Words, counting every two CJK characters as one word."""
    if len(line) > 200 and not _CJK.search(line):  # long lines only meet "at least n words" tests
        return len(line.split())
    return len(_WORD.findall(_CJK.sub(" ", line))) + len(_CJK.findall(line)) // 2


def is_substantial(line: str) -> bool:
    """A line long enough to carry a statement (4+ words, or 8+ CJK characters)."""
    return len(line) >= 200 or word_count(line) >= 4 or len(_CJK.findall(line)) >= 8


def is_prose(line: str) -> bool:
    """A line that reads as running text: a finished sentence of 6+ words, or 15+ words."""
    n = word_count(line)
    return (n >= 6 and bool(_TERMINAL.search(line))) or n >= 15


def is_dateline(line: str) -> bool:
    """A short line that states a date ("2025-02-25 general", "July 29, 2025", "Tokyo, 25 Feb 2025.")."""
    return word_count(line) <= 10 and DATE_PATTERN.search(line) is not None


def _is_widget(line: str) -> bool:
    """Numbers, currency and units with no words: "$263.21 BN", "2029", "12% | 3.4x"."""
    tokens = line.replace("|", " | ").split()
    return bool(tokens) and all(_WIDGET_TOKEN.match(t) for t in tokens) and any(c.isdigit() for c in line)


def _is_field_row(line: str) -> bool:
    """Pipe-separated short fields with no sentence: "11 July 2023|S2E12|Listen Now"."""
    fields = [f.strip() for f in line.split("|")]
    return len(fields) >= 3 and all(0 < word_count(f) <= 4 or f.isdigit() for f in fields if f) \
        and not _TERMINAL.search(line)


def _is_link_line(line: str) -> bool:
    """A line that is mostly URLs or domain names."""
    urls = sum(len(m.group(0)) for m in _URL.finditer(line))
    return urls > 0 and (urls / len(line) > 0.5 or (word_count(line) <= 4 and not _TERMINAL.search(line)))


def _is_caps_label(line: str) -> bool:
    """A short ALL-CAPS label such as "STAY TUNED" or "GET AHEAD" (page furniture, not a sentence)."""
    if len(line) > 60:
        return False
    letters = [c for c in line if c.isalpha()]
    return (len(letters) >= 4 and all(c.isupper() for c in letters) and word_count(line) <= 4
            and not any(c.isdigit() for c in line) and not _TERMINAL.search(line) and not _CJK.search(line))


def _line_rule(line: str) -> tuple[str, str | None]:
    """The verdict a line gets on its own shape: (kind, reason)."""
    if len(line) > 300:  # long lines are text unless they are mostly links
        return ("dropped", LINK) if _URL_HINT.search(line) and _is_link_line(line) else ("content", None)
    n = word_count(line)
    if n <= 12 and (n <= 4 or not _TERMINAL.search(line)) and _CTA.match(line):
        return "dropped", CTA
    if n <= 16 and _NOTICE.match(line):
        return "dropped", CTA
    if _SOURCES.match(line):
        return "dropped", SOURCES
    if _is_link_line(line):
        return "dropped", LINK
    if _is_widget(line) or _is_field_row(line):
        return "dropped", WIDGET
    if _is_caps_label(line):
        return "dropped", CTA
    if is_dateline(line) or (_BYLINE.match(line) and word_count(line) <= 8) or (_DESK.search(line) and word_count(line) <= 6):
        return "meta", None
    if not is_substantial(line) and not _TERMINAL.search(line):
        return "heading", None
    return "content", None


def _norm(line: str) -> str:
    return " ".join(line.casefold().split())


def _mark_repeats(lines: list[tuple[int, int, str]], kinds: list[tuple[str, str | None]]) -> None:
    """A line identical (case and spacing aside) to an earlier one is a repeated headline or menu.

    Of two copies with only blank lines between them the first is dropped instead, so the one kept
    stays next to the text it heads (a headline printed twice above its article).
    """
    seen: dict[str, int] = {}
    for i, (_, _, t) in enumerate(lines):
        key = _norm(t)
        j = seen.get(key)
        if j is not None and len(key) >= 12 and kinds[i][0] != "dropped":
            if j == i - 1 and kinds[j][0] != "dropped":
                kinds[j] = ("dropped", REPEAT)
            else:
                kinds[i] = ("dropped", REPEAT)
        seen[key] = i


def _mark_widget_labels(lines: list[tuple[int, int, str]], kinds: list[tuple[str, str | None]]) -> None:
    """A short label right before a number widget ("Smart Manufacturing Market" / "$263.21 BN")."""
    for i in range(len(lines) - 1):
        nxt = kinds[i + 1]
        if nxt == ("dropped", WIDGET) and kinds[i][0] == "heading" and _is_widget(lines[i + 1][2]):
            kinds[i] = ("dropped", WIDGET_LABEL)


def _is_marker(line: str, kind: tuple[str, str | None]) -> bool:
    """A line that typically opens a page footer: a call to action, caps label, or desk signature."""
    return kind[1] in (CTA, SOURCES) or (_DESK.search(line) is not None and word_count(line) <= 6)


def _mark_tail(text: str, lines: list[tuple[int, int, str]], kinds: list[tuple[str, str | None]]) -> None:
    """Drop a page footer: from a footer marker in the second half on, when little prose follows it.

    Footers mix promos, podcasts and teasers of other stories; teaser sentences read like prose, so the
    footer is found from its opening marker and the low share of prose after it.
    """
    half = len(text) / 2
    for i, (s, _, t) in enumerate(lines):
        if s < half or not _is_marker(t, kinds[i]):
            continue
        rest = [line for _, _, line in lines[i + 1:]]
        prose = sum(1 for line in rest if is_prose(line))
        if not rest or prose / len(rest) < 0.4:
            for j in range(i, len(lines)):
                if kinds[j][0] != "dropped":
                    kinds[j] = ("dropped", TAIL)
            return


def _mark_lead_and_trailing(text: str, lines: list[tuple[int, int, str]], kinds: list[tuple[str, str | None]]) -> None:
    """Drop breadcrumbs glued above the first real line, and unpunctuated tag lines after the last prose."""
    first = next((i for i, (_, _, t) in enumerate(lines) if kinds[i][0] != "dropped" and is_substantial(t)), None)
    if first is not None:
        for i in range(first):
            s, e, t = lines[i]
            # Breadcrumb: a short label in the same block (no blank line) as the page's first real line.
            if kinds[i][0] == "heading" and word_count(t) <= 3 and "\n\n" not in text[e:lines[first][0]].replace(" ", ""):
                kinds[i] = ("dropped", NAV)
    last = max((i for i, (_, _, t) in enumerate(lines) if kinds[i][0] == "content" and is_prose(t)), default=None)
    if last is not None:
        for i in range(last + 1, len(lines)):
            t = lines[i][2]
            if kinds[i][0] != "dropped" and not _TERMINAL.search(t) and not is_prose(t):
                kinds[i] = ("dropped", TRAILING)
