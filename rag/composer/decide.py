"""Decisions: score the evidence sentences and their candidates with the fitted model, then answer with a
span, with sentences, with a summary, or refuse; every decision is recorded with its reason."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rag.composer.candidates import Candidate, candidates, figure_labels, labels
from rag.composer.evidence import Sentence
from rag.composer.features import (
    align,
    answer_features,
    article_names_met,
    candidate_features,
    coverage,
    focus_met,
    mention_key,
    nearest,
    sentence_features,
    unit_ok,
)
from rag.composer.model import ComposerModel, sigmoid
from rag.composer.question import Question
from rag.figures import figures_equal


@dataclass(slots=True)
class ScoredSentence:
    sentence: Sentence
    features: dict[str, float]
    logit: float
    prob: float


@dataclass(slots=True)
class ScoredCandidate:
    candidate: Candidate
    sentence: ScoredSentence
    features: dict[str, float]
    score: float  # the ranking model's score
    prob: float = 0.0  # its share of the question's candidates (softmax of the scores)


@dataclass(slots=True)
class Decision:
    kind: str  # span | sentences | summary | published | refuse
    reason: str
    confidence: float
    best: ScoredCandidate | None = None
    sentences: list[ScoredSentence] = field(default_factory=list)
    conflicts: list[ScoredCandidate] = field(default_factory=list)
    ranked: list[ScoredSentence] = field(default_factory=list)
    spans: list[ScoredCandidate] = field(default_factory=list)
    support: list[ScoredSentence] = field(default_factory=list)  # a further passage cited beside the answer
    answer_features: dict[str, float] = field(default_factory=dict)  # what the confidence was computed from


def score_sentences(q: Question, sentences: list[Sentence], model: ComposerModel) -> list[ScoredSentence]:
    """Every sentence with its features and probability of holding the answer, best first."""
    out = []
    expected = frozenset(q.expected)
    for s in sentences:
        available = float(bool(expected & labels(s)))
        out.append(ScoredSentence(s, sentence_features(q, s, available), 0.0, 0.0))
    if out:
        logits = model.sentence.logits([ss.features for ss in out])
        for ss, z, p in zip(out, logits.tolist(), sigmoid(logits).tolist(), strict=True):
            ss.logit, ss.prob = z, p
    out.sort(key=lambda x: -x.logit)
    return out


def mentions(top: list[ScoredSentence]) -> dict[str, int]:
    """How many of the best sentences mention each candidate text."""
    out: dict[str, int] = {}
    for ss in top:
        for key in {mention_key(c.text) for c in candidates(ss.sentence)}:
            out[key] = out.get(key, 0) + 1
    return out


def score_candidates(q: Question, ranked: list[ScoredSentence], model: ComposerModel) -> list[ScoredCandidate]:
    """The candidates of the best sentences that meet the asked unit, scored and shared out, best first."""
    top = ranked[:model.evidence_sentences]
    seen = mentions(top)
    out = []
    for ss in top:
        al = align(q, ss.sentence)
        kept = [c for c in candidates(ss.sentence) if unit_ok(q, c)]  # rule: the asked unit must hold
        rows = [candidate_features(q, ss.sentence, c, al, ss.logit, seen) for c in kept]
        nearest(rows)
        out += [ScoredCandidate(c, ss, f, 0.0) for c, f in zip(kept, rows, strict=True)]
    if out:
        scores = model.candidate.logits([sc.features for sc in out])
        for sc, z in zip(out, scores.tolist(), strict=True):
            sc.score = z
        shares = np.exp(scores - scores.max())
        shares /= shares.sum()
        for sc, p in zip(out, shares.tolist(), strict=True):
            sc.prob = p
    out.sort(key=lambda x: -x.score)
    return out


def answer_confidence(q: Question, spans: list[ScoredCandidate], model: ComposerModel) -> tuple[float, dict[str, float]]:
    """The chance that the best candidate is right, and the features it was computed from."""
    best = spans[0]
    key = mention_key(best.candidate.text)
    other = next((sc.score for sc in spans[1:] if mention_key(sc.candidate.text) != key), best.score - 5.0)
    share = sum(sc.prob for sc in spans if mention_key(sc.candidate.text) == key)
    f = answer_features(q, best.features, best.sentence.features, share, best.score - other, best.sentence.prob,
                        focus_met(q, best.sentence.sentence))
    return model.answer.prob(f), f


def _conflicts(best: ScoredCandidate, spans: list[ScoredCandidate], model: ComposerModel) -> list[ScoredCandidate]:
    """Other sources' figures of the same kind and unit, nearly as likely, with another value."""
    q = best.candidate.figure
    if q is None:
        return []
    out: list[ScoredCandidate] = []
    docs = {best.sentence.sentence.doc_id}
    for sc in spans[1:]:
        f = sc.candidate.figure
        doc = sc.sentence.sentence.doc_id
        if f is None or doc in docs or f.kind != q.kind or f.unit != q.unit or f.kind == "month":
            continue
        if sc.prob < model.conflict_share * best.prob:
            continue
        docs.add(doc)
        if not figures_equal(f.value, f.unit, q.value, q.unit) and not any(
                o.candidate.figure and figures_equal(f.value, f.unit, o.candidate.figure.value, f.unit) for o in out):
            out.append(sc)
    return out[:3]


