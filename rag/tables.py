"""A generation's documents and chunks as columns: UTF-8 blobs with byte offsets, and integer arrays.

Loaded memory-mapped (`np.load(mmap_mode="r")`), so an answering process holds no Python object per chunk
(a million `Chunk`s with their text and spans were most of its memory); `DocumentTable` and `ChunkTable`
make a lightweight `Document` or `Chunk` view when code asks for one, reading its fields from the columns.
Ingest keeps building plain dicts and lists; `of` turns them into columns when a generation is written.
"""

from __future__ import annotations

import json
import mmap
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

import numpy as np

from rag.types import Chunk, DocMeta, Document, Span

DOCUMENT_COLUMNS = ("text", "text_offsets", "chars")
CHUNK_COLUMNS = ("ids", "id_offsets", "doc", "start", "end", "n_tokens", "sentence_offsets",
                 "sentence_start", "sentence_end", "sentence_row")
META = "meta.jsonl"


def advise_random(arr: np.ndarray) -> np.ndarray:
    """Tell the kernel a memory map is read at random rows: a row not in the page cache is read alone, not
    with the readahead window around it (an index larger than memory re-ranks from disk)."""
    mm = getattr(arr, "_mmap", None)
    if mm is not None and hasattr(mmap, "MADV_RANDOM"):
        mm.madvise(mmap.MADV_RANDOM)
    return arr


def _plain(arr: np.ndarray) -> np.ndarray:
    """A memory map as a plain ndarray view of the same pages (slicing a np.memmap costs 10x more)."""
    return arr.view(np.ndarray) if isinstance(arr, np.memmap) else arr


def _load_column(path: Path, dtype: type) -> np.ndarray:
    arr = np.load(path, mmap_mode="r", allow_pickle=False)
    if arr.ndim != 1 or arr.dtype != dtype:
        raise ValueError(f"{path.parent.name}/{path.name} is {arr.dtype} with {arr.ndim} dimensions, "
                         f"expected one of {np.dtype(dtype)}")
    return _plain(arr)


def write_npy(path: Path, arr: np.ndarray) -> None:
    """np.save's format, written through Python's file object in bounded pieces, so a full disk raises
    OSError(ENOSPC) (numpy's own writer reports it without an errno)."""
    arr = np.ascontiguousarray(arr)
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, np.lib.format.header_data_from_array_1_0(arr))
        flat = arr.reshape(-1).view(np.uint8) if arr.size else np.zeros(0, np.uint8)
        for lo in range(0, len(flat), 1 << 24):
            fh.write(flat[lo : lo + (1 << 24)].data)


def _check_offsets(name: str, offsets: np.ndarray, n: int, total: int) -> None:
    """Offsets of n items into something `total` long: start at 0, never decrease, end at `total`."""
    if len(offsets) != n + 1 or offsets[0] != 0 or offsets[-1] != total or (np.diff(offsets) < 0).any():
        raise ValueError(f"{name} are not {n + 1} increasing offsets from 0 to {total}")


