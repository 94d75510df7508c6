"""Deterministic scoring of cited answers: figure, unit and source are checked, never judged by a model."""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from eval.dataset import EvalItem, ExpectedFigure, format_number
from rag.errors import ReadError

# "[1]", "[2][3]", "[1, 2]", "[1-3]": citation markers in answer text, not figures.
MARKER = re.compile(r"\[\s*\d+(?:\s*[,;–-]\s*\d+)*\s*\]")
UNIT_ALIASES = {"percent": "%", "pct": "%", "yen": "jpy", "dollars": "usd", "rmb": "cny", "yuan": "cny"}
REL_TOL = 1e-6
CONFIDENT = 0.8  # precision is reported among answers at least this confident
BIN_EDGES = (0.0, 0.2, 0.4, 0.6, 0.8, 0.9, 1.0)  # confidence bins of the calibration tables

DocText = Callable[[str], str | None]
OPENING_QUOTES = "\"“„«「『'‘"


def lead_text(answer: dict[str, Any]) -> str:
    """The answer text before its first quoted citation (a cited quote in quotation marks, or a quote line
    `[n] "..."`), citation markers removed: what the answer itself says, apart from what it quotes."""
    text = str(answer.get("answer") or "")
    cut = len(text)
    for c in answer.get("citations") or []:
        quote = str(c.get("quote") or "") if isinstance(c, dict) else ""
        for mark in OPENING_QUOTES if quote else "":
            at = text.find(mark + quote)
            if at >= 0:
                cut = min(cut, at)
    line = re.search(r"^[ \t]*\[\s*\d+\s*\][ \t]*[" + re.escape(OPENING_QUOTES) + "]", text, re.M)
    if line:
        cut = min(cut, line.start())
    return " ".join(re.sub(r"\s*" + MARKER.pattern, "", text[:cut]).split())


def _short(answer: dict[str, Any]) -> str:
    short = answer.get("short_answer")
    return " ".join(short.split()) if isinstance(short, str) else ""


def claim_of(answer: dict[str, Any]) -> str:
    """The answer's claim as one string (what exact match and F1 score): its short answer, or when it has
    none, the lead text before its quotes."""
    return _short(answer) or lead_text(answer)


def claims(answer: dict[str, Any]) -> list[str]:
    """Everything the answer states in its own words: the short answer and the lead text before its quotes
    (a conflict's lead names every value while its short answer holds one); never what it quotes."""
    return [c for c in dict.fromkeys((_short(answer), lead_text(answer))) if c]


@dataclass(frozen=True, slots=True)
class Figure:
    """A figure as the scorer sees it: value, unit, and the text it was read from."""

    value: float
    unit: str
    text: str = ""


def norm_unit(unit: str) -> str:
    u = unit.strip().lower()
    return UNIT_ALIASES.get(u, u)


def same_figure(a_value: float, a_unit: str, b_value: float, b_unit: str) -> bool:
    """Equal by unit (currency, %, count, year, ...) and by value up to float rounding: scale matters."""
    return norm_unit(a_unit) == norm_unit(b_unit) and math.isclose(
        float(a_value), float(b_value), rel_tol=REL_TOL, abs_tol=1e-9)


def extract(text: str | None) -> list[Figure]:
    """Figures in free text, read by the library's extractor (rag.figures)."""
    if not text:
        return []
    from rag.figures import extract_figures

    return [Figure(float(q.value), q.unit, q.text) for q in extract_figures(text)]


def listed_figures(answer: dict[str, Any]) -> list[Figure]:
    """The answer's own `figures` list, malformed entries skipped."""
    listed = []
    for f in answer.get("figures") or []:
        try:
            listed.append(Figure(float(f["value"]), str(f["unit"]), str(f.get("text", ""))))
        except (KeyError, TypeError, ValueError):
            continue
    return listed


def claim_figures(answer: dict[str, Any], parts: Sequence[str] | None = None) -> list[Figure]:
    """The figures the claims state: read from their text, plus the listed figures whose text one of them
    contains (a listed figure no claim states counts for nothing)."""
    parts = claims(answer) if parts is None else parts
    listed = listed_figures(answer)
    return [f for part in parts for f in [g for g in listed if g.text and g.text in part] + extract(part)]


