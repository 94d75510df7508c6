"""Live generation switches (issue 12 point 3): a running server follows the index's CURRENT between
requests, without a restart and without one failed request. A real `rag serve --workers 2` on 127.0.0.1
under a bounded load while a new document is ingested into the index it serves; and the library's
LiveAssistant on small hand-built cases (the old generation freed, a generation that will not load kept
away from requests)."""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from http_helpers import ROOT, answered_questions, free_port, running_server, stop_process

from api.app import create_app
from rag.assistant import Assistant, LiveAssistant, named_generation
from rag.config import Settings
from rag.embedding import Embedder
from rag.ingest import ingest

STARTUP_TIMEOUT_S = 300
SWITCH_TARGET_S = 5.0  # the new document answerable, and /health on the new generation, within this
LOAD_CLIENTS = 2
LOAD_LIMIT_S = 120  # the load stops by then whatever happens
NEW_DOC = "observatory-log"
NEW_TEXT = ("Observatory log\n\nBy Ilse Marwick | Harbour Gazette\n\n"
            "The Quillfeather Observatory in Varnholt counted 4,812 meteors during the night of 3 March 2025. "
            "Its director, Tamsin Orrevelle, said the count was the highest since the observatory opened.\n")
UNIQUE_QUERY = "Quillfeather Observatory Varnholt meteors"




@dataclass
class Load:
    """Clients asking /ask, /search and /health in a loop; every status (or transport error) recorded."""

    url: str
    question: str
    statuses: list[tuple[str, int]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def client(self) -> None:
        deadline = time.monotonic() + LOAD_LIMIT_S
        with httpx.Client(base_url=self.url, timeout=30) as c:
            while not self.stop.is_set() and time.monotonic() < deadline:
                for name, call in (("ask", lambda: c.post("/ask", json={"question": self.question})),
                                   ("search", lambda: c.get("/search", params={"q": self.question, "k": 3})),
                                   ("health", lambda: c.get("/health"))):
                    try:
                        self.statuses.append((name, call().status_code))
                    except httpx.TransportError as exc:
                        self.statuses.append((f"{name}: {type(exc).__name__}", 0))

    def __enter__(self) -> Load:
        self.threads = [threading.Thread(target=self.client, daemon=True) for _ in range(LOAD_CLIENTS)]
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)

    def failed(self) -> list[tuple[str, int]]:
        return [s for s in self.statuses if s[1] != 200]


@pytest.fixture
def small_index(settings: Settings, embedder: Embedder, tmp_path: Path) -> Settings:
    """Two seed articles in a corpus folder of their own, indexed into a fresh index folder."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for path in sorted(settings.corpus_dir.glob("*.txt"))[:2]:
        shutil.copy(path, corpus / path.name)
        meta = path.with_suffix(".meta.json")
        if meta.exists():
            shutil.copy(meta, corpus / meta.name)
    own = settings.with_overrides(corpus_dir=corpus, index_dir=tmp_path / "index")
    ingest([corpus], own, embedder=embedder)
    return own


def add_new_document(index_settings: Settings, embedder: Embedder, folder: Path) -> str:
    """Ingest NEW_DOC from `folder` into the index; the generation CURRENT names afterwards."""
    folder.mkdir(exist_ok=True)
    (folder / f"{NEW_DOC}.txt").write_text(NEW_TEXT, encoding="utf-8")
    summary = ingest([folder], index_settings, embedder=embedder)
    assert not summary.failed
    gen = named_generation(index_settings.index_dir)
    assert gen is not None
    return gen


def found(url: str) -> bool:
    """The new document is among /search's passages for its unique words."""
    hits = httpx.get(f"{url}/search", params={"q": UNIQUE_QUERY, "k": 3}, timeout=10).json()["hits"]
    return any(h["doc_id"] == NEW_DOC for h in hits)


