"""Past one machine (issue 12): cold ingest of news-2024 articles with the local engine and with the Ray engine
at 1 and 2 actors, in one run, each into its own index with an empty embedding and annotation cache; then
the index and serving part: bench/scale_index.py's `run(args)`, with the options its `add_arguments` adds.

    python bench/scale.py [--articles 2000] [--skip-ingest] [--skip-index] [scale_index's options]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from eval.benchmarks.corpus import write_corpus
from eval.benchmarks.news import read_articles, source_doc
from rag.config import Settings
from rag.embedding import get_embedder
from rag.index import current_generation, load_data
from rag.ingest import IngestSummary, ingest

from common import peak_rss_mb


def load() -> str:
    return "load average " + " / ".join(f"{x:.1f}" for x in os.getloadavg())


def news_corpus(settings: Settings, n: int, folder: Path) -> Path:
    """The first n articles with text of news-2024 (file order), written as .txt files with sidecars."""
    articles = read_articles(settings.bench_dir / "news-2024" / "articles.jsonl.gz")
    docs = [source_doc(a) for a in articles.values() if str(a.get("text") or "").strip()][:n]
    return write_corpus(folder, docs)


def fresh(settings: Settings, root: Path, name: str, **overrides: object) -> Settings:
    """Settings with their own index and an empty cache beside the project's ONNX export (no export timed)."""
    cache = root / name / "cache"
    cache.mkdir(parents=True)
    (cache / "onnx").symlink_to(settings.cache_dir / "onnx", target_is_directory=True)
    return settings.with_overrides(index_dir=root / name / "index", cache_dir=cache, **overrides)


def timed(label: str, run) -> tuple[IngestSummary, float]:
    before = load()
    t = time.perf_counter()
    summary = run()
    seconds = time.perf_counter() - t
    print(f"{label}: {summary.documents} documents, {summary.chunks} chunks in {seconds:.1f} s = "
          f"{summary.chunks / seconds:.2f} chunks/s ({before} before, {load()} after)", flush=True)
    return summary, seconds


def ingest_part(settings: Settings, articles: int) -> None:
    import ray

    from rag.ingest_ray import RayEngine

    with tempfile.TemporaryDirectory(prefix="rag-scale-") as tmp:
        root = Path(tmp)
        corpus = news_corpus(settings, articles, root / "corpus")
        get_embedder(settings)  # makes sure the project's ONNX export exists before anything is timed
        rates: dict[str, float] = {}
        local = fresh(settings, root, "local")
        summary, seconds = timed("local engine", lambda: ingest([corpus], local))
        rates["local"] = summary.chunks / seconds
        gen = current_generation(local.index_dir)
        assert gen is not None
        size = sum(f.stat().st_size for f in gen.rglob("*") if f.is_file())
        counts = load_data(local.index_dir).manifest["counts"]
        print(f"  generation: {size / 2**20:.1f} MiB on disk = {size / summary.chunks / 1024:.1f} KiB a chunk; "
              f"{counts['chunks'] / counts['documents']:.1f} chunks and {counts['sentences'] / counts['documents']:.1f} "
              f"sentences an article", flush=True)
        t = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level="WARNING")
        print(f"ray: local cluster of {os.cpu_count()} CPUs started in {time.perf_counter() - t:.1f} s (not timed "
              "below)", flush=True)
        gens = {"local": load_data(local.index_dir)}
        try:
            for actors in (1, 2):
                s = fresh(settings, root, f"ray{actors}", ray_actors=actors)
                engine = RayEngine(s)
                with engine:
                    summary, seconds = timed(f"ray engine, {actors} actor{'s' if actors > 1 else ''}",
                                             lambda s=s, engine=engine: ingest([corpus], s, engine=engine))
                run = engine.runs[-1]
                print(f"  {len(run.embedded)} texts embedded, {len(run.parsed)} sentences parsed on "
                      f"{run.actors} actor(s)", flush=True)
                rates[f"ray{actors}"] = summary.chunks / seconds
                gens[f"ray{actors}"] = load_data(s.index_dir)
        finally:
            ray.shutdown()
    same = all([c.chunk_id for c in g.chunks] == [c.chunk_id for c in gens["local"].chunks] for g in gens.values())
    print(f"same chunks in all three generations: {same}")
    print(f"chunks/s: local {rates['local']:.2f}, ray 1 actor {rates['ray1']:.2f}, ray 2 actors "
          f"{rates['ray2']:.2f}; ray 1 / local {rates['ray1'] / rates['local']:.2f}x, ray 2 / local "
          f"{rates['ray2'] / rates['local']:.2f}x, ray 2 / ray 1 {rates['ray2'] / rates['ray1']:.2f}x")
    print(f"peak memory of this process: {peak_rss_mb():.0f} MiB; {load()}")


def index_module():
    """bench/scale_index.py (the index past memory and its serving figures), or None before it exists."""
    try:
        import scale_index
    except ModuleNotFoundError:
        return None
    return scale_index


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=2000, help="news-2024 articles to ingest")
    parser.add_argument("--skip-ingest", action="store_true", help="only the index and serving part")
    parser.add_argument("--skip-index", action="store_true", help="only the ingest part")
    index = index_module()
    if index is not None:
        index.add_arguments(parser.add_argument_group("index and serving part (bench/scale_index.py)"))
    args = parser.parse_args()
    if not args.skip_ingest:
        ingest_part(Settings(), args.articles)
    if args.skip_index:
        return
    if index is None:
        print("index and serving part: bench/scale_index.py is not there yet")
    else:
        index.run(args)


if __name__ == "__main__":
    main()
