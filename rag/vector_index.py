"""Dense search over chunk vectors: exact below `approx_threshold` chunks, IVF-PQ (or HNSW) above it.

An exact or HNSW index is one file (`faiss.index`). IVF-PQ is trained once on a sample and written as
shard files (`faiss_shards/shard-NNN.index`) that are read with IO_FLAG_MMAP, so their inverted lists stay
on disk; its candidates are re-ranked by exact inner product with the memory-mapped chunk vectors, which
is what keeps recall close to exact search.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from rag.config import Settings

KINDS = ("flat", "hnsw", "ivfpq")
SHARD_DIR = "faiss_shards"
_MMAP = faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY


def approximate_kind(n_vectors: int, settings: Settings) -> str:
    """The index kind a collection of n vectors gets: exact up to the threshold, then the configured one."""
    return settings.approx_index if n_vectors > settings.approx_threshold else "flat"


def auto_nlist(n_vectors: int) -> int:
    """Inverted lists for n vectors: the power of two nearest 2*sqrt(n) (2,048 at a million), at least 1."""
    return max(1, 2 ** round(math.log2(max(1.0, 2 * math.sqrt(n_vectors)))))


def build_faiss(vectors: np.ndarray, settings: Settings) -> faiss.Index:
    """One in-memory FAISS index: exact inner product, or HNSW once past settings.approx_threshold."""
    dim = vectors.shape[1]
    faiss.omp_set_num_threads(settings.threads)
    if len(vectors) > settings.approx_threshold:
        index = faiss.IndexHNSWFlat(dim, settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = settings.hnsw_ef_construction
        index.hnsw.efSearch = settings.hnsw_ef_search
    else:
        index = faiss.IndexFlatIP(dim)
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


@dataclass
class SearchParams:
    """Query-time knobs, from settings (the index files do not fix them)."""

    nprobe: int = 16
    refine: int = 200
    ef_search: int = 128
    exact_filter_rows: int = 50_000

    @classmethod
    def of(cls, settings: Settings) -> SearchParams:
        return cls(settings.ivf_nprobe, settings.ivf_refine, settings.hnsw_ef_search, settings.exact_filter_rows)


@dataclass
class VectorIndex:
    """The dense index of one generation: one FAISS index or several IVF-PQ shards over global row ids."""

    kind: str
    shards: list[faiss.Index]
    vectors: np.ndarray | None = None  # chunk vectors (memory-mapped when approximate), for re-ranking
    params: SearchParams = field(default_factory=SearchParams)

    @property
    def d(self) -> int:
        return int(self.shards[0].d)

    @property
    def ntotal(self) -> int:
        return sum(int(s.ntotal) for s in self.shards)

    def __len__(self) -> int:
        return self.ntotal

    def describe(self) -> dict[str, Any]:
        """What the manifest records about the index (kind, shape, shard count)."""
        info: dict[str, Any] = {"kind": self.kind, "shards": len(self.shards)}
        if self.kind == "ivfpq":
            ivf = faiss.extract_index_ivf(self.shards[0])
            info.update(nlist=int(ivf.nlist), m=int(faiss.downcast_index(ivf).pq.M))
        return info

    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Rows and inner-product scores of the k nearest vectors (among allowed rows only), best first."""
        k = min(k, self.ntotal)
        if k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        if self.kind == "flat":
            return self._search_one(self.shards[0], q, k, allowed)
        if allowed is not None and self.vectors is not None:
            rows = np.flatnonzero(allowed)
            if len(rows) <= self.params.exact_filter_rows:  # a narrow filter: exact over its rows is cheaper
                return self._rerank(rows, q[0], k)
        if self.kind == "hnsw":
            return self._search_one(self.shards[0], q, k, allowed)
        depth = max(k, self.params.refine)
        found = [self._search_one(s, q, depth, allowed) for s in self.shards]
        rows = np.concatenate([r for r, _ in found])
        if self.vectors is None:
            scores = np.concatenate([s for _, s in found])
            order = np.lexsort((rows, -scores))[:k]
            return rows[order], scores[order]
        return self._rerank(rows, q[0], k)

    def _search_one(self, index: faiss.Index, q: np.ndarray, k: int, allowed: np.ndarray | None
                    ) -> tuple[np.ndarray, np.ndarray]:
        sel = None if allowed is None else faiss.IDSelectorBatch(np.flatnonzero(allowed).astype(np.int64))
        if self.kind == "hnsw":
            params: Any = faiss.SearchParametersHNSW(sel=sel, efSearch=max(self.params.ef_search, k))
        elif self.kind == "ivfpq":
            params = faiss.SearchParametersIVF(sel=sel, nprobe=self.params.nprobe)
        else:
            params = None if sel is None else faiss.SearchParameters(sel=sel)
        scores, rows = index.search(q, min(k, int(index.ntotal)), params=params)
        keep = rows[0] >= 0
        return rows[0][keep], scores[0][keep]

    def _rerank(self, rows: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact scores of the given rows from the stored vectors; the k best, ties broken by row."""
        assert self.vectors is not None
        rows = np.unique(rows)  # sorted: reads the memory map front to back
        scores = np.asarray(self.vectors[rows], dtype=np.float32) @ q
        order = np.lexsort((rows, -scores))[:k]
        return rows[order], scores[order]


def build(vectors: np.ndarray, settings: Settings) -> VectorIndex:
    """The index a generation of these chunk vectors gets (see `approximate_kind`)."""
    kind = approximate_kind(len(vectors), settings)
    params = SearchParams.of(settings)
    if kind == "flat":
        return VectorIndex("flat", [build_faiss(vectors, settings.with_overrides(approx_threshold=len(vectors)))],
                           params=params)
    if kind == "hnsw":
        return VectorIndex("hnsw", [build_faiss(vectors, settings.with_overrides(approx_threshold=0))],
                           vectors=vectors, params=params)
    return VectorIndex("ivfpq", build_ivfpq(vectors, settings), vectors=vectors, params=params)


def build_ivfpq(vectors: np.ndarray, settings: Settings) -> list[faiss.Index]:
    """IVF-PQ trained on a seeded sample, then filled shard by shard (row ids are global)."""
    n, dim = vectors.shape
    faiss.omp_set_num_threads(settings.threads)
    if dim % settings.ivf_pq_m:
        raise ValueError(f"RAG_IVF_PQ_M={settings.ivf_pq_m} must divide the vector dimension {dim}")
    nlist = min(settings.ivf_nlist or auto_nlist(n), n)
    size = min(n, max(settings.ivf_train_size, 40 * nlist))
    nbits = max(1, min(8, int(math.log2(size))))  # a PQ codebook needs more training points than codes
    trained = faiss.IndexIVFPQ(faiss.IndexFlatIP(dim), dim, nlist, settings.ivf_pq_m, nbits,
                               faiss.METRIC_INNER_PRODUCT)
    sample = np.sort(np.random.default_rng(0).choice(n, size, replace=False))
    trained.train(np.ascontiguousarray(vectors[sample], dtype=np.float32))
    shards = []
    step = max(1, settings.vector_shard_rows)
    for start in range(0, n, step):
        shard = faiss.clone_index(trained)
        for lo in range(start, min(n, start + step), 100_000):  # bounded copies of a memory map
            hi = min(n, start + step, lo + 100_000)
            shard.add_with_ids(np.ascontiguousarray(vectors[lo:hi], dtype=np.float32), np.arange(lo, hi))
        shards.append(shard)
    return shards


def save_shards(folder: Path, index: VectorIndex) -> None:
    """Write each IVF-PQ shard as its own file (each one is checksummed in the manifest)."""
    folder.mkdir()
    for i, shard in enumerate(index.shards):
        faiss.write_index(shard, str(folder / f"shard-{i:03d}.index"))


def load_shards(folder: Path, vectors: np.ndarray | None, params: SearchParams) -> VectorIndex:
    """Read the shards memory-mapped (inverted lists stay on disk); they must share one dimension."""
    paths = sorted(folder.glob("shard-*.index"))
    if not paths:
        raise ValueError(f"{folder.name} holds no shard files")
    shards = [faiss.read_index(str(p), _MMAP) for p in paths]
    if len({s.d for s in shards}) != 1:
        raise ValueError(f"{folder.name}: shards of different dimensions")
    return VectorIndex("ivfpq", shards, vectors=vectors, params=params)


def load_single(path: Path, vectors: np.ndarray | None, params: SearchParams) -> VectorIndex:
    """Read `faiss.index`: exact or HNSW (by its type)."""
    index = faiss.read_index(str(path))
    kind = "hnsw" if isinstance(index, faiss.IndexHNSW) else "flat"
    return VectorIndex(kind, [index], vectors=vectors if kind == "hnsw" else None, params=params)
