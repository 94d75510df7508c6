"""The cited answer: a short answer (the figure or name), the supporting sentence quoted verbatim with [n]
markers, citations with source metadata, conflicts between sources, and abstention when nothing fits.
Nothing here writes prose about the sources: every figure shown comes from a quoted span."""

from __future__ import annotations

import logging
import re
from typing import Any

import numpy as np

from rag.config import Settings
from rag.evidence import (
    Pick,
    Scorer,
    Sentence,
    corpus_stats,
    gather,
    mentions,
    numeric_picks,
    other_possessor,
    text_picks,
    word_positions,
)
from rag.figures import Quantity, extract_figures, figures_equal
from rag.query import NUMERIC_TYPES, QueryAnalysis, analyze
from rag.sentences import split_sentences
from rag.types import Answer, Citation, Conflict, ConflictValue, FigureRef, Hit, Related

log = logging.getLogger(__name__)

NO_ANSWER = "The sources don't say: none of the indexed articles states this."
CONFLICT_MARGIN = 0.12  # how close another source's figure must score to count as the same quantity
CONFLICT_SHARE = 0.3  # ... or this share of the best score, whichever is larger
CONFLICT_FIT_SHARE = 0.5  # and must carry at least this share of the best figure's term coverage
RUNNING_FIT_SHARE = 0.4  # a cumulative amount of the asked subject at another date: share of the best fit
SECOND_QUOTE_MARGIN = 0.07
ORPHAN_MIN = 0.45  # term coverage of a figure-less clause that counts as "the subject is discussed"
ORPHAN_MARGIN = 0.15  # ... when it beats the chosen figure's own coverage by this much
_LEAD_WORD = re.compile(r"\b(by|in|from|since|until|before|after|starting|around)\s+(?:the\s+)?$", re.I)


def compose(question: str, hits: list[Hit], store: Any, query_vector: np.ndarray | None,
            settings: Settings) -> Answer:
    """The cited answer to a (standalone) question from retrieved chunks, or an abstention."""
    try:
        return _compose(question, hits, store, query_vector, settings)
    except Exception:  # an unexpected input shape must cost an answer, never the caller's request
        log.exception("compose failed for %r", question[:200])
        return Answer(question=question, answer=NO_ANSWER, short_answer=None, answerable=False)


def _compose(question: str, hits: list[Hit], store: Any, query_vector: np.ndarray | None,
             settings: Settings) -> Answer:
    a = analyze(question)
    sentences = gather(hits, store, query_vector)
    if not sentences:
        return _abstain(question, [], store)
    scorer = Scorer(a, corpus_stats(store))
    min_score = settings.min_evidence_score
    min_cov = settings.min_term_coverage
    if "published" in a.qualifiers:
        answer = _publication(a, question, scorer, sentences, store, min_score)
        return answer or _abstain(question, sentences, store)
    picks = (numeric_picks if a.answer_type in NUMERIC_TYPES else text_picks)(scorer, sentences, store, min_cov)
    if not picks or picks[0].score < min_score or picks[0].fit < min_cov:
        return _abstain(question, sentences, store)
    picks = _prefer_asked_time(picks, a, min_score, min_cov)
    best = picks[0]
    if best.figure is not None and _said_without_figure(scorer, sentences, best):
        return _abstain(question, sentences, store)
    conflicts = _conflicts(best, picks, store, min_score, a) if best.figure is not None else []
    more = _supporting(best, picks, settings.max_quotes) if best.figure is None else []
    answer = _build(question, a, best, conflicts, store, more, scorer.weights)
    return answer if guard(answer, store) else _abstain(question, sentences, store)


def _prefer_asked_time(picks: list[Pick], a: QueryAnalysis, min_score: float, min_cov: float) -> list[Pick]:
    """A question about the value before a change wants the figure the article marks as earlier ("up from X",
    "from the previous X"); any other question wants the current one. Within the best pick's article, the
    figure whose marking matches the question goes first when it fits well enough to be an answer itself."""
    best = picks[0]
    if best.figure is None:
        return picks
    want_previous = "previous" in a.qualifiers
    if ("previous" in best.signature) == want_previous:
        return picks
    match = next((p for p in picks[1:] if p.sentence.doc_id == best.sentence.doc_id and p.figure is not None
                  and ("previous" in p.signature) == want_previous and p.figure.kind == best.figure.kind
                  and p.score >= min_score and p.fit >= min_cov), None)
    return picks if match is None else [match, *(p for p in picks if p is not match)]


