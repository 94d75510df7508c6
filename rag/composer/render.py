"""Rendering: the Answer contract from a decision, built only from verbatim spans, in the question's
language for the few framing words; a guard refuses any answer whose figures its quotes do not carry."""

from __future__ import annotations

import re
from typing import Any

from rag.composer.decide import Decision, ScoredCandidate
from rag.composer.evidence import Sentence
from rag.composer.lexicon import framing
from rag.composer.question import Question
from rag.figures import extract_figures, figures_equal, hedge_start
from rag.types import Answer, Citation, Conflict, ConflictValue, FigureRef, Related

_LEAD_WORD = re.compile(r"\b(by|from|since|until|before|after|around)\s+(?:the\s+)?$", re.I)


def words(lang: str) -> dict[str, str]:
    table = framing()
    return table.get(lang, table["en"])


def citation(n: int, s: Sentence, store: Any) -> Citation:
    meta = store.documents[s.doc_id].meta
    return Citation(n=n, doc_id=s.doc_id, title=meta.title, publisher=meta.publisher, published=meta.published,
                    quote=s.text, start=s.start, end=s.end)


def source_label(c: Citation) -> str:
    who = c.publisher or c.title
    return f"{who}, {c.published}" if c.published else who


def quote_line(c: Citation) -> str:
    return f'[{c.n}] "{c.quote}" ({source_label(c)})'


def short_text(sc: ScoredCandidate, q: Question) -> str:
    """The span verbatim; a figure keeps its hedge ("about", "up to") and a date its preposition ("by 2027")."""
    c = sc.candidate
    text = c.text
    f = c.figure
    sentence = sc.sentence.sentence.text
    hedge = hedge_start(sentence, f.start) if f is not None and f.approx else None
    if hedge is not None and hedge < c.start:  # the hedge's own words, as the sentence has them
        return f"{sentence[hedge:c.start].strip()} {text}"
    if f is not None and f.kind in ("year", "date", "month") and q.wh == "when":
        lead = _LEAD_WORD.search(sentence[max(0, c.start - 12):c.start])
        if lead:
            return f"{lead.group(1)} {text}"
    return text


def _figure_refs(sc: ScoredCandidate, n: int) -> list[FigureRef]:
    f = sc.candidate.figure
    if f is None or f.kind == "month":
        return []
    return [FigureRef(f.text, float(f.value), f.unit, n)]


def refusal(q: Question, d: Decision, store: Any) -> Answer:
    """"I could not find": never a claim that the sources are silent; the closest passages still listed."""
    related: list[Related] = []
    seen: set[str] = set()
    for ss in sorted(d.ranked, key=lambda x: -x.prob):
        s = ss.sentence
        if s.doc_id in seen or len(s.text) < 20:
            continue
        seen.add(s.doc_id)
        related.append(Related(doc_id=s.doc_id, title=store.documents[s.doc_id].meta.title, quote=s.text,
                               start=s.start, end=s.end))
        if len(related) == 3:
            break
    w = words(q.lang)
    text = w["refusal"]
    if related:
        text += f" {w['closest']}\n" + "\n".join(f'- "{r.quote}" ({r.title})' for r in related)
    return Answer(question=q.text, answer=text, short_answer=None, answerable=False, related=related,
                  confidence=round(1.0 - d.confidence, 4))


