"""Run an eval set against a target (the in-process Assistant or a running HTTP service) and score it."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from eval.dataset import EvalItem
from eval.scorer import ItemScore, breakdown, calibration_bins, score_item, summarize
from rag.errors import QuestionError, RagError

log = logging.getLogger(__name__)


class TargetError(RagError):
    """The target cannot be evaluated at all (unreachable, or refusing our credentials): stops the run."""


class ServiceError(RuntimeError):
    """The service failed on one question (HTTP 5xx): recorded as that item's error."""


class Target(Protocol):
    """What the harness needs from a system under test."""

    name: str

    def ask(self, item: EvalItem) -> dict[str, Any]: ...

    def doc_text(self, doc_id: str) -> str | None: ...

    def ranked_docs(self, item: EvalItem, answer: dict[str, Any], k: int) -> list[str]: ...


class InProcessTarget:
    """The library's Assistant, called directly; ranking comes from `Assistant.search`."""

    name = "in-process"

    def __init__(self, assistant: Any) -> None:
        self.assistant = assistant

    def _turns(self, item: EvalItem) -> list[Any]:
        from rag.types import Turn

        return [Turn("user", h) for h in item.history]

    def ask(self, item: EvalItem) -> dict[str, Any]:
        return self.assistant.ask(item.question, history=self._turns(item)).to_dict()

    def doc_text(self, doc_id: str) -> str | None:
        doc = self.assistant.documents.get(doc_id)
        return None if doc is None else doc.text

    def ranked_docs(self, item: EvalItem, answer: dict[str, Any], k: int) -> list[str]:
        query = self.assistant.composer.analyse(item.question.strip(), self._turns(item)).english
        hits = self.assistant.search(query, k=max(10, 3 * k))
        return list(dict.fromkeys(h.chunk.doc_id for h in hits))


class HttpTarget:
    """A running service: POST {url}/ask, GET {url}/sources/{doc_id}; ranking from citations then related."""

    def __init__(self, url: str, api_key: str | None = None, timeout: float = 60.0) -> None:
        import httpx

        self.name = url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(base_url=self.name, headers=headers, timeout=timeout)
        self._texts: dict[str, str | None] = {}

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            return self.client.request(method, path, **kwargs)
        except httpx.TransportError:
            pass  # once more on a fresh connection: a server closes a kept-alive one after a 500
        try:
            return self.client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise TargetError(f"cannot reach {self.name}{path}: {exc}") from exc

    def ask(self, item: EvalItem) -> dict[str, Any]:
        body = {"question": item.question, "history": [{"role": "user", "content": h} for h in item.history]}
        resp = self._request("POST", "/ask", json=body)
        if resp.status_code in (401, 403):
            raise TargetError(f"{self.name}/ask refused the request (HTTP {resp.status_code}): set RAG_API_KEY")
        if resp.status_code >= 500:
            raise ServiceError(f"HTTP {resp.status_code}: {resp.text[:200]}")
        if resp.status_code >= 400:
            raise QuestionError(f"HTTP {resp.status_code}: {resp.text[:200]}")
        return resp.json()

    def doc_text(self, doc_id: str) -> str | None:
        if doc_id not in self._texts:
            resp = self._request("GET", f"/sources/{doc_id}")
            if resp.status_code != 200:
                self._texts[doc_id] = None
            elif resp.headers.get("content-type", "").startswith("application/json"):
                data = resp.json()
                self._texts[doc_id] = data.get("text") if isinstance(data, dict) else None
            else:
                self._texts[doc_id] = resp.text
        return self._texts[doc_id]

    def ranked_docs(self, item: EvalItem, answer: dict[str, Any], k: int) -> list[str]:
        refs = list(answer.get("citations") or []) + list(answer.get("related") or [])
        return list(dict.fromkeys(str(r.get("doc_id")) for r in refs if isinstance(r, dict)))


@dataclass(slots=True)
class EvalRun:
    """Scores (identical across runs over the same system) and latencies (kept apart: they vary)."""

    set_name: str
    target: str
    k: int
    scores: list[ItemScore]
    latencies_ms: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return summarize(self.scores, self.k)

    def errors(self) -> list[ItemScore]:
        """Items that raised instead of answering, in id order."""
        return sorted((s for s in self.scores if s.error is not None), key=lambda s: s.id)

    def score_section(self) -> dict[str, Any]:
        """Everything that must be equal between two runs: sorted, rounded, no timings."""
        items = sorted(self.scores, key=lambda s: s.id)
        return {"set": self.set_name, "summary": self.summary(), "per_kind": breakdown(items, "kind"),
                "per_lang": breakdown(items, "lang"), "calibration": calibration_bins(items),
                "items": [s.to_dict() for s in items]}

    def latency_section(self) -> dict[str, Any]:
        values = sorted(self.latencies_ms.values())
        return {"target": self.target, "n": len(values), "p50_ms": percentile(values, 50),
                "p95_ms": percentile(values, 95), "max_ms": round(values[-1], 1) if values else None}


def percentile(sorted_values: Sequence[float], pct: float) -> float | None:
    """Linear-interpolated percentile of already sorted values."""
    if not sorted_values:
        return None
    pos = (len(sorted_values) - 1) * pct / 100
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return round(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo), 1)


def run_eval(items: Sequence[EvalItem], target: Target, set_name: str, k: int = 3,
             progress: Any = None) -> EvalRun:
    """Ask every item and score the answers. Any failure to answer one item (an exception in the assistant,
    a rejected question, HTTP 5xx) is that item's error: a miss listed in `errors`, never an abstention."""
    scores: list[ItemScore] = []
    latencies: dict[str, float] = {}
    for item in items:
        t0 = time.perf_counter()
        try:
            answer: dict[str, Any] | None = target.ask(item)
            error = None
        except TargetError:
            raise
        except QuestionError as exc:
            answer, error = None, f"rejected: {exc}"
        except Exception as exc:  # a crash is an error of its own, reported by id
            log.error("question %s failed: %s: %s", item.id, type(exc).__name__, exc, exc_info=True)
            answer, error = None, f"{type(exc).__name__}: {exc}"
        latencies[item.id] = (time.perf_counter() - t0) * 1000
        ranked = None
        if answer is not None and item.answerable and item.doc_ids:
            ranked = target.ranked_docs(item, answer, k)
        scores.append(score_item(item, answer, target.doc_text, ranked, k, error=error))
        if progress is not None:
            progress()
    return EvalRun(set_name=set_name, target=target.name, k=k, scores=scores, latencies_ms=latencies)
