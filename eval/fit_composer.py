"""Fit the composer's weights and thresholds (rag/composer/model.json) on tuning data only.

Data: the tuning half (seeded split by article) of SQuAD half A and of the news-2024 written set.
Steps: (1) the focus-noun answer-type table from gold answers' entity labels, (2) the sentence model
(does this sentence hold a gold answer?), (3) the span model (is this candidate the gold answer?), by
L2-regularised logistic regression, (4) the answer threshold that maximises right - penalty * wrong.
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

from rag.composer.candidates import candidates
from rag.composer.decide import score_sentences
from rag.composer.evidence import gather
from rag.composer.features import (
    CANDIDATE_FEATURES,
    SENTENCE_FEATURES,
    candidate_features,
    matched_tokens,
    unit_ok,
)
from rag.composer.lexicon import MODEL_FILE, fitted_model
from rag.composer.model import ComposerModel
from rag.config import Settings
from rag.figures import extract_figures, figures_equal

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

    def right(self, c: Any) -> bool:
        if self.figures and c.figure is not None:
            return any(figures_equal(c.figure.value, c.figure.unit, v, u) for v, u in self.figures)
        norm = _norm(c.text)
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
            out.append(Example(it.question, sents, frozenset(_norm(a) for a in it.answers)))
        else:  # an eval-set item
            out.append(Example(it.question, sents, frozenset(_norm(t) for t in it.text),
                               tuple((f.value, f.unit) for f in it.figures), it.answerable))
    return out


def focus_table(assistant: Any, examples: Sequence[Example], min_count: int = 4, min_share: float = 0.15
                ) -> dict[str, list[str]]:
    """For each focus noun seen often enough, the entity labels of the right spans in its evidence."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for ex in examples:
        q = assistant.composer.analyse(ex.question)
        if q.focus:
            for lab in {c.label for s in ex.sentences for c in candidates(s) if ex.right(c)}:
                counts[q.focus][lab] += 1
    table = {}
    for focus, c in counts.items():
        total = sum(c.values())
        if total >= min_count:
            table[focus] = [lab for lab, k in c.most_common() if k / total >= min_share]
    return dict(sorted(table.items()))


def sentence_rows(assistant: Any, examples: Sequence[Example], model: ComposerModel) -> tuple[list, np.ndarray, np.ndarray]:
    """Each example analysed with the current model's table, its sentences scored; rows for the sentence model."""
    xs, ys, prepared = [], [], []
    for ex in examples:
        q = assistant.composer.analyse(ex.question)
        ranked = score_sentences(q, ex.sentences, model)
        for ss in ranked:
            xs.append([ss.features[f] for f in SENTENCE_FEATURES])
            ys.append(float(ex.holds(ss.sentence.text)))
        prepared.append((ex, q, ranked))
    return prepared, np.array(xs), np.array(ys)


def _top(model: ComposerModel, ranked: list[Any]) -> list[Any]:
    return sorted(ranked, key=lambda ss: -model.sentence.logit(ss.features))[:model.evidence_sentences]


def _scored_candidates(q: Any, ranked: list[Any], model: ComposerModel):
    """(candidate, features) for the candidates the composer would weigh under `model` (see decide.py)."""
    for ss in _top(model, ranked):
        logit = model.sentence.logit(ss.features)
        matched = matched_tokens(q, ss.sentence)
        for c in ss.candidates:
            if unit_ok(q, c):
                yield c, candidate_features(q, ss.sentence, c, matched, logit)


def candidate_rows(prepared: list, model: ComposerModel) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for ex, q, ranked in prepared:
        for c, f in _scored_candidates(q, ranked, model):
            xs.append([f[k] for k in CANDIDATE_FEATURES])
            ys.append(float(ex.right(c)))
    return np.array(xs), np.array(ys)


def best_answers(prepared: list, model: ComposerModel) -> list[tuple[float, bool, bool]]:
    """Per question: (best candidate's raw probability, it is right, the question is answerable)."""
    out = []
    for ex, q, ranked in prepared:
        best, right = 0.0, False
        for c, f in _scored_candidates(q, ranked, model):
            p = model.candidate.prob(f)
            if p > best:
                best, right = p, ex.answerable and ex.right(c)
        out.append((best, right, ex.answerable))
    return out


def calibrate(scored: list[tuple[float, bool, bool]]) -> tuple[float, float]:
    """Platt scaling of the best candidate's probability into the chance that the answer is right."""
    logit = np.array([[math.log(max(p, 1e-6) / max(1 - p, 1e-6))] for p, _, _ in scored])
    b, w = fit_logistic(logit, np.array([float(r) for _, r, _ in scored]), l2=0.01)
    return float(w[0]), b


def pick_threshold(confidences: list[tuple[float, bool, bool]]) -> float:
    """The confidence above which answering gains more than it loses: a right answer or a right refusal
    counts 1, a wrong answer costs WRONG_PENALTY, refusing an answerable question counts 0."""
    best_t, best_gain = 0.5, -math.inf
    for t in np.arange(0.02, 0.96, 0.01):
        gain = 0.0
        for p, right, answerable in confidences:
            if p >= t:
                gain += 1 if right else -WRONG_PENALTY
            elif not answerable:
                gain += 1
        if gain > best_gain:
            best_t, best_gain = float(t), gain
    return round(best_t, 2)


