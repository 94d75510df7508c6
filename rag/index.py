"""The persisted index: documents, chunks, vectors, FAISS and BM25, written as verified generations.

Layout: `<index_dir>/CURRENT` names the live generation folder `gen-*`. A new generation is written into
`gen-*.tmp`, every file checksummed into its manifest, loaded back and cross-checked, renamed, and only
then does CURRENT move (atomically); the last `keep_generations` stay on disk so `rag doctor --repair`
can roll back. A failure at any step removes the partial folder and leaves the live generation as it was.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from rag.annotate import AnnotationTable, Parsed
from rag.config import Settings
from rag.errors import BadIndexError, CorruptIndexError, DiskFullError, RagError
from rag.lexical import Lexical
from rag.tables import ChunkTable, DocumentTable, _jsonl, advise_random, read_jsonl
from rag.types import Chunk, Document
from rag.vector_index import SHARD_DIR, SearchParams, VectorIndex, build_faiss, load_shards, load_single
from rag.vector_index import build as build_vector_index

__all__ = ["_jsonl", "build_faiss", "read_jsonl"]  # re-exported for bench/search.py and the tests

FORMAT_VERSION = 3  # 3: documents and chunks as memory-mapped columns (rag/tables.py), not JSON Lines
CURRENT = "CURRENT"
LOCK = ".lock"
MANIFEST = "manifest.json"
GENERATION = re.compile(r"gen-\d{8}T\d{6}-\d+-\d+")
COUNTS = ("documents", "chunks", "sentences")
MANIFEST_KEYS = ("format_version", "model", "dim", "config", "built_at", "counts", "documents", "artifacts",
                 "files")


# ---------------------------------------------------------------- hints and small file helpers


def rebuild_hint(index_dir: Path) -> str:
    return f"rebuild it with `rag ingest --rebuild PATH --index {index_dir}`"


def repair_hint(index_dir: Path, broken: Path | None = None) -> str:
    """How to get a working index back: roll back when another generation exists, else rebuild."""
    if any(g != broken for g in generations(index_dir)):
        return f"run `rag doctor --repair --index {index_dir}` to roll back to the last good generation"
    return rebuild_hint(index_dir)


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


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def is_disk_full(exc: BaseException) -> bool:
    """ENOSPC/EDQUOT, whether raised by Python or reported by a C++ library (FAISS) in its message."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return "No space left on device" in str(exc) or "Disk quota exceeded" in str(exc)


# ---------------------------------------------------------------- the write lock


def _lock_holder(fd: int) -> str:
    try:
        return os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
    except OSError:
        return "unknown"


