"""The Ray engines on a local Ray cluster this module starts and stops: ingest gives the local engine's
generation and shares its caches; a changed corpus embeds only what changed; Ray Serve replicas answer.

Select with `-m ray`; skipped when the [ray] extra is not installed."""

from __future__ import annotations

import logging
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from http_helpers import free_port

from rag.assistant import Assistant
from rag.chunking import Chunker
from rag.config import Settings
from rag.embedding import Embedder, get_embedder
from rag.index import load_data
from rag.ingest import ingest
from rag.readers import read_paths

ray = pytest.importorskip("ray")

from rag.ingest_ray import RayEngine, pool_size  # noqa: E402

pytestmark = pytest.mark.ray

CITY = Path(__file__).parent / "fixtures" / "city"
DOCS = ("01_budget", "04_waterfront", "05_port", "07_ferry")
QUERIES = ("How much is the budget?", "ferry service passengers", "port expansion cost", "waterfront park")


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    """A local two-CPU cluster for this module's tests, shut down after them."""
    from api.ray_serve import patient_proxy_env

    patient_proxy_env()  # the machine is shared: Serve's proxy may take more than its default 5 s to start
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


def tiny_corpus(folder: Path, names: tuple[str, ...] = DOCS) -> Path:
    folder.mkdir(parents=True)
    for name in names:
        for suffix in (".txt", ".meta.json"):
            shutil.copy(CITY / f"{name}{suffix}", folder / f"{name}{suffix}")
    return folder


def fresh_cache(folder: Path, settings: Settings) -> Path:
    """An empty embedding and annotation cache that reuses the session's ONNX export (no export again)."""
    folder.mkdir(parents=True)
    (folder / "onnx").symlink_to(settings.cache_dir / "onnx", target_is_directory=True)
    return folder




