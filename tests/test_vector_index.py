"""The vector index switch: exact below RAG_APPROX_THRESHOLD, IVF-PQ shards on disk above it, both verified."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import faiss
import numpy as np
import pytest

from rag.assistant import Assistant
from rag.config import Settings
from rag.embedding import Embedder
from rag.errors import CorruptIndexError
from rag.index import IndexStore, current_generation, load_data
from rag.ingest import ingest
from rag.lexical import Lexical
from rag.retrieval import Retriever
from rag.vector_index import SHARD_DIR, SearchParams, VectorIndex, auto_nlist, build, build_ivfpq

TOPICS = ["bridge repair", "school roof", "tram line", "harbour wall", "library wing", "water plant",
          "bus depot", "sports hall", "fire station", "cycle lanes", "market square", "flood barrier"]


def clustered(n: int, dim: int = 384, clusters: int = 60, noise: float = 0.05, seed: int = 0) -> np.ndarray:
    """Unit vectors around random centres: shaped like embeddings (topics), not uniform noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)).astype(np.float32)
    x = centres[rng.integers(0, clusters, n)] + rng.normal(0, noise * np.sqrt(dim) / 4, (n, dim)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def recall_at_10(index: VectorIndex, data: np.ndarray, queries: np.ndarray,
                 allowed: np.ndarray | None = None) -> float:
    exact = faiss.IndexFlatIP(data.shape[1])
    exact.add(data if allowed is None else data[allowed])
    ids = np.arange(len(data)) if allowed is None else np.flatnonzero(allowed)
    _, truth = exact.search(queries, 10)
    found = [set(index.search(q, 10, allowed)[0].tolist()) for q in queries]
    return float(np.mean([len(f & set(ids[t].tolist())) / 10 for f, t in zip(found, truth, strict=True)]))


def test_auto_nlist_is_a_power_of_two_near_twice_the_root() -> None:
    assert auto_nlist(1_000_000) == 2048
    assert auto_nlist(100_000) == 512
    assert auto_nlist(1) == 2
    assert auto_nlist(0) == 1


def test_ivfpq_recall_against_exact_on_synthetic_vectors() -> None:
    data, queries = clustered(4000), clustered(100, seed=1)
    settings = Settings(approx_threshold=1000, ivf_nlist=64, ivf_nprobe=8, ivf_refine=100, vector_shard_rows=1500,
                        ivf_train_size=2560, exact_filter_rows=100)
    index = build(data, settings)
    assert index.kind == "ivfpq" and len(index.shards) == 3 and index.ntotal == 4000
    assert index.describe() == {"kind": "ivfpq", "shards": 3, "nlist": 64, "m": 48}
    assert recall_at_10(index, data, queries) >= 0.9
    pq_only = VectorIndex("ivfpq", index.shards, vectors=None, params=index.params)  # no exact re-ranking
    assert recall_at_10(pq_only, data, queries) < recall_at_10(index, data, queries)
    allowed = np.zeros(len(data), dtype=bool)
    allowed[::3] = True  # a broad filter goes through the IVF lists with a selector
    rows, _ = index.search(queries[0], 10, allowed)
    assert len(rows) == 10 and allowed[rows].all()
    assert recall_at_10(index, data, queries[:30], allowed) >= 0.9
    narrow = np.zeros(len(data), dtype=bool)
    narrow[[5, 17, 400, 3999]] = True  # fewer rows than exact_filter_rows: exact over them
    rows, scores = index.search(queries[0], 10, narrow)
    assert sorted(rows.tolist()) == [5, 17, 400, 3999]
    np.testing.assert_allclose(scores, data[rows] @ queries[0], rtol=1e-5)
    assert list(scores) == sorted(scores, reverse=True)


def test_below_threshold_stays_exact() -> None:
    data = clustered(500)
    index = build(data, Settings(approx_threshold=500))
    assert index.kind == "flat" and isinstance(index.shards[0], faiss.IndexFlatIP)
    q = data[7]
    rows, scores = index.search(q, 5)
    assert rows[0] == 7 and scores[0] == pytest.approx(1.0, abs=1e-5)


def test_a_pq_m_that_does_not_divide_the_dimension_is_refused() -> None:
    with pytest.raises(ValueError, match="RAG_IVF_PQ_M=7 must divide the vector dimension 384"):
        build_ivfpq(clustered(300), Settings(approx_threshold=0, ivf_pq_m=7))


@pytest.fixture(scope="module")
def twin_indexes(tmp_path_factory: pytest.TempPathFactory, settings: Settings, embedder: Embedder
                 ) -> tuple[Settings, Settings]:
    """One small corpus indexed twice: exact (the default) and past a zero threshold (IVF-PQ in shards)."""
    root = tmp_path_factory.mktemp("twin")
    corpus = root / "corpus"
    corpus.mkdir()
    for i, topic in enumerate(TOPICS):
        (corpus / f"t{i}.txt").write_text(
            f"Council funds the {topic}\n\nThe council approved {20 + i} million euros for the {topic} on "
            f"Monday. Officials said the {topic} opens in {2026 + i % 3}.\n")
    exact = settings.with_overrides(corpus_dir=corpus, index_dir=root / "exact")
    approx = exact.with_overrides(index_dir=root / "approx", approx_threshold=0, vector_shard_rows=5)
    for s in (exact, approx):
        ingest([corpus], s, embedder=embedder)
    return exact, approx


def test_small_index_is_exact_and_large_one_sharded_on_disk(twin_indexes) -> None:
    exact, approx = twin_indexes
    small = load_data(exact.index_dir)
    assert small.manifest["index_type"] == "flat" and "faiss.index" in small.manifest["artifacts"]
    assert SHARD_DIR not in small.manifest["artifacts"]
    assert not isinstance(small.chunk_vectors, np.memmap) and small.sentence_vectors.dtype == np.float32

    large = load_data(approx.index_dir)
    m = large.manifest
    assert m["index_type"] == "ivfpq" and SHARD_DIR in m["artifacts"] and "faiss.index" not in m["artifacts"]
    shards = sorted(f for f in m["files"] if f.startswith(SHARD_DIR + "/"))
    assert shards == [f"{SHARD_DIR}/shard-00{i}.index" for i in range(3)]  # 12 chunks, 5 a shard
    assert m["vector_index"]["shards"] == 3 and large.faiss.ntotal == len(large.chunks) == 12
    assert isinstance(large.chunk_vectors, np.memmap)
    assert large.sentence_vectors.dtype == np.float16 and isinstance(large.sentence_vectors, np.memmap)
    assert isinstance(large.faiss.shards[0].invlists, faiss.InvertedLists)
    assert isinstance(faiss.downcast_InvertedLists(large.faiss.shards[0].invlists), faiss.OnDiskInvertedLists)
    assert isinstance(large.lexical._model.scores["data"], np.memmap)  # BM25 memory-mapped too
    np.testing.assert_allclose(large.sentence_vectors, small.sentence_vectors, atol=1e-3)


def test_both_indexes_rank_alike(twin_indexes, embedder: Embedder) -> None:
    """All lists probed and every candidate re-ranked exactly: the approximate index gives the exact ranking."""
    stores = [IndexStore.load(s.index_dir, s) for s in twin_indexes]
    retrievers = [Retriever(store, embedder, s) for store, s in zip(stores, twin_indexes, strict=True)]
    for query in ("tram line money", "When does the flood barrier open?", "school roof euros"):
        hits = [r.search(query, k=5, mode="dense") for r in retrievers]
        assert [h.chunk.chunk_id for h in hits[0]] == [h.chunk.chunk_id for h in hits[1]]
        np.testing.assert_allclose([h.score for h in hits[0]], [h.score for h in hits[1]], rtol=1e-5)
        hybrid = [r.search(query, k=5) for r in retrievers]
        assert [h.chunk.chunk_id for h in hybrid[0]] == [h.chunk.chunk_id for h in hybrid[1]]


def _gen(s: Settings) -> Path:
    gen = current_generation(s.index_dir)
    assert gen is not None
    return gen


def test_a_corrupt_shard_is_refused_like_any_artifact(twin_indexes, tmp_path: Path) -> None:


    _, approx = twin_indexes
    copy = approx.with_overrides(index_dir=tmp_path / "index")
    shutil.copytree(approx.index_dir, copy.index_dir)
    shard = _gen(copy) / SHARD_DIR / "shard-001.index"
    raw = bytearray(shard.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    shard.write_bytes(bytes(raw))
    with pytest.raises(CorruptIndexError, match=r"faiss_shards/shard-001.index does not match its checksum"):
        load_data(copy.index_dir)
    shard.write_bytes(b"not a faiss index")  # checksum updated: the reader itself must refuse it
    manifest_path = _gen(copy) / "manifest.json"
    manifest = json.loads(manifest_path.read_text())


    manifest["files"][f"{SHARD_DIR}/shard-001.index"] = {"sha256": hashlib.sha256(shard.read_bytes()).hexdigest(),
                                                         "bytes": shard.stat().st_size}
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(CorruptIndexError, match="is corrupt"):
        load_data(copy.index_dir)
    (shard.parent / "shard-001.index").unlink()
    del manifest["files"][f"{SHARD_DIR}/shard-001.index"]
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(CorruptIndexError, match="faiss_shards holds 7 rows, manifest.json counts 12 chunks"):
        load_data(copy.index_dir)


def test_a_manifest_listing_both_or_no_vector_index_is_refused(twin_indexes, tmp_path: Path) -> None:


    _, approx = twin_indexes
    copy = approx.with_overrides(index_dir=tmp_path / "index")
    shutil.copytree(approx.index_dir, copy.index_dir)
    path = _gen(copy) / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["artifacts"] = [a for a in manifest["artifacts"] if a != SHARD_DIR]
    path.write_text(json.dumps(manifest))
    with pytest.raises(CorruptIndexError, match="must list one vector index"):
        load_data(copy.index_dir)


def test_float16_sentence_vectors_leave_answers_unchanged(seed_assistant: Assistant, settings: Settings,
                                                          embedder: Embedder) -> None:
    """The composer's answers over the seed corpus with its sentence vectors in float16, as large indexes
    store them, against float32: the same answer, citations and confidence for every seed question."""
    from eval.dataset import load_set

    store = IndexStore.load(settings.index_dir, settings)
    store._data.sentence_vectors = store._data.sentence_vectors.astype(np.float16)
    half = Assistant(settings, store, embedder)
    questions = [item.question for item in load_set(Path(__file__).parent.parent / "eval" / "seed.jsonl")]
    changed = []
    for q in questions[:30]:
        a, b = seed_assistant.ask(q), half.ask(q)
        if (a.answer, [c.quote for c in a.citations]) != (b.answer, [c.quote for c in b.citations]):
            changed.append(q)
    assert not changed, f"float16 sentence vectors changed {len(changed)} answers: {changed[:3]}"


def test_search_params_come_from_settings(twin_indexes) -> None:
    _, approx = twin_indexes
    store = IndexStore.load(approx.index_dir, approx.with_overrides(ivf_nprobe=3, ivf_refine=7))
    assert store._faiss.params == SearchParams(nprobe=3, refine=7, ef_search=approx.hnsw_ef_search,
                                               exact_filter_rows=approx.exact_filter_rows)
    assert isinstance(store._lexical, Lexical)
