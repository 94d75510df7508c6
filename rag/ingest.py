"""Incremental ingest: add and update what is read, reuse what is unchanged, remove only when asked.

`ingest(PATHS)` adds the documents under PATHS to the index and updates those that changed; documents
from elsewhere stay. Removal is explicit: `prune=True` removes the index's documents from PATHS whose
files are gone, `remove_documents` removes ids. Every run says what it removes before it writes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rag.annotate import ANNOTATION_VERSION, AnnotationTable, Annotator
from rag.chunking import RULES_VERSION, Chunker
from rag.config import Settings
from rag.embedding import Embedder, get_embedder, model_id, start_onnx_export
from rag.errors import BadIndexError, UsageError
from rag.freshness import corpus_state, write_stamp
from rag.index import (
    FORMAT_VERSION,
    IndexData,
    check_compatible,
    current_generation,
    load_generation,
    read_manifest,
    write_generation,
    write_lock,
)
from rag.readers import SUPPORTED, ReadResult, read_paths
from rag.types import Chunk, DocMeta, Document

log = logging.getLogger(__name__)
_SHINGLE_WORD = re.compile(r"\w+")
Say = Callable[[str], None]


@dataclass
class IngestSummary:
    """What an ingest did (or, with dry_run, would do), for the CLI's closing lines and for tests."""

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
    dry_run: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)

    def describe(self) -> str:
        verb = "would add" if self.dry_run else "added"
        lines = [f"index {self.index_dir}: {verb} {len(self.added)}, updated {len(self.updated)}, "
                 f"removed {len(self.removed)}, unchanged {self.unchanged}, skipped {len(self.skipped)}, "
                 f"failed {len(self.failed)}; {self.documents} documents, {self.chunks} chunks, "
                 f"{self.embedded} chunks embedded, {self.seconds:.1f} s" + (" (dry run: nothing written)"
                                                                            if self.dry_run else "")]
        lines += _capped([f"  removed: {d}" for d in self.removed])
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


def config_changes(old: dict[str, Any], new: dict[str, Any]) -> str:
    """The settings that differ between two `config_of` results, as "name old -> new" parts."""
    return ", ".join(f"{k} {old.get(k)} -> {new.get(k)}" for k in new if old.get(k) != new.get(k))


def record_hash(doc: Document) -> str:
    """Hash of text and metadata: a metadata-only edit updates the record without re-embedding."""
    meta = json.dumps({k: getattr(doc.meta, k) for k in DocMeta.__slots__}, sort_keys=True, default=list)
    return hashlib.sha256(f"{doc.content_hash}\0{meta}".encode()).hexdigest()


def _meta_dict(meta: DocMeta) -> dict[str, Any]:
    out = {k: getattr(meta, k) for k in DocMeta.__slots__}
    out["languages"] = list(meta.languages)
    return out


def _meta_of(d: dict[str, Any]) -> DocMeta:
    return DocMeta(**{**d, "languages": tuple(d.get("languages") or ())})


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


