"""The assistant facade: model and index loaded once; `ask` and `search` for every front end."""

from __future__ import annotations

import gc
import logging
import threading
import time
import unicodedata
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from rag.composer import Composer
from rag.config import Settings
from rag.embedding import Embedder, get_embedder
from rag.errors import QuestionError, RagError
from rag.index import CURRENT, IndexStore, check_compatible
from rag.retrieval import Retriever
from rag.types import Answer, Filters, Hit, Turn

log = logging.getLogger(__name__)

try:
    VERSION = version("rag-cited")
except PackageNotFoundError:  # running from a checkout that was not installed
    VERSION = "0.0.0"


def validate_question(question: object, max_chars: int) -> str:
    """The question stripped, or a QuestionError saying why it cannot be asked."""
    if not isinstance(question, str):
        raise QuestionError("question must be text")
    text = question.strip()
    if not text:
        raise QuestionError("question is empty")
    if len(text) > max_chars:
        raise QuestionError(f"question is {len(text)} characters; the limit is {max_chars}")
    readable = sum(1 for ch in text if ch.isalnum())
    controls = sum(1 for ch in text if unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn") and ch not in "\t\n\r")
    if readable == 0 or controls > 0 or "\ufffd" in text:
        raise QuestionError("question is not readable text")
    return text


def _note_settings_drift(manifest: dict[str, Any], settings: Settings) -> None:
    """Say so when chunking settings differ from the index's: they apply at the next ingest, not now."""
    from rag.ingest import config_changes, config_of

    built, now = dict(manifest["config"]), config_of(settings)
    built.pop("model", None)
    now.pop("model", None)
    if built != now:
        log.warning("the index at %s was built with other settings (%s); they apply at the next `rag ingest`",
                    settings.index_dir, config_changes(built, now))


class Assistant:
    """Answers questions over one index; safe to share across threads (all state is read-only)."""

    def __init__(self, settings: Settings, store: IndexStore, embedder: Embedder) -> None:
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self.retriever = Retriever(store, embedder, settings)
        self.composer = Composer(settings, store, embedder=embedder)

    @classmethod
    def open(cls, settings: Settings, embedder: Embedder | None = None) -> Assistant:
        """Load the index as it is (verified, never written: only `rag ingest` writes) and the model."""
        store = IndexStore.load(settings.index_dir, settings)
        embedder = embedder or get_embedder(settings)
        check_compatible(store.manifest, embedder.model_name, embedder.dim, settings.index_dir)
        _note_settings_drift(store.manifest, settings)
        return cls(settings, store, embedder)

    @property
    def documents(self):
        return self.store.documents

    @property
    def generation(self) -> str:
        """The index generation this Assistant answers from (the `gen-*` folder CURRENT named)."""
        return self.store.generation

    def info(self) -> dict[str, Any]:
        m = self.store.manifest
        return {"status": "ok", "model": m["model"], "generation": self.generation,
                "documents": m["counts"]["documents"], "chunks": m["counts"]["chunks"],
                "built_at": m["built_at"], "version": VERSION}

    def search(self, query: str, k: int = 10, filters: Filters | None = None, mode: str = "hybrid") -> list[Hit]:
        return self.retriever.search(query, k=k, filters=filters, mode=mode)

    def ask(self, question: str, history: Sequence[Turn] = (), top_k: int | None = None,
            filters: Filters | None = None, explain: bool = False) -> Answer:
        """A cited answer, or a refusal with the closest passages; QuestionError for unaskable input. An
        exception while composing propagates: a crash is an error, never a refusal."""
        t0 = time.perf_counter()
        text = validate_question(question, self.settings.max_question_chars)
        k = top_k or self.settings.top_k
        if not 1 <= k <= self.settings.max_top_k:
            raise QuestionError(f"top_k must be between 1 and {self.settings.max_top_k}")
        q = self.composer.analyse(text, history)
        t1 = time.perf_counter()
        query_vector = self.embedder.embed_query(q.english)
        hits = self.retriever.search(q.english, k=k, filters=filters, query_vector=query_vector)
        t2 = time.perf_counter()
        answer = self.composer.compose(q, hits, query_vector, explain=explain)
        t3 = time.perf_counter()
        answer.question = text
        answer.timings_ms = {"analyse": round((t1 - t0) * 1000, 3), "retrieve": round((t2 - t1) * 1000, 3),
                             "compose": round((t3 - t2) * 1000, 3), "total": round((t3 - t0) * 1000, 3)}
        return answer

    def hit_dict(self, hit: Hit) -> dict[str, Any]:
        doc = self.store.documents[hit.chunk.doc_id]
        return {"rank": hit.rank, "score": hit.score, "chunk_id": hit.chunk.chunk_id, "doc_id": doc.doc_id,
                "title": doc.meta.title, "published": doc.meta.published, "start": hit.chunk.start,
                "end": hit.chunk.end, "text": hit.chunk.text, "dense_rank": hit.dense_rank,
                "dense_score": hit.dense_score, "bm25_rank": hit.bm25_rank, "bm25_score": hit.bm25_score}


def named_generation(index_dir: Path) -> str | None:
    """The generation CURRENT names, read without checking it (None when unreadable): cheap enough to ask
    every second."""
    try:
        return (index_dir / CURRENT).read_bytes().decode("utf-8").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


class LiveAssistant:
    """The Assistant of the live generation. `refresh()` opens the generation CURRENT names when it moved
    (with the same model and spaCy pipeline) and swaps it in whole, so every request sees one generation from
    start to end and none fails; the old one is freed when its last request is done. `watch()` refreshes in a
    background thread, so requests keep being answered while a new generation loads."""

    RETRY_FAILED_S = 30.0  # a generation that would not load is tried again after this (or when CURRENT moves)

    def __init__(self, assistant: Assistant, prepare: Callable[[Assistant], None] | None = None) -> None:
        self._assistant = assistant
        self._prepare = prepare  # run on a newly opened Assistant before it answers (e.g. a warm-up question)
        self._lock = threading.Lock()  # one load at a time
        self._failed: tuple[str, float] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def current(self) -> Assistant:
        return self._assistant

    @property
    def generation(self) -> str:
        return self._assistant.generation

    def refresh(self) -> bool:
        """Switch to the generation CURRENT names if it is another one; True when switched. A generation that
        fails to load is logged and the current one kept."""
        old = self._assistant
        name = named_generation(old.settings.index_dir)
        if name is None or name == old.generation:
            return False
        if self._failed and self._failed[0] == name and time.monotonic() - self._failed[1] < self.RETRY_FAILED_S:
            return False
        if not self._lock.acquire(blocking=False):  # another thread is loading it
            return False
        try:
            new = Assistant.open(old.settings, embedder=old.embedder)
            if self._prepare is not None:
                self._prepare(new)
        except (RagError, OSError) as exc:
            self._failed = (name, time.monotonic())
            log.warning("index generation %s cannot be loaded (%s); still answering from %s", name, exc,
                        old.generation)
            return False
        finally:
            self._lock.release()
        self._assistant = new
        self._failed = None
        log.info("index generation %s is live (%d documents; was %s)", new.generation, len(new.documents),
                 old.generation)
        del old
        gc.collect()  # the old generation's arrays go now, not at some later collection
        return True

    def watch(self, interval_s: float) -> None:
        """Refresh every `interval_s` seconds in a daemon thread until `close()` (0: never)."""
        if interval_s <= 0 or self._thread is not None:
            return

        def loop() -> None:
            while not self._stop.wait(interval_s):
                try:
                    self.refresh()
                except Exception:  # never let the watcher die: the next round tries again
                    log.exception("checking for a new index generation failed")

        self._thread = threading.Thread(target=loop, name="rag-generation-watch", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
