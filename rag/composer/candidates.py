"""Answer candidates of a sentence: its entities, noun chunks and figures, each a verbatim span."""

from __future__ import annotations

from dataclasses import dataclass

from rag.composer.evidence import Sentence
from rag.composer.lexicon import answer_types
from rag.figures import Quantity

_NUMERIC = frozenset({"MONEY", "PERCENT", "CARDINAL", "QUANTITY", "DATE", "TIME", "ORDINAL"})
_TRIM = frozenset({"DET", "PUNCT", "CCONJ", "PART"})


@dataclass(frozen=True, slots=True)
class Candidate:
    start: int  # character offsets within the sentence
    end: int
    tok_start: int  # token range within the sentence
    tok_end: int
    text: str
    label: str  # an entity label, or "NP" for a noun chunk
    kind: str  # entity | chunk | figure
    figure: Quantity | None = None


def figure_label(q: Quantity) -> str:
    return answer_types()["figure_labels"].get(q.kind, "CARDINAL")


def _token_range(s: Sentence, start: int, end: int) -> tuple[int, int] | None:
    idx = [t.i for t in s.parse.tokens if t.start < end and t.end > start]
    return (idx[0], idx[-1] + 1) if idx else None


def _trimmed(s: Sentence, a: int, b: int) -> tuple[int, int]:
    """A noun chunk without a leading determiner or trailing punctuation ("the Broncos" -> "Broncos")."""
    toks = s.parse.tokens
    while a < b - 1 and toks[a].pos in _TRIM:
        a += 1
    while b > a + 1 and toks[b - 1].pos in _TRIM:
        b -= 1
    return a, b


def candidates(s: Sentence) -> list[Candidate]:
    """Distinct spans of the sentence that could answer a question; a figure's entity carries the figure."""
    p = s.parse
    out: dict[tuple[int, int], Candidate] = {}
    figures = list(s.figures)

    def figure_in(cs: int, ce: int) -> Quantity | None:
        return next((q for q in figures if cs <= q.start and q.end <= ce), None)

    for e in p.ents:
        cs, ce = p.char_span(e)
        q = figure_in(cs, ce) if e.label in _NUMERIC else None
        out[(cs, ce)] = Candidate(cs, ce, e.start, e.end, p.text[cs:ce], e.label, "entity", q)
    for q in figures:
        if (q.start, q.end) in out or any(c.figure is q for c in out.values()):
            continue
        rng = _token_range(s, q.start, q.end)
        if rng:
            out[(q.start, q.end)] = Candidate(q.start, q.end, *rng, q.text, figure_label(q), "figure", q)
    for c in p.chunks:
        a, b = _trimmed(s, c.start, c.end)
        cs, ce = p.tokens[a].start, p.tokens[b - 1].end
        if (cs, ce) not in out:
            out[(cs, ce)] = Candidate(cs, ce, a, b, p.text[cs:ce], "NP", "chunk", figure_in(cs, ce))
    return sorted(out.values(), key=lambda c: (c.start, -c.end))
