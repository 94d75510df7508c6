"""Documents and chunks stored as memory-mapped columns (rag/tables.py): they read back exactly as written,
through views that behave as Documents and Chunks, and malformed columns are refused on load."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from rag.chunking import Chunker
from rag.config import Settings
from rag.embedding import Embedder
from rag.errors import CorruptIndexError
from rag.index import IndexData, IndexStore, current_generation, load_generation, write_generation, write_lock
from rag.ingest import ingest
from rag.readers import read_paths
from rag.tables import ChunkTable, ChunkView, DocumentTable, DocumentView, Strings
from rag.types import Chunk, DocMeta, Document, Span

TEXTS = {
    "plain": "The council approved 12 million euros. Work starts in May.",
    "wide": "東京都は5億円を承認した。🚋 The tram runs\u2028at night. Ça coûte 3 € le billet.",
    "empty-meta": "One sentence only.",
}


def hand_built() -> tuple[dict[str, Document], list[Chunk], list[list[int]]]:
    """Three documents (one with CJK, an emoji and U+2028) and four chunks, one of them without sentence rows."""
    docs = {d: Document(d, t, DocMeta(title=f"Title of {d}", publisher="Post" if d != "empty-meta" else None,
                                      published="2024-05-01" if d == "plain" else None, languages=("en",)))
            for d, t in TEXTS.items()}
    plain, wide = TEXTS["plain"], TEXTS["wide"]
    cut = plain.index(" Work") + 1
    tram = wide.index("The tram")
    chunks = [
        Chunk("plain#0", "plain", 0, len(plain), plain, (Span(0, cut - 1), Span(cut, len(plain))), 14),
        Chunk("plain#1", "plain", cut, len(plain), plain[cut:], (Span(cut, len(plain)),), 5),
        Chunk("wide#0", "wide", 0, len(wide), wide, (Span(0, tram - 1), Span(tram, len(wide))), 30),
        Chunk("empty-meta#0", "empty-meta", 0, 18, TEXTS["empty-meta"], (Span(0, 18),), 4),
    ]
    return docs, chunks, [[0, 1], [1], [2, 3], []]


def fields(c: Chunk) -> tuple:
    return (c.chunk_id, c.doc_id, c.start, c.end, c.text, c.sentences, c.n_tokens)


def test_strings_round_trip_any_unicode() -> None:
    values = ["", "a", "東京", "🚋\u2028x", "e\u0301"]
    s = Strings.of(values)
    assert list(s) == values and s[1:3] == values[1:3] and len(s) == 5
    assert s.fixed_width().tolist() == [v.encode() for v in values]


def test_columns_read_back_the_same_documents_chunks_and_rows(tmp_path: Path) -> None:
    docs, chunks, rows = hand_built()
    table = DocumentTable.of(docs)
    ct = ChunkTable.of(chunks, rows, table)
    table.save(tmp_path / "documents")
    ct.save(tmp_path / "chunks")
    docs_back = DocumentTable.load(tmp_path / "documents")
    back = ChunkTable.load(tmp_path / "chunks", docs_back)
    assert isinstance(back.doc, np.ndarray) and not isinstance(back.doc, np.memmap)  # plain views of the map
    assert list(docs_back) == list(docs) and len(docs_back) == 3 and "wide" in docs_back and "x" not in docs_back
    for d, doc in docs.items():
        view = docs_back[d]
        assert isinstance(view, DocumentView) and isinstance(view, Document)
        assert (view.doc_id, view.text, view.meta) == (doc.doc_id, doc.text, doc.meta)
        assert view == doc and doc == view and view.content_hash == doc.content_hash
    assert len(back) == 4
    for i, c in enumerate(chunks):
        view = back[i]
        assert isinstance(view, ChunkView) and isinstance(view, Chunk)
        assert fields(view) == fields(c) and view == c and c == view and hash(view) == hash(c)
        assert docs_back[c.doc_id].text[view.start : view.end] == view.text
        assert back.sentence_rows(i) == rows[i] and back.row_lists()[i] == rows[i]
        assert back.row_of(view) == i and back.row_of(c) == i  # a plain Chunk is found by its id
    assert [fields(c) for c in back] == [fields(c) for c in chunks] and back[-1] == chunks[-1]
    assert back.row_lists() == rows and back.row_lists() == ChunkTable.of(chunks, rows, table).row_lists()
    assert back.row_lists() != [*rows[:3], [0]]
    assert back.rows_of_doc("plain").tolist() == [0, 1] and back.rows_of_doc("nope").tolist() == []
    with pytest.raises(KeyError):
        back.row_of(Chunk("plain#9", "plain", 0, 1, "T", (), 1))
    with pytest.raises(IndexError):
        back[4]
    plain = pickle.loads(pickle.dumps(back[2]))
    assert type(plain) is Chunk and fields(plain) == fields(chunks[2])
    assert type(pickle.loads(pickle.dumps(docs_back["wide"]))) is Document


def _saved(tmp_path: Path) -> tuple[Path, DocumentTable]:
    docs, chunks, rows = hand_built()
    table = DocumentTable.of(docs)
    ChunkTable.of(chunks, rows, table).save(tmp_path / "chunks")
    return tmp_path / "chunks", table


@pytest.mark.parametrize(("column", "change", "reason"), [
    ("end", lambda a: a.__setitem__(0, 500), "outside its document"),
    ("doc", lambda a: a.__setitem__(1, 7), "document row that does not exist"),
    ("sentence_start", lambda a: a.__setitem__(0, 40), "has a sentence outside it"),
    ("sentence_row", lambda a: a.__setitem__(0, -1), "sentence rows for some of its sentences only"),
    ("id_offsets", lambda a: a.__setitem__(2, a[1]), "repeats a chunk id"),  # "plain#1" becomes ""
    ("sentence_offsets", lambda a: a.__setitem__(1, 9), "sentence offsets are not 5 increasing"),
])
def test_malformed_chunk_columns_are_refused(tmp_path: Path, column: str, change, reason: str) -> None:
    folder, table = _saved(tmp_path)
    if column == "id_offsets":  # two empty ids: blob and offsets stay consistent, the ids repeat
        ids = Strings.of(["plain#0", "", "", "empty-meta#0"])
        np.save(folder / "ids.npy", ids.blob)
        np.save(folder / "id_offsets.npy", ids.offsets)
    else:
        arr = np.load(folder / f"{column}.npy").copy()
        change(arr)
        np.save(folder / f"{column}.npy", arr)
    with pytest.raises(ValueError, match=reason):
        ChunkTable.load(folder, table)


def test_a_column_of_another_type_is_refused(tmp_path: Path) -> None:
    folder, table = _saved(tmp_path)
    np.save(folder / "start.npy", np.load(folder / "start.npy").astype(np.float64))
    with pytest.raises(ValueError, match="start.npy is float64"):
        ChunkTable.load(folder, table)


def test_document_texts_and_lengths_must_agree(tmp_path: Path) -> None:
    docs, _, _ = hand_built()
    DocumentTable.of(docs).save(tmp_path / "documents")
    chars = np.load(tmp_path / "documents" / "chars.npy")
    chars[1] = 10_000
    np.save(tmp_path / "documents" / "chars.npy", chars)
    with pytest.raises(ValueError, match="chars.npy does not give the length"):
        DocumentTable.load(tmp_path / "documents")


def test_a_generation_of_hand_built_chunks_round_trips_and_its_store_reads_them(tmp_path: Path,
                                                                                settings: Settings) -> None:
    docs, chunks, rows = hand_built()
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(4, 8)).astype(np.float32)
    sent = rng.normal(size=(4, 8)).astype(np.float32)
    manifest = {"model": "m", "dim": 8, "config": {}, "built_at": "now",
                "counts": {"documents": 3, "chunks": 4, "sentences": 4},
                "documents": {d: {"chunks": sum(c.doc_id == d for c in chunks)} for d in docs}}
    s = settings.with_overrides(index_dir=tmp_path / "index")
    with write_lock(s.index_dir):
        gen = write_generation(s.index_dir, IndexData(manifest, dict(docs), list(chunks), vecs, rows, sent), s)
    assert gen == current_generation(s.index_dir)
    data = load_generation(gen)
    assert [fields(c) for c in data.chunks] == [fields(c) for c in chunks]
    assert [list(r) for r in data.sentence_rows] == rows
    store = IndexStore.load(s.index_dir, s)
    assert np.array_equal(store.sentence_vectors(store.chunks[2]), sent[[2, 3]])
    assert np.array_equal(store.sentence_vectors(chunks[0]), sent[[0, 1]])  # a plain Chunk works too
    assert store.sentence_vectors(store.chunks[3]).shape == (0, 8)
    assert [fields(c) for c in store.chunks_of("plain")] == [fields(c) for c in chunks[:2]]
    assert store.documents["wide"].text == TEXTS["wide"]
    assert store.bm25("tram").argmax() == 2


def test_ingested_chunks_are_the_chunkers_own(tmp_path: Path, settings: Settings, embedder: Embedder) -> None:
    """What ingest writes and the store reads back equals what the chunker made, offset for offset."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in TEXTS.items():
        (corpus / f"{name}.txt").write_text(f"{text}\n\n{text} Again: {name}.\n", encoding="utf-8")
    s = settings.with_overrides(corpus_dir=corpus, index_dir=tmp_path / "index")
    ingest([corpus], s, embedder=embedder)
    store = IndexStore.load(s.index_dir, s)
    chunker = Chunker(s)
    expected = [c for d in sorted(read_paths([corpus]).documents, key=lambda d: d.doc_id) for c in chunker.chunk(d)]
    got = sorted(store.chunks, key=lambda c: c.chunk_id)
    assert [fields(c) for c in got] == [fields(c) for c in sorted(expected, key=lambda c: c.chunk_id)]
    assert store.documents["wide"].text.startswith(TEXTS["wide"])
    n_sent = store.manifest["counts"]["sentences"]
    assert sorted({r for c in store.chunks for r in store.chunks.sentence_rows(store.chunks.row_of(c))}) \
        == list(range(n_sent))


def test_a_corrupt_generation_column_is_refused_by_the_store(tmp_path: Path, settings: Settings) -> None:
    docs, chunks, rows = hand_built()
    manifest = {"model": "m", "dim": 4, "config": {}, "built_at": "now",
                "counts": {"documents": 3, "chunks": 4, "sentences": 4}, "documents": {d: {} for d in docs}}
    s = settings.with_overrides(index_dir=tmp_path / "index")
    with write_lock(s.index_dir):
        gen = write_generation(s.index_dir, IndexData(manifest, dict(docs), list(chunks),
                                                      np.eye(4, dtype=np.float32), rows), s)
    offsets = gen / "documents" / "text_offsets.npy"
    offsets.write_bytes(offsets.read_bytes()[:-8] + np.int64(3).tobytes())
    with pytest.raises(CorruptIndexError, match="documents/text_offsets.npy does not match its checksum"):
        IndexStore.load(s.index_dir, s)