def _span(q: Question, d: Decision, store: Any) -> Answer:
    assert d.best is not None
    best = d.best
    if d.conflicts:
        picks = sorted([best, *d.conflicts], key=lambda sc: store.documents[sc.sentence.sentence.doc_id].meta.published
                       or "", reverse=True)
        cites = [citation(i + 1, sc.sentence.sentence, store) for i, sc in enumerate(picks)]
        figures = [r for sc, c in zip(picks, cites, strict=True) for r in _figure_refs(sc, c.n)]
        parts = [f"{short_text(sc, q)} [{c.n}] ({source_label(c)})" for sc, c in zip(picks, cites, strict=True)]
        conflict = Conflict(quantity=" ".join(q.terms)[:80] or q.english,
                            values=[ConflictValue(sc.candidate.text, c.n) for sc, c in zip(picks, cites, strict=True)])
        text = f"{words(q.lang)['differ']} " + "; ".join(parts) + ".\n\n" + "\n".join(quote_line(c) for c in cites)
        return Answer(question=q.text, answer=text, short_answer=short_text(picks[0], q), answerable=True,
                      citations=cites, figures=figures, conflicts=[conflict], confidence=round(d.confidence, 4))
    cites = [citation(i + 1, ss.sentence, store) for i, ss in enumerate([best.sentence, *d.support])]
    short = short_text(best, q)
    text = f"{short} [1].\n\n" + "\n".join(quote_line(c) for c in cites)
    return Answer(question=q.text, answer=text, short_answer=short, answerable=True, citations=cites,
                  figures=_figure_refs(best, 1), confidence=round(d.confidence, 4))


def _sentences(q: Question, d: Decision, store: Any) -> Answer:
    cites = [citation(i + 1, ss.sentence, store) for i, ss in enumerate(d.sentences)]
    body = " ".join(f"{c.quote} [{c.n}]" for c in cites)
    lead = f"{words(q.lang)['summary']} {cites[0].title}: " if d.kind == "summary" else ""
    sources = "\n".join(f"[{c.n}] {c.title} ({source_label(c)})" for c in cites)
    figures = [FigureRef(f.text, float(f.value), f.unit, c.n) for c in cites for f in extract_figures(c.quote)
               if f.kind != "month"]
    return Answer(question=q.text, answer=f"{lead}{body}\n\n{sources}", short_answer=None, answerable=True,
                  citations=cites, figures=figures, confidence=round(d.confidence, 4))


def _published(q: Question, d: Decision, store: Any) -> Answer:
    c = citation(1, d.sentences[0].sentence, store)
    date = c.published or ""
    text = f"{date} [1] ({c.title}).\n\n{quote_line(c)}"
    return Answer(question=q.text, answer=text, short_answer=date, answerable=True, citations=[c],
                  confidence=round(d.confidence, 4))


def render(q: Question, d: Decision, store: Any) -> Answer:
    if d.kind == "refuse":
        return refusal(q, d, store)
    if d.kind == "published":
        answer = _published(q, d, store)
    else:
        answer = _span(q, d, store) if d.kind == "span" else _sentences(q, d, store)
    return answer if guard(answer, store) else refusal(q, Decision("refuse", "guard: a figure not in its quote",
                                                                    d.confidence, ranked=d.ranked), store)


def guard(answer: Answer, store: Any) -> bool:
    """Every quote equals its document's text at its offsets, and every figure the answer states occurs in
    a quote it shows (or is a cited source's title or publication date)."""
    support_texts: list[str] = []
    for c in answer.citations:
        doc = store.documents.get(c.doc_id)
        if doc is None or doc.text[c.start:c.end] != c.quote or not c.quote:
            return False
        support_texts += [c.quote, c.title or "", c.published or ""]
    for r in answer.related:  # a refusal shows the closest passages verbatim
        doc = store.documents.get(r.doc_id)
        if doc is None or doc.text[r.start:r.end] != r.quote:
            return False
        support_texts += [r.quote, r.title or ""]
    support = [q for t in support_texts for q in extract_figures(t)]
    for text in (answer.answer, answer.short_answer or ""):
        for q in extract_figures(re.sub(r"\[\d+\]", " ", text)):
            if any(q.text in t for t in support_texts):
                continue
            if not any(figures_equal(q.value, q.unit, s.value, s.unit) for s in support):
                return False
    return all(any(figures_equal(f.value, f.unit, s.value, s.unit) for s in support) for f in answer.figures)
