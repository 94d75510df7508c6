"""Fit the composer's weights and thresholds (rag/composer/model.json) on tuning data only.

Data: the tuning half (seeded split by article) of SQuAD half A and of the written news set eval/news2024;
optionally of more written sets and of the news quizzes over a wider corpus (never a quiz of the default quiz
corpus's measuring half).
Steps: (0) label centroids of the evidence's entity mentions, to type focus nouns none of the tables knows,
(1) the focus-noun answer-type table from gold answers' entity labels, (2) the sentence model
(does this sentence hold a gold answer?, L2-regularised logistic regression), (3) the candidate ranker
(conditional logit: the right candidate's share of its question's candidates), (4) the answer model (is the
best candidate right?) on rankings cross-fitted in two folds, (5) the answer threshold that maximises
right - penalty * wrong on those out-of-fold confidences.
Usage: python -m eval.fit_composer [--limit N] [--out rag/composer/model.json]
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize

from rag.composer.candidates import candidates
from rag.composer.decide import (
    answer_confidence,
    best_passage,
    passage_rule,
    score_candidates,
    score_sentences,
)
from rag.composer.evidence import gather
from rag.composer.features import ANSWER_FEATURES, CANDIDATE_FEATURES, SENTENCE_FEATURES
from rag.composer.label_vectors import LABEL_VECTORS_FILE, LabelVectors, centroids, sample_mentions
from rag.composer.lexicon import MODEL_FILE, fitted_model
from rag.composer.model import ComposerModel
from rag.config import Settings
from rag.figures import extract_figures, figures_equal

CACHE_VERSION = 2  # bump when Example or the evidence Sentence changes shape
NEWS_SET = Path("eval/news2024/questions.jsonl")
WRONG_PENALTY = 1.0  # a wrong answer costs as much as a right one gains: refuse unless more likely right


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, iters: int = 50) -> tuple[float, np.ndarray]:
    """Bias and weights by Newton's method (IRLS) with an L2 penalty on the weights."""
    n, d = x.shape
    xb = np.hstack([np.ones((n, 1)), x])
    w = np.zeros(d + 1)
    reg = np.eye(d + 1) * l2
    reg[0, 0] = 0.0
    for _ in range(iters):
        p = 1 / (1 + np.exp(-np.clip(xb @ w, -30, 30)))
        grad = xb.T @ (p - y) + reg @ w
        hess = (xb * (p * (1 - p))[:, None]).T @ xb + reg + 1e-9 * np.eye(d + 1)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-6:
            break
    return float(w[0]), w[1:]


def _norm(text: str) -> str:
    from eval.benchmarks.metrics import normalize_answer

    return normalize_answer(text)


@dataclass
class Example:
    """One tuning question: what retrieval gave the composer, and how to tell a right span."""

    question: str
    sentences: list[Any]
    golds: frozenset[str]  # normalised gold strings (SQuAD answers, or an eval item's `text`)
    figures: tuple[tuple[float, str], ...] = ()  # expected figures of an eval item
    answerable: bool = True
    exact: bool = False  # right only when the span is a gold answer (SQuAD's exact match), not when it holds one

    def right(self, c: Any) -> bool:
        if self.figures and c.figure is not None:
            return any(figures_equal(c.figure.value, c.figure.unit, v, u) for v, u in self.figures)
        norm = _norm(c.text)
        if self.exact:
            return norm in self.golds
        return bool(norm) and (norm in self.golds or any(
            g and f" {g} " in f" {norm} " and len(norm.split()) <= len(g.split()) + 2 for g in self.golds))

    def holds(self, text: str) -> bool:
        hay = f" {_norm(text)} "
        return any(g and f" {g} " in hay for g in self.golds) or any(
            any(figures_equal(q.value, q.unit, v, u) for v, u in self.figures) for q in extract_figures(text))


def retrieve_examples(assistant: Any, items: Sequence[Any]) -> list[Example]:
    """The retrieval pass (the slow part): each question's evidence sentences, kept for every later step."""
    out = []
    for it in items:
        q = assistant.composer.analyse(it.question)
        vec = assistant.embedder.embed_query(q.english)
        hits = assistant.retriever.search(q.english, k=assistant.settings.top_k, query_vector=vec)
        sents = gather(hits, assistant.store, vec)
        if hasattr(it, "answers"):  # a SQuAD-style benchmark item
            out.append(Example(it.question, sents, frozenset(_norm(a) for a in it.answers), exact=True))
        else:  # an eval-set item
            out.append(Example(it.question, sents, frozenset(_norm(t) for t in it.text),
                               tuple((f.value, f.unit) for f in it.figures), it.answerable))
    return out