def _said_without_figure(scorer: Scorer, sentences: list[Sentence], best: Pick) -> bool:
    """A sentence covers the question far better than the chosen figure's context but gives no figure
    for it: the sources mention the subject without stating the amount, so the figure is about another."""
    orphan = max((scorer.orphan_coverage(s) for s in sentences if scorer.entities_ok(s.doc_id)), default=0.0)
    return orphan >= ORPHAN_MIN and orphan >= best.fit + ORPHAN_MARGIN


# --- building the answer -----------------------------------------------------------------------------------

_KIND_NOUNS = ("approach|technology|technologies|method|strategy|design|architecture|model|system|process|technique|"
               "platform|standard|material|tool|policy|measure|programme|program|scheme")
_WHAT_KIND = re.compile(rf"\b(?:what|which)\s+(?:[\w-]+\s+){{0,3}}?(?:{_KIND_NOUNS})\b", re.I)
_PHRASE_AFTER = re.compile(rf"\b(?:on|to|towards?|into|for|in|of|uses?|using|adopts?|adopting)\s+((?:the\s+|a\s+|an\s+|its\s+)?"
                           rf"(?:[^\s,;.]+\s+){{0,4}}?(?:{_KIND_NOUNS}))\b", re.I)


def _noun_phrase(p: Pick, a: QueryAnalysis, weights: dict[str, float]) -> str | None:
    """For "what approach / technology ..." questions: the noun phrase the sentence attaches to a word of the
    question ("the focus on 'chiplet' technology" -> "'chiplet' technology"), verbatim."""
    if not _WHAT_KIND.search(a.question):
        return None
    text = p.sentence.text
    for t, pos in word_positions(text):
        if t not in weights:
            continue
        m = _PHRASE_AFTER.match(text, text.find(" ", pos) + 1)
        if m:
            return m.group(1)
    return None


def _short(p: Pick, a: QueryAnalysis, weights: dict[str, float] | None = None) -> str | None:
    q = p.figure
    if q is None:
        if a.answer_type == "explanation" and weights:
            return _noun_phrase(p, a, weights)
        if a.answer_type in ("person", "organization", "place"):
            names = sorted(p.names, key=lambda n: -len(n.split())) if a.answer_type == "person" else p.names
            return names[0] if names else None
        if a.answer_type == "list":
            return ", ".join(p.names[:8]) or None
        return None
    text = q.text
    if p.alt is not None:
        text = f"{q.text} ({p.alt.text})"  # the asked currency first, its twin from the same sentence after
    approx = _approx(q, p.alt)
    if approx:
        text = f"{approx} {text}"
    if q.kind in ("month", "date", "year"):
        lead = _LEAD_WORD.search(p.sentence.text[max(0, q.start - 15):q.start])
        if lead and a.answer_type == "date":
            text = f"{lead.group(1)} {text}"
    return text


def _approx(q: Quantity, alt: Quantity | None) -> str | None:
    """The qualifier ("up to", "about") of a figure; a bracketed restatement takes that of the figure it
    restates ("up to ¥10t ($68b)": the dollars are "up to" too)."""
    if q.approx or alt is None or alt.start > q.start:
        return q.approx
    return alt.approx


def _citation(n: int, s: Sentence, store: Any) -> Citation:
    meta = store.documents[s.doc_id].meta
    return Citation(n=n, doc_id=s.doc_id, title=meta.title, publisher=meta.publisher, published=meta.published,
                    quote=s.text, start=s.start, end=s.end)


def _source_label(c: Citation) -> str:
    who = c.publisher or c.title
    return f"{who}, {c.published}" if c.published else who


def _quote_line(c: Citation) -> str:
    return f'[{c.n}] "{c.quote}" ({_source_label(c)})'


def _supporting(best: Pick, picks: list[Pick], max_quotes: int) -> list[Pick]:
    """Further sentences of the same article that score nearly as well: an explanation often spans two."""
    return [p for p in picks[1:] if p.sentence.doc_id == best.sentence.doc_id
            and p.score >= best.score - SECOND_QUOTE_MARGIN][:max(0, max_quotes - 1)]