def answer_figures(answer: dict[str, Any]) -> list[Figure]:
    """Alias of `claim_figures`: the figures an answer is credited with."""
    return claim_figures(answer)


def quote_holds(item: EvalItem, answer: dict[str, Any]) -> bool:
    """Every expected figure and text occurs in some cited quote (whatever the claim says)."""
    quotes = [str(c.get("quote") or "") for c in answer.get("citations") or [] if isinstance(c, dict)]
    if not quotes:
        return False
    in_quotes = [f for q in quotes for f in extract(q)]
    folded = [q.casefold() for q in quotes]
    return (all(figure_matched(f, in_quotes) for f in item.figures)
            and all(any(t.casefold() in q for q in folded) for t in item.text))


def figure_matched(expected: ExpectedFigure, got: Iterable[Figure]) -> bool:
    return any(same_figure(expected.value, expected.unit, g.value, g.unit) for g in got)


def unsupported_figures(answer: dict[str, Any]) -> list[str]:
    """Figures stated in the answer text (citation markers aside) that no cited quote or cited source's
    title/date carries: each one is a faithfulness failure."""
    text = answer.get("answer") or ""
    markers = [(m.start(), m.end()) for m in MARKER.finditer(text)]
    support_texts = []
    for c in answer.get("citations") or []:
        support_texts += [str(c.get(k) or "") for k in ("quote", "title", "published")]
    support = [f for t in support_texts for f in extract(t)]
    from rag.figures import extract_figures

    missing = []
    for q in extract_figures(text):
        if any(q.start < e and s < q.end for s, e in markers):
            continue
        if any(q.text and q.text in t for t in support_texts):
            continue
        if not any(same_figure(q.value, q.unit, s.value, s.unit) for s in support):
            missing.append(q.text)
    return missing


@dataclass(slots=True)
class ItemScore:
    """How one answer fared against its item; `right` is the verdict, `reasons` say why not."""

    id: str
    kind: str
    lang: str
    question: str
    expected: str
    answerable: bool
    abstained: bool
    right: bool
    figures_matched: list[bool] = field(default_factory=list)
    text_found: list[bool] = field(default_factory=list)
    citation_ok: bool = False
    quotes_exact: bool = True
    faithful: bool = True
    unsupported: list[str] = field(default_factory=list)
    recall: float | None = None
    reciprocal_rank: float | None = None
    cited_docs: list[str] = field(default_factory=list)
    claim: str = ""
    quote_holds: bool | None = None
    confidence: float | None = None
    got: str = ""
    reasons: list[str] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _got_summary(answer: dict[str, Any]) -> str:
    if not answer.get("answerable", False):
        return "(abstained) " + " ".join(str(answer.get("answer") or "").split())[:160]
    short = answer.get("short_answer") or " ".join(str(answer.get("answer") or "").split())[:200]
    figs = ", ".join(f"{f.get('text')}={format_number(f['value'])} {f.get('unit')}"
                     for f in answer.get("figures") or [] if isinstance(f.get("value"), int | float))
    return short + (f" | figures: {figs}" if figs else "")


def ranking_scores(expected: Sequence[str], ranked_docs: Sequence[str], k: int) -> tuple[float, float]:
    """Recall@k of the expected documents and reciprocal rank of the first one found in the top k."""
    top = list(dict.fromkeys(ranked_docs))[:k]
    recall = sum(d in top for d in set(expected)) / len(set(expected))
    rr = next((1.0 / (i + 1) for i, d in enumerate(top) if d in expected), 0.0)
    return recall, rr


