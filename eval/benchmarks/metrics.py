"""QA benchmark scoring: SQuAD's official normalisation, exact match and F1 of the answer's claim, whether a
cited quote holds a gold answer, calibration of the answer's confidence, and latency."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from eval.scorer import BIN_EDGES, CONFIDENT, claim_of, in_bin

QUOTES_COUNTED = 2  # quote_holds@2: the first two cited quotes
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation)


@dataclass(frozen=True, slots=True)
class QAItem:
    """A benchmark question: gold answer strings, the articles they come from, the group it is split by."""

    id: str
    question: str
    answers: tuple[str, ...]
    doc_ids: tuple[str, ...]
    group: str


def normalize_answer(text: str) -> str:
    """SQuAD v1.1's official normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    norm = normalize_answer(prediction)
    return float(any(norm == normalize_answer(g) for g in golds))


def _f1(prediction: str, gold: str) -> float:
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def f1_score(prediction: str, golds: Sequence[str]) -> float:
    """Token F1 after normalisation, the best over the gold answers (the official max-over-ground-truths)."""
    return max((_f1(prediction, g) for g in golds), default=0.0)


def contains_answer(passage: str, golds: Sequence[str]) -> bool:
    """Some gold answer, normalised, occurs in the normalised passage as whole tokens."""
    hay = f" {normalize_answer(passage)} "
    return any((g := normalize_answer(gold)) and f" {g} " in hay for gold in golds)


@dataclass(slots=True)
class QAScore:
    """How one answer fared: `em`/`f1` of its claim (0 when it abstained), whether the claim itself holds a gold
    answer (the strict scorer's "right": a short answer or passage that says it), and whether a quote holds one."""

    answered: bool
    claim: str
    em: float
    f1: float
    quote_holds: bool
    cited_gold_doc: bool
    confidence: float | None
    compose_ms: float | None
    total_ms: float | None
    short: bool = False  # answered with a short answer (a span), not with passages
    claim_holds: bool = False


@dataclass(slots=True)
class QARecord:
    """One asked item: the item, the answer's JSON (with its trace when asked for), its score, or an error."""

    item: QAItem
    answer: dict[str, Any] | None
    score: QAScore
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"item": asdict(self.item), "answer": self.answer, "score": asdict(self.score),
                "error": self.error, **self.extra}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def score_answer(item: QAItem, answer: dict[str, Any] | None, wall_ms: float | None = None) -> QAScore:
    """Score an answer dict (the /ask contract); None (an error) scores like an abstention."""
    if answer is None:
        return QAScore(False, "", 0.0, 0.0, False, False, None, None, wall_ms)
    answered = bool(answer.get("answerable", False))
    timings = answer.get("timings_ms") or {}
    total = _number(timings.get("total"))
    base = dict(confidence=_number(answer.get("confidence")), compose_ms=_number(timings.get("compose")),
                total_ms=total if total is not None else wall_ms)
    if not answered:
        return QAScore(False, "", 0.0, 0.0, False, False, **base)
    claim = claim_of(answer)
    cites = sorted((c for c in answer.get("citations") or [] if isinstance(c, dict)), key=lambda c: c.get("n", 0))
    quotes = [str(c.get("quote") or "") for c in cites[:QUOTES_COUNTED]]
    return QAScore(True, claim, exact_match(claim, item.answers), round(f1_score(claim, item.answers), 4),
                   any(contains_answer(q, item.answers) for q in quotes),
                   any(str(c.get("doc_id")) in item.doc_ids for c in cites), **base,
                   short=bool(answer.get("short_answer")), claim_holds=contains_answer(claim, item.answers))


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def percentile(values: Sequence[float], pct: float) -> float | None:
    from eval.runner import percentile as linear

    return linear(sorted(values), pct)


def calibration(records: Sequence[QARecord]) -> dict[str, Any]:
    """Accuracy (exact match, claim holds, quote holds) per confidence bin of the answered items, and precision among
    answers with confidence >= CONFIDENT; answers without a confidence are counted apart."""
    answered = [r.score for r in records if r.score.answered]
    rated = [s for s in answered if s.confidence is not None]
    bins = []
    for lo, hi in zip(BIN_EDGES, BIN_EDGES[1:]):
        inside = [s for s in rated if in_bin(s.confidence, lo, hi)]
        bins.append({"from": lo, "to": hi, "n": len(inside), "em": _mean([s.em for s in inside]),
                     "claim_holds": _mean([float(s.claim_holds) for s in inside]),
                     "quote_holds": _mean([float(s.quote_holds) for s in inside]),
                     "mean_confidence": _mean([s.confidence for s in inside])})
    confident = [s for s in rated if s.confidence >= CONFIDENT]
    return {"answered": len(answered), "without_confidence": len(answered) - len(rated), "bins": bins,
            "confident_at": CONFIDENT, "confident_n": len(confident),
            "confident_em": _mean([s.em for s in confident]),
            "confident_claim_holds": _mean([float(s.claim_holds) for s in confident]),
            "confident_quote_holds": _mean([float(s.quote_holds) for s in confident])}


def summarize(records: Sequence[QARecord]) -> dict[str, Any]:
    """Set-level figures: EM/F1 over every item (abstentions and errors score 0), quote_holds@2, answer rate,
    calibration and latency."""
    scores = [r.score for r in records]
    answered = [s for s in scores if s.answered]
    compose = [s.compose_ms for s in scores if s.compose_ms is not None]
    total = [s.total_ms for s in scores if s.total_ms is not None]
    return {
        "items": len(records),
        "answered": len(answered),
        "answer_rate": _mean([float(s.answered) for s in scores]),
        "exact_match": _mean([s.em for s in scores]),
        "f1": _mean([s.f1 for s in scores]),
        "claim_holds": _mean([float(s.claim_holds) for s in scores]),
        f"quote_holds_at_{QUOTES_COUNTED}": _mean([float(s.quote_holds) for s in scores]),
        "cited_gold_doc": _mean([float(s.cited_gold_doc) for s in scores]),
        "exact_match_when_answered": _mean([s.em for s in answered]),
        "short_answers": sum(s.short for s in answered),
        "exact_match_of_short_answers": _mean([s.em for s in answered if s.short]),
        "passage_answers": sum(not s.short for s in answered),
        "passage_holds": _mean([float(s.quote_holds) for s in answered if not s.short]),
        "errors": sum(r.error is not None for r in records),
        "calibration": calibration(records),
        "calibration_short_answers": calibration([r for r in records if r.score.short]),
        "latency_ms": {"compose_p50": percentile(compose, 50), "compose_p99": percentile(compose, 99),
                       "total_p50": percentile(total, 50), "total_p99": percentile(total, 99)},
    }
