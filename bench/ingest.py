"""Cold ingest of SciFact against the raw model encode rate on the same chunks; then a no-op re-ingest."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from rag.chunking import Chunker
from rag.config import Settings
from rag.embedding import Embedder
from rag.ingest import ingest
from rag.readers import read_paths

from common import BEIR, peak_rss_mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--beir", type=Path, default=BEIR / "scifact")
    args = parser.parse_args()
    corpus = args.beir / "corpus.jsonl"
    with tempfile.TemporaryDirectory() as tmp:
        # A fresh cache makes the ingest cold; sentence vectors are off as for every BEIR index.
        settings = Settings(index_dir=Path(tmp) / "index", cache_dir=Path(tmp) / "cache", index_sentences=False)
        embedder = Embedder(settings)
        t = time.perf_counter()
        summary = ingest([corpus], settings, embedder=embedder, progress=True)
        cold = time.perf_counter() - t
        print(summary.describe())
        docs = read_paths([corpus]).documents
        chunker = Chunker(settings)
        texts = [c.text for d in docs for c in chunker.chunk(d)]
        t = time.perf_counter()
        embedder.encode(texts)
        raw = time.perf_counter() - t
        t = time.perf_counter()
        again = ingest([corpus], settings, embedder=embedder)
        noop = time.perf_counter() - t
    pipeline_rate, raw_rate = summary.chunks / cold, len(texts) / raw
    print(f"cold ingest: {summary.documents} documents, {summary.chunks} chunks in {cold:.1f} s "
          f"= {summary.documents / cold:.1f} documents/s, {pipeline_rate:.1f} chunks/s")
    print(f"raw model encode: {len(texts)} chunks in {raw:.1f} s = {raw_rate:.1f} chunks/s")
    print(f"pipeline / raw: {pipeline_rate / raw_rate:.1%} (target >= 85%)")
    print(f"no-op re-ingest: {noop:.2f} s (target <= 2 s), changed={again.changed}")
    print(f"peak memory: {peak_rss_mb():.0f} MiB")


if __name__ == "__main__":
    main()