class Strings(Sequence[str]):
    """Strings stored as one UTF-8 blob (uint8) and their byte offsets (int64, one more than strings)."""

    def __init__(self, blob: np.ndarray, offsets: np.ndarray) -> None:
        self.blob = blob
        self.offsets = offsets

    @classmethod
    def of(cls, values: Sequence[str]) -> Strings:
        encoded = [v.encode("utf-8") for v in values]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        return cls(np.frombuffer(b"".join(encoded), dtype=np.uint8), offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> list[str]: ...
    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        lo, hi = self.offsets[i], self.offsets[i + 1]
        return self.blob[lo:hi].tobytes().decode("utf-8")

    def fixed_width(self) -> np.ndarray:
        """The strings' bytes as one fixed-width bytes array (for vectorised sorting and comparison)."""
        lengths = np.diff(self.offsets)
        width = max(1, int(lengths.max(initial=0)))
        grid = np.zeros((len(self), width), dtype=np.uint8)
        grid[np.arange(width) < lengths[:, None]] = self.blob  # the strings lie back to back, in row order
        return grid.view(f"S{width}").ravel()


# ---------------------------------------------------------------- documents


class DocumentView(Document):
    """A Document whose fields are read from its DocumentTable when asked (the text decoded each time)."""

    __slots__ = ("_table", "_row")
    _table: DocumentTable
    _row: int

    def __init__(self, table: DocumentTable, row: int) -> None:  # noqa: D107 -- not the dataclass's fields
        object.__setattr__(self, "_table", table)
        object.__setattr__(self, "_row", row)

    @property  # type: ignore[override]
    def doc_id(self) -> str:
        return self._table.ids[self._row]

    @property  # type: ignore[override]
    def text(self) -> str:
        return self._table.text(self._row)

    @property  # type: ignore[override]
    def meta(self) -> DocMeta:
        return self._table.metas[self._row]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Document):
            return NotImplemented
        return (self.doc_id, self.text, self.meta) == (other.doc_id, other.text, other.meta)

    def __hash__(self) -> int:
        return hash((self.doc_id, self.text, self.meta))

    def __reduce__(self) -> tuple[Any, ...]:
        return Document, (self.doc_id, self.text, self.meta)


class DocumentTable(Mapping[str, Document]):
    """Documents by id: ids and metadata in memory, texts in one (memory-mapped) UTF-8 blob."""

    def __init__(self, ids: list[str], metas: list[DocMeta], texts: Strings, chars: np.ndarray) -> None:
        self.ids = ids
        self.metas = metas
        self.texts = texts
        self.chars = chars  # characters of each text, for offset checks without decoding
        self.rows = {d: i for i, d in enumerate(ids)}

    @classmethod
    def of(cls, documents: Mapping[str, Document]) -> DocumentTable:
        if isinstance(documents, DocumentTable):
            return documents
        docs = list(documents.values())
        return cls([d.doc_id for d in docs], [d.meta for d in docs], Strings.of([d.text for d in docs]),
                   np.array([len(d.text) for d in docs], dtype=np.int64))

    def text(self, row: int) -> str:
        return self.texts[row]

    def view(self, row: int) -> DocumentView:
        return DocumentView(self, row)

    def __getitem__(self, doc_id: str) -> Document:
        return DocumentView(self, self.rows[doc_id])

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self.rows

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    def __len__(self) -> int:
        return len(self.ids)

    def published(self) -> np.ndarray:
        """Each document's publication date ("" when unknown), as a numpy string array by row."""
        return np.array([m.published or "" for m in self.metas], dtype=str)

    def save(self, folder: Path) -> None:
        folder.mkdir()
        (folder / META).write_bytes(_jsonl({"doc_id": d, "meta": _meta_dict(m)} for d, m in zip(self.ids, self.metas,
                                                                                                  strict=True)))
        for name, arr in (("text", self.texts.blob), ("text_offsets", self.texts.offsets), ("chars", self.chars)):
            write_npy(folder / f"{name}.npy", arr)

    @classmethod
    def load(cls, folder: Path) -> DocumentTable:
        ids, metas = [], []
        for rec in read_jsonl(folder / META):
            meta = rec["meta"]
            meta["languages"] = tuple(meta.get("languages") or ())
            ids.append(rec["doc_id"])
            metas.append(DocMeta(**meta))
        texts = Strings(_load_column(folder / "text.npy", np.uint8), _load_column(folder / "text_offsets.npy", np.int64))
        chars = _load_column(folder / "chars.npy", np.int64)
        _check_offsets("text offsets", texts.offsets, len(ids), len(texts.blob))
        if len(chars) != len(ids) or (chars < 0).any() or (chars > np.diff(texts.offsets)).any():
            raise ValueError(f"chars.npy does not give the length of each of the {len(ids)} texts")
        if len(set(ids)) != len(ids):
            raise ValueError(f"{META} repeats a document id")
        return cls(ids, metas, texts, chars)