@contextlib.contextmanager
def write_lock(index_dir: Path, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """One writer per index folder at a time; a second one says whom it waits for, then waits."""
    path = index_dir / LOCK
    if path.is_dir():
        raise BadIndexError(f"{path} is a folder, not a lock file; remove it with `rmdir {path}` "
                            f"(or `rag doctor --repair --index {index_dir}`)")
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise RagError(f"cannot lock the index at {index_dir}: {exc.strerror or exc}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait(f"waiting for another ingest (pid {_lock_holder(fd)}) to finish with {index_dir} ...")
            fcntl.flock(fd, fcntl.LOCK_EX)
        with contextlib.suppress(OSError):  # the pid is for the waiting message only (a full disk may refuse it)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def lock_holder(index_dir: Path) -> str | None:
    """The pid (as written) of the process holding the write lock, or None when it is free."""
    path = index_dir / LOCK
    if not path.is_file():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _lock_holder(fd)
        os.close(fd)
        return holder
    os.close(fd)
    return None


# ---------------------------------------------------------------- generations on disk


def generations(index_dir: Path) -> list[Path]:
    """Complete generation folders, oldest first (names sort by creation time)."""
    if not index_dir.is_dir():
        return []
    return sorted(p for p in index_dir.iterdir() if GENERATION.fullmatch(p.name))


def partial_generations(index_dir: Path) -> list[Path]:
    """Leftovers of writes that did not finish (`gen-*.tmp`)."""
    return sorted(index_dir.glob("gen-*.tmp")) if index_dir.is_dir() else []


def current_generation(index_dir: Path) -> Path | None:
    """The live generation folder, or None when the folder holds no index yet."""
    pointer = index_dir / CURRENT
    if not pointer.exists():
        return None
    def bad(reason: str) -> CorruptIndexError:
        return CorruptIndexError(f"index at {index_dir}: {reason}; {repair_hint(index_dir)}", reason)

    try:
        name = pointer.read_bytes().decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise bad(f"{CURRENT} is not UTF-8 text") from exc
    except OSError as exc:
        raise bad(f"cannot read {CURRENT} ({exc.strerror or exc})") from exc
    if not GENERATION.fullmatch(name):
        raise bad(f"{CURRENT} names {name[:80]!r}, not a generation")
    gen = index_dir / name
    if not gen.is_dir():
        raise bad(f"{CURRENT} points at missing {name}")
    return gen


def _read_manifest_file(gen: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((gen / MANIFEST).read_bytes().decode("utf-8"))
    except (OSError, ValueError) as exc:
        raise _corrupt(gen, f"{MANIFEST}: {exc}") from exc
    if not isinstance(manifest, dict):
        raise _corrupt(gen, f"{MANIFEST} is not a JSON object")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BadIndexError(f"index at {gen.parent} has format {manifest.get('format_version')}, this version "
                            f"reads {FORMAT_VERSION}; {rebuild_hint(gen.parent)}")
    missing = [k for k in MANIFEST_KEYS if k not in manifest]
    counts = manifest.get("counts")
    if isinstance(counts, dict):
        missing += [f"counts.{k}" for k in COUNTS if not isinstance(counts.get(k), int)]
    if missing:
        raise _corrupt(gen, f"{MANIFEST} lacks {', '.join(missing)}")
    return manifest


def read_manifest(index_dir: Path) -> dict[str, Any] | None:
    """The live manifest, or None when there is no index; a corrupt one raises BadIndexError."""
    gen = current_generation(index_dir)
    return None if gen is None else _read_manifest_file(gen)


def check_compatible(manifest: dict[str, Any], model: str, dim: int, index_dir: Path) -> None:
    """Refuse an index built with another embedding model or dimension, saying how to rebuild."""
    if manifest["model"] != model or manifest["dim"] != dim:
        raise BadIndexError(
            f"index at {index_dir} was built with model {manifest['model']} (dim {manifest['dim']}), "
            f"but this run uses {model} (dim {dim}); {rebuild_hint(index_dir)} "
            f"or run with --model {manifest['model']}")


@dataclass
class IndexData:
    """Everything a generation holds: what ingest writes and IndexStore reads (mostly memory-mapped)."""

    manifest: dict[str, Any]
    documents: Mapping[str, Document]  # ingest: a dict; read back: a DocumentTable (rag/tables.py)
    chunks: Sequence[Chunk]  # ingest: a list; read back: a ChunkTable
    chunk_vectors: np.ndarray
    sentence_rows: Sequence[Sequence[int]] = field(default_factory=list)  # per chunk, rows of sentence_vectors
    sentence_vectors: np.ndarray | None = None
    annotations: AnnotationTable | None = None  # per sentence row, parsed at ingest
    faiss: VectorIndex | None = None  # built from chunk_vectors when written (rag/vector_index.py)
    lexical: Lexical | None = None  # built from the chunks' text when written
    extra: dict[str, Any] = field(default_factory=dict)  # artifacts without a field of their own, by attr
    generation: str = ""  # the folder it was read from (set by load_generation)

    def get(self, attr: str) -> Any:
        """An artifact's value: its field, or its entry in `extra` (None when absent)."""
        return getattr(self, attr) if attr in _FIELDS else self.extra.get(attr)


_FIELDS = frozenset(IndexData.__dataclass_fields__) - {"extra"}


# ---------------------------------------------------------------- artifacts: the files of a generation


@dataclass(frozen=True)
class Artifact:
    """One named file (or folder) of a generation and the IndexData field it stores.

    `rows` names the count its length must equal ("documents", "chunks" or "sentences"); an optional
    artifact is written only when its field is not None.
    """

    name: str
    attr: str
    save: Callable[[Path, IndexData], None]
    load: Callable[[Path, dict[str, Any]], dict[str, Any]]  # given the fields read so far -> fields it sets
    rows: str | None = None
    optional: bool = False
    writes: Callable[[IndexData], bool] | None = None  # for an optional artifact: written only when true


def _save_documents(path: Path, data: IndexData) -> None:
    assert isinstance(data.documents, DocumentTable)  # _write_files made the columns
    data.documents.save(path)


def _load_documents(path: Path, _: dict[str, Any]) -> dict[str, Any]:
    return {"documents": DocumentTable.load(path)}


def _save_chunks(path: Path, data: IndexData) -> None:
    assert isinstance(data.chunks, ChunkTable)
    data.chunks.save(path)


def _load_chunks(path: Path, loaded: dict[str, Any]) -> dict[str, Any]:
    table = ChunkTable.load(path, loaded["documents"])
    return {"chunks": table, "sentence_rows": table.row_lists()}


def as_columns(data: IndexData) -> None:
    """Documents and chunks held as objects (as ingest builds them) turned into the columns written."""
    data.documents = DocumentTable.of(data.documents)
    data.chunks = ChunkTable.of(data.chunks, data.sentence_rows, data.documents)
    data.sentence_rows = data.chunks.row_lists()


def is_approximate(manifest: dict[str, Any]) -> bool:
    """Whether a generation was written with an approximate (large, memory-mapped) vector index."""
    return manifest.get("index_type", "flat") != "flat"


def _npy(name: str, attr: str, rows: str, optional: bool = False, reduced: bool = False) -> Artifact:
    """A float32 matrix stored with np.save; float16 when `reduced` and the index is approximate.

    An approximate (large) generation's matrices are memory-mapped on load, not read into memory.
    """

    def save(path: Path, data: IndexData) -> None:
        dtype = np.float16 if reduced and is_approximate(data.manifest) else np.float32
        arr = data.get(attr)
        with open(path, "wb") as fh:
            if arr.dtype == dtype and arr.flags.c_contiguous:
                np.save(fh, arr)
            else:
                np.lib.format.write_array_header_1_0(fh, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                                                          "fortran_order": False, "shape": arr.shape})
                for lo in range(0, len(arr), 100_000):  # bounded copies of a large (or mapped) matrix
                    fh.write(np.ascontiguousarray(arr[lo : lo + 100_000], dtype=dtype).tobytes())
            fh.flush()
            os.fsync(fh.fileno())

    def load(path: Path, loaded: dict[str, Any]) -> dict[str, Any]:
        arr = np.load(path, allow_pickle=False, mmap_mode="r" if is_approximate(loaded["manifest"]) else None)
        advise_random(arr)  # rows are read at random (re-ranking, a chunk's sentences)
        if arr.ndim != 2:
            raise ValueError(f"{name} has {arr.ndim} dimensions, expected 2")
        return {attr: arr}

    return Artifact(name, attr, save, load, rows, optional)


def _table(name: str, attr: str, cls: Any, rows: str, optional: bool = True) -> Artifact:
    """An object with `save(path)` and `cls.load(path)` (e.g. AnnotationTable)."""

    def save(path: Path, data: IndexData) -> None:
        data.get(attr).save(path)

    return Artifact(name, attr, save, lambda path, _: {attr: cls.load(path)}, rows, optional)


def _save_faiss(path: Path, data: IndexData) -> None:
    assert data.faiss is not None
    faiss.write_index(data.faiss.shards[0], str(path))


def _save_shards(path: Path, data: IndexData) -> None:
    assert data.faiss is not None
    from rag.vector_index import save_shards

    save_shards(path, data.faiss)


def _sharded(data: IndexData) -> bool:
    return data.faiss is not None and data.faiss.kind == "ivfpq"


def _save_lexical(path: Path, data: IndexData) -> None:
    assert data.lexical is not None
    data.lexical.save(path)


# The files of a generation, in load order; each is checksummed in the manifest and its row count checked.
# A new per-sentence table is one more line, e.g. `_table("roles.npz", "roles", RoleTable, rows="sentences")`,
# its value set in `IndexData.extra["roles"]` by ingest and read back from there.
ARTIFACTS: tuple[Artifact, ...] = (
    Artifact("documents", "documents", _save_documents, _load_documents, rows="documents"),  # ids, meta, texts
    Artifact("chunks", "chunks", _save_chunks, _load_chunks, rows="chunks"),  # offsets, sentences, their rows
    _npy("chunk_vectors.npy", "chunk_vectors", rows="chunks"),
    _npy("sentence_vectors.npy", "sentence_vectors", rows="sentences", optional=True, reduced=True),
    _table("annotations.npz", "annotations", AnnotationTable, rows="sentences"),
    # exactly one of the two vector indexes: one file (exact, HNSW) or IVF-PQ shard files
    Artifact("faiss.index", "faiss", _save_faiss, rows="chunks", optional=True,
             load=lambda p, f: {"faiss": load_single(p, f["chunk_vectors"], SearchParams())},
             writes=lambda d: not _sharded(d)),
    Artifact(SHARD_DIR, "faiss", _save_shards, rows="chunks", optional=True,
             load=lambda p, f: {"faiss": load_shards(p, f["chunk_vectors"], SearchParams())}, writes=_sharded),
    Artifact("bm25", "lexical", _save_lexical, rows="chunks",
             load=lambda p, f: {"lexical": Lexical.load(p, mmap=is_approximate(f["manifest"]))}),
)
VECTOR_ARTIFACTS = frozenset(a.name for a in ARTIFACTS if a.attr == "faiss")


def _files_of(root: Path, name: str) -> list[Path]:
    path = root / name
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]


def _count(value: Any) -> int:
    return int(value.ntotal) if isinstance(value, faiss.Index) else len(value)


# ---------------------------------------------------------------- verification


def _corrupt(gen: Path, reason: str) -> CorruptIndexError:
    return CorruptIndexError(f"index at {gen.parent}: generation {gen.name} is corrupt ({reason}); "
                             f"{repair_hint(gen.parent, gen)}", reason)


def _verify_checksums(gen: Path, manifest: dict[str, Any], artifacts: list[Artifact]) -> None:
    files: dict[str, Any] = manifest["files"]
    for art in artifacts:
        if not any(rel == art.name or rel.startswith(art.name + "/") for rel in files):
            raise _corrupt(gen, f"{MANIFEST} lists no checksum for {art.name}")
    for rel, want in files.items():
        path = gen / rel
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise _corrupt(gen, f"{rel} is missing") from exc
        if size != want["bytes"]:
            raise _corrupt(gen, f"{rel} has {size} bytes, {MANIFEST} says {want['bytes']}")
        if _sha256(path) != want["sha256"]:
            raise _corrupt(gen, f"{rel} does not match its checksum")


def _cross_check(gen: Path, data: IndexData, artifacts: list[Artifact]) -> None:
    """Row counts, dimensions and offsets agree across the files (checksums alone trust the writer)."""
    m = data.manifest
    counts = m["counts"]
    expected = {"documents": counts["documents"], "chunks": counts["chunks"], "sentences": counts["sentences"]}
    for art in artifacts:
        if art.rows is not None and (n := _count(data.get(art.attr))) != expected[art.rows]:
            raise _corrupt(gen, f"{art.name} holds {n} rows, {MANIFEST} counts {expected[art.rows]} {art.rows}")
    dim = m["dim"]
    if data.faiss is not None and data.faiss.d != dim:
        name = next(a.name for a in artifacts if a.attr == "faiss")
        raise _corrupt(gen, f"{name} has dimension {data.faiss.d}, the index {dim}")
    for name, arr in (("chunk_vectors.npy", data.chunk_vectors), ("sentence_vectors.npy", data.sentence_vectors)):
        if arr is not None and len(arr) and arr.shape[1] != dim:
            raise _corrupt(gen, f"{name} has dimension {arr.shape[1]}, the index {dim}")
    if set(m["documents"]) != set(data.documents):
        raise _corrupt(gen, f"documents and {MANIFEST} list different documents")
    n_sent = expected["sentences"]
    rows = data.chunks.sentence_row if isinstance(data.chunks, ChunkTable) else np.zeros(0, np.int64)
    if len(rows) and (rows.min() < -1 or rows.max() >= n_sent):
        raise _corrupt(gen, f"chunks point at sentence rows outside 0..{n_sent - 1}")


def load_generation(gen: Path, *, with_bm25: bool = True, verify_checksums: bool = True) -> IndexData:
    """Read one generation folder and check it end to end; any fault raises BadIndexError naming the fix."""
    manifest = _read_manifest_file(gen)
    listed = set(manifest["artifacts"])
    unknown = listed - {a.name for a in ARTIFACTS}
    if unknown:
        raise _corrupt(gen, f"{MANIFEST} lists unknown artifacts {sorted(unknown)} (written by a newer version?)")
    artifacts = []
    for art in ARTIFACTS:
        if art.name in listed:
            artifacts.append(art)
        elif not art.optional:
            raise _corrupt(gen, f"{MANIFEST} does not list {art.name}")
    if len(listed & VECTOR_ARTIFACTS) != 1:
        raise _corrupt(gen, f"{MANIFEST} must list one vector index of {sorted(VECTOR_ARTIFACTS)}")
    try:
        if verify_checksums:
            _verify_checksums(gen, manifest, artifacts)
        fields: dict[str, Any] = {"manifest": manifest}
        for art in artifacts:
            if art.attr == "lexical" and not with_bm25:
                continue
            fields.update(art.load(gen / art.name, fields))
        data = IndexData(**{k: v for k, v in fields.items() if k in _FIELDS},
                         extra={k: v for k, v in fields.items() if k not in _FIELDS})
        _cross_check(gen, data, [a for a in artifacts if data.get(a.attr) is not None])
        data.generation = gen.name
    except BadIndexError:
        raise
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, EOFError, IndexError) as exc:
        raise _corrupt(gen, f"{type(exc).__name__}: {str(exc)[:300]}") from exc
    return data