def progress_bar(enabled: bool):
    """A rich progress bar (shown only when `enabled`) for the ingest's long steps."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    disable=not enabled, transient=True)


def check_index_location(index_dir: Path, paths: Sequence[Path]) -> None:
    """Refuse an index folder that holds articles, lies inside a folder being ingested, or contains one."""
    index = index_dir.resolve()
    if index.is_file():
        raise UsageError(f"{index_dir} is a file; an index needs a folder of its own")
    for given in paths:
        src = Path(given).resolve()
        if src.is_dir() and (index == src or index.is_relative_to(src)):
            raise UsageError(f"the index folder {index_dir} is inside {given}, which is being ingested; "
                             f"use an index folder outside it (--index DIR)")
        if src.is_relative_to(index):
            raise UsageError(f"{given} is inside the index folder {index_dir}; ingest articles from elsewhere")
    if index.is_dir():
        articles = sorted(p.name for p in index.iterdir()  # a README says what the folder is for
                          if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in SUPPORTED
                          and p.stem.upper() != "README")
        if articles:
            raise UsageError(f"{index_dir} holds articles ({', '.join(articles[:3])}"
                             f"{', ...' if len(articles) > 3 else ''}); an index needs a folder of its own")


# ---------------------------------------------------------------- engines


@dataclass
class ModelOutput:
    """What the models computed for an ingest's new text: vectors of chunks and sentences, sentence parses
    (one per sentence when annotating, else none)."""

    chunk_vectors: np.ndarray
    sentence_vectors: np.ndarray
    parses: list[tuple[list, list, list]]


class Engine(Protocol):
    """Where an ingest's model work runs (embedding, annotation): in this process (`LocalEngine`, the
    default) or on a Ray cluster (`rag.ingest_ray.RayEngine`). Reading, chunking, planning and writing
    the generation always run here; both engines read and fill the same caches."""

    def compute(self, embedder: Embedder, chunks: list[str], sentences: list[str], settings: Settings,
                progress: bool) -> ModelOutput: ...


class LocalEngine:
    """The model work in this process: spaCy, then the embedder's threads (spaCy first, so that a first
    ONNX export, running in a child process since `_assemble` started it, overlaps with the parse)."""

    def compute(self, embedder: Embedder, chunks: list[str], sentences: list[str], settings: Settings,
                progress: bool) -> ModelOutput:
        parses: list[tuple[list, list, list]] = []
        if settings.index_sentences and sentences:
            annotator = Annotator(settings.spacy_pipeline, settings.cache_dir / "annotations.sqlite",
                                  settings.annotate_batch_size)
            with progress_bar(progress) as bar:
                task = bar.add_task("annotating sentences", total=len(sentences))
                parses = annotator.annotate(sentences, on_progress=lambda n: bar.advance(task, n))
        with progress_bar(progress) as bar:
            task = bar.add_task("embedding", total=len(chunks) + len(sentences))
            step = lambda n: bar.advance(task, n)  # noqa: E731
            vecs = embedder.embed(chunks, on_progress=step)
            sent_vecs = embedder.embed(sentences, on_progress=step)
        return ModelOutput(vecs, sent_vecs, parses)


# ---------------------------------------------------------------- planning


@dataclass
class _Entry:
    """One document of the planned index: read now (`doc`), or carried over from the live index."""

    doc_id: str
    record_hash: str
    content_hash: str
    path: str | None
    record: str | None  # BEIR `_id` within the file at `path`
    doc: Document | None = None
    text_from: str | None = None  # carried over: the live index document whose text this is
    meta: dict[str, Any] | None = None  # carried-over copy: its metadata

    @property
    def origin(self) -> tuple[str | None, str | None]:
        return self.path, self.record


def _live_entries(manifest: dict[str, Any]) -> dict[str, _Entry]:
    """Every document the live index holds: the indexed ones and the identical copies it records."""
    entries = {}
    for doc_id, d in manifest["documents"].items():
        entries[doc_id] = _Entry(doc_id, d["record_hash"], d["content_hash"], d.get("path"), d.get("record"),
                                 text_from=doc_id)
    for doc_id, kept in manifest.get("duplicates", {}).items():
        c = manifest.get("copies", {}).get(doc_id)
        if c is None or kept not in manifest["documents"]:
            continue  # a copy recorded without its metadata cannot be rebuilt
        entries[doc_id] = _Entry(doc_id, c["record_hash"], c["content_hash"], c.get("path"), c.get("record"),
                                 text_from=kept, meta=c["meta"])
    return entries


def _assign_ids(read: ReadResult, live: dict[str, _Entry]) -> list[_Entry]:
    """Entries for the documents read, with ids stable across runs: a file indexed before keeps its id;
    a new file whose natural id belongs to another file gets a numbered one (`id~2`)."""
    by_origin = {e.origin: e.doc_id for e in live.values()}
    taken = set(live)
    out: list[_Entry] = []
    pending: list[tuple[Document, tuple[str, str | None]]] = []
    claimed: set[str] = set()
    for doc in read.documents:
        origin = read.origins[doc.doc_id]
        if origin in by_origin:
            claimed.add(by_origin[origin])
    for doc in read.documents:
        origin = read.origins[doc.doc_id]
        doc_id = by_origin.get(origin)
        if doc_id is None:
            pending.append((doc, origin))
            continue
        out.append(_entry_of(Document(doc_id, doc.text, doc.meta), origin))
    for doc, origin in pending:
        doc_id, k = doc.doc_id, 2
        while doc_id in taken or doc_id in claimed:
            doc_id, k = f"{doc.doc_id}~{k}", k + 1
        claimed.add(doc_id)
        out.append(_entry_of(Document(doc_id, doc.text, doc.meta), origin))
    return out


def _entry_of(doc: Document, origin: tuple[str, str | None]) -> _Entry:
    return _Entry(doc.doc_id, record_hash(doc), doc.content_hash, origin[0], origin[1], doc=doc)


def _under(path: str | None, roots: Sequence[Path]) -> bool:
    return path is not None and any(Path(path) == r or Path(path).is_relative_to(r) for r in roots)


@dataclass
class _Plan:
    """The index to write: every document, which are indexed and which are copies, what changed."""

    entries: dict[str, _Entry]
    kept: list[str]  # indexed ids, sorted
    copies: dict[str, str]  # copy id -> indexed id with the same text


def _indexed_as_is(e: _Entry, live: dict[str, _Entry]) -> bool:
    """Whether the live index already holds this entry's text under its id (so keeping it costs nothing)."""
    before = live.get(e.doc_id)
    return before is not None and before.text_from == e.doc_id and before.content_hash == e.content_hash


