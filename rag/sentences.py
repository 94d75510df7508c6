"""Sentence splitter with absolute character offsets, tuned for messy scraped news text.

A regex splitter rather than a model: every boundary must map back to an exact offset in the original
text, and the hard cases here (run-on " - " bullets, glued periods, footnote marks, CJK punctuation,
lower-cased leads) are about text shape, not grammar.
"""

from __future__ import annotations

import re

from rag.types import Span

# Abbreviations after which a period never ends a sentence (titles, Latin, "No. 5", months).
NEVER_SPLIT = frozenset(
    """mr mrs ms dr prof sr jr st mt ft gen gov sen rep rev hon pres lt col sgt capt cmdr adm maj
    no nos vol vols fig figs pp p ch chap sec art para ref refs eq eqs approx ca cf vs v al e.g i.e
    esp incl est min max avg dept univ assn tel ext op nr
    jan feb mar apr jun jul aug sep sept oct nov dec""".split()
)
# Abbreviations that often end a sentence too: split only when a typical sentence opener follows.
MAY_END = frozenset("inc corp ltd co llc plc bros etc a.m p.m u.s u.k u.n e.u u.s.a".split())
SENTENCE_OPENERS = frozenset(
    """the this that these those it its he she they we i you our their his her a an in on at
    for but and or so yet however meanwhile also after before when while if as since although
    there here what why how who which according analysts shares its""".split()
)

_CJK_TERM = "。！？"
_TERM_RUN = re.compile(r"[.!?。！？…]+")
# Closing quotes/brackets and footnote marks like [1][4] that belong to the sentence before them.
_CLOSERS = re.compile(r"(?:[\"'”’»)\]】」』）]|\[\d+(?:\s*[,–-]\s*\d+)*\])*")
_NEXT_WORD = re.compile(r"\s*[\"“‘'(]*([^\s\"”’')]*)")
_BULLET = re.compile(r"(?:[-–—•*▪●►·]|#{1,6})\s+")
_INLINE_BULLET = re.compile(r"\s[•▪●►]\s")
_CONNECTOR = r"(?:&|and|of|the|for|in|on|to|with|a|an|vs\.?)"
_HEAD_WORD = r"[A-Z][\w’'&/.+-]*"
# "Funding Strategy - Starting from ...": a short Title Case run glued to the sentence by a dash.
_DASH_HEADING = re.compile(
    rf"{_HEAD_WORD}(?:[ \t]+(?:{_HEAD_WORD}|{_CONNECTOR})){{0,5}}(?=[ \t]+[-–—][ \t]+[A-Z0-9\"“‘'$€£¥(])"
)
_DASH_SEP = re.compile(r"[ \t]+[-–—][ \t]+")
_HAS_WORD = re.compile(r"[^\W_]")
_FOOTNOTE = re.compile(r"\[\d+(?:\s*[,–-]\s*\d+)*\]")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uff00-\uffef]")
_LINE_END_TERM = re.compile(r"[.!?。！？:;…][\"'”’»)\]】」』）]*(?:\[\d+\])*$")


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Sentences of text[start:end] as absolute, whitespace-trimmed spans, in order."""
    end = len(text) if end is None else end
    spans: list[Span] = []
    for bs, be in _blocks(text, start, end):
        for ps, pe in _split_block(text, bs, be):
            for s, e in _split_piece(text, ps, pe):
                span = _trim(text, s, e)
                if span is not None:
                    spans.append(span)
    return spans


def _lines(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """(start, end) of each line in [start, end), without the newline."""
    out = []
    pos = start
    while pos < end:
        nl = text.find("\n", pos, end)
        if nl == -1:
            out.append((pos, end))
            break
        out.append((pos, nl))
        pos = nl + 1
    return out


def _continues(prev: str, nxt: str) -> bool:
    """Whether a single line break is a hard wrap inside a sentence rather than a sentence end."""
    p, n = prev.strip(), nxt.strip()
    if not p or not n or _LINE_END_TERM.search(p) or _BULLET.match(n) or n[0] in "#|>":
        return False
    if n[0].islower() or p[-1] in ",(-–—/&":
        return True
    # A long line stopping on a lower-case word mid-sentence is wrapped prose ("... plans of\nJapan's
    # ministry"); short lines and Title Case lines are headings, labels or bylines.
    words = p.split()
    capitalised = sum(1 for w in words if w[:1].isupper()) / len(words)
    return len(p) >= 60 and words[-1][:1].islower() and capitalised < 0.5 and (n[0].isalnum() or n[0] in "\"“‘'($€£¥")


def _blocks(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Runs of lines that can hold a sentence: a blank line, or a line end after a heading, ends one."""
    blocks: list[tuple[int, int]] = []
    cur: tuple[int, int] | None = None
    prev_line = ""
    for ls, le in _lines(text, start, end):
        line = text[ls:le]
        if not line.strip():
            if cur:
                blocks.append(cur)
            cur, prev_line = None, ""
            continue
        if cur and _continues(prev_line, line):
            cur = (cur[0], le)
        else:
            if cur:
                blocks.append(cur)
            cur = (ls, le)
        prev_line = line
    if cur:
        blocks.append(cur)
    return blocks