def cache_rows(cache_dir: Path) -> tuple[int, int]:
    """Entries in the embedding and annotation caches."""
    counts = []
    for name, table in (("embeddings.sqlite", "vectors"), ("annotations.sqlite", "parses")):
        with sqlite3.connect(cache_dir / name) as db:
            counts.append(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    return counts[0], counts[1]


def texts_of(corpus: Path, settings: Settings, only: set[str] | None = None) -> tuple[set[str], set[str]]:
    """The chunk texts and the sentence texts the chunker makes of a corpus (of the `only` documents)."""
    chunks: set[str] = set()
    sentences: set[str] = set()
    for doc in read_paths([corpus]).documents:
        if only is None or doc.doc_id in only:
            for c in Chunker(settings).chunk(doc):
                chunks.add(c.text)
                sentences.update(doc.text[s.start:s.end] for s in c.sentences)
    return chunks, sentences


@pytest.mark.parametrize(("resources", "overrides", "blocks", "expected"), [
    ({"CPU": 8.0}, {}, 100, (8, 0.0)),  # one actor per CPU
    ({"CPU": 8.0}, {"ray_cpus_per_actor": 2.0}, 100, (4, 0.0)),
    ({"CPU": 8.0}, {}, 3, (3, 0.0)),  # never more actors than batches
    ({"CPU": 16.0, "GPU": 2.0}, {}, 100, (2, 1.0)),  # one per GPU when there are GPUs
    ({"CPU": 16.0, "GPU": 2.0}, {"ray_gpus_per_actor": 0.5}, 100, (4, 0.5)),
    ({"CPU": 16.0, "GPU": 2.0}, {"ray_gpus_per_actor": 0.0}, 100, (16, 0.0)),  # GPUs declined: CPU actors
    ({"CPU": 8.0}, {"ray_actors": 2}, 100, (2, 0.0)),
    ({"CPU": 0.5}, {}, 100, (1, 0.0)),  # at least one
])
def test_pool_size(resources: dict[str, float], overrides: dict[str, float], blocks: int,
                   expected: tuple[int, float], settings: Settings) -> None:
    assert pool_size(resources, settings.with_overrides(**overrides), blocks) == expected


def test_ray_ingest_writes_the_local_generation(ray_cluster: None, settings: Settings, embedder: Embedder,
                                                tmp_path: Path) -> None:
    corpus = tiny_corpus(tmp_path / "corpus")
    local = settings.with_overrides(index_dir=tmp_path / "local")
    ingest([corpus], local, embedder=embedder)
    # Ray with an empty cache: every text is embedded and parsed on the actors.
    far = settings.with_overrides(index_dir=tmp_path / "ray", cache_dir=fresh_cache(tmp_path / "cache", settings),
                                 ray_batch_size=16)  # several batches: both actors get work
    with RayEngine(far) as engine:
        summary = ingest([corpus], far, embedder=get_embedder(far), engine=engine)
    run = engine.runs[-1]
    chunks, sentences = texts_of(corpus, far)
    assert run.actors == 2 and len(run.embedded) == len(chunks | sentences)
    assert set(run.embedded) == chunks | sentences and set(run.parsed) == sentences
    assert summary.added == sorted(summary.added) and len(summary.added) == len(DOCS)

    a, b = load_data(local.index_dir), load_data(far.index_dir)
    assert list(a.documents) == list(b.documents)
    assert [(d.text, d.meta) for d in a.documents.values()] == [(d.text, d.meta) for d in b.documents.values()]
    assert [(c.chunk_id, c.doc_id, c.start, c.end, c.sentences) for c in a.chunks] == \
           [(c.chunk_id, c.doc_id, c.start, c.end, c.sentences) for c in b.chunks]
    assert a.sentence_rows == b.sentence_rows
    for va, vb in ((a.chunk_vectors, b.chunk_vectors), (a.sentence_vectors, b.sentence_vectors)):
        assert va is not None and vb is not None and va.shape == vb.shape
        assert float(np.min(np.sum(va * vb, axis=1))) > 1 - 1e-5  # unit vectors: the dot is the cosine
    assert a.annotations is not None and b.annotations is not None
    assert [a.annotations.raw(i) for i in range(len(a.annotations))] == \
           [b.annotations.raw(i) for i in range(len(b.annotations))]
    for key in ("documents", "counts", "config", "duplicates", "model", "dim"):
        assert a.manifest[key] == b.manifest[key]
    one, two = Assistant.open(local, embedder=embedder), Assistant.open(far, embedder=get_embedder(far))
    for q in QUERIES:
        ha, hb = one.search(q, k=5, mode="bm25"), two.search(q, k=5, mode="bm25")
        assert ha and [(h.chunk.chunk_id, h.score) for h in ha] == [(h.chunk.chunk_id, h.score) for h in hb]

    # The local engine over Ray's cache finds every text there: nothing is embedded or parsed again.
    before = cache_rows(far.cache_dir)
    again = ingest([corpus], far.with_overrides(index_dir=tmp_path / "local2"), embedder=get_embedder(far))
    assert again.chunks == summary.chunks and cache_rows(far.cache_dir) == before


def test_ray_ingest_embeds_only_changed_documents(ray_cluster: None, settings: Settings, tmp_path: Path) -> None:
    corpus = tiny_corpus(tmp_path / "corpus")
    s = settings.with_overrides(index_dir=tmp_path / "index", cache_dir=fresh_cache(tmp_path / "cache", settings))
    embedder = get_embedder(s)
    (corpus / "broken.txt").write_bytes(b"figures\0\0\0")  # refused by both engines, the same way
    local = ingest([corpus], s, embedder=embedder)  # the local engine builds the first generation, fills the cache
    first = load_data(s.index_dir)
    chunks_before, sentences_before = texts_of(corpus, s)
    port = corpus / "05_port.txt"
    port.write_text(port.read_text(encoding="utf-8") + "\nThe port authority will publish a review in June 2031.\n",
                    encoding="utf-8")
    shutil.copy(CITY / "11_clinics.txt", corpus / "11_clinics.txt")
    with RayEngine(s) as engine:
        summary = ingest([corpus], s, embedder=embedder, engine=engine)
    run = engine.runs[-1]
    assert summary.updated == ["05_port"] and summary.added == ["11_clinics"] and summary.unchanged == 3
    assert summary.failed == local.failed and "binary" in summary.failed[0]
    chunks, sentences = texts_of(corpus, s, {"05_port", "11_clinics"})
    new_text = (chunks | sentences) - (chunks_before | sentences_before)
    assert run.embedded and set(run.embedded) == new_text and len(run.embedded) == len(new_text)
    assert run.parsed and set(run.parsed) == sentences - sentences_before
    second = load_data(s.index_dir)
    rows_a = {c.chunk_id: i for i, c in enumerate(first.chunks)}
    for i, c in enumerate(second.chunks):
        if c.doc_id not in ("05_port", "11_clinics"):  # carried over as it was
            assert np.array_equal(second.chunk_vectors[i], first.chunk_vectors[rows_a[c.chunk_id]])
    assert "June 2031" in second.documents["05_port"].text


def test_ray_serve_two_replicas_answer(ray_cluster: None, settings: Settings, embedder: Embedder,
                                       tmp_path: Path) -> None:
    import httpx

    from api.ray_serve import serve_app, shutdown

    s = settings.with_overrides(index_dir=tmp_path / "index", host="127.0.0.1", port=free_port())
    ingest([tiny_corpus(tmp_path / "corpus")], s, embedder=embedder)
    texts = {d: doc.text for d, doc in load_data(s.index_dir).documents.items()}
    serve_app(s, replicas=2)
    try:
        url = f"http://127.0.0.1:{s.port}"
        health = httpx.get(f"{url}/health", timeout=30)
        assert health.status_code == 200 and health.json()["documents"] == len(DOCS)
        replicas: set[str] = set()
        with httpx.Client(timeout=30) as client:
            for i in range(40):  # the proxy spreads requests over both replicas; bounded
                r = client.post(f"{url}/ask", json={"question": QUERIES[i % len(QUERIES)]})
                assert r.status_code == 200, r.text
                body = r.json()
                assert body["citations"] or body["related"]  # an answer, or a refusal with the closest passages
                for c in body["citations"] + body["related"]:
                    assert texts[c["doc_id"]][c["start"]:c["end"]] == c["quote"]
                replicas.add(r.headers["x-rag-replica"])
                if len(replicas) == 2 and i >= 3:
                    break
        assert len(replicas) == 2

        # A new generation in the shared folder: every replica switches to it between requests.
        before = health.json()["generation"]
        (tmp_path / "more").mkdir()
        (tmp_path / "more" / "tram.txt").write_text("The Quarry Lane tramway carried 48,000 riders in its first "
                                                   "month, the transit office said.\n", encoding="utf-8")
        ingest([tmp_path / "more"], s, embedder=embedder)
        after = load_data(s.index_dir).manifest
        switched: set[str] = set()
        with httpx.Client(timeout=30) as client:
            for _ in range(120):  # bounded: at most about 60 s
                r = client.get(f"{url}/health")
                assert r.status_code == 200
                if r.json()["generation"] != before:
                    assert r.json()["documents"] == after["counts"]["documents"] == len(DOCS) + 1
                    switched.add(r.headers["x-rag-replica"])
                if switched == replicas:
                    break
                time.sleep(0.5)
            assert switched == replicas
            hits = client.get(f"{url}/search", params={"q": "Quarry Lane tramway riders", "k": 3}).json()["hits"]
            assert hits[0]["doc_id"] == "tram"
    finally:
        shutdown()
