"""Answer candidates of a sentence: its entities, noun chunks and figures, each a verbatim span."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from rag.composer.evidence import Sentence
from rag.composer.lexicon import answer_types
from rag.figures import Quantity

_NUMERIC = frozenset({"MONEY", "PERCENT", "CARDINAL", "QUANTITY", "DATE", "TIME", "ORDINAL"})
_TRIM = frozenset({"DET", "PUNCT", "CCONJ", "PART"})
_TRIM_END = _TRIM | {"ADP"}  # "Renmin University's" -> "Renmin University", "Mstislav the Bold of" -> "... Bold"


@dataclass(frozen=True, slots=True)
class Candidate:
    start: int  # character offsets within the sentence
    end: int
    tok_start: int  # token range within the sentence
    tok_end: int
    text: str
    label: str  # an entity label, or "NP" for a noun chunk
    kind: str  # entity | chunk | figure | phrase (a noun chunk with its coordinated nouns or complement)
    figure: Quantity | None = None


def figure_label(q: Quantity) -> str:
    return answer_types()["figure_labels"].get(q.kind, "CARDINAL")


@lru_cache(maxsize=1)
def figure_labels() -> frozenset[str]:
    """The entity labels a figure can carry (MONEY, PERCENT, CARDINAL, DATE, QUANTITY)."""
    return frozenset(answer_types()["figure_labels"].values())


def _token_range(s: Sentence, start: int, end: int) -> tuple[int, int] | None:
    idx = [t.i for t in s.parse.tokens if t.start < end and t.end > start]
    return (idx[0], idx[-1] + 1) if idx else None


def _trimmed(s: Sentence, a: int, b: int) -> tuple[int, int]:
    """A span without a leading determiner, nor trailing punctuation, possessive or preposition
    ("the Broncos" -> "Broncos")."""
    toks = s.parse.tokens
    while a < b - 1 and toks[a].pos in _TRIM:
        a += 1
    while b > a + 1 and toks[b - 1].pos in _TRIM_END:
        b -= 1
    return a, b


def _stripped(text: str, cs: int, ce: int) -> tuple[int, int]:
    """A span without leading or trailing symbols (bullets, quotes, dashes); currency signs and "%" stay."""
    while cs < ce - 1 and not (text[cs].isalnum() or unicodedata.category(text[cs]) == "Sc"):
        cs += 1
    while ce > cs + 1 and not (text[ce - 1].isalnum() or text[ce - 1] == "%"):
        ce -= 1
    return cs, ce


def labels(s: Sentence) -> frozenset[str]:
    """The labels the sentence's candidates can carry (entity labels, figure labels, NP), without building them."""
    if "labels" not in s.derived:
        p = s.parse
        s.derived["labels"] = frozenset({e.label for e in p.ents} | {figure_label(q) for q in s.figures}
                                        | ({"NP"} if p.chunks else set()))
    return s.derived["labels"]


def candidates(s: Sentence) -> list[Candidate]:
    """Distinct spans of the sentence that could answer a question; a figure's entity carries the figure."""
    if "candidates" not in s.derived:
        s.derived["candidates"] = _candidates(s)
    return s.derived["candidates"]


def _candidates(s: Sentence) -> list[Candidate]:
    p = s.parse
    out: dict[tuple[int, int], Candidate] = {}
    figures = list(s.figures)

    def figure_in(cs: int, ce: int) -> Quantity | None:
        return next((q for q in figures if cs <= q.start and q.end <= ce), None)

    def figure_over(cs: int, ce: int) -> Quantity | None:
        return next((q for q in figures if q.start < ce and cs < q.end), None)

    for e in p.ents:
        cs, ce = p.char_span(e)
        q = figure_over(cs, ce) if e.label in _NUMERIC else None
        if q is not None and not (cs <= q.start and q.end <= ce):  # "$" or "yen" outside the entity: take both
            cs, ce = min(cs, q.start), max(ce, q.end)
        rng = _token_range(s, cs, ce) or (e.start, e.end)
        a, b = _trimmed(s, *rng)
        if q is None or (p.tokens[a].start <= q.start and q.end <= p.tokens[b - 1].end):
            rng, cs, ce = (a, b), max(cs, p.tokens[a].start), min(ce, p.tokens[b - 1].end)
        cs, ce = _stripped(p.text, cs, ce)
        out[(cs, ce)] = Candidate(cs, ce, *rng, p.text[cs:ce], e.label, "entity", q)
    for q in figures:  # the bare figure too when an entity holds more ("about 1300", "early 2012")
        if (q.start, q.end) in out:
            continue
        rng = _token_range(s, q.start, q.end)
        if rng:
            out[(q.start, q.end)] = Candidate(q.start, q.end, *rng, q.text, figure_label(q), "figure", q)
    for c in p.chunks:
        a, b = _trimmed(s, c.start, c.end)
        cs, ce = _stripped(p.text, p.tokens[a].start, p.tokens[b - 1].end)
        if (cs, ce) not in out:
            out[(cs, ce)] = Candidate(cs, ce, a, b, p.text[cs:ce], "NP", "chunk", figure_in(cs, ce))
        for b2 in _extensions(s, a, b):
            cs, ce = p.tokens[a].start, p.tokens[b2 - 1].end
            if (cs, ce) not in out:
                out[(cs, ce)] = Candidate(cs, ce, a, b2, p.text[cs:ce], "NP", "phrase", figure_in(cs, ce))
    return sorted(out.values(), key=lambda c: (c.start, -c.end))


def _right_edges(s: Sentence) -> list[int]:
    """For each token, one past the last token of its dependency subtree (kept with the sentence)."""
    if "right_edges" not in s.derived:
        toks = s.parse.tokens
        edge = [t.i + 1 for t in toks]
        for t in toks:
            j, steps = t.i, 0
            while toks[j].head != j and steps < len(toks):
                j, steps = toks[j].head, steps + 1
                edge[j] = max(edge[j], t.i + 1)
        s.derived["right_edges"] = edge
    return s.derived["right_edges"]


def _extensions(s: Sentence, a: int, b: int, most: int = 8) -> list[int]:
    """Ends of longer phrases a noun chunk heads: with its coordinated nouns ("Neptune and Triton") or with
    an "of"/"in" complement ("top row of windows"), at most `most` tokens in all, ending on a word."""
    toks = s.parse.tokens
    root = next((i for i in range(a, b) if not a <= toks[i].head < b or toks[i].head == i), b - 1)
    edges = _right_edges(s)
    ends = []
    for t in toks[b:]:
        if t.head != root:
            continue
        if t.dep == "conj" or (t.dep == "prep" and t.lemma in ("of", "in")):
            end = edges[t.i]
            while end > b and toks[end - 1].pos in _TRIM_END:
                end -= 1
            if b < end <= a + most:
                ends.append(end)
    return ends
