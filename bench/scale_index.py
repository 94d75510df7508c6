"""An index of a million chunks answering /ask through the real server on 127.0.0.1.

Real news chunks (articles of ../shared/benchmarks/news-2024/, ingested and embedded once by the real
pipeline) are multiplied to the asked size: each copy of an article keeps its text and parses (the copies'
chunks share the base sentence rows), its chunk vectors get small Gaussian noise and are renormalised. The
generation is written by `write_generation` (so past RAG_APPROX_THRESHOLD it is IVF-PQ shards on disk,
memory-mapped vectors, float16 sentence vectors, mmap'd BM25) and then served by `rag serve`. Prints: build
time, recall@10 of the served vector search against exact search, /ask p50/p99 at concurrency 1 and 8
(bounded count and time), memory of every answering process, and the load average beside each figure.

`bench/scale.py` calls `run(args)` with the options `add_arguments` defines. Data lives under
index/bench/scale/ (git-ignored); a second run with the same size reuses the written index.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
from http_load import run_level
from startup import descendants

from rag.config import Settings
from rag.embedding import get_embedder
from rag.index import IndexData, current_generation, load_data, write_generation, write_lock
from rag.ingest import ingest
from rag.lexical import Lexical, tokenize
from rag.tables import ChunkTable, DocumentTable, Strings

from common import ROOT, percentile, rag_serve

TARGETS = {"p50_ms": 20.0, "recall": 0.95, "rss_gib": 6.0}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options `run` reads (bench/scale.py adds them to its own parser)."""
    parser.add_argument("--chunks", type=int, default=1_000_000, help="chunks in the multiplied index")
    parser.add_argument("--base-articles", type=int, default=300, help="real news articles ingested once")
    parser.add_argument("--noise", type=float, default=0.01, help="Gaussian noise per dimension of a copy")
    parser.add_argument("--workers", type=int, default=2, help="answering processes of the server")
    parser.add_argument("--requests", type=int, default=400, help="/ask requests per concurrency level")
    parser.add_argument("--concurrency", default="1,8", help="comma-separated concurrency levels")
    parser.add_argument("--time-cap", type=float, default=120.0, help="seconds at most per level")
    parser.add_argument("--recall-queries", type=int, default=300, help="queries for recall@10 against exact")
    parser.add_argument("--work", type=Path, default=ROOT / "index" / "bench" / "scale", help="data folder")
    parser.add_argument("--rebuild", action="store_true", help="write the multiplied index even if it exists")


def load_avg() -> str:
    return "load {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def say(text: str) -> None:
    print(f"{text}   [{load_avg()}]", flush=True)


# ---------------------------------------------------------------- the data


def base_corpus(settings: Settings, work: Path, articles: int) -> tuple[Settings, list[str]]:
    """The real news articles of the news-quiz benchmark, ingested (embedded and parsed) into work/base;
    returns its settings and the quiz questions those articles answer."""
    from eval.benchmarks.corpus import write_corpus
    from eval.benchmarks.news import quiz_bench

    news = settings.bench_dir / "news-2024"
    docs, items = quiz_bench(news / "quizzes.jsonl", news / "articles.jsonl.gz", articles, settings.bench_seed)
    corpus = write_corpus(work / "corpus", docs)
    base = settings.with_overrides(corpus_dir=corpus, index_dir=work / "base")
    t = time.perf_counter()
    ingest([corpus], base, embedder=get_embedder(base))
    say(f"base: {len(docs)} real articles ingested in {time.perf_counter() - t:.1f} s")
    return base, [i.question for i in items]