def by_count(c: Counter) -> list[tuple[str, int]]:
    """A Counter's items, most frequent first and ties by name, so a fit never depends on insertion order."""
    return sorted(c.items(), key=lambda x: (-x[1], x[0]))


def focus_table(examples: Sequence[tuple[Example, Any, str]], min_count: int = 4, min_share: float = 0.15
                ) -> dict[str, list[str]]:
    """For each focus noun seen often enough, the entity labels of the right spans in its evidence."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for ex, q, _ in examples:
        if q.focus:
            for lab in {c.label for s in ex.sentences for c in candidates(s) if ex.right(c)}:
                counts[q.focus][lab] += 1
    table = {}
    for focus, c in counts.items():
        total = sum(c.values())
        if total >= min_count:
            table[focus] = [lab for lab, k in by_count(c) if k / total >= min_share]
    return dict(sorted(table.items()))


def label_prior(examples: Sequence[tuple[Example, Any, str]], min_count: int = 8) -> dict[str, dict[str, float]]:
    """Shares of the right candidates' labels per wh-word, and per focus noun seen often enough."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for ex, q, _ in examples:
        labels = {c.label for s in ex.sentences for c in candidates(s) if ex.right(c)}
        for key in (f"wh:{q.wh}", f"focus:{q.focus}" if q.focus else None):
            if key:
                counts[key].update(labels)
    return {key: {lab: round(k / sum(c.values()), 4) for lab, k in by_count(c)}
            for key, c in sorted(counts.items()) if sum(c.values()) >= min_count}


@dataclass
class Prepared:
    """One tuning question analysed and its sentences scored under the current sentence model."""

    ex: Example
    q: Any
    ranked: list[Any]
    set_name: str = ""


def sentence_rows(prepared: Sequence[Prepared]) -> tuple[np.ndarray, np.ndarray]:
    xs = [[ss.features[f] for f in SENTENCE_FEATURES] for p in prepared for ss in p.ranked]
    ys = [float(p.ex.holds(ss.sentence.text)) for p in prepared for ss in p.ranked]
    return np.array(xs), np.array(ys)


def rescore(prepared: Sequence[Prepared], model: ComposerModel) -> None:
    """Re-rank each question's sentences under a newly fitted sentence model."""
    for p in prepared:
        for ss in p.ranked:
            ss.logit, ss.prob = model.sentence.logit(ss.features), model.sentence.prob(ss.features)
        p.ranked.sort(key=lambda ss: -ss.logit)


def candidate_groups(prepared: Sequence[Prepared], model: ComposerModel) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per question: the feature rows of the candidates the composer would weigh, and which are right."""
    out = []
    for p in prepared:
        spans = score_candidates(p.q, p.ranked, model)
        x = np.array([[sc.features[k] for k in CANDIDATE_FEATURES] for sc in spans]).reshape(
            len(spans), len(CANDIDATE_FEATURES))
        y = np.array([float(p.ex.answerable and p.ex.right(sc.candidate)) for sc in spans])
        out.append((x, y))
    return out


def fit_ranker(groups: Sequence[tuple[np.ndarray, np.ndarray]], l2: float = 1.0) -> np.ndarray:
    """Conditional-logit weights: maximise each question's softmax share of its right candidates."""
    data = [(x, y) for x, y in groups if len(y) and y.max() > 0]

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        total, grad = 0.5 * l2 * float(w @ w), l2 * w.copy()
        for x, y in data:
            z = x @ w
            e = np.exp(z - z.max())
            p = e / e.sum()
            right = float((p * y).sum()) + 1e-12
            total -= math.log(right)
            grad += x.T @ p - x.T @ (p * y / right)
        return total, grad

    return minimize(loss, np.zeros(len(CANDIDATE_FEATURES)), jac=True, method="L-BFGS-B").x


def with_weights(base: dict[str, Any], part: str, bias: float, weights: Sequence[float], names: Sequence[str]
                 ) -> dict[str, Any]:
    return {**base, part: {"bias": round(bias, 4), "weights": {k: round(float(v), 4) for k, v in
                                                               zip(names, weights, strict=True)}}}


