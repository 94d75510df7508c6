"""The persisted index: documents, chunks, vectors, FAISS and BM25, written as atomic generations.

Layout: `<index_dir>/CURRENT` names the live generation folder `gen-*`; a new generation is written
beside it, fsynced, and switched to by renaming CURRENT, so a crash mid-write leaves the old one live.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from rag.annotate import AnnotationTable, Parsed
from rag.config import Settings
from rag.errors import BadIndexError
from rag.lexical import Lexical
from rag.types import Chunk, DocMeta, Document, Span

FORMAT_VERSION = 1
CURRENT = "CURRENT"


def _rebuild_hint(index_dir: Path) -> str:
    return f"rebuild it with `rag ingest --rebuild --index {index_dir}`"


def _fsync_write(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def write_lock(index_dir: Path) -> Iterator[None]:
    """One writer per index folder at a time; a second ingest waits for the first."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def current_generation(index_dir: Path) -> Path | None:
    """The live generation folder, or None when the folder holds no index yet."""
    pointer = index_dir / CURRENT
    if not pointer.exists():
        return None
    gen = index_dir / pointer.read_text().strip()
    if not gen.is_dir():
        raise BadIndexError(f"index at {index_dir} points at missing {gen.name}; {_rebuild_hint(index_dir)}")
    return gen