def _plan(live: dict[str, _Entry], incoming: list[_Entry], removed: set[str], same_config: bool,
          summary: IngestSummary) -> _Plan:
    entries = {k: e for k, e in live.items() if k not in removed}
    for e in incoming:
        before = live.get(e.doc_id)
        if before is None:
            summary.added.append(e.doc_id)
        elif before.record_hash != e.record_hash or not same_config:
            summary.updated.append(e.doc_id)
        else:
            summary.unchanged += 1
        entries[e.doc_id] = e
    read_ids = {e.doc_id for e in incoming}
    for e in entries.values():
        if e.doc_id not in read_ids:
            if same_config:
                summary.unchanged += 1
            else:
                summary.updated.append(e.doc_id)
    summary.removed = sorted(removed)
    # Identical texts are indexed once; the document indexed before stays the indexed one.
    groups: dict[str, list[_Entry]] = {}
    for e in entries.values():
        groups.setdefault(e.content_hash, []).append(e)
    kept, copies = [], {}
    for group in groups.values():
        group.sort(key=lambda e: (not _indexed_as_is(e, live), e.doc_id))
        kept.append(group[0].doc_id)
        copies.update({e.doc_id: group[0].doc_id for e in group[1:]})
    summary.duplicates = copies
    summary.documents = len(kept)
    return _Plan(entries, sorted(kept), copies)


# ---------------------------------------------------------------- ingest and remove