def score_item(item: EvalItem, answer: dict[str, Any] | None, doc_text: DocText,
               ranked_docs: Sequence[str] | None = None, k: int = 3, error: str | None = None) -> ItemScore:
    """Score one answer dict (the `Answer.to_dict()` / HTTP /ask contract) against its item."""
    base = dict(id=item.id, kind=item.kind, lang=item.lang, question=item.question,
                expected=item.describe_expected(), answerable=item.answerable)
    if answer is None:
        return ItemScore(**base, abstained=False, right=False, citation_ok=False, quotes_exact=False,
                         faithful=False, got=f"(error) {error}", reasons=[f"error: {error}"], error=error)
    abstained = not bool(answer.get("answerable", False))
    citations = [c for c in answer.get("citations") or [] if isinstance(c, dict)]
    cited = list(dict.fromkeys(str(c.get("doc_id")) for c in citations))
    quotes_exact = all(_quote_exact(c, doc_text) for c in citations)
    reasons: list[str] = []

    recall = rr = None
    if item.answerable and item.doc_ids and ranked_docs is not None:
        recall, rr = ranking_scores(item.doc_ids, ranked_docs, k)

    if not item.answerable:
        right = abstained
        if not right:
            reasons.append("answered a question the sources cannot answer")
        unsupported = [] if abstained else unsupported_figures(answer)
        return ItemScore(**base, abstained=abstained, right=right, citation_ok=abstained,
                         quotes_exact=quotes_exact, faithful=not unsupported, unsupported=unsupported,
                         cited_docs=cited, claim="" if abstained else " | ".join(claims(answer)),
                         confidence=_confidence(answer), got=_got_summary(answer), reasons=reasons)

    parts = [] if abstained else claims(answer)
    claim = " | ".join(parts)
    got_figs = claim_figures(answer, parts)
    matched = [figure_matched(f, got_figs) for f in item.figures]
    found = [any(t.casefold() in part.casefold() for part in parts) for t in item.text]
    holds = not abstained and quote_holds(item, answer)
    if item.kind == "conflict":
        citation_ok = all(d in cited for d in item.doc_ids)
    else:
        citation_ok = any(d in item.doc_ids for d in cited)
    unsupported = [] if abstained else unsupported_figures(answer)

    if abstained:
        reasons.append("abstained")
    reasons += [f"figure {f.describe()} not stated in the claim" for f, ok in zip(item.figures, matched, strict=True)
                if not ok]
    reasons += [f"text {t!r} not in the claim" for t, ok in zip(item.text, found, strict=True) if not ok]
    if holds and not (all(matched) and all(found)):
        reasons.append("a cited quote holds the answer")
    if not citation_ok:
        need = "each of" if item.kind == "conflict" else "one of"
        reasons.append(f"no citation from {need} {', '.join(item.doc_ids)} (cited: {', '.join(cited) or 'none'})")
    if not quotes_exact:
        reasons.append("a quote differs from the document text at its offsets")
    right = not abstained and all(matched) and all(found) and citation_ok and quotes_exact
    return ItemScore(**base, abstained=abstained, right=right, figures_matched=matched, text_found=found,
                     citation_ok=citation_ok, quotes_exact=quotes_exact, faithful=not unsupported,
                     unsupported=unsupported, recall=recall, reciprocal_rank=rr, cited_docs=cited, claim=claim,
                     quote_holds=holds, confidence=_confidence(answer), got=_got_summary(answer), reasons=reasons)


