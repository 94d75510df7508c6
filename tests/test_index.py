"""Index and ingest: incremental updates, crash safety, refusals with clear errors, hybrid retrieval."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rag.assistant import Assistant
from rag.config import Settings
from rag.embedding import Embedder
from rag.errors import BadIndexError
from rag.index import current_generation, read_manifest
from rag.ingest import ingest
from rag.types import Filters

TOPICS = ["harbour dredging contract", "school meal programme", "tram line extension", "library renovation",
          "flood barrier repairs", "street lighting upgrade"]


def write_article(folder: Path, name: str, topic: str, amount: int, extra: str = "") -> Path:
    path = folder / f"{name}.txt"
    path.write_text(f"City council approves {topic}\n\nThe council approved {amount} million euros for the "
                    f"{topic} on Monday. Officials said work on the {topic} starts next spring. {extra}\n")
    return path


@pytest.fixture()
def small(tmp_path: Path, settings: Settings) -> tuple[Path, Settings]:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i, topic in enumerate(TOPICS[:4]):
        write_article(corpus, f"a{i}", topic, 10 + i)
    return corpus, settings.with_overrides(corpus_dir=corpus, index_dir=tmp_path / "index")


def test_incremental_add_modify_delete_noop(small, embedder: Embedder) -> None:
    corpus, settings = small
    first = ingest([corpus], settings, embedder=embedder)
    assert sorted(first.added) == ["a0", "a1", "a2", "a3"] and first.chunks > 0

    noop = ingest([corpus], settings, embedder=embedder)
    assert not noop.changed and noop.unchanged == 4 and noop.embedded == 0 and noop.seconds < 2

    write_article(corpus, "a1", TOPICS[1], 99, "The budget was revised upward.")
    write_article(corpus, "a4", TOPICS[4], 55)
    (corpus / "a3.txt").unlink()
    third = ingest([corpus], settings, embedder=embedder)
    assert third.added == ["a4"] and third.updated == ["a1"] and third.removed == []  # a3 is kept
    assert third.unchanged == 3
    assert third.embedded == len([c for c in Assistant.open(settings, embedder).store.chunks
                                  if c.doc_id in ("a1", "a4")])
    said: list[str] = []
    pruned = ingest([corpus], settings, embedder=embedder, prune=True, say=said.append)
    assert pruned.removed == ["a3"] and pruned.embedded == 0 and said == ["removing 1 document: a3"]

    store = Assistant.open(settings, embedder).store
    assert set(store.documents) == {"a0", "a1", "a2", "a4"}
    assert "99 million" in store.documents["a1"].text
    for chunk in store.chunks:
        assert store.documents[chunk.doc_id].text[chunk.start : chunk.end] == chunk.text


def test_identical_documents_indexed_once_and_near_duplicates_recorded(small, embedder: Embedder) -> None:
    corpus, settings = small
    (corpus / "copy.txt").write_bytes((corpus / "a0.txt").read_bytes())
    body = " ".join(f"Paragraph {i} describes how the {TOPICS[2]} affects district {i} and its residents."
                    for i in range(30))
    write_article(corpus, "a2", TOPICS[2], 12, body)
    text = (corpus / "a2.txt").read_text()
    (corpus / "syndicated.txt").write_text("Reprinted from the Evening Post.\n\n" + text.replace("on Monday", "on Monday, the paper reports"))
    summary = ingest([corpus], settings, embedder=embedder)
    assert summary.duplicates == {"copy": "a0"}
    assert any({a, b} == {"a2", "syndicated"} for a, b, _ in summary.near_duplicates)
    manifest = read_manifest(settings.index_dir)
    assert "copy" not in manifest["documents"] and manifest["duplicates"] == {"copy": "a0"}


def test_killed_mid_ingest_leaves_loadable_index(small, embedder: Embedder) -> None:
    corpus, settings = small
    settings = settings.with_overrides(index_sentences=False)
    ingest([corpus], settings, embedder=embedder)
    before = current_generation(settings.index_dir)
    for i in range(120):
        write_article(corpus, f"b{i:03d}", TOPICS[i % len(TOPICS)], i, f"Item number {i} of the agenda.")
    env = {**os.environ, "RAG_INDEX_DIR": str(settings.index_dir), "RAG_CACHE_DIR": str(settings.cache_dir),
           "RAG_INDEX_SENTENCES": "false"}
    proc = subprocess.Popen([sys.executable, "-m", "rag.cli", "ingest", str(corpus), "-q"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    caught = False
    while proc.poll() is None:  # kill it the moment the new generation starts being written
        if any(p.suffix == ".tmp" for p in settings.index_dir.iterdir()):
            proc.send_signal(signal.SIGKILL)
            caught = True
            break
    proc.wait()
    assert caught, "ingest finished before it could be killed mid-write"
    assert current_generation(settings.index_dir) == before
    store = Assistant.open(settings, embedder).store
    assert set(store.documents) == {"a0", "a1", "a2", "a3"}
    summary = ingest([corpus], settings, embedder=embedder)
    assert len(summary.added) == 120
    assert not [p for p in settings.index_dir.iterdir() if p.suffix == ".tmp"]


def test_model_mismatch_is_refused_with_rebuild_hint(small, embedder: Embedder) -> None:
    corpus, settings = small
    ingest([corpus], settings, embedder=embedder)
    gen = current_generation(settings.index_dir)
    manifest = json.loads((gen / "manifest.json").read_text())
    manifest["model"] = "some-org/other-model"  # same dimension: only the model differs
    manifest["config"]["model"] = "some-org/other-model"
    (gen / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BadIndexError, match="other-model.*rag ingest --rebuild"):
        Assistant.open(settings, embedder)
    with pytest.raises(BadIndexError, match="rebuild"):
        ingest([corpus], settings, embedder=embedder)
    rebuilt = ingest([corpus], settings, embedder=embedder, rebuild=True)
    assert len(rebuilt.added) == 4
    Assistant.open(settings, embedder)


@pytest.mark.parametrize("victim", ["faiss.index", "chunk_vectors.npy", "manifest.json", "chunks/start.npy",
                                    "documents/text.npy", "documents/meta.jsonl"])
def test_corrupt_files_give_clear_error(small, embedder: Embedder, victim: str) -> None:
    corpus, settings = small
    ingest([corpus], settings, embedder=embedder)
    path = current_generation(settings.index_dir) / victim
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 3])
    with pytest.raises(BadIndexError, match="corrupt") as err:
        Assistant.open(settings, embedder)
    assert "rag ingest --rebuild" in str(err.value)  # the only generation: rebuilding is the fix


def test_cli_reports_corrupt_index_in_one_line(small, embedder: Embedder) -> None:
    corpus, settings = small
    ingest([corpus], settings, embedder=embedder)
    (current_generation(settings.index_dir) / "faiss.index").write_bytes(b"not an index")
    env = {**os.environ, "RAG_CACHE_DIR": str(settings.cache_dir)}
    out = subprocess.run([sys.executable, "-m", "rag.cli", "search", "council", "--index", str(settings.index_dir),
                          "--corpus", str(corpus)], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().startswith("error: index at") and "Traceback" not in out.stderr


def test_hybrid_results_carry_both_ranks_and_honour_filters(seed_assistant: Assistant) -> None:
    docs = seed_assistant.documents
    hits = seed_assistant.search("government subsidy for chip development", k=10)
    assert len(hits) == 10 and [h.rank for h in hits] == list(range(1, 11))
    assert all(hits[i].score >= hits[i + 1].score for i in range(9))
    assert any(h.dense_rank and h.bm25_rank for h in hits)
    one = sorted(docs)[1]
    assert {h.chunk.doc_id for h in seed_assistant.search("subsidy", k=5, filters=Filters(doc_ids=(one,)))} == {one}
    dated = sorted((d.meta.published, d.doc_id) for d in docs.values() if d.meta.published)
    newest_date = dated[-1][0]
    hits = seed_assistant.search("semiconductor budget", k=20, filters=Filters(date_from=newest_date))
    assert hits and {docs[h.chunk.doc_id].meta.published for h in hits} == {newest_date}
    assert seed_assistant.search("semiconductor", k=5, filters=Filters(doc_ids=("no-such-doc",))) == []


def test_modes_rank_differently_but_each_finds_a_lexical_match(seed_assistant: Assistant) -> None:
    bm25 = seed_assistant.search("chiplet technology", k=3, mode="bm25")
    dense = seed_assistant.search("chiplet technology", k=3, mode="dense")
    assert "chiplet" in bm25[0].chunk.text.lower()
    assert all(h.dense_rank is None for h in bm25) and all(h.bm25_rank is None for h in dense)


def test_embedding_cache_and_query_lru(embedder: Embedder, tmp_path: Path) -> None:
    texts = ["a sentence about tram lines", "another about harbours"]
    first = embedder.embed(texts)
    assert np.allclose(np.linalg.norm(first, axis=1), 1, atol=1e-5)
    assert np.allclose(embedder.embed(texts), first)
    q = embedder.embed_query("tram lines")
    assert embedder.embed_query("tram lines") is q
    assert float(q @ first[0]) > float(q @ first[1])


def test_bm25_top_ranks_as_every_chunks_score_would() -> None:
    """Lexical.top selects from a floor found on a sample of rows and must rank exactly as sorting the full
    score array does, with and without a filter, ties broken by row."""
    from rag.lexical import Lexical

    rng = np.random.default_rng(1)
    words = ["harbour", "tram", "budget", "council", "school", "bridge", "river", "museum"]
    texts = [" ".join(rng.choice(words, size=int(rng.integers(3, 12)))) for _ in range(300)]
    texts += ["zeppelin hangar", "zeppelin"] * 3  # rare terms and exact ties
    lex = Lexical.build(texts)
    allowed = rng.random(len(texts)) < 0.5
    for query in ["zeppelin", "zeppelin hangar", "tram budget", "council council harbour", "unknown words", ""]:
        full = lex.scores(query)
        for mask in (None, allowed):
            ok = full > 0 if mask is None else (full > 0) & mask
            rows = np.flatnonzero(ok)
            for k in (2, 5, 50):  # small k: a floor from a sample of rows; large k: every scored row
                want = rows[np.lexsort((rows, -full[rows]))][:k]
                got, scores = lex.top(query, k, mask)
                assert got.tolist() == want.tolist(), (query, k)
                assert np.array_equal(scores, full[got])
    assert lex.top("zeppelin", 3)[0].tolist() == [301, 303, 305]  # the three equal short texts tie: by row