def passages(q: Question, ranked: list[ScoredSentence], model: ComposerModel, reason: str, store: Any = None,
             span: float | None = None) -> Decision:
    """The best passage as the answer when its best sentence is likely enough to hold it and breaks no rule:
    for descriptive questions, and for others when no span is confident enough (`span`: that span's
    confidence; a refusal then carries the chance of the best answer it was allowed to give)."""
    top = ranked[0]
    broken = passage_rule(q, top, store)
    best = top.prob if span is None else span if broken else max(span, top.prob)
    if top.prob < model.sentences_threshold:
        return Decision("refuse", f"best sentence {top.prob:.2f} < {model.sentences_threshold:.2f}", best,
                        ranked=ranked)
    if broken:
        return Decision("refuse", broken, best, ranked=ranked)
    return Decision("sentences", reason, top.prob, sentences=best_passage(ranked, model), ranked=ranked)


def passage_rule(q: Question, top: ScoredSentence, store: Any) -> str | None:
    """The rule a passage answer breaks, if any: a question asking for a figure is answered by that figure (a
    span) or refused, never by sentences that leave the reader to pick it; the question's names are met."""
    if q.unit is not None or (q.expected and q.expected[0] in figure_labels()):
        return "the question asks for a figure and no figure is confident enough"
    if names_missing(q, top, store):
        return "the best sentence's article names none of the question's names"
    return None


def names_missing(q: Question, ss: ScoredSentence, store: Any) -> bool:
    """Rule: a question that names someone or something is answered only from an article that mentions one
    of its names (in the sentence, beside it, or anywhere in the article or its title)."""
    if not q.names or ss.features["names_met"] > 0.0:
        return False
    doc = store.documents.get(ss.sentence.doc_id) if store is not None else None
    return doc is None or not article_names_met(q, doc.text, doc.meta.title)


def best_passage(ranked: list[ScoredSentence], model: ComposerModel) -> list[ScoredSentence]:
    """The best sentence and up to two of its article's nearly as likely, in reading order."""
    top = ranked[0]
    more = [s for s in ranked[1:] if s.sentence.doc_id == top.sentence.doc_id
            and s.prob >= top.prob - model.more_sentences_margin][:2]
    return sorted([top, *more], key=lambda s: s.sentence.start)


def _publication(ranked: list[ScoredSentence], model: ComposerModel, store: Any) -> Decision:
    """The article the question describes (its best sentence's) and its publication date from the metadata."""
    for ss in ranked[:model.evidence_sentences]:
        if ss.prob < model.sentences_threshold:
            break
        if store.documents[ss.sentence.doc_id].meta.published:
            return Decision("published", "the article the question describes, dated by its metadata", ss.prob,
                            sentences=[ss], ranked=ranked)
    return Decision("refuse", "no dated article matches the question well enough", ranked[0].prob, ranked=ranked)


def _summary(q: Question, store: Any, model: ComposerModel) -> Decision:
    """The article whose title best covers what the question names, summarised by its most central sentences."""
    target = q.summary_of or ""
    words = {w.lower().strip(".,'\"") for w in target.split()} - {"the", "a", "an", "article", "story", "report"}
    best_doc, best = None, 0.0
    for doc in store.documents.values():
        title = {w.lower().strip(".,'\"") for w in (doc.meta.title or "").split()}
        pub = {w.lower() for w in (doc.meta.publisher or "").split()}
        score = len(words & (title | pub)) / len(words) if words else 0.0
        if score > best:
            best_doc, best = doc, score
    if best_doc is None or best < 0.5:
        return Decision("refuse", f"no article title matches {target!r}", best)
    rows = store.chunks_of(best_doc.doc_id)
    seen: dict[int, tuple[Sentence, np.ndarray]] = {}
    for chunk in rows:
        vecs = store.sentence_vectors(chunk)
        parses = store.sentence_parses(chunk)
        if vecs is None or parses is None:
            continue
        for span, v, p in zip(chunk.sentences, vecs, parses, strict=True):
            if span.start not in seen and len(p.tokens) >= 6:
                seen[span.start] = (Sentence(chunk.doc_id, span.start, span.end, p.text, 0.0, 1, p, frozenset()), v)
    if not seen:
        return Decision("refuse", "the article has no sentences to summarise", best)
    mat = np.stack([v for _, v in seen.values()])
    centre = mat.mean(axis=0)
    central = mat @ centre
    order = np.argsort(-central)[:3]
    items = list(seen.values())
    chosen = sorted((items[i][0] for i in order), key=lambda s: s.start)
    scored = [ScoredSentence(s, {"centrality": float(central[i])}, 0.0, best) for s, i in zip(chosen, sorted(order), strict=True)]
    return Decision("summary", f"summary of {best_doc.meta.title!r} (title match {best:.2f})", best, sentences=scored)