def _confidence(answer: dict[str, Any]) -> float | None:
    value = answer.get("confidence")
    return round(float(value), 4) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _quote_exact(citation: dict[str, Any], doc_text: DocText) -> bool:
    text = doc_text(str(citation.get("doc_id")))
    start, end = citation.get("start"), citation.get("end")
    if text is None or not isinstance(start, int) or not isinstance(end, int):
        return False
    return 0 <= start <= end <= len(text) and text[start:end] == citation.get("quote")


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def summarize(scores: Sequence[ItemScore], k: int) -> dict[str, Any]:
    """Set-level metrics, rounded and keyed so two runs over the same answers compare equal."""
    ans = [s for s in scores if s.answerable]
    unans = [s for s in scores if not s.answerable]
    answered = [s for s in scores if not s.abstained and s.error is None]
    figs = [m for s in ans for m in s.figures_matched]
    ranked = [s for s in ans if s.recall is not None]
    confident = [s for s in answered if s.confidence is not None and s.confidence >= CONFIDENT]
    return {
        "items": len(scores),
        "right": sum(s.right for s in scores),
        "accuracy": _ratio(sum(s.right for s in scores), len(scores)),
        "answerable_accuracy": _ratio(sum(s.right for s in ans), len(ans)),
        "abstention_accuracy": _ratio(sum(s.right for s in unans), len(unans)),
        "answer_rate": _ratio(sum(not s.abstained and s.error is None for s in ans), len(ans)),
        "figure_accuracy": _ratio(sum(figs), len(figs)),
        "citation_accuracy": _ratio(sum(s.citation_ok and s.quotes_exact for s in ans), len(ans)),
        "quote_holds": _ratio(sum(bool(s.quote_holds) for s in ans), len(ans)),
        "quote_exactness": _ratio(sum(s.quotes_exact for s in answered), len(answered)),
        "faithfulness": _ratio(sum(s.faithful for s in answered), len(answered)),
        "k": k,
        "recall_at_k": _mean([s.recall for s in ranked if s.recall is not None]),
        "mrr": _mean([s.reciprocal_rank for s in ranked if s.reciprocal_rank is not None]),
        "errors": sum(s.error is not None for s in scores),
        "confident_answers": len(confident),
        "confident_precision": _ratio(sum(s.right for s in confident), len(confident)),
    }


def in_bin(confidence: float, lo: float, hi: float) -> bool:
    """Bins are [lo, hi), the last one closed: 1.0 falls in the top bin."""
    return lo <= confidence < hi or (hi == BIN_EDGES[-1] and confidence == hi)


def calibration_bins(scores: Sequence[ItemScore]) -> list[dict[str, Any]]:
    """Per confidence bin of the answered items: how many, and how many of them are right."""
    rated = [s for s in scores if not s.abstained and s.error is None and s.confidence is not None]
    rows = []
    for lo, hi in zip(BIN_EDGES, BIN_EDGES[1:]):
        inside = [s for s in rated if in_bin(s.confidence, lo, hi)]
        rows.append({"from": lo, "to": hi, "n": len(inside), "right": sum(s.right for s in inside),
                     "accuracy": _ratio(sum(s.right for s in inside), len(inside))})
    return rows


def breakdown(scores: Sequence[ItemScore], key: str) -> dict[str, dict[str, Any]]:
    """Accuracy per kind or per language, in sorted key order."""
    groups: dict[str, list[ItemScore]] = {}
    for s in scores:
        groups.setdefault(getattr(s, key), []).append(s)
    return {g: {"n": len(v), "right": sum(s.right for s in v), "accuracy": _ratio(sum(s.right for s in v), len(v))}
            for g, v in sorted(groups.items())}


@dataclass(frozen=True, slots=True)
class ThresholdFailure:
    metric: str
    value: float | None
    threshold: float

    def message(self) -> str:
        shown = "n/a" if self.value is None else f"{self.value:.4f}"
        return f"{self.metric} {shown} is below the threshold {self.threshold:.4f}"


def load_thresholds(path: Path) -> dict[str, float]:
    """`metric = minimum` pairs from a TOML file (top level or a [thresholds] table)."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ReadError(f"thresholds file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ReadError(f"{path}: not valid TOML ({exc})") from exc
    table = data.get("thresholds", data)
    out = {}
    for name, value in table.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ReadError(f"{path}: threshold {name!r} must be a number, got {value!r}")
        out[name] = float(value)
    return out


def check_thresholds(summary: dict[str, Any], thresholds: dict[str, float]) -> list[ThresholdFailure]:
    """Metrics below their minimum (a metric with no items to measure fails too: nothing was shown)."""
    unknown = sorted(set(thresholds) - set(summary))
    if unknown:
        known = ", ".join(k for k, v in summary.items() if isinstance(v, float) or v is None)
        raise ReadError(f"unknown metric(s) in thresholds: {', '.join(unknown)} (known: {known})")
    return [ThresholdFailure(m, summary[m], t) for m, t in sorted(thresholds.items())
            if summary[m] is None or summary[m] < t]