def _build(question: str, a: QueryAnalysis, best: Pick, conflicts: list[Pick], store: Any,
           more: list[Pick] | None = None, weights: dict[str, float] | None = None) -> Answer:
    short = _short(best, a, weights)
    citations = [_citation(1, best.sentence, store)]
    for p in more or []:
        citations.append(_citation(len(citations) + 1, p.sentence, store))
    figures: list[FigureRef] = []
    if best.figure is not None and best.figure.kind != "month":
        figures.append(FigureRef(best.figure.text, float(best.figure.value), best.figure.unit, 1))
        if best.alt is not None:
            figures.append(FigureRef(best.alt.text, float(best.alt.value), best.alt.unit, 1))
    conflict_list: list[Conflict] = []
    if conflicts:
        ordered = sorted([best, *conflicts], key=lambda p: store.documents[p.sentence.doc_id].meta.published or "",
                         reverse=True)
        citations = [_citation(i + 1, p.sentence, store) for i, p in enumerate(ordered)]
        n_best = citations[ordered.index(best)].n
        for f in figures:
            f.citation = n_best
        values = []
        parts = []
        for c, p in zip(citations, ordered, strict=True):
            q = p.figure
            assert q is not None
            values.append(ConflictValue(text=q.text, citation=c.n))
            if p is not best:
                figures.append(FigureRef(q.text, float(q.value), q.unit, c.n))
            parts.append(f"{_short(p, a)} [{c.n}] ({_source_label(c)})")
        conflict_list.append(Conflict(quantity=_quantity_label(a), values=values))
        text = ("The sources differ, newest first: " + "; ".join(parts) + ".\n\n"
                + "\n".join(_quote_line(c) for c in citations))
        short = _short(ordered[0], a)
    else:
        marks = "".join(f"[{c.n}]" for c in citations)
        lead = f"{short} {marks}." if short else f"According to the source {marks}:"
        text = lead + "\n\n" + "\n".join(_quote_line(c) for c in citations)
    return Answer(question=question, answer=text, short_answer=short, answerable=True, citations=citations,
                  figures=figures, conflicts=conflict_list)


def _quantity_label(a: QueryAnalysis) -> str:
    words = [w for w in re.findall(r"[\w'’-]+", a.question) if len(w) > 2][:12]
    return " ".join(words) or a.answer_type


# --- conflicts ---------------------------------------------------------------------------------------------

def _names_subject(p: Pick, a: QueryAnalysis) -> bool:
    """The sentence itself names every entity of the question (not just its article)."""
    low = p.sentence.text.lower()
    return bool(a.entities) and all(mentions(low, g) for g in a.entities)


def _running_total(best: Pick, p: Pick, a: QueryAnalysis, store: Any) -> bool:
    """Two articles of different dates each state a cumulative amount ("already invested", "so far") for the
    subject the question names: the same running total reported at two times, so both values belong."""
    dates = {store.documents[x.sentence.doc_id].meta.published for x in (best, p)}
    return ("cumulative" in a.qualifiers and "cumulative" in best.signature and "cumulative" in p.signature
            and None not in dates and len(dates) == 2 and _names_subject(best, a) and _names_subject(p, a))


def _conflicts(best: Pick, picks: list[Pick], store: Any, min_score: float, a: QueryAnalysis) -> list[Pick]:
    """Other sources stating a different value for the same quantity (same unit, qualifiers, subject)."""
    q = best.figure
    assert q is not None
    out: list[Pick] = []
    docs = {best.sentence.doc_id}
    for p in picks[1:]:
        f = p.figure
        if f is None or p.sentence.doc_id in docs or f.unit != q.unit or f.kind != q.kind or f.kind == "month":
            continue
        if _running_total(best, p, a, store):  # qualifiers, subject and dates already tie the two together
            if p.score < min_score or p.fit < RUNNING_FIT_SHARE * best.fit:
                continue
        elif (p.score < max(min_score, best.score - max(CONFLICT_MARGIN, CONFLICT_SHARE * best.score))
              or p.fit < CONFLICT_FIT_SHARE * best.fit or other_possessor(p.sentence.text, a)):
            continue
        if set(p.signature) != set(best.signature):
            continue
        if figures_equal(f.value, f.unit, q.value, q.unit) or any(
                figures_equal(f.value, f.unit, o.figure.value, o.figure.unit) for o in out if o.figure):
            docs.add(p.sentence.doc_id)
            continue
        out.append(p)
        docs.add(p.sentence.doc_id)
    return out[:3]


# --- publication dates ---------------------------------------------------------------------------------