def decide(q: Question, sentences: list[Sentence], model: ComposerModel, store: Any) -> Decision:
    if q.summary_of is not None:
        return _summary(q, store, model)
    ranked = score_sentences(q, sentences, model)
    if not ranked:
        return Decision("refuse", "no evidence sentences retrieved", 0.0)
    if q.publication:
        return _publication(ranked, model, store)
    if q.descriptive:
        return passages(q, ranked, model, "descriptive question: best sentences", store)
    spans = score_candidates(q, ranked, model)
    if not spans:
        return passages(q, ranked, model, "no candidate span in the best sentences: the best passage", store)
    best = spans[0]
    confidence, af = answer_confidence(q, spans, model)
    weak = (f"span confidence {confidence:.2f} < {model.answer_threshold:.2f}" if confidence < model.answer_threshold
            else "the span's article names none of the question's names"
            if names_missing(q, best.sentence, store) else None)
    if weak:
        d = passages(q, ranked, model, f"{weak}: the best passage", store, span=confidence)
        d.reason = f"{weak}; {d.reason}" if d.kind == "refuse" else d.reason
        d.spans, d.answer_features = spans, af
        return d
    conflicts = _conflicts(best, spans, model)
    support = [] if conflicts else _support(best, ranked, confidence, model)
    return Decision("span", "best candidate", confidence, best=best, conflicts=conflicts, ranked=ranked, spans=spans,
                    support=support, answer_features=af)


def _support(best: ScoredCandidate, ranked: list[ScoredSentence], confidence: float,
             model: ComposerModel) -> list[ScoredSentence]:
    """The next best sentence, cited too when it repeats the answer or when the answer is uncertain."""
    others = [ss for ss in ranked[:model.evidence_sentences] if ss is not best.sentence]
    if not others:
        return []
    nxt = others[0]
    repeats = best.candidate.text.lower() in nxt.sentence.text.lower()
    return [nxt] if repeats or confidence < model.support_below else []


def trace(q: Question, d: Decision, most: int = 5) -> dict[str, Any]:
    """Why the answer was chosen or refused: the analysis, the best sentences and spans with their features."""
    def sent(ss: ScoredSentence) -> dict[str, Any]:
        return {"doc_id": ss.sentence.doc_id, "start": ss.sentence.start, "text": ss.sentence.text,
                "prob": round(ss.prob, 4), "features": {k: round(v, 4) for k, v in ss.features.items()}}

    def span(sc: ScoredCandidate) -> dict[str, Any]:
        return {"text": sc.candidate.text, "label": sc.candidate.label, "kind": sc.candidate.kind,
                "score": round(sc.score, 4), "share": round(sc.prob, 4),
                "features": {k: round(v, 4) for k, v in sc.features.items()},
                "doc_id": sc.sentence.sentence.doc_id}

    return {
        "question": {"english": q.english, "lang": q.lang, "wh": q.wh, "focus": q.focus, "expected": list(q.expected),
                     "expected_by": q.expected_by, "unit": q.unit, "names": list(q.names), "numbers": list(q.numbers),
                     "descriptive": q.descriptive, "summary_of": q.summary_of,
                     "terms": {k: round(v, 3) for k, v in q.terms.items()}},
        "decision": {"kind": d.kind, "reason": d.reason, "confidence": round(d.confidence, 4),
                     "answer_features": {k: round(v, 4) for k, v in d.answer_features.items()}},
        "sentences": [sent(s) for s in d.ranked[:most]],
        "candidates": [span(s) for s in d.spans[:most]],
    }


__all__ = ["Decision", "ScoredCandidate", "ScoredSentence", "coverage", "decide", "trace"]
