"""Hybrid search latency over SciFact, then FAISS alone at 1,000,000 vectors: HNSW against exact."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import faiss
import numpy as np

from rag.assistant import Assistant
from rag.config import Settings
from rag.index import build_faiss
from rag.ingest import ingest

from common import BEIR, ROOT, peak_rss_mb, percentile


def hybrid_latency(beir: Path, index_dir: Path) -> np.ndarray:
    """p50/p99 of hybrid search (query embedding included, query cache bypassed) over the BEIR queries."""
    settings = Settings(index_dir=index_dir, index_sentences=False)
    ingest([beir / "corpus.jsonl"], settings, progress=True)
    assistant = Assistant.open(settings)
    queries = [json.loads(line)["text"] for line in (beir / "queries.jsonl").read_text().splitlines() if line]
    assistant.search("warm up", k=10)
    times = []
    for q in queries:
        t = time.perf_counter()
        assistant.retriever.search(q, k=10, query_vector=assistant.embedder.encode([q])[0])
        times.append((time.perf_counter() - t) * 1000)
    print(f"hybrid search over {beir.name} ({len(assistant.store.chunks)} chunks, {len(queries)} queries): "
          f"p50 {percentile(times, 50):.2f} ms, p99 {percentile(times, 99):.2f} ms")
    return assistant.store._data.chunk_vectors


def faiss_at_scale(base: np.ndarray, n: int, n_queries: int, seed: int = 0) -> None:
    """Vectors shaped like real ones: real chunk embeddings plus small noise, renormalized."""
    rng = np.random.default_rng(seed)
    dim = base.shape[1]
    t = time.perf_counter()
    vectors = np.empty((n, dim), dtype=np.float32)
    for i in range(0, n, 100_000):
        part = base[rng.integers(0, len(base), min(100_000, n - i))]
        part = part + rng.normal(0, 0.03, part.shape).astype(np.float32)
        vectors[i : i + len(part)] = part / np.linalg.norm(part, axis=1, keepdims=True)
    queries = base[rng.integers(0, len(base), n_queries)] + rng.normal(0, 0.03, (n_queries, dim)).astype(np.float32)
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    print(f"made {n:,} x {dim} vectors in {time.perf_counter() - t:.1f} s")
    exact = faiss.IndexFlatIP(dim)
    exact.add(vectors)
    t = time.perf_counter()
    _, truth = exact.search(queries, 10)
    print(f"exact search: {(time.perf_counter() - t) / n_queries * 1000:.2f} ms/query (batched)")
    settings = Settings(approx_threshold=0)
    t = time.perf_counter()
    hnsw = build_faiss(vectors, settings)
    print(f"HNSW (M={settings.hnsw_m}, efConstruction={settings.hnsw_ef_construction}) built in "
          f"{time.perf_counter() - t:.0f} s; peak memory {peak_rss_mb():.0f} MiB")
    for ef in (64, 128, 256):
        params = faiss.SearchParametersHNSW(efSearch=ef)
        times, found = [], np.zeros((n_queries, 10), dtype=np.int64)
        for i in range(n_queries):
            t = time.perf_counter()
            _, found[i] = hnsw.search(queries[i : i + 1], 10, params=params)
            times.append((time.perf_counter() - t) * 1000)
        recall = np.mean([len(set(found[i]) & set(truth[i])) / 10 for i in range(n_queries)])
        print(f"HNSW efSearch={ef}: recall@10 {recall:.3f} (target >= 0.95), p50 {percentile(times, 50):.2f} ms, "
              f"p99 {percentile(times, 99):.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--beir", type=Path, default=BEIR / "scifact")
    parser.add_argument("--index", type=Path, default=ROOT / "index" / "beir-scifact")
    parser.add_argument("--vectors", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1000)
    args = parser.parse_args()
    base = hybrid_latency(args.beir, args.index)
    faiss_at_scale(base, args.vectors, args.queries)


if __name__ == "__main__":
    main()