def answer_rows(prepared: Sequence[Prepared], model: ComposerModel) -> list[tuple[list[float], bool, bool, Any]]:
    """Per question: the answer features of its best candidate, whether that candidate is right, whether
    the question is answerable, and the Prepared item; questions with no candidate are left out."""
    out = []
    for p in prepared:
        spans = score_candidates(p.q, p.ranked, model)
        if not spans:
            continue
        _, f = answer_confidence(p.q, spans, model)
        right = p.ex.answerable and p.ex.right(spans[0].candidate)
        out.append(([f[k] for k in ANSWER_FEATURES], right, p.ex.answerable, p))
    return out


def pick_threshold(confidences: list[tuple[float, bool, bool]]) -> float:
    """The confidence above which answering gains most: a right answer or a right refusal counts 1, a wrong
    answer costs WRONG_PENALTY, refusing an answerable question counts 0. Never below 0.5: an answer that is
    more likely wrong than right is refused whatever the tuning data's mix of questions."""
    best_t, best_gain = 0.5, -math.inf
    for t in np.arange(0.5, 0.96, 0.01):
        gain = 0.0
        for p, right, answerable in confidences:
            if p >= t:
                gain += 1 if right else -WRONG_PENALTY
            elif not answerable:
                gain += 1
        if gain > best_gain:
            best_t, best_gain = float(t), gain
    return round(best_t, 2)


def passage_rows(prepared: Sequence[Prepared], confidence: dict[int, float], threshold: float, model: ComposerModel,
                 stores: dict[str, Any]) -> list[tuple[float, bool, bool]]:
    """Per question the composer would answer with its best passage (descriptive, no candidate, or a span below
    the answer threshold; `confidence` by id() of the example; `stores` by set name): the best sentence's
    probability, whether the passage holds the answer, and whether the question is answerable. Questions whose
    best passage breaks a passage rule are refused whatever the threshold, and left out."""
    out = []
    for p in prepared:
        if not p.ranked or passage_rule(p.q, p.ranked[0], stores[p.set_name]):
            continue
        if p.q.descriptive or confidence.get(id(p.ex), 0.0) < threshold:
            holds = p.ex.answerable and any(p.ex.holds(ss.sentence.text) for ss in best_passage(p.ranked, model))
            out.append((p.ranked[0].prob, holds, p.ex.answerable))
    return out


def news_tune(settings: Settings, path: Path, limit: int | None) -> tuple[Any, list[Any]] | None:
    """The tuning half (by article) of a written news set, over its own corpus (`articles.txt` beside it); items
    of `extra_questions.jsonl` beside it, written for the same corpus, join when their article is in that half.
    None if the set is not built."""
    from eval.benchmarks.corpus import split_groups
    from eval.benchmarks.news import open_id_corpus, read_ids
    from eval.dataset import load_set

    if not path.exists():
        return None
    items = load_set(path)
    split = split_groups((i.group or i.id for i in items), settings.bench_seed)
    extra = path.parent / "extra_questions.jsonl"
    pool = items + (load_set(extra) if extra.exists() else [])
    tune = [i for i in pool if split.part_of(i.group or i.id) == "tune"][:limit]
    return open_id_corpus(read_ids(path.parent / "articles.txt"), settings), tune  # the index `rag eval` uses


def quiz_tune(settings: Settings, cap: int, limit: int | None) -> tuple[Any, list[Any]]:
    """The tuning half of the news-quiz benchmark over a corpus of `cap` articles, without any quiz of the
    default corpus's measuring half (by question or by article), so that half stays unseen by the fit."""
    from eval.benchmarks import load_bench, source
    from eval.benchmarks.corpus import split_groups

    _, default_items = source("news-quiz", settings)
    held = split_groups((i.group for i in default_items), settings.bench_seed)
    held_ids = {i.id for i in default_items if held.part_of(i.group) == "measure"}
    loaded = load_bench("news-quiz", "tune", None, settings.with_overrides(bench_news_articles=cap))
    items = [i for i in loaded.items if i.id not in held_ids and not set(i.doc_ids) & held.measure]
    return loaded.assistant, items[:limit]


def eval_set_tune(settings: Settings, path: Path, corpus: Path) -> tuple[Any, list[Any]]:
    """Every item of an eval-format set, over its corpus folder indexed under the benchmark cache."""
    from eval.dataset import load_set
    from rag.assistant import Assistant
    from rag.ingest import ingest

    own = settings.with_overrides(corpus_dir=corpus, index_dir=settings.bench_cache_dir / f"tune-{path.stem}" / "index")
    ingest([corpus], own)
    return Assistant.open(own), load_set(path)


