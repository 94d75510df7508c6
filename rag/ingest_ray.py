"""The Ray ingest engine (`rag ingest --engine ray`): an ingest's model work, embedding chunks and sentences
and parsing sentences, as a Ray Data pipeline over an actor pool whose actors load the models once each.

Only that work leaves this process. Reading, cleaning, chunking, planning, both caches (looked up before
and filled after, here on the driver) and writing the generation are rag/ingest.py's own code, so the two
engines write the same generations, share one content-addressed cache (no text is embedded twice by
either), and report bad files the same way. Ray is imported by this module only.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rag.annotate import Annotator
from rag.config import Settings
from rag.embedding import Embedder
from rag.errors import RagError
from rag.ingest import ModelOutput, progress_bar

try:
    import ray
    import ray.data
    import ray.exceptions
except ImportError as exc:  # the optional [ray] extra
    raise RagError("the Ray engine needs the [ray] extra: pip install -e '.[ray]' (ray[data,serve]==2.60.0)"
                   ) from exc

log = logging.getLogger(__name__)


def connect(address: str | None = None) -> bool:
    """Join the Ray cluster at `address` (else $RAY_ADDRESS, else start a local one for this process);
    True when this call started Ray here (the caller then shuts it down), False when it was running."""
    if ray.is_initialized():
        return False
    local = address is None and not os.environ.get("RAY_ADDRESS")
    options: dict[str, Any] = {"include_dashboard": False} if local else {}
    try:
        ray.init(address=address, logging_level=logging.WARNING, **options)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        where = address or os.environ.get("RAY_ADDRESS") or "a new local cluster"
        raise RagError(f"cannot start or join the Ray cluster ({where}): {str(exc).splitlines()[0]}") from exc
    return True


def quiet_ray_data() -> None:
    """Ray Data without its progress bars and INFO lines: the ingest shows its own bar."""
    ray.data.DataContext.get_current().enable_progress_bars = False
    logger = logging.getLogger("ray.data")
    logger.setLevel(logging.WARNING)
    if not any(isinstance(f, _DropProgressNote) for f in logger.filters):
        logger.addFilter(_DropProgressNote())


class _DropProgressNote(logging.Filter):
    """Drops Ray Data's note that its progress bars are off (they are, for the ingest's own bar)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Progress bars disabled")


@dataclass
class RayRun:
    """What one `compute` sent to the actors (the texts no cache held), for the summary and for tests."""

    embedded: list[str] = field(default_factory=list)
    parsed: list[str] = field(default_factory=list)
    actors: int = 0
    gpus_per_actor: float = 0.0
    seconds: float = 0.0


class TextWorker:
    """A Ray Data actor: the embedding model (on the actor's GPU when it has one) and, when sentences are
    parsed, the spaCy pipeline, loaded once; each batch's rows are embedded and parsed as flagged."""

    def __init__(self, settings: Settings, parse: bool) -> None:
        threads = max(1, int(settings.ray_cpus_per_actor))
        if ray.get_gpu_ids():
            settings = settings.with_overrides(threads=threads, backend="torch", device="cuda")
        else:
            settings = settings.with_overrides(threads=threads)
        self.embedder = Embedder(settings)
        self.annotator = Annotator(settings.spacy_pipeline, None, settings.annotate_batch_size) if parse else None

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        texts = [str(t) for t in batch["text"]]
        vecs = np.zeros((len(texts), self.embedder.dim), dtype=np.float32)
        rows = np.flatnonzero(batch["embed"])
        if len(rows):
            vecs[rows] = self.embedder.encode([texts[i] for i in rows])
        parses = [""] * len(texts)
        rows = np.flatnonzero(batch["parse"])
        if len(rows) and self.annotator is not None:
            for i, parsed in zip(rows, self.annotator.annotate([texts[i] for i in rows]), strict=True):
                parses[i] = json.dumps(parsed, ensure_ascii=False)  # the annotation cache's own form
        return {"job": batch["job"], "vec": vecs, "parse": np.array(parses, dtype=object)}