def read_manifest(index_dir: Path) -> dict[str, Any] | None:
    """The live manifest, or None when there is no index; a corrupt one raises BadIndexError."""
    gen = current_generation(index_dir)
    if gen is None:
        return None
    try:
        manifest = json.loads((gen / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise BadIndexError(f"index at {index_dir} is corrupt (manifest.json: {exc}); "
                            f"{_rebuild_hint(index_dir)}") from exc
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BadIndexError(f"index at {index_dir} has format {manifest.get('format_version')}, this version "
                            f"reads {FORMAT_VERSION}; {_rebuild_hint(index_dir)}")
    return manifest


def check_compatible(manifest: dict[str, Any], model: str, dim: int, index_dir: Path) -> None:
    """Refuse an index built with another embedding model or dimension, saying how to rebuild."""
    if manifest["model"] != model or manifest["dim"] != dim:
        raise BadIndexError(
            f"index at {index_dir} was built with model {manifest['model']} (dim {manifest['dim']}), "
            f"but this run uses {model} (dim {dim}); {_rebuild_hint(index_dir)} "
            f"or run with --model {manifest['model']}")


def build_faiss(vectors: np.ndarray, settings: Settings) -> faiss.Index:
    """Exact inner product, or HNSW once the collection passes settings.approx_threshold vectors."""
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
class IndexData:
    """Everything a generation holds, in memory: what ingest writes and IndexStore reads."""

    manifest: dict[str, Any]
    documents: dict[str, Document]
    chunks: list[Chunk]
    chunk_vectors: np.ndarray
    sentence_rows: list[list[int]] = field(default_factory=list)  # per chunk, rows of sentence_vectors
    sentence_vectors: np.ndarray | None = None
    annotations: AnnotationTable | None = None  # per sentence row, parsed at ingest


def _doc_json(doc: Document) -> str:
    meta = {k: getattr(doc.meta, k) for k in DocMeta.__slots__}
    meta["languages"] = list(doc.meta.languages)
    return json.dumps({"doc_id": doc.doc_id, "text": doc.text, "meta": meta}, ensure_ascii=False)


def _chunk_json(chunk: Chunk, rows: list[int]) -> str:
    return json.dumps({"chunk_id": chunk.chunk_id, "doc_id": chunk.doc_id, "start": chunk.start,
                       "end": chunk.end, "sentences": [[s.start, s.end] for s in chunk.sentences],
                       "n_tokens": chunk.n_tokens, "sentence_rows": rows})


def write_generation(index_dir: Path, data: IndexData, settings: Settings) -> Path:
    """Write a complete generation beside the live one, then switch CURRENT to it atomically."""
    index_dir.mkdir(parents=True, exist_ok=True)
    name = f"gen-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    tmp = index_dir / f"{name}.tmp"
    tmp.mkdir()
    docs = "\n".join(_doc_json(d) for d in data.documents.values())
    _fsync_write(tmp / "documents.jsonl", docs.encode())
    rows = data.sentence_rows or [[] for _ in data.chunks]
    chunks = "\n".join(_chunk_json(c, r) for c, r in zip(data.chunks, rows, strict=True))
    _fsync_write(tmp / "chunks.jsonl", chunks.encode())
    for fname, arr in (("chunk_vectors.npy", data.chunk_vectors), ("sentence_vectors.npy", data.sentence_vectors)):
        if arr is not None:
            with open(tmp / fname, "wb") as fh:
                np.save(fh, np.ascontiguousarray(arr, dtype=np.float32))
                fh.flush()
                os.fsync(fh.fileno())
    if data.annotations is not None:
        data.annotations.save(tmp / "annotations.npz")
    index = build_faiss(data.chunk_vectors, settings)
    faiss.write_index(index, str(tmp / "faiss.index"))
    data.manifest["index_type"] = "hnsw" if isinstance(index, faiss.IndexHNSWFlat) else "flat"
    Lexical.build([c.text for c in data.chunks]).save(tmp / "bm25")
    for path in (tmp / "faiss.index", *tmp.glob("annotations.npz"), *(tmp / "bm25").iterdir()):
        with open(path, "rb") as fh:
            os.fsync(fh.fileno())
    _fsync_write(tmp / "manifest.json", json.dumps(data.manifest, indent=1, ensure_ascii=False).encode())
    _fsync_dir(tmp)
    gen = index_dir / name
    tmp.rename(gen)
    _fsync_write(index_dir / f"{CURRENT}.tmp", name.encode())
    os.replace(index_dir / f"{CURRENT}.tmp", index_dir / CURRENT)
    _fsync_dir(index_dir)
    for old in index_dir.glob("gen-*"):
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    return gen


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def load_data(index_dir: Path, with_bm25: bool = True) -> tuple[IndexData, faiss.Index | None, Lexical | None]:
    """Read the live generation; any missing, truncated or inconsistent file raises BadIndexError."""
    manifest = read_manifest(index_dir)
    if manifest is None:
        raise BadIndexError(f"no index at {index_dir}; build one with `rag ingest --index {index_dir}`")
    gen = current_generation(index_dir)
    assert gen is not None
    try:
        documents = {}
        for d in _read_jsonl(gen / "documents.jsonl"):
            meta = d["meta"]
            meta["languages"] = tuple(meta.get("languages") or ())
            documents[d["doc_id"]] = Document(d["doc_id"], d["text"], DocMeta(**meta))
        chunks, sentence_rows = [], []
        for c in _read_jsonl(gen / "chunks.jsonl"):
            text = documents[c["doc_id"]].text[c["start"] : c["end"]]
            sents = tuple(Span(s, e) for s, e in c["sentences"])
            chunks.append(Chunk(c["chunk_id"], c["doc_id"], c["start"], c["end"], text, sents, c["n_tokens"]))
            sentence_rows.append(c["sentence_rows"])
        vectors = np.load(gen / "chunk_vectors.npy")
        sent_path = gen / "sentence_vectors.npy"
        sentence_vectors = np.load(sent_path) if sent_path.exists() else None
        ann_path = gen / "annotations.npz"
        annotations = AnnotationTable.load(ann_path) if ann_path.exists() else None
        index = faiss.read_index(str(gen / "faiss.index"))
        lexical = Lexical.load(gen / "bm25") if with_bm25 else None
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, EOFError) as exc:
        raise BadIndexError(f"index at {index_dir} is corrupt or truncated ({type(exc).__name__}: {exc}); "
                            f"{_rebuild_hint(index_dir)}") from exc
    if not (len(chunks) == len(vectors) == index.ntotal) or (len(vectors) and vectors.shape[1] != manifest["dim"]):
        raise BadIndexError(f"index at {index_dir} is inconsistent ({len(chunks)} chunks, {len(vectors)} vectors, "
                            f"{index.ntotal} in FAISS); {_rebuild_hint(index_dir)}")
    if annotations is not None and sentence_vectors is not None and len(annotations) != len(sentence_vectors):
        raise BadIndexError(f"index at {index_dir} is inconsistent ({len(annotations)} annotated sentences, "
                            f"{len(sentence_vectors)} sentence vectors); {_rebuild_hint(index_dir)}")
    data = IndexData(manifest, documents, chunks, vectors, sentence_rows, sentence_vectors, annotations)
    return data, index, lexical


class IndexStore:
    """A loaded, read-only index: lookups of documents, chunks and vectors, and both searches."""

    def __init__(self, index_dir: Path, settings: Settings) -> None:
        data, faiss_index, lexical = load_data(index_dir)
        self.index_dir = index_dir
        self.manifest = data.manifest
        self.documents = data.documents
        self.chunks = data.chunks
        self._data = data
        self._parses: dict[int, Parsed] = {}  # decoded on first use; a dict write is atomic under the GIL
        self._faiss = faiss_index
        self._lexical = lexical
        self._ef_search = settings.hnsw_ef_search
        faiss.omp_set_num_threads(settings.faiss_query_threads)
        self.chunk_doc_ids = np.array([c.doc_id for c in self.chunks], dtype=object)
        self.chunk_rows = {c.chunk_id: i for i, c in enumerate(self.chunks)}
        self.copies: dict[str, list[str]] = {}  # indexed doc id -> ids of identical documents not indexed
        for dup, kept in sorted(self.manifest.get("duplicates", {}).items()):
            self.copies.setdefault(kept, []).append(dup)

    @classmethod
    def load(cls, index_dir: Path, settings: Settings) -> IndexStore:
        return cls(index_dir, settings)

    def sentence_vectors(self, chunk: Chunk) -> np.ndarray | None:
        """Vectors of a chunk's sentences, rows in the order of `chunk.sentences` (None if not stored)."""
        vecs = self._data.sentence_vectors
        if vecs is None:
            return None
        return vecs[self._data.sentence_rows[self.chunk_rows[chunk.chunk_id]]]

    def sentence_parses(self, chunk: Chunk) -> list[Parsed] | None:
        """The ingest-time parses of a chunk's sentences, in the order of `chunk.sentences` (None if not stored)."""
        table = self._data.annotations
        if table is None:
            return None
        text = self.documents[chunk.doc_id].text
        rows = self._data.sentence_rows[self.chunk_rows[chunk.chunk_id]]
        out = []
        for row, span in zip(rows, chunk.sentences, strict=True):
            parsed = self._parses.get(row)
            if parsed is None:
                parsed = self._parses[row] = table.parsed(row, text[span.start:span.end])
            out.append(parsed)
        return out

    def dense(self, query_vector: np.ndarray, k: int, allowed: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
        """Chunk rows and cosine scores of the k nearest chunks, optionally among allowed rows only."""
        k = min(k, self._faiss.ntotal)
        if k == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        params = None
        if allowed is not None:
            selector = faiss.IDSelectorBatch(np.flatnonzero(allowed).astype(np.int64))
            if isinstance(self._faiss, faiss.IndexHNSWFlat):
                params = faiss.SearchParametersHNSW(sel=selector, efSearch=max(self._ef_search, k))
            else:
                params = faiss.SearchParameters(sel=selector)
        elif isinstance(self._faiss, faiss.IndexHNSWFlat):
            params = faiss.SearchParametersHNSW(efSearch=max(self._ef_search, k))
        scores, rows = self._faiss.search(query_vector.reshape(1, -1).astype(np.float32), k, params=params)
        keep = rows[0] >= 0
        return rows[0][keep], scores[0][keep]

    def bm25(self, query: str) -> np.ndarray:
        """BM25 score of every chunk row."""
        assert self._lexical is not None
        return self._lexical.scores(query)