def tuning_sets(args: argparse.Namespace, settings: Settings) -> dict[str, tuple[Any, list[Example]]]:
    """Each tuning set's assistant (its own corpus, for question weights) and its retrieved examples."""
    from eval.benchmarks import load

    cached: dict[str, list[Example]] = {}
    if args.cache and args.cache.exists():
        with open(args.cache, "rb") as fh:
            cached = pickle.load(fh)
        if cached.get("version") != CACHE_VERSION:  # written by another version of the evidence code
            cached = {}
    sources: dict[str, tuple[Any, list[Any]]] = {"squad": load("squad", part="tune", limit=args.limit,
                                                               settings=settings)}
    for path in args.news_set or [NEWS_SET]:
        news = news_tune(settings, path, args.limit)
        if news is not None:
            sources[path.parent.name] = news
    if args.quiz_articles:
        sources["news-quiz"] = quiz_tune(settings, args.quiz_articles, args.limit)
    out = {}
    for name, (assistant, items) in sources.items():
        out[name] = (assistant, cached[name] if name in cached else retrieve_examples(assistant, items))
    if args.cache:
        with open(args.cache, "wb") as fh:
            pickle.dump({"version": CACHE_VERSION, **{name: exs for name, (_, exs) in out.items()}}, fh)
    for spec in args.eval_set:
        path, _, corpus = spec.partition(":")
        assistant, items = eval_set_tune(settings, Path(path), Path(corpus))
        out[Path(path).stem] = (assistant, retrieve_examples(assistant, items))
    return out


def label_vectors(sets: dict[str, tuple[Any, list[Example]]], seed: int, per_label: int = 300) -> LabelVectors:
    """Label centroids from the entity mentions of every tuning question's evidence sentences, given to each
    set's composer (so the fit's question analysis types unknown focus nouns as the shipped one will)."""
    assistant = next(iter(sets.values()))[0]
    pairs = ((c.label, c.text) for _, exs in sets.values() for ex in exs for s in ex.sentences
             for c in candidates(s) if c.kind == "entity")
    vectors = centroids(sample_mentions(pairs, per_label, seed), assistant.embedder.embed,
                        assistant.embedder.model_name)
    for a, _ in sets.values():
        a.composer.label_vectors = vectors
    return vectors


def analysed(sets: dict[str, tuple[Any, list[Example]]], model: ComposerModel,
             only: set[int] | None = None) -> list[tuple[Example, Any, str]]:
    """Every example's question (or those whose id() is in `only`) analysed by its own set's composer under
    `model`'s focus table and label shares."""
    out = []
    for name, (assistant, examples) in sets.items():
        assistant.composer.model = model
        out += [(ex, assistant.composer.analyse(ex.question), name) for ex in examples
                if only is None or id(ex) in only]
    return out


def with_tables(base: dict[str, Any], first: Sequence[tuple[Example, Any, str]]) -> dict[str, Any]:
    """The model with its focus-type table and label shares counted on `first` (analysed examples)."""
    return {**base, "focus_types": focus_table(first), "label_prior": label_prior(first)}