def wait_for(check, timeout: float, interval: float = 0.05) -> float:
    """Seconds until `check()` held; AssertionError past `timeout`."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, f"not within {timeout:g} s"
        time.sleep(interval)
    return time.monotonic() - started


@pytest.fixture
def served(small_index: Settings) -> Iterator[str]:
    """`rag serve --workers 2` over the small index, as a process of its own."""
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "RAG_CACHE_DIR": str(small_index.cache_dir)}
    for name in ("RAG_API_KEY", "RAG_RATE_LIMIT_PER_MINUTE", "RAG_GENERATION_CHECK_S"):
        env.pop(name, None)
    log = small_index.index_dir.parent / "serve.log"
    cmd = [sys.executable, "-m", "rag.cli", "serve", "--workers", "2", "--port", str(port),
           "--index", str(small_index.index_dir), "--corpus", str(small_index.corpus_dir)]
    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            return httpx.get(f"{url}/health", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(up, STARTUP_TIMEOUT_S, 0.3)
        yield url
    finally:
        stop_process(process)
    assert "Traceback" not in log.read_text(), log.read_text()[-5000:]


def test_serve_switches_to_a_new_generation_under_load(served: str, small_index: Settings, embedder: Embedder,
                                                       tmp_path: Path) -> None:
    """Ingest into the index a running `rag serve --workers 2` answers from, while clients ask: no request
    fails, the new document is found by /search within 5 s, /health names the new generation and its count."""
    before = httpx.get(f"{served}/health", timeout=5).json()
    assert before["generation"] == named_generation(small_index.index_dir)
    assert not found(served)
    question = answered_questions(Assistant.open(small_index, embedder=embedder))[0]
    with Load(served, question) as load:
        time.sleep(1.0)
        new_gen = add_new_document(small_index, embedder, tmp_path / "new")
        switched_at = time.monotonic()
        seconds = wait_for(lambda: found(served), SWITCH_TARGET_S)

        def healthy_on_new() -> bool:
            h = httpx.get(f"{served}/health", timeout=5).json()
            return h["generation"] == new_gen and h["documents"] == before["documents"] + 1 and not h.get("switching")

        try:
            wait_for(healthy_on_new, SWITCH_TARGET_S - (time.monotonic() - switched_at))
        except AssertionError:
            raise AssertionError(f"/health: {httpx.get(f'{served}/health', timeout=5).json()}, new {new_gen}") from None
        time.sleep(1.0)  # keep the load on past the switch
    print(f"\nnew document found {seconds:.2f} s after CURRENT moved; {len(load.statuses)} requests under load")
    assert len(load.statuses) > 20
    assert load.failed() == []
    # Both answering processes moved: every /search now finds it, whichever process answers.
    assert all(found(served) for _ in range(6))
    source = httpx.get(f"{served}/sources/{NEW_DOC}", params={"start": 0, "end": 15}, timeout=5).json()
    assert source["span"]["text"] == NEW_TEXT[:15]


def test_in_process_server_follows_current(small_index: Settings, embedder: Embedder, tmp_path: Path) -> None:
    """The same with answering in threads of the server process (`--workers 1`)."""
    settings = small_index.with_overrides(generation_check_s=0.2)
    app = create_app(Assistant.open(settings, embedder=embedder), settings)
    with running_server(app) as url:
        question = answered_questions(app.state.service.backend.assistant)[0]
        with Load(url, question) as load:
            time.sleep(0.5)
            new_gen = add_new_document(settings, embedder, tmp_path / "new")
            wait_for(lambda: found(url), SWITCH_TARGET_S)
            assert httpx.get(f"{url}/health", timeout=5).json()["generation"] == new_gen
        assert load.statuses and load.failed() == []
        assert NEW_DOC in {d["doc_id"] for d in httpx.get(f"{url}/sources", timeout=5).json()["documents"]}


def test_live_assistant_frees_the_old_generation(small_index: Settings, embedder: Embedder, tmp_path: Path) -> None:
    first = Assistant.open(small_index, embedder=embedder)
    live = LiveAssistant(first)
    assert live.refresh() is False  # CURRENT has not moved
    old_store = weakref.ref(first.store)
    old_gen = first.generation
    del first
    new_gen = add_new_document(small_index, embedder, tmp_path / "new")
    assert live.refresh() is True
    assert live.generation == new_gen != old_gen and NEW_DOC in live.current.documents
    assert live.current.embedder is embedder  # the model is not loaded again
    gc.collect()
    assert old_store() is None, "the old generation is still referenced"


def test_a_generation_that_will_not_load_is_kept_away(small_index: Settings, embedder: Embedder) -> None:
    """CURRENT moved to a broken generation: refresh keeps answering from the good one, and says so."""
    live = LiveAssistant(Assistant.open(small_index, embedder=embedder))
    good = live.generation
    broken = small_index.index_dir / "gen-20300101T000000-000000-1"
    shutil.copytree(small_index.index_dir / good, broken)
    (broken / "chunks" / "start.npy").write_text("garbage\n", encoding="utf-8")
    (small_index.index_dir / "CURRENT").write_text(broken.name, encoding="utf-8")
    assert live.refresh() is False
    assert live.generation == good
    assert live.current.search(UNIQUE_QUERY, k=1)  # still answering
    assert live.refresh() is False  # not loaded again at once
