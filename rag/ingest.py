"""Incremental ingest: read, dedupe, chunk and embed only what changed, then write a new generation."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.annotate import ANNOTATION_VERSION, AnnotationTable, Annotator
from rag.chunking import RULES_VERSION, Chunker
from rag.config import Settings
from rag.embedding import Embedder, get_embedder, model_id
from rag.errors import BadIndexError
from rag.index import (
    FORMAT_VERSION,
    IndexData,
    check_compatible,
    load_data,
    read_manifest,
    write_generation,
    write_lock,
)
from rag.readers import read_paths
from rag.types import Chunk, DocMeta, Document

log = logging.getLogger(__name__)
_SHINGLE_WORD = re.compile(r"\w+")


@dataclass
class IngestSummary:
    """What an ingest did, for the CLI's closing line and for tests."""

    index_dir: Path
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    duplicates: dict[str, str] = field(default_factory=dict)
    near_duplicates: list[tuple[str, str, float]] = field(default_factory=list)
    documents: int = 0
    chunks: int = 0
    embedded: int = 0
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)

    def describe(self) -> str:
        lines = [f"index {self.index_dir}: added {len(self.added)}, updated {len(self.updated)}, "
                 f"removed {len(self.removed)}, unchanged {self.unchanged}, skipped {len(self.skipped)}, "
                 f"failed {len(self.failed)}; {self.documents} documents, {self.chunks} chunks, "
                 f"{self.embedded} chunks embedded, {self.seconds:.1f} s"]
        lines += [f"  skipped: {s}" for s in self.skipped]
        lines += [f"  failed: {s}" for s in self.failed]
        lines += _capped([f"  duplicate: {a} = {b} (indexed once)" for a, b in sorted(self.duplicates.items())])
        lines += _capped([f"  near-duplicate: {a} ~ {b} ({j:.2f})" for a, b, j in self.near_duplicates])
        return "\n".join(lines)


def _capped(lines: list[str], most: int = 10) -> list[str]:
    return lines if len(lines) <= most else [*lines[:most], f"  ... and {len(lines) - most} more (see manifest.json)"]


def config_of(settings: Settings) -> dict[str, Any]:
    """The settings an index's contents depend on; a change in any of them re-chunks everything."""
    return {"model": model_id(settings.model), "encoding": settings.encoding,
            "chunk_tokens": settings.chunk_tokens, "chunk_overlap_tokens": settings.chunk_overlap_tokens,
            "index_sentences": settings.index_sentences, "rules_version": RULES_VERSION,
            "annotation": f"{settings.spacy_pipeline}-v{ANNOTATION_VERSION}" if settings.index_sentences else None}


def record_hash(doc: Document) -> str:
    """Hash of text and metadata: a metadata-only edit updates the record without re-embedding."""
    meta = json.dumps({k: getattr(doc.meta, k) for k in DocMeta.__slots__}, sort_keys=True, default=list)
    return hashlib.sha256(f"{doc.content_hash}\0{meta}".encode()).hexdigest()


def near_duplicates(docs: Sequence[Document], threshold: float) -> list[tuple[str, str, float]]:
    """Pairs of documents whose word 5-shingles overlap at least `threshold` (MinHash LSH estimate)."""
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=64)
    hashes: dict[str, MinHash] = {}
    pairs = []
    for doc in docs:
        words = _SHINGLE_WORD.findall(doc.text.lower())
        shingles = {" ".join(words[i : i + 5]).encode() for i in range(max(1, len(words) - 4))}
        mh = MinHash(num_perm=64)
        mh.update_batch(list(shingles))
        for other in lsh.query(mh):
            pairs.append((other, doc.doc_id, round(float(mh.jaccard(hashes[other])), 3)))
        lsh.insert(doc.doc_id, mh)
        hashes[doc.doc_id] = mh
    return pairs


def _progress(enabled: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    disable=not enabled, transient=True)


def _embed_new(embedder: Embedder, chunks: list[Chunk], sentence_texts: list[str], progress: bool
               ) -> tuple[np.ndarray, np.ndarray]:
    with _progress(progress) as bar:
        task = bar.add_task("embedding", total=len(chunks) + len(sentence_texts))
        step = lambda n: bar.advance(task, n)  # noqa: E731
        chunk_vecs = embedder.embed([c.text for c in chunks], on_progress=step)
        sent_vecs = embedder.embed(sentence_texts, on_progress=step)
    return chunk_vecs, sent_vecs