def news_tune(settings: Settings, path: Path, limit: int | None) -> tuple[Any, list[Any]] | None:
    """The tuning half (by article) of the written news set, over its own corpus; None if not built."""
    from eval.benchmarks.corpus import open_assistant, split_groups
    from eval.benchmarks.news import docs_for_ids, read_ids
    from eval.dataset import load_set

    if not path.exists():
        return None
    items = load_set(path)
    split = split_groups((i.group or i.id for i in items), settings.bench_seed)
    tune = [i for i in items if split.part_of(i.group or i.id) == "tune"][:limit]
    docs = docs_for_ids(settings.bench_dir / "news-2024" / "articles.jsonl.gz", read_ids(path.parent / "articles.txt"))
    return open_assistant(settings, "news2024", docs), tune


def eval_set_tune(settings: Settings, path: Path, corpus: Path) -> tuple[Any, list[Any]]:
    """Every item of an eval-format set, over its corpus folder indexed under the benchmark cache."""
    from eval.dataset import load_set
    from rag.assistant import Assistant
    from rag.ingest import ingest

    own = settings.with_overrides(corpus_dir=corpus, index_dir=settings.bench_cache_dir / f"tune-{path.stem}" / "index")
    ingest([corpus], own)
    return Assistant.open(own), load_set(path)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="at most this many tuning questions per set")
    ap.add_argument("--news-set", type=Path, default=Path("eval/news2024/questions.jsonl"))
    ap.add_argument("--eval-set", action="append", default=[], metavar="SET.jsonl:CORPUS_DIR",
                    help="also tune on every item of an eval-format set over its corpus folder (repeatable)")
    ap.add_argument("--cache", type=Path, default=None, help="keep the retrieval pass here (pickle) for re-fits")
    ap.add_argument("--out", type=Path, default=MODEL_FILE)
    args = ap.parse_args(argv)
    from eval.benchmarks import load

    settings = Settings()
    start = time.perf_counter()
    assistant, items = load("squad", part="tune", limit=args.limit, settings=settings)
    sets: dict[str, list[Example]] = {}
    if args.cache and args.cache.exists():
        with open(args.cache, "rb") as fh:
            sets = pickle.load(fh)
    if "squad" not in sets:
        sets["squad"] = retrieve_examples(assistant, items)
    if "news2024" not in sets:  # a cache written before the news set existed must not drop it
        news = news_tune(settings, args.news_set, args.limit)
        if news is not None:
            sets["news2024"] = retrieve_examples(*news)
    if args.cache:
        with open(args.cache, "wb") as fh:
            pickle.dump(sets, fh)
    for spec in args.eval_set:
        path, _, corpus = spec.partition(":")
        sets[Path(path).stem] = retrieve_examples(*eval_set_tune(settings, Path(path), Path(corpus)))
    examples = [ex for name in sets for ex in sets[name]]
    base = dict(fitted_model())
    base["focus_types"] = focus_table(assistant, examples)
    model = ComposerModel.load(base)
    assistant.composer.model = model
    prepared, sx, sy = sentence_rows(assistant, examples, model)
    b, w = fit_logistic(sx, sy)
    base["sentence"] = {"bias": round(b, 4), "weights": {k: round(float(v), 4) for k, v in zip(SENTENCE_FEATURES, w, strict=True)}}
    model = ComposerModel.load(base)
    cx, cy = candidate_rows(prepared, model)
    b, w = fit_logistic(cx, cy)
    base["candidate"] = {"bias": round(b, 4), "weights": {k: round(float(v), 4) for k, v in zip(CANDIDATE_FEATURES, w, strict=True)}}
    model = ComposerModel.load(base)
    scored = best_answers(prepared, model)
    a, c = calibrate(scored)
    base["calibration"] = {"scale": round(a, 4), "shift": round(c, 4)}
    model = ComposerModel.load(base)
    confident = [(model.confidence(p), r, ans) for p, r, ans in scored]
    base["answer_threshold"] = pick_threshold(confident)
    answered = [(p, r) for p, r, _ in confident if p >= base["answer_threshold"]]
    high = [r for p, r in answered if p >= 0.8]
    base["fitted_on"] = {"sets": {name: len(v) for name, v in sets.items()}, "seed": settings.bench_seed,
                         "part": "tune", "sentence_rows": len(sy), "candidate_rows": len(cy),
                         "in_sample": {"answered": round(len(answered) / len(scored), 4),
                                       "right": round(sum(r for _, r in answered) / len(scored), 4),
                                       "right_if_always_answering": round(sum(r for _, r, _ in scored) / len(scored), 4),
                                       "precision_at_0.8": round(sum(high) / len(high), 4) if high else None},
                         "seconds": round(time.perf_counter() - start, 1)}
    args.out.write_text(json.dumps(base, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(base["fitted_on"], indent=1))
    print(f"threshold {base['answer_threshold']}, calibration {base['calibration']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