def ingest(paths: Sequence[Path], settings: Settings, progress: bool = False, rebuild: bool = False,
           embedder: Embedder | None = None, *, prune: bool = False, dry_run: bool = False,
           say: Say | None = None, engine: Engine | None = None) -> IngestSummary:
    """Add the documents under `paths` to the index at settings.index_dir and update the changed ones.

    prune: also remove the index's documents from `paths` whose files are gone (files that failed to read
    are kept). rebuild: build anew from `paths` alone, ignoring (and replacing) the live index.
    dry_run: plan and report without writing. `say` gets progress notes, removals first of all.
    engine: where embedding and annotation run (default: this process).
    """
    say = say or log.info
    start = time.perf_counter()
    index_dir = settings.index_dir
    summary = IngestSummary(index_dir=index_dir, dry_run=dry_run)
    paths = [Path(p) for p in paths]
    check_index_location(index_dir, paths)
    present = [p for p in paths if p.exists()] if prune else paths
    roots = [p.absolute() for p in paths]
    config = config_of(settings)
    with write_lock(index_dir, on_wait=say):
        before = corpus_state(paths) if not dry_run else None  # stat'ed before reading: see rag/freshness.py
        if embedder is None and not dry_run:
            start_onnx_export(settings)  # a first export (serving needs it too) runs beside the reading and parsing
        read = read_paths(present, max_bytes=settings.max_document_bytes) if present else ReadResult()
        summary.skipped, summary.failed = list(read.skipped), list(read.failed)
        if not read.documents and not prune:  # never replace an index with an empty one
            raise BadIndexError(f"nothing to index: no readable documents under {', '.join(map(str, paths))}")
        try:
            manifest = read_manifest(index_dir)
        except BadIndexError:
            if not rebuild:
                raise
            manifest = None
        if manifest is not None and manifest["config"]["model"] != config["model"] and not rebuild:
            check_compatible(manifest, config["model"], manifest["dim"], index_dir)
        live = _live_entries(manifest) if manifest else {}
        incoming = _assign_ids(read, {} if rebuild else live)
        read_origins = {e.origin for e in incoming}
        if rebuild:
            removed = {k for k, e in live.items() if e.origin not in read_origins}
            live_for_plan: dict[str, _Entry] = {}
        else:
            removed = {k for k, e in live.items() if prune and _under(e.path, roots)
                       and e.origin not in read_origins and e.path not in read.failed_paths}
            live_for_plan = live
        same_config = manifest is not None and manifest["config"] == config and not rebuild
        if manifest is not None and not rebuild and manifest["config"] != config:
            say(f"re-chunking every document: {config_changes(manifest['config'], config)}")
        plan = _plan(live_for_plan, incoming, removed if not rebuild else set(), same_config, summary)
        summary.removed = sorted(removed)
        if manifest is not None and same_config and not summary.changed \
                and manifest.get("duplicates", {}) == plan.copies:
            summary.chunks = manifest["counts"]["chunks"]
            summary.near_duplicates = [tuple(p) for p in manifest.get("near_duplicates", [])]
            _stamp(paths, before, settings, prune, summary, len(plan.entries))
            summary.seconds = time.perf_counter() - start
            return summary
        _announce(summary, say, dry_run)
        if dry_run:
            summary.seconds = time.perf_counter() - start
            return summary
        if not plan.kept:
            raise UsageError(f"this would leave the index at {index_dir} empty; delete the folder instead")
        _build_and_write(plan, None if rebuild else manifest, same_config, settings, progress, embedder, summary,
                         engine or LocalEngine())
        _stamp(paths, before, settings, prune, summary, len(plan.entries))
    summary.seconds = time.perf_counter() - start
    return summary


def _stamp(paths: Sequence[Path], before: tuple[list[Any], bool] | None, settings: Settings, prune: bool,
           summary: IngestSummary, entries: int) -> None:
    """Record what the next ingest of `paths` prints if nothing changes (unless a file failed: that one is
    read again each time), so that it can say so without reading (rag/freshness.py)."""
    noop = IngestSummary(index_dir=summary.index_dir, unchanged=entries, skipped=summary.skipped,
                         duplicates=summary.duplicates, near_duplicates=summary.near_duplicates,
                         documents=summary.documents, chunks=summary.chunks)
    lines = noop.describe().split("\n")
    lines[0] = lines[0].rsplit(", ", 1)[0]  # the seconds, printed by whichever run it is
    write_stamp(paths, None if summary.failed else before, settings, prune, lines)


def remove_documents(doc_ids: Sequence[str], settings: Settings, *, dry_run: bool = False,
                     say: Say | None = None) -> IngestSummary:
    """Remove documents (indexed ones or recorded copies) from the index by id."""
    say = say or log.info
    start = time.perf_counter()
    index_dir = settings.index_dir
    summary = IngestSummary(index_dir=index_dir, dry_run=dry_run)
    with write_lock(index_dir, on_wait=say):
        manifest = read_manifest(index_dir)
        if manifest is None:
            raise BadIndexError(f"no index at {index_dir}")
        live = _live_entries(manifest)
        unknown = [d for d in doc_ids if d not in live]
        if unknown:
            raise UsageError(f"not in the index at {index_dir}: {', '.join(unknown)}")
        plan = _plan(live, [], set(doc_ids), True, summary)
        _announce(summary, say, dry_run)
        if dry_run:
            return summary
        if not plan.kept:
            raise UsageError(f"this would leave the index at {index_dir} empty; delete the folder instead")
        # Chunks are carried over as they are: removing never re-chunks, whatever the settings now.
        _build_and_write(plan, manifest, True, _settings_of(settings, manifest["config"]), False, None, summary,
                         LocalEngine())
    summary.seconds = time.perf_counter() - start
    return summary