def prepare(sets: dict[str, tuple[Any, list[Example]]], model: ComposerModel, only: set[int] | None = None
            ) -> list[Prepared]:
    return [Prepared(ex, q, score_sentences(q, ex.sentences, model), name) for ex, q, name in analysed(sets, model, only)]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="at most this many tuning questions per set")
    ap.add_argument("--news-set", type=Path, action="append", default=[],
                    help="a written news set to tune on, its tuning half (repeatable; default eval/news2024)")
    ap.add_argument("--eval-set", action="append", default=[], metavar="SET.jsonl:CORPUS_DIR",
                    help="also tune on every item of an eval-format set over its corpus folder (repeatable)")
    ap.add_argument("--quiz-articles", type=int, default=0, metavar="N",
                    help="also tune on the news quizzes' tuning half over a corpus of N articles (0: not)")
    ap.add_argument("--cache", type=Path, default=None, help="keep the retrieval pass here (pickle) for re-fits")
    ap.add_argument("--out", type=Path, default=MODEL_FILE)
    args = ap.parse_args(argv)
    settings = Settings()
    start = time.perf_counter()
    sets = tuning_sets(args, settings)
    vectors = label_vectors(sets, settings.bench_seed)
    vectors.save(args.out.parent / LABEL_VECTORS_FILE.name)
    base = dict(fitted_model())
    first = analysed(sets, ComposerModel.load(base))
    base = with_tables(base, first)
    model = ComposerModel.load(base)
    prepared = prepare(sets, model)
    sx, sy = sentence_rows(prepared)
    b, w = fit_logistic(sx, sy)
    base = with_weights(base, "sentence", b, w, SENTENCE_FEATURES)
    model = ComposerModel.load(base)
    rescore(prepared, model)
    # Cross-fitting: the answer model learns from candidates ranked by a ranker, and typed by focus and label
    # tables, that never saw their questions.
    order = np.random.default_rng(settings.bench_seed).permutation(len(first))
    folds = [{id(first[i][0]) for i in order[k::2]} for k in (0, 1)]
    rows = []
    for train, test in ((folds[0], folds[1]), (folds[1], folds[0])):
        fold = ComposerModel.load(with_tables(base, [f for f in first if id(f[0]) in train]))
        ranker = with_weights(base, "candidate", 0.0, fit_ranker(candidate_groups(prepare(sets, fold, train), fold)),
                              CANDIDATE_FEATURES)
        rows += answer_rows(prepare(sets, fold, test), ComposerModel.load({**ranker, "focus_types": fold.focus_types,
                                                                           "label_prior": fold.label_prior}))
    b, w = fit_logistic(np.array([r[0] for r in rows]), np.array([float(r[1]) for r in rows]), l2=0.1)
    base = with_weights(base, "answer", b, w, ANSWER_FEATURES)
    base = with_weights(base, "candidate", 0.0, fit_ranker(candidate_groups(prepared, model)), CANDIDATE_FEATURES)
    model = ComposerModel.load(base)
    confident = [(model.answer.prob(dict(zip(ANSWER_FEATURES, f, strict=True))), r, a) for f, r, a, _ in rows]
    base["answer_threshold"] = pick_threshold(confident)
    span_confidence = {id(row[3].ex): c for (c, _, _), row in zip(confident, rows, strict=True)}
    passage = passage_rows(prepared, span_confidence, base["answer_threshold"], model,
                           {name: assistant.store for name, (assistant, _) in sets.items()})
    base["sentences_threshold"] = pick_threshold(passage)
    base["fitted_on"] = fit_summary(sets, settings, confident, base["answer_threshold"], len(sy),
                                    time.perf_counter() - start)
    base["fitted_on"]["label_vectors"] = list(vectors.labels)
    given = [(h, a) for p, h, a in passage if p >= base["sentences_threshold"]]
    base["fitted_on"]["passage_answers"] = {"answered": len(given),
                                            "hold": round(sum(h for h, _ in given) / max(len(given), 1), 4),
                                            "unanswerable_answered": sum(not a for _, a in given)}
    for name in sets:
        part = [c for c, row in zip(confident, rows, strict=True) if row[3].set_name == name]
        base["fitted_on"][f"out_of_fold_{name}"] = out_of_fold(part, base["answer_threshold"], len(sets[name][1]))
    args.out.write_text(json.dumps(base, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(base["fitted_on"], indent=1))
    print(f"thresholds: span {base['answer_threshold']}, passage {base['sentences_threshold']}")
    return 0


def out_of_fold(confident: list[tuple[float, bool, bool]], threshold: float, total: int) -> dict[str, Any]:
    """Answered, right and refused shares of `total` questions (those without a candidate count as refused)."""
    answered = [(p, r) for p, r, _ in confident if p >= threshold]
    high = [r for p, r in answered if p >= 0.8]
    unanswerable = [p < threshold for p, _, a in confident if not a]
    answerable = sum(1 for _, _, a in confident if a) or 1
    return {"answered": round(len(answered) / total, 4),
            "right_of_answerable": round(sum(r for _, r in answered) / answerable, 4),
            "right_if_always_answering": round(sum(r for _, r, _ in confident) / answerable, 4),
            "unanswerable_refused": round(float(np.mean(unanswerable)), 4) if unanswerable else None,
            "precision_at_0.8": round(sum(high) / len(high), 4) if high else None}


def fit_summary(sets: dict[str, Any], settings: Settings, confident: list[tuple[float, bool, bool]],
                threshold: float, sentence_rows: int, seconds: float) -> dict[str, Any]:
    """What the model was fitted on and how it does out of fold (cross-fitted ranker) on the tuning data."""
    return {"sets": {name: len(exs) for name, (_, exs) in sets.items()}, "seed": settings.bench_seed,
            "part": "tune", "sentence_rows": sentence_rows,
            "out_of_fold": out_of_fold(confident, threshold, sum(len(exs) for _, exs in sets.values())),
            "seconds": round(seconds, 1)}


if __name__ == "__main__":
    raise SystemExit(main())
