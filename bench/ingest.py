"""Cold ingest of SciFact against the raw model encode rate on the same chunks; then a no-op re-ingest; then a
cold ingest with sentence vectors and spaCy annotation against the raw encode of its chunks and sentences."""

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
    parser.add_argument("--annotated-docs", type=int, default=500, help="documents for the annotated ingest")
    parser.add_argument("--annotated-only", action="store_true", help="only the annotated ingest against raw encode")
    args = parser.parse_args()
    corpus = args.beir / "corpus.jsonl"
    if args.annotated_only:
        annotated(read_paths([corpus]).documents[:args.annotated_docs])
        return
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
    annotated(docs[:args.annotated_docs])


def annotated(docs) -> None:
    """The composer's ingest (sentence vectors and parses) against the raw encode of the same texts, both cold:
    empty embedding and annotation caches (the exported ONNX model is shared, its export is not timed)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "docs"
        folder.mkdir()
        for d in docs:
            (folder / f"{d.doc_id}.txt").write_text(d.text, encoding="utf-8")
        settings = Settings(index_dir=Path(tmp) / "index", cache_dir=Path(tmp) / "cache", index_sentences=True)
        settings.cache_dir.mkdir()
        (settings.cache_dir / "onnx").symlink_to((Settings().cache_dir / "onnx").resolve())
        embedder = Embedder(settings)
        t = time.perf_counter()
        summary = ingest([folder], settings, embedder=embedder)
        cold = time.perf_counter() - t
        chunker = Chunker(settings)
        chunks = [c for d in read_paths([folder]).documents for c in chunker.chunk(d)]
        texts = [c.text for c in chunks] + list(dict.fromkeys(
            c.text[s.start - c.start:s.end - c.start] for c in chunks for s in c.sentences))
        embedder.clear_query_cache()
        t = time.perf_counter()
        embedder.encode(texts)
        raw = time.perf_counter() - t
    print(f"annotated ingest: {summary.documents} documents, {len(texts)} texts (chunks + sentences) in {cold:.1f} s; "
          f"raw encode {raw:.1f} s; pipeline / raw: {raw / cold:.1%} (target >= 75%)")


if __name__ == "__main__":
    main()
