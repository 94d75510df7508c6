"""QA benchmarks over corpora nobody here wrote (SQuAD v1.1 half A, RealTime QA news quizzes of 2024).

For fitting and measuring: `load(bench, part) -> (assistant, items)` builds (or reuses) the benchmark's own
corpus and index, and `run(assistant, items) -> records` asks each item and scores it.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from eval.benchmarks.corpus import SourceDoc, Split, open_assistant, select
from eval.benchmarks.metrics import QAItem, QARecord, score_answer, summarize
from rag.config import Settings
from rag.errors import ReadError

log = logging.getLogger(__name__)

BENCHES = ("squad", "news-quiz")
__all__ = ["BENCHES", "Loaded", "QAItem", "QARecord", "load", "load_bench", "run", "source", "summarize"]


def source(bench: str, settings: Settings) -> tuple[list[SourceDoc], list[QAItem]]:
    """The benchmark's corpus documents and all its items, read from `settings.bench_dir`."""
    from eval.benchmarks.news import quiz_bench
    from eval.benchmarks.squad import load_squad

    if bench == "squad":
        return load_squad(settings.bench_dir / "squad" / "dev-half-a.json")
    if bench == "news-quiz":
        news = settings.bench_dir / "news-2024"
        return quiz_bench(news / "quizzes.jsonl", news / "articles.jsonl.gz", settings.bench_news_articles,
                          settings.bench_seed)
    raise ReadError(f"unknown benchmark {bench!r} (known: {', '.join(BENCHES)})")


def index_name(bench: str, settings: Settings) -> str:
    """The benchmark's corpus folder and index: a quiz corpus of another size keeps its own, so a wider run
    never replaces (and re-ingests) the default one."""
    default = type(settings).model_fields["bench_news_articles"].default
    if bench == "news-quiz" and settings.bench_news_articles != default:
        return f"{bench}-{settings.bench_news_articles}"
    return bench


@dataclass(slots=True)
class Loaded:
    """A benchmark ready to run: its assistant, the chosen items, and the split that chose them."""

    bench: str
    part: str
    assistant: Any
    items: list[QAItem]
    split: Split
    documents: int


def load_bench(bench: str, part: str = "measure", limit: int | None = None, settings: Settings | None = None,
               embedder: Any = None, progress: bool = False) -> Loaded:
    """Build or refresh the benchmark's corpus and index (nothing is re-embedded when unchanged) and pick the
    items of `part` (seeded split by article, then a seeded sample of `limit`)."""
    settings = settings or Settings()
    docs, items = source(bench, settings)
    chosen, split = select(items, lambda i: i.group, part, settings.bench_seed, limit)
    assistant = open_assistant(settings, index_name(bench, settings), docs, embedder=embedder, progress=progress)
    return Loaded(bench, part, assistant, chosen, split, len(docs))


def load(bench: str, part: str = "measure", limit: int | None = None, settings: Settings | None = None,
         embedder: Any = None) -> tuple[Any, list[QAItem]]:
    """(assistant, items) of one part of a benchmark."""
    loaded = load_bench(bench, part, limit, settings, embedder)
    return loaded.assistant, loaded.items


def _ask_options(assistant: Any, explain: bool) -> dict[str, Any]:
    """`explain=` only for an Assistant whose ask() takes it (the composer that records a trace)."""
    try:
        params = inspect.signature(assistant.ask).parameters
    except (TypeError, ValueError):
        return {}
    return {"explain": explain} if "explain" in params else {}


def run(assistant: Any, items: Sequence[QAItem], explain: bool = True,
        progress: Callable[[], None] | None = None) -> list[QARecord]:
    """Ask every item (no paragraph given) and score it; an exception is recorded as the item's error, never
    as an abstention."""
    options = _ask_options(assistant, explain)
    records = []
    for item in items:
        t0 = time.perf_counter()
        try:
            answer: dict[str, Any] | None = assistant.ask(item.question, **options).to_dict()
            error = None
        except Exception as exc:  # counted and listed as an error by the caller
            log.error("question %s failed: %s: %s", item.id, type(exc).__name__, exc, exc_info=True)
            answer, error = None, f"{type(exc).__name__}: {exc}"
        wall_ms = (time.perf_counter() - t0) * 1000
        records.append(QARecord(item=item, answer=answer, score=score_answer(item, answer, wall_ms), error=error))
        if progress is not None:
            progress()
    return records