def _settings_of(settings: Settings, config: dict[str, Any]) -> Settings:
    """Settings under which `config_of` gives `config`: those the live index was built with."""
    pipeline = config["annotation"].rsplit("-v", 1)[0] if config.get("annotation") else None
    return settings.with_overrides(model=config["model"], encoding=config["encoding"],
                                   chunk_tokens=config["chunk_tokens"],
                                   chunk_overlap_tokens=config["chunk_overlap_tokens"],
                                   index_sentences=config["index_sentences"], spacy_pipeline=pipeline)


def _announce(summary: IngestSummary, say: Say, dry_run: bool) -> None:
    if summary.removed:
        shown = ", ".join(summary.removed[:10]) + (f" and {len(summary.removed) - 10} more"
                                                   if len(summary.removed) > 10 else "")
        say(f"{'would remove' if dry_run else 'removing'} {len(summary.removed)} "
            f"document{'s' if len(summary.removed) != 1 else ''}: {shown}")


# ---------------------------------------------------------------- building a generation


def _build_and_write(plan: _Plan, manifest: dict[str, Any] | None, same_config: bool, settings: Settings,
                     progress: bool, embedder: Embedder | None, summary: IngestSummary, engine: Engine) -> None:
    index_dir = settings.index_dir
    live_gen = current_generation(index_dir) if manifest is not None else None
    old = load_generation(live_gen, with_bm25=False) if live_gen is not None else None
    docs = {d: _materialize(plan.entries[d], old) for d in plan.kept}
    data = _assemble(docs, old if same_config else None, settings, progress, embedder, summary, engine)
    entries = plan.entries
    data.manifest.update(
        documents={d: {"content_hash": entries[d].content_hash, "record_hash": entries[d].record_hash,
                       "chunks": data.manifest["documents"][d]["chunks"], "source_file": doc.meta.source_file,
                       "path": entries[d].path, "record": entries[d].record}
                   for d, doc in data.documents.items()},
        duplicates=plan.copies,
        copies={c: {"record_hash": entries[c].record_hash, "content_hash": entries[c].content_hash,
                    "path": entries[c].path, "record": entries[c].record,
                    "meta": _meta_dict(_materialize(entries[c], old).meta)} for c in plan.copies},
        near_duplicates=summary.near_duplicates)
    write_generation(index_dir, data, settings)
    summary.chunks = len(data.chunks)


def _materialize(e: _Entry, old: IndexData | None) -> Document:
    """The Document of a planned entry: as read, or rebuilt from the live index."""
    if e.doc is not None:
        return e.doc
    assert old is not None and e.text_from is not None
    text = old.documents[e.text_from].text
    meta = _meta_of(e.meta) if e.meta is not None else old.documents[e.doc_id].meta
    return Document(e.doc_id, text, meta)