def load_data(index_dir: Path, with_bm25: bool = True, verify_checksums: bool = True) -> IndexData:
    """The live generation, verified; retried when an ingest switches CURRENT while it is being read."""
    for attempt in range(3):
        gen = current_generation(index_dir)
        if gen is None:
            raise BadIndexError(f"no index at {index_dir}; build one with "
                                f"`rag ingest PATH --index {index_dir} --create`")
        try:
            return load_generation(gen, with_bm25=with_bm25, verify_checksums=verify_checksums)
        except BadIndexError:
            if attempt == 2 or current_generation(index_dir) == gen:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


# ---------------------------------------------------------------- writing


def _new_name() -> str:
    now = time.time()
    return f"gen-{time.strftime('%Y%m%dT%H%M%S', time.gmtime(now))}-{int(now % 1 * 1e6):06d}-{os.getpid()}"


def write_generation(index_dir: Path, data: IndexData, settings: Settings) -> Path:
    """Write, verify and switch to a new generation; the caller holds `write_lock(index_dir)`.

    Leftover partial generations are removed first; on any failure the partial folder goes too and the
    live generation stays. Afterwards only the newest `settings.keep_generations` remain.
    """
    index_dir.mkdir(parents=True, exist_ok=True)
    for stale in partial_generations(index_dir):  # no other writer runs: the lock is ours
        shutil.rmtree(stale, ignore_errors=True)
    try:
        previous = current_generation(index_dir)
    except BadIndexError:  # a rebuild over a broken pointer
        previous = None
    name = _new_name()
    while (index_dir / name).exists():
        name = _new_name()
    tmp = index_dir / f"{name}.tmp"
    try:
        tmp.mkdir()
        _write_files(tmp, data, settings)
        load_generation(tmp)  # read back exactly what a reader will read
        gen = index_dir / name
        tmp.rename(gen)
        _fsync_write(index_dir / f"{CURRENT}.tmp", name.encode())
        os.replace(index_dir / f"{CURRENT}.tmp", index_dir / CURRENT)
        _fsync_dir(index_dir)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        with contextlib.suppress(OSError):
            (index_dir / f"{CURRENT}.tmp").unlink(missing_ok=True)
        if is_disk_full(exc):
            free = shutil.disk_usage(index_dir).free
            raise DiskFullError(f"no space left on the device of {index_dir} ({free / 1e6:.1f} MB free) while "
                                f"writing a new generation; the live index is unchanged; free some space and "
                                f"run the ingest again") from exc
        if isinstance(exc, OSError):
            raise RagError(f"cannot write the index at {index_dir}: {exc.strerror or exc}; "
                           f"the live index is unchanged") from exc
        raise
    prune_generations(index_dir, settings.keep_generations, keep={gen, *(p for p in [previous] if p)})
    return gen


