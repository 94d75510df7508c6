"""Example questions for the chat page's welcome, written from the indexed documents themselves: a "How
much ...?" question turned by rule from a sentence's parse around a stated sum, or when an article came out,
each kept only when the assistant answers it from the document it was written from."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from pydantic import BaseModel

from api.runtime import ServiceState, run_timed
from api.schemas import ErrorOut, StrictJSONRoute
from rag.figures import Quantity, extract_figures, figures_equal

if TYPE_CHECKING:  # the HTTP process only routes; the parses live where the Assistant does
    from rag.annotate import Parsed, Token
    from rag.types import Answer, Document

MAX_WORDS = 18  # longer questions read like the sentence they came from
MAX_TITLE_CHARS = 90
SENTENCES_PER_DOC = 12  # the lead of each article: where its main figures are
MAX_TRIES = 30  # candidate questions asked in all: a few seconds at most, once per server
MAX_DOCS = 500
_DO = {"VBD": "did", "VBZ": "does", "VBP": "do", "NNS": "does"}
_PRONOUNS = frozenset("i you he she it we they this that these those who which".split())
_TAIL_DEPS = frozenset(("prep", "advmod", "npadvmod", "dative", "prt", "agent"))
_SKIP_PREPS = frozenset(("according", "despite", "because", "as", "like", "with", "including"))
_BREAKS = frozenset(",;:()[]—–")
# Verbs that move money: their questions read naturally ("How much did X invest in Y?"), so they go first.
_MONEY_VERBS = frozenset("allocate assign award borrow commit cost earmark fund give grant invest lend pay "
                         "pledge provide raise receive set spend win".split())


@dataclass(frozen=True, slots=True)
class Example:
    question: str
    doc_id: str
    title: str


def _subtree(p: Parsed, i: int) -> tuple[int, int]:
    """The token range [lo, hi) governed by token i (spaCy's projective subtrees are contiguous)."""
    lo = hi = i
    changed = True
    while changed:
        changed = False
        for t in p.tokens:
            if lo <= t.head <= hi and t.i != t.head and not lo <= t.i <= hi:
                lo, hi = min(lo, t.i), max(hi, t.i)
                changed = True
    return lo, hi + 1


def _phrase(p: Parsed, i: int) -> str:
    """Token i's subtree up to the first comma, dash or bracket after it: the phrase without its asides."""
    lo, hi = _subtree(p, i)
    stop = next((t.i for t in p.tokens[i + 1:hi] if t.pos == "PUNCT" and t.text in _BREAKS), hi)
    return _text(p, lo, stop)


def _text(p: Parsed, lo: int, hi: int) -> str:
    return p.text[p.tokens[lo].start:p.tokens[hi - 1].end] if hi > lo else ""


def _children(p: Parsed, i: int) -> list[Token]:
    return [t for t in p.tokens if t.head == i and t.i != i]


def _figure_head(p: Parsed, q: Quantity) -> Token | None:
    inside = [t for t in p.tokens if t.start < q.end and t.end > q.start]
    heads = [t for t in inside if not q.start <= p.tokens[t.head].start < q.end or t.head == t.i]
    return heads[0] if len(heads) == 1 else None


def _tail(p: Parsed, verb: Token, after: int) -> list[str]:
    """Prepositional and adverbial modifiers of the verb after token `after`, up to the first comma."""
    out: list[str] = []
    for c in sorted(_children(p, verb.i), key=lambda t: t.i):
        if c.i <= after:
            continue
        if c.dep not in _TAIL_DEPS or c.text.lower() in _SKIP_PREPS:
            break
        out.append(_phrase(p, c.i))
    return out


def _fronted(p: Parsed, verb: Token, before: int) -> list[str]:
    """Prepositional phrases fronted before the subject ("In last year's budget, ..."), moved to the end."""
    out = []
    for c in _children(p, verb.i):
        if c.i < before and c.dep == "prep" and c.text.lower() not in _SKIP_PREPS:
            phrase = _phrase(p, c.i)
            out.append(phrase[:1].lower() + phrase[1:] if p.tokens[c.i].pos != "PROPN" else phrase)
    return out


def _figure_modifiers(p: Parsed, head: Token, q: Quantity) -> list[str]:
    """"of the allocated funds" / "for chipmaker X" attached to the sum itself."""
    return [_phrase(p, c.i) for c in _children(p, head.i)
            if c.dep == "prep" and c.start >= q.end and c.text.lower() not in _SKIP_PREPS]


def _subject(p: Parsed, verb: Token) -> tuple[Token, str, bool] | None:
    """The verb's subject: its head token, its text (lower-cased unless a name) and whether it names someone."""
    subj = next((c for c in _children(p, verb.i) if c.dep == "nsubj"), None)
    if subj is None or subj.lemma in _PRONOUNS:
        return None
    lo, hi = _subtree(p, subj.i)
    text = _text(p, lo, hi)
    first = p.tokens[lo]
    if first.pos != "PROPN" and not first.text.isupper():
        text = text[:1].lower() + text[1:]
    return subj, text, any(t.pos == "PROPN" for t in p.tokens[lo:hi])


def _aux(p: Parsed, verb: Token) -> list[Token]:
    return [c for c in _children(p, verb.i) if c.dep in ("aux", "auxpass") and c.lemma != "to" and c.i < verb.i]


def _finish(words: list[str]) -> str | None:
    text = " ".join(w for w in words if w).replace(" ,", ",").strip()
    if not text or len(text.split()) > MAX_WORDS or "\n" in text:
        return None
    return text.rstrip(".;:,") + "?"


def _passive(p: Parsed, head: Token, q: Quantity) -> str | None:
    """"about 1.5 trillion yen was allocated for X" -> "How much was allocated for X?"."""
    verb = p.tokens[head.head]
    aux = _aux(p, verb)
    mods, tail = _figure_modifiers(p, head, q), _tail(p, verb, verb.i)
    fronted = _fronted(p, verb, _subtree(p, head.i)[0])
    if not aux or not (mods or tail or fronted):  # "How much will be needed?" says too little
        return None
    return _finish(["How much", *mods, _text(p, aux[0].i, verb.i + 1), *tail, *fronted])


def _active(p: Parsed, head: Token, q: Quantity) -> str | None:
    """"Japan is aiming to allocate 350 billion yen on X" -> "How much is Japan aiming to allocate on X?"."""
    verb = p.tokens[head.head]
    clause = p.tokens[verb.head] if verb.dep == "xcomp" else verb
    if clause.pos not in ("VERB", "AUX") and clause.tag != "NNS":  # "plans" is often tagged a noun
        return None
    found = _subject(p, clause)
    if found is None:
        return None
    subj, subject, named = found
    # the verbs between the clause's verb and the sum's: "aiming to allocate", "plans to raise"
    between = _text(p, clause.i + 1, verb.i + 1) if clause is not verb else ""
    context = [*_figure_modifiers(p, head, q), *_tail(p, verb, _subtree(p, head.i)[1] - 1),
               *_fronted(p, clause, _subtree(p, subj.i)[0])]
    if not named and not context:  # "How much will the centre cost?" says too little
        return None
    aux = _aux(p, clause)
    if aux and subj.i < aux[0].i:
        lead = [aux[0].text.lower(), subject, _text(p, aux[0].i + 1, clause.i + 1)]
    elif not aux and clause.tag in _DO:
        lead = [_DO[clause.tag], subject, clause.lemma]
    else:
        return None
    return _finish(["How much", *lead, between, *context])


def money_questions(p: Parsed) -> Iterator[tuple[str, Quantity, bool]]:
    """Questions asking for each sum the sentence states as a verb's subject or object, each with whether
    that verb is one that moves money."""
    for q in extract_figures(p.text):
        if q.kind != "money":
            continue
        head = _figure_head(p, q)
        if head is None:
            continue
        question = None
        if head.dep == "nsubjpass":
            question = _passive(p, head, q)
        elif head.dep == "dobj":
            question = _active(p, head, q)
        if question:
            yield question, q, p.tokens[head.head].lemma in _MONEY_VERBS


def _answers_from(answer: Answer, doc_id: str, figure: Quantity | None) -> bool:
    """The assistant answers from that document (and that sum), without a conflict to explain first."""
    if not answer.answerable or not answer.citations or answer.conflicts:
        return False
    if answer.citations[0].doc_id != doc_id:
        return False
    return figure is None or any(figures_equal(f.value, f.unit, figure.value, figure.unit) for f in answer.figures)


def _date_question(doc: Document) -> str | None:
    title = " ".join((doc.meta.title or "").split())
    if not doc.meta.published or not title or len(title) > MAX_TITLE_CHARS:
        return None
    return f"When was “{title}” published?"


def lead_parses(assistant: Any, docs: list[Document]) -> dict[str, list[Parsed]]:
    """The first sentences of each document, as parsed at ingest (once each: chunks overlap)."""
    out: dict[str, list[Parsed]] = {}
    seen: set[tuple[str, int]] = set()
    store = assistant.store
    for chunk in (c for d in docs for c in store.chunks_of(d.doc_id)):
        if len(out.get(chunk.doc_id, ())) >= SENTENCES_PER_DOC:
            continue
        for span, parsed in zip(chunk.sentences, store.sentence_parses(chunk) or [], strict=False):
            if (chunk.doc_id, span.start) not in seen:
                seen.add((chunk.doc_id, span.start))
                out.setdefault(chunk.doc_id, []).append(parsed)
    return {doc_id: parses[:SENTENCES_PER_DOC] for doc_id, parses in out.items()}


def example_questions(assistant: Any, limit: int = 4) -> list[Example]:
    """Up to `limit` questions, one per document, newest documents first: sums that money verbs move, then
    publication dates, then other sums."""
    docs = sorted(assistant.documents.values(), key=lambda d: d.meta.published or "", reverse=True)[:MAX_DOCS]
    leads = lead_parses(assistant, docs)
    found: dict[str, Example] = {}
    tries = 0

    def attempt(doc: Document, question: str, figure: Quantity | None) -> bool:
        nonlocal tries
        tries += 1
        if _answers_from(assistant.ask(question), doc.doc_id, figure):
            found[doc.doc_id] = Example(question, doc.doc_id, doc.meta.title)
            return True
        return False

    candidates = {d.doc_id: [c for p in leads.get(d.doc_id, []) for c in money_questions(p)] for d in docs}
    passes: list[Callable[[Document], list[tuple[str, Quantity | None]]]] = [
        lambda d: [(q, f) for q, f, moves in candidates[d.doc_id] if moves],  # "How much did X invest ...?"
        lambda d: [(q, None) for q in [_date_question(d)] if q],  # "When was "<title>" published?"
        lambda d: [(q, f) for q, f, moves in candidates[d.doc_id] if not moves],
    ]
    for options in passes:
        for doc in docs:
            if doc.doc_id in found:
                continue
            for question, figure in options(doc):
                if len(found) >= limit or tries >= MAX_TRIES or attempt(doc, question, figure):
                    break
    order = {d.doc_id: i for i, d in enumerate(docs)}
    return sorted(found.values(), key=lambda e: order[e.doc_id])


class ExampleOut(BaseModel):
    question: str
    doc_id: str
    title: str


class ExamplesOut(BaseModel):
    examples: list[ExampleOut]


def build_examples_router(state: ServiceState) -> APIRouter:
    """`GET /examples`: computed once, on first request (the index does not change under a server)."""
    router = APIRouter(route_class=StrictJSONRoute)  # JSON as the rest of the API reads it
    lock = asyncio.Lock()
    cache: list[list[dict[str, str]]] = []

    @router.get("/examples", response_model=ExamplesOut, tags=["sources"],
                responses={503: {"model": ErrorOut, "description": "still loading"},
                           504: {"model": ErrorOut, "description": "took longer than the request timeout"}},
                summary="Example questions the indexed documents answer, for the chat page's welcome")
    async def examples() -> Any:
        async with lock:
            if not cache:
                cache.append([asdict(e) for e in await run_timed(state, example_questions)])
        return {"examples": cache[0]}

    return router