# ---------------------------------------------------------------- chunks


class ChunkView(Chunk):
    """A Chunk whose fields are read from its ChunkTable when asked; text and sentences kept once read."""

    __slots__ = ("_table", "_row", "_text", "_sentences")
    _table: ChunkTable
    _row: int
    _text: str | None
    _sentences: tuple[Span, ...] | None

    def __init__(self, table: ChunkTable, row: int) -> None:  # noqa: D107 -- not the dataclass's fields
        object.__setattr__(self, "_table", table)
        object.__setattr__(self, "_row", row)
        object.__setattr__(self, "_text", None)
        object.__setattr__(self, "_sentences", None)

    @property  # type: ignore[override]
    def chunk_id(self) -> str:
        return self._table.ids[self._row]

    @property  # type: ignore[override]
    def doc_id(self) -> str:
        return self._table.documents.ids[int(self._table.doc[self._row])]

    @property  # type: ignore[override]
    def start(self) -> int:
        return int(self._table.start[self._row])

    @property  # type: ignore[override]
    def end(self) -> int:
        return int(self._table.end[self._row])

    @property  # type: ignore[override]
    def n_tokens(self) -> int:
        return int(self._table.n_tokens[self._row])

    @property  # type: ignore[override]
    def text(self) -> str:
        if self._text is None:
            object.__setattr__(self, "_text", self._table.text(self._row))
        return self._text  # type: ignore[return-value]

    @property  # type: ignore[override]
    def sentences(self) -> tuple[Span, ...]:
        if self._sentences is None:
            object.__setattr__(self, "_sentences", self._table.sentences(self._row))
        return self._sentences  # type: ignore[return-value]

    def _fields(self) -> tuple[Any, ...]:
        return (self.chunk_id, self.doc_id, self.start, self.end, self.text, self.sentences, self.n_tokens)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Chunk):
            return NotImplemented
        return self._fields() == (other.chunk_id, other.doc_id, other.start, other.end, other.text,
                                  other.sentences, other.n_tokens)

    def __hash__(self) -> int:
        return hash(self._fields())

    def __reduce__(self) -> tuple[Any, ...]:
        return Chunk, self._fields()