def ingest(paths: Sequence[Path], settings: Settings, progress: bool = False, rebuild: bool = False,
           embedder: Embedder | None = None) -> IngestSummary:
    """Bring the index at settings.index_dir in line with the documents under `paths`."""
    start = time.perf_counter()
    index_dir = settings.index_dir
    summary = IngestSummary(index_dir=index_dir)
    read = read_paths(list(paths))
    summary.skipped, summary.failed = list(read.skipped), list(read.failed)
    if not read.documents:  # never replace an index with an empty one
        raise BadIndexError(f"nothing to index: no readable documents under {', '.join(map(str, paths))}")
    config = config_of(settings)
    with write_lock(index_dir):
        prev = None if rebuild else read_manifest(index_dir)
        if prev is not None and prev["config"]["model"] != config["model"]:
            check_compatible(prev, config["model"], prev["dim"], index_dir)
        unique: list[Document] = []
        first_by_hash: dict[str, str] = {}
        for doc in sorted(read.documents, key=lambda d: d.doc_id):
            if doc.content_hash in first_by_hash:
                summary.duplicates[doc.doc_id] = first_by_hash[doc.content_hash]
            else:
                first_by_hash[doc.content_hash] = doc.doc_id
                unique.append(doc)
        prev_docs: dict[str, Any] = prev["documents"] if prev else {}
        same_config = prev is not None and prev["config"] == config
        for doc in unique:
            before = prev_docs.get(doc.doc_id)
            if before is None:
                summary.added.append(doc.doc_id)
            elif before["record_hash"] != record_hash(doc) or not same_config:
                summary.updated.append(doc.doc_id)
            else:
                summary.unchanged += 1
        keep = {d.doc_id for d in unique}
        summary.removed = sorted(set(prev_docs) - keep)
        summary.documents = len(unique)
        if prev is not None and not summary.changed and prev.get("duplicates", {}) == summary.duplicates:
            summary.chunks = prev["counts"]["chunks"]
            summary.near_duplicates = [tuple(p) for p in prev.get("near_duplicates", [])]
            summary.seconds = time.perf_counter() - start
            return summary
        data = _assemble(unique, prev_docs if same_config else {}, settings, progress, embedder, summary)
        summary.near_duplicates = near_duplicates(unique, settings.near_duplicate_threshold)
        data.manifest.update(
            duplicates=summary.duplicates, near_duplicates=summary.near_duplicates,
            sources=[str(Path(p).resolve()) for p in paths])
        write_generation(index_dir, data, settings)
    summary.chunks = len(data.chunks)
    summary.seconds = time.perf_counter() - start
    return summary


def _assemble(docs: list[Document], prev_docs: dict[str, Any], settings: Settings, progress: bool,
              embedder: Embedder | None, summary: IngestSummary) -> IndexData:
    """Chunks and vectors for every document: reused from the live index where the text is unchanged."""
    reuse = {d.doc_id for d in docs if prev_docs.get(d.doc_id, {}).get("content_hash") == d.content_hash}
    old = load_data(settings.index_dir, with_bm25=False)[0] if reuse else None
    old_rows: dict[str, list[int]] = {}
    if old is not None:
        for i, c in enumerate(old.chunks):
            old_rows.setdefault(c.doc_id, []).append(i)
    chunker = Chunker(settings)
    chunks: list[Chunk] = []
    chunk_src: list[tuple[str, int]] = []  # ("old", row) or ("new", position among new chunks)
    new_chunks: list[Chunk] = []
    for doc in docs:
        if doc.doc_id in reuse and old is not None and doc.doc_id in old_rows:
            for row in old_rows[doc.doc_id]:
                chunks.append(old.chunks[row])
                chunk_src.append(("old", row))
        else:
            for c in chunker.chunk(doc):
                chunks.append(c)
                chunk_src.append(("new", len(new_chunks)))
                new_chunks.append(c)
    by_id = {d.doc_id: d for d in docs}
    sentence_keys: dict[tuple[str, int, int], int] = {}
    sentence_rows: list[list[int]] = []
    if settings.index_sentences:
        for c in chunks:
            rows = [sentence_keys.setdefault((c.doc_id, s.start, s.end), len(sentence_keys)) for s in c.sentences]
            sentence_rows.append(rows)
    # Old sentence vectors are found again through the embedding cache, so only new text is encoded.
    sentence_texts = [by_id[d].text[s:e] for (d, s, e) in sentence_keys]
    need_model = bool(new_chunks or sentence_texts)
    embedder = embedder or (get_embedder(settings) if need_model else None)
    dim = embedder.dim if embedder else (old.chunk_vectors.shape[1] if old is not None else 0)
    if embedder is not None:
        new_vecs, sent_vecs = _embed_new(embedder, new_chunks, sentence_texts, progress)
    else:
        new_vecs, sent_vecs = np.zeros((0, dim), np.float32), np.zeros((0, dim), np.float32)
    summary.embedded = len(new_chunks)
    annotations = _annotate(sentence_texts, settings, progress) if settings.index_sentences else None
    vectors = np.zeros((len(chunks), dim), dtype=np.float32)
    for i, (kind, row) in enumerate(chunk_src):
        vectors[i] = old.chunk_vectors[row] if kind == "old" and old is not None else new_vecs[row]
    documents = {d.doc_id: d for d in docs}
    per_doc: dict[str, int] = {}
    for c in chunks:
        per_doc[c.doc_id] = per_doc.get(c.doc_id, 0) + 1
    manifest = {
        "format_version": FORMAT_VERSION, "model": model_id(settings.model), "dim": dim,
        "config": config_of(settings), "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "counts": {"documents": len(docs), "chunks": len(chunks), "sentences": len(sentence_keys)},
        "documents": {d.doc_id: {"content_hash": d.content_hash, "record_hash": record_hash(d),
                                 "chunks": per_doc.get(d.doc_id, 0), "source_file": d.meta.source_file}
                      for d in docs},
    }
    return IndexData(manifest, documents, chunks, vectors, sentence_rows,
                     sent_vecs if settings.index_sentences else None, annotations)


def _annotate(texts: list[str], settings: Settings, progress: bool) -> AnnotationTable:
    """Every indexed sentence parsed once (the annotation cache returns sentences parsed before)."""
    annotator = Annotator(settings.spacy_pipeline, settings.cache_dir / "annotations.sqlite",
                          settings.annotate_batch_size)
    with _progress(progress) as bar:
        task = bar.add_task("annotating sentences", total=len(texts))
        rows = annotator.annotate(texts, on_progress=lambda n: bar.advance(task, n))
    return AnnotationTable.pack(rows)