def _write_files(tmp: Path, data: IndexData, settings: Settings) -> None:
    as_columns(data)
    if data.faiss is None:
        data.faiss = build_vector_index(data.chunk_vectors, settings)
    if data.lexical is None:
        data.lexical = Lexical.build([c.text for c in data.chunks])
    data.manifest["index_type"] = data.faiss.kind
    data.manifest["vector_index"] = data.faiss.describe()
    written = []
    for art in ARTIFACTS:
        if data.get(art.attr) is None:
            if not art.optional:
                raise ValueError(f"a generation needs {art.attr}")
            continue
        if art.writes is not None and not art.writes(data):
            continue
        art.save(tmp / art.name, data)
        written.append(art.name)
    files = {}
    for art_name in written:
        for path in _files_of(tmp, art_name):
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
            files[path.relative_to(tmp).as_posix()] = {"sha256": _sha256(path), "bytes": path.stat().st_size}
    data.manifest.update(format_version=FORMAT_VERSION, artifacts=written, files=files)
    _fsync_write(tmp / MANIFEST, json.dumps(data.manifest, indent=1, ensure_ascii=False).encode())
    for folder in {tmp, *(p.parent for p in tmp.rglob("*") if p.is_file())}:
        _fsync_dir(folder)


def prune_generations(index_dir: Path, keep_last: int, keep: Collection[Path] = ()) -> list[Path]:
    """Remove all but the newest `keep_last` generations (and never those in `keep` or the live one)."""
    live = current_generation(index_dir)
    gens = generations(index_dir)
    keep = set(keep) | set(gens[-keep_last:]) | ({live} if live else set())
    removed = [g for g in gens if g not in keep]
    for old in removed:
        shutil.rmtree(old, ignore_errors=True)
    return removed


