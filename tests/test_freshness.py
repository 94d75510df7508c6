"""The ingest's fast path: an unchanged corpus is answered from the stamp with what the full no-op ingest
says; any added, changed or removed file, a chunking setting, a new generation or a just-written file
sends it to the full ingest."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import test_index
from test_index import TOPICS, write_article

from rag import freshness
from rag.config import Settings
from rag.embedding import Embedder
from rag.freshness import STAMP, corpus_state, unchanged_summary
from rag.ingest import ingest

HOUR_AGO = time.time() - 3600


def _noop_lines(paths: list[Path], settings: Settings, embedder: Embedder) -> list[str]:
    """What the full ingest prints when nothing changed (without its seconds)."""
    summary = ingest(paths, settings, embedder=embedder)
    assert not summary.changed
    lines = summary.describe().split("\n")
    return [lines[0].rsplit(", ", 1)[0], *lines[1:]]


small = test_index.small  # the four-article corpus of the index tests


@pytest.fixture()
def stamped(small, embedder: Embedder, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Settings]:
    """The small corpus ingested once, files old enough to be told apart by their stat."""
    monkeypatch.setattr(freshness, "RACY_NS", 0)  # tmp files are seconds old; the rule is tested below
    corpus, settings = small
    write_article(corpus, "dup", TOPICS[0], 10)  # an identical copy: the summary lists it
    ingest([corpus], settings, embedder=embedder)
    return corpus, settings


def test_unchanged_corpus_says_what_the_full_ingest_says(stamped, embedder: Embedder) -> None:
    corpus, settings = stamped
    fast = unchanged_summary([corpus], settings)
    assert fast is not None and any("duplicate:" in line for line in fast)
    assert fast == _noop_lines([corpus], settings, embedder)
    # settings that only serving reads do not count; every other one does
    assert unchanged_summary([corpus], settings.with_overrides(port=9999, workers=4)) == fast
    assert unchanged_summary([corpus], settings.with_overrides(chunk_tokens=120)) is None
    assert unchanged_summary([corpus], settings, prune=True) is None  # keyed by the flags too
    assert unchanged_summary([corpus / "a0.txt"], settings) is None  # and by the paths given


@pytest.mark.parametrize("change", ["edit", "same_size_edit", "add", "remove", "sidecar", "hidden_dir"])
def test_any_change_under_the_paths_goes_to_the_full_ingest(stamped, embedder: Embedder, change: str) -> None:
    corpus, settings = stamped
    assert unchanged_summary([corpus], settings) is not None
    target = corpus / "a1.txt"
    if change == "edit":
        target.write_text(target.read_text() + "More.\n")
    elif change == "same_size_edit":  # same size, mtime set back to what it was: the ctime still moves
        st = target.stat()
        target.write_text(target.read_text().replace("council", "cuoncil", 1))
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    elif change == "add":
        write_article(corpus, "new", TOPICS[5], 99)
    elif change == "remove":
        target.unlink()
    elif change == "sidecar":
        (corpus / "a1.meta.json").write_text('{"publisher": "City Paper"}')
    else:
        (corpus / ".drafts").mkdir()
    assert unchanged_summary([corpus], settings) is None
    summary = ingest([corpus], settings, embedder=embedder)
    assert summary.changed == (change not in ("remove", "hidden_dir"))  # no prune: a removed file's document stays
    assert unchanged_summary([corpus], settings) == _noop_lines([corpus], settings, embedder)


def test_another_generation_or_a_running_ingest_goes_to_the_full_ingest(stamped, embedder: Embedder) -> None:
    corpus, settings = stamped
    other = corpus.parent / "other"
    other.mkdir()
    write_article(other, "o1", TOPICS[4], 5)
    ingest([other], settings, embedder=embedder)  # CURRENT moves: the corpus stamp no longer holds
    assert unchanged_summary([corpus], settings) is None
    _noop_lines([corpus], settings, embedder)
    assert unchanged_summary([corpus], settings) is not None
    import fcntl

    with open(settings.index_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        assert unchanged_summary([corpus], settings) is None


def test_a_just_written_file_is_not_trusted_to_its_stat(small, embedder: Embedder) -> None:
    corpus, settings = small
    state = corpus_state([corpus])
    assert state is not None and state[1]  # written a moment ago: mtime may not tell the next write apart
    ingest([corpus], settings, embedder=embedder)
    assert not (settings.index_dir / STAMP).exists()
    for f in corpus.iterdir():
        os.utime(f, (HOUR_AGO, HOUR_AGO))
    assert corpus_state([corpus])[1]  # ctime still says now


def test_cli_fast_path_prints_the_full_summary(stamped) -> None:
    corpus, settings = stamped
    expected = unchanged_summary([corpus], settings)
    assert expected is not None
    env = {**os.environ, "RAG_INDEX_DIR": str(settings.index_dir), "RAG_CACHE_DIR": str(settings.cache_dir),
           "RAG_CORPUS_DIR": str(corpus)}
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "rag.cli", "ingest"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    head, *rest = done.stdout.splitlines()
    assert head.startswith(expected[0] + ", ") and head.endswith(" s") and rest == expected[1:]
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert "rag.ingest" not in imported and "numpy" not in imported  # answered before the ingest's imports


def test_serve_ingest_refuses_an_index_folder_without_an_index(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "rag.cli", "serve", "--ingest", "--workers", "1", "--index",
                           str(tmp_path / "typo")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "no index at" in done.stderr and "--create" in done.stderr, done.stderr
    assert not (tmp_path / "typo").exists()