def pool_size(resources: dict[str, float], settings: Settings, blocks: int) -> tuple[int, float]:
    """Actors and GPUs per actor for a cluster's resources: from settings, else one actor per GPU when the
    cluster has GPUs, else one per `ray_cpus_per_actor` CPUs; never more actors than blocks of work."""
    gpus = settings.ray_gpus_per_actor
    if gpus is None:
        gpus = 1.0 if resources.get("GPU", 0) >= 1 else 0.0
    actors = settings.ray_actors
    if not actors:
        actors = int(resources.get("GPU", 0) // gpus) if gpus else \
            int(resources.get("CPU", 1) // settings.ray_cpus_per_actor)
    return max(1, min(actors, blocks)), gpus


class RayEngine:
    """An ingest `Engine` whose model work runs on a Ray cluster; a context manager that joins the cluster
    (or starts a local one) when there is work for it, and leaves it on exit. `runs` records what each
    ingest sent to the actors."""

    def __init__(self, settings: Settings, address: str | None = None) -> None:
        self.address = address or settings.ray_address
        self.runs: list[RayRun] = []
        self._started = False

    def __enter__(self) -> RayEngine:
        return self

    def _connect(self) -> None:
        """Join (or start) the cluster once: an ingest with nothing to compute never starts Ray."""
        self._started = connect(self.address) or self._started
        quiet_ray_data()

    def __exit__(self, *exc: object) -> None:
        if self._started:
            ray.shutdown()
            self._started = False

    def pool(self, settings: Settings, blocks: int) -> tuple[int, float]:
        return pool_size(ray.cluster_resources(), settings, blocks)

    def compute(self, embedder: Embedder, chunks: list[str], sentences: list[str], settings: Settings,
                progress: bool) -> ModelOutput:
        start = time.perf_counter()
        texts = chunks + sentences
        vectors, missing = embedder.cached(texts)
        annotator = parses = None
        parse_keys: list[bytes] = []
        if settings.index_sentences and sentences:
            annotator = Annotator(settings.spacy_pipeline, settings.cache_dir / "annotations.sqlite",
                                  settings.annotate_batch_size)
            parses, parse_keys = annotator.cached(sentences)
        # One job per distinct text that some cache lacks: embed it, parse it, or both.
        embed_key = {texts[rows[0]]: key for key, rows in missing.items()}
        parse_rows: dict[str, list[int]] = {}
        for i, parsed in enumerate(parses or []):
            if parsed is None:
                parse_rows.setdefault(sentences[i], []).append(i)
        jobs = sorted(set(embed_key) | set(parse_rows), key=len)  # similar lengths share a batch: less padding
        run = RayRun()
        if jobs:
            self._connect()
            batch = settings.ray_batch_size
            blocks = math.ceil(len(jobs) / batch)
            run.actors, run.gpus_per_actor = self.pool(settings, blocks)
            items = [{"job": j, "text": t, "embed": t in embed_key, "parse": t in parse_rows}
                     for j, t in enumerate(jobs)]
            ds = ray.data.from_items(items, override_num_blocks=blocks).map_batches(
                TextWorker, fn_constructor_kwargs={"settings": settings, "parse": bool(parse_rows)},
                batch_size=batch, batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=run.actors),
                num_cpus=settings.ray_cpus_per_actor, num_gpus=run.gpus_per_actor or None)
            with progress_bar(progress) as bar:
                task = bar.add_task(f"embedding and parsing on Ray ({run.actors} actors)", total=len(jobs))
                try:
                    for out in ds.iter_batches(batch_size=None, batch_format="numpy"):
                        self._take(out, jobs, embed_key, missing, vectors, parse_rows, parses, parse_keys,
                                   embedder, annotator, run)
                        bar.advance(task, len(out["job"]))
                except ray.exceptions.RayError as exc:
                    raise RagError(f"the Ray ingest failed, the live index is unchanged: "
                                   f"{str(exc).strip().splitlines()[-1]}") from exc
        run.seconds = time.perf_counter() - start
        self.runs.append(run)
        log.info("ray: %d texts embedded and %d sentences parsed on %d actor%s in %.1f s",
                 len(run.embedded), len(run.parsed), run.actors, "" if run.actors == 1 else "s", run.seconds)
        n = len(chunks)
        return ModelOutput(vectors[:n], vectors[n:], list(parses) if parses is not None else [])  # type: ignore[arg-type]

    @staticmethod
    def _take(out: dict[str, np.ndarray], jobs: list[str], embed_key: dict[str, bytes],
              missing: dict[bytes, list[int]], vectors: np.ndarray, parse_rows: dict[str, list[int]],
              parses: list | None, parse_keys: list[bytes], embedder: Embedder, annotator: Annotator | None,
              run: RayRun) -> None:
        """Put one batch of results in place and into the caches (so an interrupted ingest keeps them)."""
        new_vecs: list[tuple[bytes, np.ndarray]] = []
        new_parses: list[tuple[bytes, str]] = []
        for job, vec, parsed in zip(out["job"], out["vec"], out["parse"], strict=True):
            text = jobs[int(job)]
            key = embed_key.get(text)
            if key is not None:
                vectors[missing[key]] = vec
                new_vecs.append((key, vec))
                run.embedded.append(text)
            rows = parse_rows.get(text)
            if rows and parses is not None:
                value = tuple(json.loads(parsed))
                for i in rows:
                    parses[i] = value
                new_parses.append((parse_keys[rows[0]], str(parsed)))
                run.parsed.append(text)
        embedder.remember(new_vecs)
        if annotator is not None:
            annotator.remember(new_parses)
