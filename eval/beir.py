"""BEIR retrieval harness: load a BEIR folder, index it, retrieve per query, score nDCG@10 / Recall@100 / MRR@10.

Metrics follow the standard (trec_eval / pytrec_eval) definitions: graded gain equal to the judged
relevance, log2 discount, ideal ranking from the judgments; every query in the qrels counts, and one
with nothing retrieved scores 0.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.errors import ReadError
from rag.readers import read_beir

Qrels = dict[str, dict[str, int]]
Run = dict[str, list[tuple[str, float]]]
MODES = ("bm25", "dense", "hybrid")


def load_queries(path: Path) -> dict[str, str]:
    """Query id -> text; a bad line raises ReadError naming file and line."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise ReadError(f"missing BEIR file: {path}") from exc
    except UnicodeDecodeError as exc:
        raise ReadError(f"{path}: not UTF-8 text ({exc})") from exc
    queries = {}
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ReadError(f"{path}:{lineno}: malformed JSON line ({exc.msg} at column {exc.colno})") from exc
        if not isinstance(obj, dict):
            raise ReadError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
        for key in ("_id", "text"):
            value = obj.get(key)
            if isinstance(value, bool) or not isinstance(value, str | int) or str(value).strip() == "":
                raise ReadError(f"{path}:{lineno}: missing or empty '{key}'")
        queries[str(obj["_id"])] = str(obj["text"])
    return queries


def load_qrels(path: Path) -> Qrels:
    """`query-id corpus-id score` rows after a header line (tab or space separated)."""
    qrels: Qrels = {}
    try:
        with open(path, encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f, delimiter="\t"))
    except FileNotFoundError as exc:
        raise ReadError(f"missing BEIR judgments: {path}") from exc
    for lineno, row in enumerate(rows, start=1):
        if len(row) == 1:
            row = row[0].split()
        if not row or lineno == 1 and row[0].strip().lower() in ("query-id", "query_id", "qid"):
            continue
        try:
            qid, did, score = (c.strip() for c in row)
            qrels.setdefault(qid, {})[did] = int(float(score))
        except ValueError as exc:
            raise ReadError(f"{path}:{lineno}: expected 'query-id corpus-id score', got {row!r}") from exc
    if not qrels:
        raise ReadError(f"{path}: no judgments")
    return qrels