def _is_boundary(text: str, p: int, q: int, close_end: int, block_end: int) -> bool:
    """Whether the terminal punctuation run text[p:q] (closers up to close_end) ends a sentence."""
    run = text[p:q]
    if close_end >= block_end:
        return True
    nxt = text[close_end]
    if any(c in _CJK_TERM for c in run):
        # 「…。」と述べた: a quoted sentence that the outer sentence goes on after is not a boundary.
        return close_end == q or not _CJK.match(nxt)
    if "!" in run or "?" in run:
        return nxt.isspace() or bool(_CJK.match(nxt))
    if run != ".":  # an ellipsis ends a sentence only before a capital
        m = _NEXT_WORD.match(text, close_end)
        return nxt.isspace() and bool(m and m.group(1)[:1].isupper())
    token = _prev_token(text, p)
    low = token.lower()
    if not nxt.isspace():
        # "collaboration.Nikkei": a glued period before a capitalised word (not decimals, domains, U.S.).
        return (close_end == q and re.match(r"[A-Z][a-z]", text[q:q + 2]) is not None and len(token) >= 2
                and re.search(r"[a-z\d%]$", token) is not None and "." not in token
                and low not in NEVER_SPLIT and low not in MAY_END)
    if low in NEVER_SPLIT or re.fullmatch(r"[A-Za-z]", token):
        return False
    if low in MAY_END or re.fullmatch(r"(?:[A-Za-z]\.)+[A-Za-z]", token):
        m = _NEXT_WORD.match(text, close_end)
        word = m.group(1) if m else ""
        return word[:1].isupper() and word.lower().rstrip(",") in SENTENCE_OPENERS
    return True


def _prev_token(text: str, p: int) -> str:
    """The word just before position p (to the previous space or opening bracket/quote)."""
    i = p
    while i > 0 and p - i < 40 and not text[i - 1].isspace() and text[i - 1] not in "([{\"“‘'«":
        i -= 1
    return text[i:p]


def _split_block(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Split one block at sentence-ending punctuation; footnote marks and closers stay with the left side."""
    pieces = []
    cur = start
    for m in _TERM_RUN.finditer(text, start, end):
        p, q = m.start(), m.end()
        if p < cur:
            continue
        close_end = _CLOSERS.match(text, q, end).end()
        if _is_boundary(text, p, q, close_end, end):
            pieces.append((cur, close_end))
            cur = close_end
    if cur < end:
        pieces.append((cur, end))
    return pieces


def _split_piece(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Split inline bullets ("a • b") and a leading run-on heading ("Key Players - Approximately ...")."""
    out: list[tuple[int, int]] = []
    cur = start
    for m in _INLINE_BULLET.finditer(text, start, end):
        out.append((cur, m.start()))
        cur = m.start() + 1
    out.append((cur, end))
    result: list[tuple[int, int]] = []
    for s, e in out:
        s = _skip_marker(text, s, e)
        h = _DASH_HEADING.match(text, s, e)
        if h and len(h.group(0)) <= 60:
            sep = _DASH_SEP.match(text, h.end(), e)
            if sep and sep.end() < e:
                result.append((s, h.end()))
                s = sep.end()
        result.append((s, e))
    return result


def _skip_marker(text: str, s: int, e: int) -> int:
    """Index after leading whitespace and list/heading markers ("- ", "• ", "## ")."""
    while s < e and text[s].isspace():
        s += 1
    m = _BULLET.match(text, s, e)
    while m and m.end() < e:
        s = m.end()
        m = _BULLET.match(text, s, e)
    return s


def _trim(text: str, s: int, e: int) -> Span | None:
    """The span without surrounding whitespace or list markers; None when nothing word-like is left."""
    s = _skip_marker(text, s, e)
    while e > s and text[e - 1].isspace():
        e -= 1
    if e <= s or not _HAS_WORD.search(_FOOTNOTE.sub("", text[s:e])):
        return None
    return Span(s, e)