def multiply(base: IndexData, n_chunks: int, noise: float, seed: int = 0) -> IndexData:
    """`n_chunks` chunks from copies of the base articles: copy r of a document is `<id>~<r>` with the same
    text; its chunks point at the base sentence rows; vectors get noise (copy 0 keeps the real ones). Built
    column by column (rag/tables.py), as the generation stores them: no Python object per chunk."""
    rng = np.random.default_rng(seed)
    docs, chunks = base.documents, base.chunks
    assert isinstance(docs, DocumentTable) and isinstance(chunks, ChunkTable)
    n_base, n_docs = len(chunks), len(docs)
    copies = -(-n_chunks // n_base)
    suffixes = [f"~{r}" if r else "" for r in range(copies)]
    blob, offsets = docs.texts.blob, docs.texts.offsets
    documents = DocumentTable(
        [d + sfx for sfx in suffixes for d in docs.ids],
        [replace(m, title=f"{m.title} ({r})") if r else m for r in range(copies) for m in docs.metas],
        Strings(np.tile(blob, copies), np.append(np.concatenate([offsets[:-1] + r * len(blob) for r in range(copies)]),
                                                 copies * len(blob))),
        np.tile(docs.chars, copies))
    row = np.arange(n_chunks)
    b, r = row % n_base, row // n_base
    per_chunk = np.diff(chunks.sentence_offsets)[b]
    sent_offsets = np.zeros(n_chunks + 1, dtype=np.int64)
    np.cumsum(per_chunk, out=sent_offsets[1:])
    n_sent = int(sent_offsets[-1])
    base_ids = list(chunks.ids)
    table = ChunkTable(documents, Strings.of([cid + sfx for sfx in suffixes for cid in base_ids][:n_chunks]),
                       chunks.doc[b] + r * n_docs, chunks.start[b], chunks.end[b], chunks.n_tokens[b], sent_offsets,
                       *(np.tile(col, copies)[:n_sent] for col in (chunks.sentence_start, chunks.sentence_end,
                                                                     chunks.sentence_row)))
    manifest = json.loads(json.dumps(base.manifest))
    manifest["documents"] = {d + sfx: manifest["documents"][d] for sfx in suffixes for d in docs.ids}
    dim = base.chunk_vectors.shape[1]
    vectors = np.empty((n_chunks, dim), dtype=np.float32)
    for lo in range(0, n_chunks, n_base):
        hi = min(n_chunks, lo + n_base)
        part = base.chunk_vectors[: hi - lo]
        if lo:
            part = part + rng.normal(0, noise, part.shape).astype(np.float32)
            part /= np.linalg.norm(part, axis=1, keepdims=True)
        vectors[lo:hi] = part
    manifest["counts"] = {**manifest["counts"], "documents": len(documents), "chunks": n_chunks}
    manifest.pop("duplicates", None)
    manifest.pop("near_duplicates", None)
    tokens = [tokenize(chunks.text(i)) or [""] for i in range(n_base)]  # what Lexical.build indexes, once a base chunk
    return IndexData(manifest, documents, table, vectors, table.row_lists(), base.sentence_vectors, base.annotations,
                     lexical=Lexical(repeated_bm25(tokens, n_chunks)))


class _Repeated(bm25s.BM25):
    """bm25s over the base documents repeated in order up to n documents, computed from one pass over the
    base with bm25s's own scoring functions (bm25s itself would take ~20 minutes at a million)."""

    def __init__(self, n_docs: int) -> None:
        super().__init__()
        self._n = n_docs

    def build_index_from_ids(self, unique_token_ids: list[int], corpus_token_ids: list[list[int]],
                             show_progress: bool = True, leave_progress: bool = False) -> dict[str, Any]:
        import scipy.sparse as sp
        from bm25s.scoring import _get_counts_from_token_ids, _select_idf_scorer, _select_tfc_scorer

        assert self.method not in self.methods_requiring_nonoccurrence
        self.nonoccurrence_array = None
        nb, n = len(corpus_token_ids), self._n
        mult = np.full(nb, n // nb)
        mult[: n % nb] += 1
        lens = np.array([len(d) for d in corpus_token_ids])
        avg = np.repeat(lens, mult).mean()  # as bm25s: the mean length over all n documents
        counts = [_get_counts_from_token_ids(d, self.dtype, self.int_dtype) for d in corpus_token_ids]
        df = np.zeros(len(unique_token_ids), dtype=np.int64)
        for (voc, _), m in zip(counts, mult, strict=True):
            df[voc] += m
        idf_fn = _select_idf_scorer(self.idf_method)
        idf = np.array([idf_fn(int(f), N=n) if f else 0.0 for f in df], dtype=self.dtype)
        tfc_fn = _select_tfc_scorer(self.method)
        scores = [(idf[voc] * tfc_fn(tf_array=tf, l_d=len(d), l_avg=avg, k1=self.k1, b=self.b, delta=self.delta)
                   ).astype(self.dtype) for (voc, tf), d in zip(counts, corpus_token_ids, strict=True)]
        flat = np.concatenate(scores)
        voc_flat = np.concatenate([voc for voc, _ in counts])
        doc_flat = np.repeat(np.arange(nb), [len(v) for v, _ in counts])
        parts = []
        for r in range(-(-n // nb)):
            take = np.searchsorted(doc_flat, n - r * nb)  # copy r holds base docs 0 .. n - r*nb - 1
            parts.append((flat[:take], doc_flat[:take] + r * nb, voc_flat[:take]))
        matrix = sp.csc_matrix((np.concatenate([p[0] for p in parts]),
                                (np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts]))),
                               shape=(n, len(unique_token_ids)), dtype=self.dtype)
        return {"data": matrix.data, "indices": matrix.indices, "indptr": matrix.indptr, "num_docs": n}


def repeated_bm25(tokens: list[list[str]], n_docs: int) -> bm25s.BM25:
    """The bm25s index of `tokens` repeated in order up to n_docs documents."""
    model = _Repeated(n_docs)
    model.index(tokens, show_progress=False)
    return model


def check_repeated_bm25(tokens: list[list[str]]) -> None:
    """The shortcut equals bm25s over the repeated lists (a few base documents, 2.5 copies)."""
    few = tokens[:40]
    n = 100
    plain = bm25s.BM25()
    plain.index([few[i % len(few)] for i in range(n)], show_progress=False)
    fast = repeated_bm25(few, n)
    assert plain.vocab_dict == fast.vocab_dict
    for key in ("indices", "indptr"):
        assert np.array_equal(plain.scores[key], fast.scores[key]), key
    np.testing.assert_allclose(plain.scores["data"], fast.scores["data"], rtol=1e-6)


def build_index(settings: Settings, base: Settings, n_chunks: int, noise: float, rebuild: bool) -> Settings:
    """The multiplied generation under work/index-<n> (reused when it exists)."""
    target = settings.with_overrides(index_dir=base.index_dir.parent / f"index-{n_chunks}")
    if current_generation(target.index_dir) is not None and not rebuild:
        say(f"index: reusing {target.index_dir}")
        return target
    t = time.perf_counter()
    base_data = load_data(base.index_dir)
    check_repeated_bm25([tokenize(c.text) or [""] for c in base_data.chunks[:40]])
    data = multiply(base_data, n_chunks, noise)
    say(f"multiplied to {len(data.chunks):,} chunks ({len(data.documents):,} documents) in "
        f"{time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    with write_lock(target.index_dir):
        gen = write_generation(target.index_dir, data, target)
    size = sum(p.stat().st_size for p in gen.rglob("*") if p.is_file())
    say(f"index: {data.manifest['vector_index']} written and verified in {time.perf_counter() - t:.1f} s, "
        f"{size / 2**30:.2f} GiB on disk")
    return target


# ---------------------------------------------------------------- recall


def recall(target: Settings, questions: list[str], n_queries: int) -> float:
    """recall@10 of the generation's vector search (as served: same files, same settings) against exact
    inner product over all its vectors, for real questions embedded by the real model."""
    from rag.index import IndexStore

    store = IndexStore.load(target.index_dir, target)
    vi = store._faiss
    assert vi is not None
    queries = get_embedder(target).encode(questions[:n_queries]).astype(np.float32)
    vectors = vi.vectors if vi.vectors is not None else store._data.chunk_vectors
    truth = np.zeros((len(queries), 10), dtype=np.int64)
    best = np.full((len(queries), 10), -np.inf, dtype=np.float32)
    for lo in range(0, len(vectors), 200_000):  # exact top 10 in blocks of the mapped matrix
        scores = queries @ np.asarray(vectors[lo : lo + 200_000], dtype=np.float32).T
        top = np.argpartition(-scores, 9, axis=1)[:, :10]
        cand_s = np.concatenate([best, np.take_along_axis(scores, top, axis=1)], axis=1)
        cand_i = np.concatenate([truth, top + lo], axis=1)
        keep = np.argsort(-cand_s, axis=1)[:, :10]
        best, truth = np.take_along_axis(cand_s, keep, axis=1), np.take_along_axis(cand_i, keep, axis=1)
    times, hits = [], []
    for q, t in zip(queries, truth, strict=True):
        t0 = time.perf_counter()
        rows, _ = vi.search(q, 10)
        times.append((time.perf_counter() - t0) * 1000)
        hits.append(len(set(rows.tolist()) & set(t.tolist())) / 10)
    value = float(np.mean(hits))
    say(f"recall@10 of the {vi.kind} search against exact over {vi.ntotal:,} vectors, {len(queries)} real "
        f"questions: {value:.3f} (target >= {TARGETS['recall']}); vector search alone p50 "
        f"{percentile(times, 50):.2f} ms, p99 {percentile(times, 99):.2f} ms (nprobe {vi.params.nprobe}, "
        f"refine {vi.params.refine})")
    return value


# ---------------------------------------------------------------- serving


@contextmanager
def serve(index_dir: Path, workers: int, timeout_s: float = 1800) -> Iterator[tuple[str, subprocess.Popen]]:
    """`rag serve` over the index, with the time its answering processes took to be ready."""
    t = time.perf_counter()
    with rag_serve(workers, index_dir, timeout_s) as (url, proc):
        say(f"server: {workers} answering processes ready in {time.perf_counter() - t:.0f} s")
        yield url, proc


def memory(proc: subprocess.Popen) -> dict[int, dict[str, float]]:
    """Per answering process: resident, anonymous and file-backed MiB. Answering processes are spawned
    (`spawn_main`) or forks of multiprocessing's fork server (children of the fork server process)."""
    out = {}
    cmds: dict[int, bytes] = {}
    for pid in descendants(proc.pid):
        with contextlib.suppress(OSError):
            cmds[pid] = Path(f"/proc/{pid}/cmdline").read_bytes()
    for pid, cmd in cmds.items():
        try:
            ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            status = Path(f"/proc/{pid}/status").read_text()
        except (OSError, IndexError, ValueError):
            continue
        if b"spawn_main" not in cmd and not (b"forkserver" in cmd and b"forkserver" in cmds.get(ppid, b"")):
            continue
        fields = {k: int(v.split()[0]) / 1024 for k, v in (ln.split(":", 1) for ln in status.splitlines())
                  if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile")}
        out[pid] = fields
    return out


def ask_levels(url: str, questions: list[str], args: argparse.Namespace) -> dict[int, dict[str, Any]]:
    payloads = [{"question": q} for q in questions]
    asyncio.run(run_level(url, "/ask", [{"question": "What did the report say?"}], 2, 20, 120, {}))  # warm up
    out = {}
    for c in (int(x) for x in str(args.concurrency).split(",")):
        latencies, errors, seconds = asyncio.run(
            run_level(url, "/ask", payloads, c, args.requests, args.time_cap, {}))
        res = {"n": len(latencies), "errors": errors, "rps": len(latencies) / seconds,
               "p50": percentile(latencies, 50), "p99": percentile(latencies, 99)}
        out[c] = res
        say(f"/ask c={c}: n={res['n']} {res['rps']:.1f} req/s, p50 {res['p50']:.1f} ms, p99 {res['p99']:.1f} ms, "
            f"errors {errors} (target p50 <= {TARGETS['p50_ms']:.0f} ms)")
    return out


def server_timings(url: str, questions: list[str], n: int = 50) -> None:
    """Where an answer's time goes (the answer's own timings_ms), median over n questions asked once more."""
    import urllib.request

    parts: dict[str, list[float]] = {}
    for q in questions[:n]:
        req = urllib.request.Request(f"{url}/ask", data=json.dumps({"question": q}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            for k, v in (json.loads(r.read()).get("timings_ms") or {}).items():
                parts.setdefault(k, []).append(float(v))
    say("answer timings (median ms): " + ", ".join(f"{k} {percentile(v, 50):.1f}" for k, v in parts.items()))


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Build (or reuse) the multiplied index, measure recall, serve it and load it; returns the figures."""
    settings = Settings()
    if not settings.bench_dir.is_dir():
        settings = settings.with_overrides(bench_dir=ROOT.parent.parent / "shared" / "benchmarks")
    args.work.mkdir(parents=True, exist_ok=True)
    say(f"scale bench: {args.chunks:,} chunks, threshold {settings.approx_threshold:,}, {settings.approx_index}")
    base, questions = base_corpus(settings, args.work, args.base_articles)
    target = build_index(settings, base, args.chunks, args.noise, args.rebuild)
    figures: dict[str, Any] = {"chunks": args.chunks, "recall": recall(target, questions, args.recall_queries)}
    with serve(target.index_dir, args.workers) as (url, proc):
        figures["memory_idle"] = memory(proc)
        figures["ask"] = ask_levels(url, questions, args)
        server_timings(url, questions)
        figures["memory"] = memory(proc)
    for pid, m in figures["memory"].items():
        say(f"answering process {pid}: RSS {m['VmRSS'] / 1024:.2f} GiB (peak {m['VmHWM'] / 1024:.2f}; anonymous "
            f"{m['RssAnon'] / 1024:.2f}, file-backed {m['RssFile'] / 1024:.2f}) (target <= {TARGETS['rss_gib']} GiB)")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    figures = run(args)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1, default=str))


if __name__ == "__main__":
    main()