def switch_current(index_dir: Path, gen: Path) -> None:
    """Point CURRENT at an existing generation (atomically), e.g. to roll back."""
    _fsync_write(index_dir / f"{CURRENT}.tmp", gen.name.encode())
    os.replace(index_dir / f"{CURRENT}.tmp", index_dir / CURRENT)
    _fsync_dir(index_dir)


# ---------------------------------------------------------------- doctor


@dataclass
class GenerationState:
    """One generation folder as `rag doctor` found it."""

    path: Path
    live: bool
    problem: str | None = None
    documents: int = 0
    chunks: int = 0

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclass
class IndexHealth:
    """What is wrong with an index folder, if anything: the live pointer, each generation, leftovers."""

    index_dir: Path
    current_problem: str | None = None
    lock_problem: str | None = None
    locked_by: str | None = None
    generations: list[GenerationState] = field(default_factory=list)
    partial: list[Path] = field(default_factory=list)

    @property
    def live(self) -> GenerationState | None:
        return next((g for g in self.generations if g.live), None)

    @property
    def ok(self) -> bool:
        live = self.live
        return (self.current_problem is None and self.lock_problem is None and live is not None and live.ok
                and (not self.partial or self.locked_by is not None))

    def describe(self) -> str:
        lines = [f"index {self.index_dir}: {'ok' if self.ok else 'needs repair'}"]
        if self.current_problem:
            lines.append(f"  {CURRENT}: {self.current_problem}")
        if self.lock_problem:
            lines.append(f"  {LOCK}: {self.lock_problem}")
        if self.locked_by:
            lines.append(f"  an ingest (pid {self.locked_by}) is writing")
        for g in reversed(self.generations):
            state = f"ok, {g.documents} documents, {g.chunks} chunks" if g.ok else f"corrupt: {g.problem}"
            lines.append(f"  {g.path.name}{' (live)' if g.live else ''}: {state}")
        lines += [f"  {p.name}: partial write{' (in progress)' if self.locked_by else ''}" for p in self.partial]
        return "\n".join(lines)