def _assemble(docs: dict[str, Document], old: IndexData | None, settings: Settings, progress: bool,
              embedder: Embedder | None, summary: IngestSummary, engine: Engine) -> IndexData:
    """Chunks, vectors and annotations for every document: carried over from `old` (the live generation,
    when built with the same settings) where the text is unchanged, computed for the rest."""
    old_rows: dict[str, list[int]] = {}
    if old is not None:
        for i, c in enumerate(old.chunks):
            old_rows.setdefault(c.doc_id, []).append(i)
    reusable = {d for d, doc in docs.items()
                if old is not None and d in old.documents and old.documents[d].text == doc.text and d in old_rows}
    chunker = Chunker(settings)
    chunks: list[Chunk] = []
    chunk_src: list[tuple[str, int]] = []  # ("old", row) or ("new", position among new chunks)
    new_chunks: list[Chunk] = []
    for doc_id, doc in docs.items():
        if doc_id in reusable:
            assert old is not None
            for row in old_rows[doc_id]:
                chunks.append(old.chunks[row])
                chunk_src.append(("old", row))
            continue
        for c in chunker.chunk(doc):
            chunks.append(c)
            chunk_src.append(("new", len(new_chunks)))
            new_chunks.append(c)
    # Sentences: rows of the old generation where the chunk is carried over, new rows for new text.
    sentence_keys: dict[tuple[str, int, int], int] = {}
    sentence_src: list[tuple[str, int]] = []
    new_sentences: list[str] = []
    sentence_rows: list[list[int]] = []
    carry_sentences = old is not None and old.sentence_vectors is not None and old.annotations is not None
    if settings.index_sentences:
        for c, (kind, row) in zip(chunks, chunk_src, strict=True):
            old_sent = old.sentence_rows[row] if kind == "old" and carry_sentences and old is not None else None
            rows = []
            for j, s in enumerate(c.sentences):
                key = (c.doc_id, s.start, s.end)
                if key not in sentence_keys:
                    sentence_keys[key] = len(sentence_keys)
                    if old_sent:
                        sentence_src.append(("old", old_sent[j]))
                    else:
                        sentence_src.append(("new", len(new_sentences)))
                        new_sentences.append(docs[c.doc_id].text[s.start:s.end])
                rows.append(sentence_keys[key])
            sentence_rows.append(rows)
    need_model = bool(new_chunks or new_sentences)
    summary.near_duplicates = near_duplicates(list(docs.values()), settings.near_duplicate_threshold)
    embedder = embedder or (get_embedder(settings) if need_model else None)
    if embedder is not None and need_model:  # the model's dimension only after: it may still be exporting
        out = engine.compute(embedder, [c.text for c in new_chunks], new_sentences, settings, progress)
        dim = embedder.dim
    else:
        dim = embedder.dim if embedder else (old.chunk_vectors.shape[1] if old is not None else 0)
        out = ModelOutput(np.zeros((0, dim), np.float32), np.zeros((0, dim), np.float32), [])
    new_vecs, new_sent_vecs = out.chunk_vectors, out.sentence_vectors
    summary.embedded = len(new_chunks)
    vectors = np.zeros((len(chunks), dim), dtype=np.float32)
    for i, (kind, row) in enumerate(chunk_src):
        vectors[i] = old.chunk_vectors[row] if kind == "old" and old is not None else new_vecs[row]
    sentence_vectors = annotations = None
    if settings.index_sentences:
        sentence_vectors = np.zeros((len(sentence_src), dim), dtype=np.float32)
        for i, (kind, row) in enumerate(sentence_src):
            sentence_vectors[i] = (old.sentence_vectors[row] if kind == "old" and old is not None  # type: ignore[index]
                                   else new_sent_vecs[row])
        annotations = _pack_annotations(sentence_src, out.parses, old)
    per_doc: dict[str, int] = {}
    for c in chunks:
        per_doc[c.doc_id] = per_doc.get(c.doc_id, 0) + 1
    manifest = {
        "format_version": FORMAT_VERSION, "model": model_id(settings.model), "dim": dim,
        "config": config_of(settings), "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "counts": {"documents": len(docs), "chunks": len(chunks), "sentences": len(sentence_src)},
        "documents": {d: {"chunks": per_doc.get(d, 0)} for d in docs},
    }
    return IndexData(manifest, dict(docs), chunks, vectors, sentence_rows, sentence_vectors, annotations)


def _pack_annotations(sources: list[tuple[str, int]], parsed: list[tuple[list, list, list]],
                      old: IndexData | None) -> AnnotationTable:
    """Every indexed sentence parsed once: carried over from the old generation, or as the engine parsed it
    (or found it in the annotation cache) for new text."""
    old_table = old.annotations if old is not None else None
    rows = [old_table.raw(row) if kind == "old" and old_table is not None else parsed[row] for kind, row in sources]
    return AnnotationTable.pack(rows)