@dataclass(eq=False)
class ChunkTable(Sequence[Chunk]):
    """Chunks by row: ids as a UTF-8 blob, offsets and sentence spans (and their sentence-vector rows) as
    integer columns; `sentence_offsets[i]:sentence_offsets[i+1]` are chunk i's sentences (row -1: none stored)."""

    documents: DocumentTable
    ids: Strings
    doc: np.ndarray
    start: np.ndarray
    end: np.ndarray
    n_tokens: np.ndarray
    sentence_offsets: np.ndarray
    sentence_start: np.ndarray
    sentence_end: np.ndarray
    sentence_row: np.ndarray
    _by_doc: tuple[np.ndarray, np.ndarray] | None = None  # rows sorted by document, and each document's bounds

    @classmethod
    def of(cls, chunks: Sequence[Chunk], sentence_rows: Sequence[Sequence[int]], documents: DocumentTable
           ) -> ChunkTable:
        """Columns of chunks held as objects (as ingest builds them); `sentence_rows` may be empty (none)."""
        if isinstance(chunks, ChunkTable) and chunks.documents is documents:
            return chunks
        rows = sentence_rows or [()] * len(chunks)
        n_sent = [len(c.sentences) for c in chunks]
        offsets = np.zeros(len(chunks) + 1, dtype=np.int64)
        np.cumsum(n_sent, out=offsets[1:])
        spans = np.array([(s.start, s.end) for c in chunks for s in c.sentences], dtype=np.int64).reshape(-1, 2)
        row_col = np.full(int(offsets[-1]), -1, dtype=np.int64)
        for i, r in enumerate(rows):
            if len(r):
                if len(r) != n_sent[i]:
                    raise ValueError(f"chunk {chunks[i].chunk_id} has {n_sent[i]} sentences but {len(r)} rows")
                row_col[offsets[i] : offsets[i + 1]] = r
        col = lambda f: np.array([f(c) for c in chunks], dtype=np.int64)  # noqa: E731
        return cls(documents, Strings.of([c.chunk_id for c in chunks]), col(lambda c: documents.rows[c.doc_id]),
                   col(lambda c: c.start), col(lambda c: c.end), col(lambda c: c.n_tokens), offsets,
                   spans[:, 0].copy(), spans[:, 1].copy(), row_col)

    def __len__(self) -> int:
        return len(self.doc)

    @overload
    def __getitem__(self, i: int) -> Chunk: ...
    @overload
    def __getitem__(self, i: slice) -> list[Chunk]: ...
    def __getitem__(self, i: int | slice) -> Chunk | list[Chunk]:
        if isinstance(i, slice):
            return [ChunkView(self, j) for j in range(*i.indices(len(self)))]
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"chunk row {i} out of range ({n} chunks)")
        return ChunkView(self, int(i) % n)

    def __iter__(self) -> Iterator[Chunk]:
        return (ChunkView(self, i) for i in range(len(self)))

    def text(self, row: int) -> str:
        return self.documents.text(int(self.doc[row]))[int(self.start[row]) : int(self.end[row])]

    def sentences(self, row: int) -> tuple[Span, ...]:
        lo, hi = self.sentence_offsets[row], self.sentence_offsets[row + 1]
        return tuple(Span(s, e) for s, e in zip(self.sentence_start[lo:hi].tolist(), self.sentence_end[lo:hi].tolist(),
                                                strict=True))

    def sentence_rows(self, row: int) -> list[int]:
        """Rows of chunk `row`'s sentences in the sentence vectors and annotations ([] when none stored)."""
        rows = self.sentence_row[self.sentence_offsets[row] : self.sentence_offsets[row + 1]]
        return [] if len(rows) == 0 or rows[0] < 0 else rows.tolist()

    def rows_of_doc(self, doc_id: str) -> np.ndarray:
        """The chunk rows of one document, in row order (empty for an unknown id)."""
        if self._by_doc is None:
            order = np.argsort(self.doc, kind="stable")
            bounds = np.searchsorted(self.doc[order], np.arange(len(self.documents) + 1))
            self._by_doc = (order, bounds)  # computed once; a race only computes it twice
        order, bounds = self._by_doc
        d = self.documents.rows.get(doc_id)
        return order[bounds[d] : bounds[d + 1]] if d is not None else order[:0]

    def row_of(self, chunk: Chunk) -> int:
        """The row of a chunk of this table (a view of it, or any Chunk with the same id)."""
        if isinstance(chunk, ChunkView) and chunk._table is self:
            return chunk._row
        for row in self.rows_of_doc(chunk.doc_id).tolist():
            if self.ids[row] == chunk.chunk_id:
                return row
        raise KeyError(f"chunk {chunk.chunk_id!r} is not in this index")

    def row_lists(self) -> SentenceRows:
        return SentenceRows(self)

    def save(self, folder: Path) -> None:
        folder.mkdir()
        columns = {"ids": self.ids.blob, "id_offsets": self.ids.offsets, "doc": self.doc, "start": self.start,
                   "end": self.end, "n_tokens": self.n_tokens, "sentence_offsets": self.sentence_offsets,
                   "sentence_start": self.sentence_start, "sentence_end": self.sentence_end,
                   "sentence_row": self.sentence_row}
        for name, arr in columns.items():
            write_npy(folder / f"{name}.npy", arr)

    @classmethod
    def load(cls, folder: Path, documents: DocumentTable) -> ChunkTable:
        """Read the columns memory-mapped and check they describe chunks inside their documents."""
        col = {name: _load_column(folder / f"{name}.npy", np.uint8 if name == "ids" else np.int64)
               for name in CHUNK_COLUMNS}
        table = cls(documents, Strings(col["ids"], col["id_offsets"]),
                    *(col[name] for name in CHUNK_COLUMNS[2:]))
        table.check()
        return table

    def check(self) -> None:
        """Offsets within documents, sentences within chunks, all or none of a chunk's rows, unique ids."""
        n, m = len(self), len(self.sentence_start)
        for name in ("start", "end", "n_tokens"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"chunk column {name} has {len(getattr(self, name))} rows, doc has {n}")
        if len(self.sentence_end) != m or len(self.sentence_row) != m:
            raise ValueError("the sentence columns differ in length")
        _check_offsets("chunk id offsets", self.ids.offsets, n, len(self.ids.blob))
        _check_offsets("sentence offsets", self.sentence_offsets, n, m)
        if n and ((self.doc < 0) | (self.doc >= len(self.documents))).any():
            raise ValueError("a chunk points at a document row that does not exist")
        chars = self.documents.chars[self.doc] if n else self.doc
        bad = (self.start < 0) | (self.start > self.end) | (self.end > chars)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"chunk {self.ids[i]} spans [{self.start[i]}, {self.end[i]}) outside its document "
                             f"({chars[i]} characters)")
        owner = np.repeat(np.arange(n), np.diff(self.sentence_offsets))
        bad_s = ((self.sentence_start > self.sentence_end) | (self.sentence_start < self.start[owner])
                 | (self.sentence_end > self.end[owner]))
        if bad_s.any():
            raise ValueError(f"chunk {self.ids[int(owner[np.flatnonzero(bad_s)[0]])]} has a sentence outside it")
        has = np.diff(self.sentence_offsets) > 0
        if has.any():
            starts = self.sentence_offsets[:-1][has]
            lo = np.minimum.reduceat(self.sentence_row, starts)
            if ((lo < 0) & (np.maximum.reduceat(self.sentence_row, starts) >= 0)).any():
                raise ValueError("a chunk has sentence rows for some of its sentences only")
        if n and len(np.unique(self.ids.fixed_width())) != n:
            raise ValueError("repeats a chunk id")