def check_index(index_dir: Path) -> IndexHealth:
    """Verify every generation (checksums, counts, offsets) and the files around them; never writes."""
    health = IndexHealth(index_dir)
    if not index_dir.is_dir():
        health.current_problem = "the folder does not exist"
        return health
    live: Path | None = None
    try:
        live = current_generation(index_dir)
        if live is None:
            health.current_problem = "missing (no generation is live)"
    except BadIndexError as exc:
        health.current_problem = getattr(exc, "reason", str(exc))
    if (index_dir / LOCK).is_dir():
        health.lock_problem = "a folder, not a lock file"
    else:
        health.locked_by = lock_holder(index_dir)
    for gen in generations(index_dir):
        state = GenerationState(gen, live=gen == live)
        try:
            data = load_generation(gen)
            state.documents, state.chunks = len(data.documents), len(data.chunks)
        except BadIndexError as exc:
            state.problem = getattr(exc, "reason", str(exc))
        health.generations.append(state)
    health.partial = partial_generations(index_dir)
    return health


def repair_index(index_dir: Path, on_wait: Callable[[str], None] | None = None) -> list[str]:
    """Roll back to the newest good generation, drop corrupt ones and partial writes; returns what it did."""
    done = []
    lock = index_dir / LOCK
    if lock.is_dir():
        try:
            lock.rmdir()
        except OSError as exc:
            raise BadIndexError(f"{lock} is a folder with files in it; look inside and remove it yourself "
                                f"({exc.strerror})") from exc
        done.append(f"removed the folder {LOCK}")
    with write_lock(index_dir, on_wait):
        health = check_index(index_dir)
        good = [g for g in health.generations if g.ok]
        if not good:
            raise BadIndexError(f"index at {index_dir} has no good generation left; {rebuild_hint(index_dir)}")
        live = health.live
        if live is None or not live.ok:
            switch_current(index_dir, good[-1].path)
            done.append(f"rolled back to {good[-1].path.name} ({good[-1].documents} documents)")
        for g in health.generations:
            if not g.ok:
                shutil.rmtree(g.path, ignore_errors=True)
                done.append(f"removed corrupt {g.path.name}")
        for p in health.partial:
            shutil.rmtree(p, ignore_errors=True)
            done.append(f"removed partial {p.name}")
    return done