def _publication(a: QueryAnalysis, question: str, scorer: Scorer, sentences: list[Sentence], store: Any,
                 min_score: float) -> Answer | None:
    """When an article came out: find the article the question describes (by its sentences and its title),
    then quote its dateline, or its first line when only the metadata carries the date."""
    by_doc: dict[str, float] = {}
    for s in sentences:
        if not scorer.entities_ok(s.doc_id):
            continue
        score = 0.45 * s.sim + 0.55 * scorer.coverage(s) + scorer.anchor_bonus(s)
        meta = store.documents[s.doc_id].meta
        title = Sentence(s.doc_id, 0, 0, meta.title or "", s.sim, 0)
        score = max(score, 0.45 * s.sim + 0.55 * scorer.coverage(title) + 0.05)
        by_doc[s.doc_id] = max(by_doc.get(s.doc_id, -1.0), score)
    for doc_id, score in sorted(by_doc.items(), key=lambda kv: -kv[1])[:3]:
        if score < min_score:
            break
        answer = _dateline(a, question, store.documents[doc_id], score, store)
        if answer is not None:
            return answer
    return None


def _dateline(a: QueryAnalysis, question: str, doc: Any, score: float, store: Any) -> Answer | None:
    head = doc.text[:3000]
    dates = [q for q in extract_figures(head) if q.kind == "date" and int(q.value) % 100 > 0]
    want = int(doc.meta.published.replace("-", "")) if doc.meta.published else None
    chosen = next((q for q in dates if want is not None and int(q.value) == want), None)
    if chosen is None and want is None and dates:
        chosen = dates[0]
    if chosen is not None:
        line_start = head.rfind("\n", 0, chosen.start) + 1
        line_end = head.find("\n", chosen.end)
        line_end = len(head) if line_end < 0 else line_end
        span = next((sp for sp in split_sentences(doc.text, line_start, line_end)
                     if sp.start <= chosen.start and chosen.end <= sp.end), None)
        if span is None:
            return None
        s = Sentence(doc.doc_id, span.start, span.end, doc.text[span.start:span.end], 0.0, 0)
        q = Quantity(chosen.text, chosen.start - span.start, chosen.end - span.start, chosen.value, "date", "date")
        answer = _build(question, a, Pick(s, q, score, 1.0), [], store)
    elif doc.meta.published:
        first = next(iter(split_sentences(doc.text, 0, min(len(doc.text), 2000))), None)
        if first is None:
            return None
        s = Sentence(doc.doc_id, first.start, first.end, doc.text[first.start:first.end], 0.0, 0)
        answer = _build(question, a, Pick(s, None, score, 1.0), [], store)
        c = answer.citations[0]
        answer.short_answer = doc.meta.published
        answer.answer = (f"{doc.meta.published} [1] (the publication date of the article).\n\n" + _quote_line(c))
    else:
        return None
    return answer if guard(answer, store) else None


# --- abstention and guard ------------------------------------------------------------------------------------

def _abstain(question: str, sentences: list[Sentence], store: Any) -> Answer:
    related: list[Related] = []
    seen: set[str] = set()
    for s in sorted(sentences, key=lambda s: -s.sim):
        if s.doc_id in seen or len(s.text) < 20:
            continue
        seen.add(s.doc_id)
        meta = store.documents[s.doc_id].meta
        related.append(Related(doc_id=s.doc_id, title=meta.title, quote=s.text, start=s.start, end=s.end))
        if len(related) == 3:
            break
    return Answer(question=question, answer=NO_ANSWER, short_answer=None, answerable=False, related=related)


def guard(answer: Answer, store: Any) -> bool:
    """Every quote equals its document's text at its offsets, and every figure the answer states occurs in
    a cited quote (or is a cited source's title or publication date)."""
    support_texts: list[str] = []
    for c in answer.citations:
        doc = store.documents.get(c.doc_id)
        if doc is None or doc.text[c.start:c.end] != c.quote or not c.quote:
            return False
        support_texts += [c.quote, c.title or "", c.published or ""]
    support = [q for t in support_texts for q in extract_figures(t)]
    for text in (answer.answer, answer.short_answer or ""):
        for q in extract_figures(text):
            if any(q.text in t for t in support_texts):
                continue
            if not any(figures_equal(q.value, q.unit, s.value, s.unit) for s in support):
                return False
    for f in answer.figures:
        if not any(figures_equal(f.value, f.unit, s.value, s.unit) for s in support):
            return False
    return True