def ndcg_at_k(ranked: Sequence[str], judged: Mapping[str, int], k: int = 10) -> float:
    dcg = sum(max(judged.get(d, 0), 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted((r for r in judged.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: Sequence[str], judged: Mapping[str, int], k: int = 100) -> float:
    relevant = {d for d, r in judged.items() if r > 0}
    return len(relevant.intersection(ranked[:k])) / len(relevant) if relevant else 0.0


def mrr_at_k(ranked: Sequence[str], judged: Mapping[str, int], k: int = 10) -> float:
    return next((1.0 / (i + 1) for i, d in enumerate(ranked[:k]) if judged.get(d, 0) > 0), 0.0)


def evaluate(run: Run, qrels: Qrels) -> dict[str, float]:
    """Mean nDCG@10, Recall@100 and MRR@10 over every query in the qrels (missing from the run: 0)."""
    totals = {"ndcg@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0}
    for qid, judged in qrels.items():
        ranked = [d for d, _ in run.get(qid, [])]
        totals["ndcg@10"] += ndcg_at_k(ranked, judged, 10)
        totals["recall@100"] += recall_at_k(ranked, judged, 100)
        totals["mrr@10"] += mrr_at_k(ranked, judged, 10)
    return {m: round(v / len(qrels), 4) for m, v in totals.items()}


def write_trec_run(run: Run, path: Path, tag: str) -> None:
    """TREC run file: `qid Q0 docid rank score tag`, queries in sorted order, ranks from 1."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for qid in sorted(run):
            for rank, (did, score) in enumerate(run[qid], start=1):
                f.write(f"{qid} Q0 {did} {rank} {score:.6f} {tag}\n")


def docs_from_hits(hits: Sequence[Any], k: int, copies: Mapping[str, Sequence[str]] | None = None
                   ) -> list[tuple[str, float]]:
    """Chunk hits -> documents: each document at its best chunk's score, in retrieval order. `copies` maps a
    kept document to the exact duplicates ingest folded into it; they follow it with the same score, as
    they would if indexed separately (identical text scores identically)."""
    best: dict[str, float] = {}
    for h in hits:
        did = h.chunk.doc_id
        if did in best:
            continue
        for d in (did, *(copies or {}).get(did, ())):
            best.setdefault(d, float(h.score))
        if len(best) >= k:
            break
    return list(best.items())[:k]


@dataclass(frozen=True, slots=True)
class BeirDataset:
    name: str
    root: Path
    queries: dict[str, str]
    qrels: Qrels
    doc_ids: list[str]


def load_dataset(root: Path, split: str = "test") -> BeirDataset:
    """Check a BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv); only judged queries are kept."""
    root = Path(root)
    if not root.is_dir():
        raise ReadError(f"BEIR folder not found: {root}")
    doc_ids = [d.doc_id for d in read_beir(root / "corpus.jsonl")]  # checks every line before indexing
    queries = load_queries(root / "queries.jsonl")
    qrels = load_qrels(root / "qrels" / f"{split}.tsv")
    missing = sorted(set(qrels) - set(queries))
    if missing:
        raise ReadError(f"{root}: {len(missing)} judged queries are not in queries.jsonl (e.g. {missing[0]!r})")
    return BeirDataset(root.name, root, {q: queries[q] for q in sorted(qrels)}, qrels, doc_ids)


def default_index_dir(root: Path) -> Path:
    return Path("index") / f"beir-{Path(root).resolve().name}"


def open_index(data: BeirDataset, settings: Settings, index_dir: Path, progress: bool = False) -> Any:
    """Build (or incrementally refresh) the dataset's index and open an Assistant over it."""
    from rag.assistant import Assistant
    from rag.ingest import ingest

    beir_settings = settings.with_overrides(index_dir=Path(index_dir), index_sentences=False)
    ingest([data.root / "corpus.jsonl"], beir_settings, progress=progress)
    return Assistant.open(beir_settings)


def retrieve(assistant: Any, data: BeirDataset, mode: str, k: int = 100,
             progress: Callable[[], None] | None = None) -> Run:
    """Top-k documents per judged query, from `Assistant.search` chunk hits aggregated per document."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    copies = assistant.store.copies
    run: Run = {}  # the reader keeps each corpus `_id` as the document id, so runs and qrels share ids
    for qid, text in data.queries.items():
        hits = assistant.search(text, k=3 * k, mode=mode)
        run[qid] = docs_from_hits(hits, k, copies)
        if progress is not None:
            progress()
    return run


@dataclass(frozen=True, slots=True)
class BeirResult:
    dataset: str
    mode: str
    queries: int
    metrics: dict[str, float]
    seconds: float


def run_beir(root: Path, settings: Settings, mode: str = "hybrid", index_dir: Path | None = None, k: int = 100,
             run_out: Path | None = None, progress: bool = False, assistant: Any = None) -> BeirResult:
    """The whole harness: load, index, retrieve, score, and optionally write the TREC run file."""
    data = load_dataset(root)
    if assistant is None:
        assistant = open_index(data, settings, Path(index_dir or default_index_dir(root)), progress=progress)
    t0 = time.perf_counter()
    run = retrieve(assistant, data, mode, k)
    seconds = time.perf_counter() - t0
    if run_out is not None:
        write_trec_run(run, Path(run_out), tag=f"rag-{mode}")
    return BeirResult(data.name, mode, len(data.qrels), evaluate(run, data.qrels), round(seconds, 1))