class SentenceRows(Sequence[list[int]]):
    """Per chunk row, its sentences' rows (what ingest's `IndexData.sentence_rows` lists hold)."""

    def __init__(self, table: ChunkTable) -> None:
        self._table = table

    def __len__(self) -> int:
        return len(self._table)

    @overload
    def __getitem__(self, i: int) -> list[int]: ...
    @overload
    def __getitem__(self, i: slice) -> list[list[int]]: ...
    def __getitem__(self, i: int | slice) -> list[int] | list[list[int]]:
        if isinstance(i, slice):
            return [self._table.sentence_rows(j) for j in range(*i.indices(len(self)))]
        return self._table.sentence_rows(i)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(self) == len(other) and all(a == list(b) for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]


# ---------------------------------------------------------------- JSON Lines (document metadata)

_LINE_BREAKS = {"\u0085": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}  # json.dumps leaves them raw


def _jsonl(records: Iterator[dict[str, Any]]) -> bytes:
    """JSON Lines that any line splitter reads back: only "\\n" ends a line (U+2028 & co. are escaped)."""
    out = []
    for rec in records:
        line = json.dumps(rec, ensure_ascii=False)
        for raw, escaped in _LINE_BREAKS.items():
            line = line.replace(raw, escaped)
        out.append(line)
    return "\n".join(out).encode("utf-8")


def read_jsonl(path: Path) -> list[Any]:
    """Records of a JSON Lines file, split on "\\n" only (str.splitlines also splits inside strings)."""
    return [json.loads(line) for line in path.read_bytes().decode("utf-8").split("\n") if line.strip()]


def _meta_dict(meta: DocMeta) -> dict[str, Any]:
    out = {k: getattr(meta, k) for k in DocMeta.__slots__}
    out["languages"] = list(meta.languages)
    return out