# ---------------------------------------------------------------- the loaded index


class IndexStore:
    """A loaded, read-only index: lookups of documents, chunks and vectors, and both searches.

    `documents` and `chunks` are columns read from memory-mapped files (rag/tables.py): a lookup or an
    iteration makes lightweight `Document`/`Chunk` views, so memory does not grow with the chunk count.
    """

    PARSE_CACHE = 200_000  # decoded sentence parses kept (then the cache starts over)

    def __init__(self, index_dir: Path, settings: Settings) -> None:
        data = load_data(index_dir, verify_checksums=settings.verify_checksums)
        assert isinstance(data.documents, DocumentTable) and isinstance(data.chunks, ChunkTable)
        self.index_dir = index_dir
        self.generation = data.generation  # what `current_generation` named when it was read
        # Each document's manifest entry (hashes, source path) serves ingest's plan, not answering: not kept.
        data.manifest = self.manifest = {k: v for k, v in data.manifest.items() if k != "documents"}
        self.documents: DocumentTable = data.documents
        self.chunks: ChunkTable = data.chunks
        self._data = data
        self._parses: dict[int, Parsed] = {}  # decoded on first use; a dict write is atomic under the GIL
        self._faiss = data.faiss
        if self._faiss is not None:
            self._faiss.params = SearchParams.of(settings)
        self._lexical = data.lexical
        faiss.omp_set_num_threads(settings.faiss_query_threads)
        self.copies: dict[str, list[str]] = {}  # indexed doc id -> ids of identical documents not indexed
        for dup, kept in sorted(self.manifest.get("duplicates", {}).items()):
            self.copies.setdefault(kept, []).append(dup)

    @classmethod
    def load(cls, index_dir: Path, settings: Settings) -> IndexStore:
        return cls(index_dir, settings)

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        """A document's chunks in index order (without scanning every chunk)."""
        return [self.chunks[int(r)] for r in self.chunks.rows_of_doc(doc_id)]

    def sentence_vectors(self, chunk: Chunk) -> np.ndarray | None:
        """Vectors of a chunk's sentences, rows in the order of `chunk.sentences` (None if not stored)."""
        vecs = self._data.sentence_vectors
        if vecs is None:
            return None
        return vecs[self.chunks.sentence_rows(self.chunks.row_of(chunk))]

    def sentence_parses(self, chunk: Chunk) -> list[Parsed] | None:
        """The ingest-time parses of a chunk's sentences, in the order of `chunk.sentences` (None if not stored)."""
        table = self._data.annotations
        if table is None:
            return None
        rows = self.chunks.sentence_rows(self.chunks.row_of(chunk))
        if len(self._parses) > self.PARSE_CACHE:
            self._parses = {}
        text = None
        out = []
        for row, span in zip(rows, chunk.sentences, strict=True):
            parsed = self._parses.get(row)
            if parsed is None:
                text = text if text is not None else self.documents[chunk.doc_id].text
                parsed = self._parses[row] = table.parsed(row, text[span.start:span.end])
            out.append(parsed)
        return out

    def dense(self, query_vector: np.ndarray, k: int, allowed: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
        """Chunk rows and cosine scores of the k nearest chunks, optionally among allowed rows only."""
        assert self._faiss is not None
        return self._faiss.search(query_vector, k, allowed)

    def bm25(self, query: str) -> np.ndarray:
        """BM25 score of every chunk row."""
        assert self._lexical is not None
        return self._lexical.scores(query)

    def bm25_top(self, query: str, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Rows and BM25 scores of the k best chunks with a positive score (among allowed rows), best first."""
        assert self._lexical is not None
        return self._lexical.top(query, k, allowed)
