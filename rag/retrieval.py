"""Hybrid retrieval: BM25 and dense FAISS candidates fused by reciprocal rank or weighted scores."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rag.config import Settings
from rag.embedding import Embedder
from rag.index import IndexStore
from rag.types import Filters, Hit

MODES = ("hybrid", "bm25", "dense")


@dataclass(frozen=True, slots=True)
class Ranked:
    """One retriever's candidates: chunk rows best first, with their scores."""

    rows: np.ndarray
    scores: np.ndarray


def _minmax(scores: np.ndarray) -> np.ndarray:
    if len(scores) == 0:
        return scores
    lo, hi = float(scores.min()), float(scores.max())
    return np.ones_like(scores) if hi - lo < 1e-9 else (scores - lo) / (hi - lo)


class Retriever:
    """Searches an IndexStore with BM25, dense vectors, or both fused."""

    def __init__(self, store: IndexStore, embedder: Embedder, settings: Settings) -> None:
        self.store = store
        self.embedder = embedder
        self.settings = settings
        self._dates = store.documents.published()  # by document row; chunks reach it through their doc column

    def allowed(self, filters: Filters | None) -> np.ndarray | None:
        """Boolean mask of chunk rows passing the filters (None: no filter)."""
        if filters is None or (filters.doc_ids is None and not filters.date_from and not filters.date_to):
            return None
        docs = np.ones(len(self.store.documents), dtype=bool)  # which documents pass, then their chunks
        if filters.doc_ids is not None:
            rows = self.store.documents.rows
            docs[:] = False
            docs[[rows[d] for d in filters.doc_ids if d in rows]] = True
        if filters.date_from:
            docs &= (self._dates != "") & (self._dates >= filters.date_from)
        if filters.date_to:
            docs &= (self._dates != "") & (self._dates <= filters.date_to)
        return docs[self.store.chunks.doc]

    def dense(self, query_vector: np.ndarray, k: int, allowed: np.ndarray | None) -> Ranked:
        if allowed is not None and not allowed.any():
            return Ranked(np.zeros(0, np.int64), np.zeros(0, np.float32))
        rows, scores = self.store.dense(query_vector, k, allowed)
        return Ranked(rows, scores)

    def search(self, query: str, k: int, filters: Filters | None = None, mode: str = "hybrid",
               query_vector: np.ndarray | None = None) -> list[Hit]:
        """The k best chunks for the query, each with its fused score and per-retriever rank and score."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
        allowed = self.allowed(filters)
        depth = max(k, self.settings.candidates)
        lexical = Ranked(*self.store.bm25_top(query, depth, allowed)) if mode != "dense" else None
        dense = None
        if mode != "bm25":
            vec = self.embedder.embed_query(query) if query_vector is None else query_vector
            dense = self.dense(vec, depth, allowed)
        fused = self._fuse(lexical, dense)
        ranks = {name: {int(r): (i + 1, float(s)) for i, (r, s) in enumerate(zip(ranked.rows, ranked.scores))}
                 for name, ranked in (("bm25", lexical), ("dense", dense)) if ranked is not None}
        hits = []
        for rank, (row, score) in enumerate(fused[:k], start=1):
            b = ranks.get("bm25", {}).get(row)
            d = ranks.get("dense", {}).get(row)
            hits.append(Hit(self.store.chunks[row], score, rank,
                            dense_rank=d[0] if d else None, dense_score=d[1] if d else None,
                            bm25_rank=b[0] if b else None, bm25_score=b[1] if b else None))
        return hits

    def _fuse(self, lexical: Ranked | None, dense: Ranked | None) -> list[tuple[int, float]]:
        """Combine candidate lists: RRF (rank-based) or min-max normalized weighted scores."""
        lists = [(r, w) for r, w in ((lexical, 1 - self.settings.dense_weight), (dense, self.settings.dense_weight))
                 if r is not None]
        if len(lists) == 1:
            only = lists[0][0]
            return [(int(r), float(s)) for r, s in zip(only.rows, only.scores)]
        fused: dict[int, float] = {}
        for ranked, weight in lists:
            if self.settings.fusion == "weighted":
                contrib = weight * _minmax(ranked.scores)
            else:
                contrib = 2 * weight / (self.settings.rrf_k + np.arange(1, len(ranked.rows) + 1))
            for row, c in zip(ranked.rows, contrib):
                fused[int(row)] = fused.get(int(row), 0.0) + float(c)
        return sorted(fused.items(), key=lambda item: (-item[1], item[0]))
