"""Faults of the index and ingest (issue 10, index side; issue 11 point 3): nothing lost, nothing corrupt.

One section per item: line-safe JSON Lines, verified generations (and a full disk), corrupt files refused
and rolled back, bad documents skipped, reading never writes, ingest removes only when asked, -k bounds.
The CLI runs in-process (`rag.cli.main`, sharing the session's model) unless a real process is the point.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import faiss
import httpx
import numpy as np
import pytest

from rag.cli import main
from rag.config import Settings
from rag.embedding import Embedder
from rag.errors import CorruptIndexError
from rag.index import (
    ARTIFACTS,
    CURRENT,
    current_generation,
    generations,
    load_data,
    load_generation,
    partial_generations,
    read_jsonl,
    write_generation,
    write_lock,
)
from rag.ingest import ingest
from rag.types import Chunk

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "index" / "cache"

ARTICLES = {
    "harbour": ("Harbour dredging approved\n\nThe council approved 12 million euros for harbour dredging on "
                "Monday. Work starts in spring, officials said.\n"),
    "tram": ("Tram line extension\n\nThe tram line extension will cost 48 million euros, the transport office "
             "said. It adds six stops in the east.\n"),
    "library": ("Library renovation\n\nThe city library closes for renovation in May. The works cost "
                "3 million euros and take a year.\n"),
}


@pytest.fixture(autouse=True)
def _cache_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's settings share the session's embedding cache, so its model is the one already loaded."""
    monkeypatch.setenv("RAG_CACHE_DIR", str(CACHE))
    for name in ("RAG_INDEX_DIR", "RAG_CORPUS_DIR", "RAG_ROOT_DIR", "RAG_CHUNK_TOKENS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture()
def cli(embedder: Embedder) -> Callable[..., tuple[int, str, str]]:
    """`rag ARGS...` in-process: (exit status, stdout, stderr)."""

    def run(*argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(argv))
        return code, out.getvalue(), err.getvalue()

    return run


def write_corpus(folder: Path, articles: dict[str, str] = ARTICLES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in articles.items():
        (folder / f"{name}.txt").write_text(text, encoding="utf-8")
    return folder


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under folder with its size and modification time (to prove nothing was written)."""
    return {p.relative_to(folder).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


# ---------------------------------------------------------------- 1. line-safe JSON Lines


def test_line_separators_in_a_document_ingest_and_answer(cli, tmp_path: Path) -> None:
    """U+2028, U+2029 and U+0085 inside a document (issue 10 point 1: they used to break the index)."""
    corpus = tmp_path / "c"
    corpus.mkdir()
    text = ("Fund news\n\nThe fund gave 5 million euros.\u2028It hired 3 pilots.\u2029"
            "The pilots fly from Tuesday.\u0085The base is in Oslo.\n")
    (corpus / "a.txt").write_bytes(text.encode())
    index = tmp_path / "i"
    code, out, err = cli("ingest", str(corpus), "--index", str(index), "--create", "-q")
    assert code == 0, err
    code, out, err = cli("ask", "How much did the fund give?", "--index", str(index))
    assert code == 0 and "5 million euros" in out, (out, err)
    docs_file = current_generation(index) / "documents" / "meta.jsonl"
    assert len(docs_file.read_text(encoding="utf-8").splitlines()) == 1  # any line splitter sees one record
    assert load_data(index).documents["a"].text == text  # the text round-trips unchanged
    code, out, _ = cli("ingest", str(corpus), "--index", str(index), "-q")
    assert code == 0 and "unchanged 1" in out


def test_jsonl_round_trips_every_line_breaking_character(tmp_path: Path) -> None:
    from rag.index import _jsonl

    breakers = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
    records = [{"text": f"a{ch}b", "n": i} for i, ch in enumerate(breakers)]
    path = tmp_path / "x.jsonl"
    path.write_bytes(_jsonl(iter(records)))
    assert read_jsonl(path) == records
    assert len(path.read_text(encoding="utf-8").splitlines()) == len(records)


# ---------------------------------------------------------------- 2. generations that cannot go bad


@pytest.fixture()
def small_index(tmp_path: Path, settings: Settings, embedder: Embedder) -> tuple[Path, Settings]:
    corpus = write_corpus(tmp_path / "corpus")
    s = settings.with_overrides(corpus_dir=corpus, index_dir=tmp_path / "index")
    ingest([corpus], s, embedder=embedder)
    return corpus, s


def test_every_file_is_checksummed_and_the_last_n_generations_kept(small_index, embedder: Embedder) -> None:
    corpus, s = small_index
    gen = current_generation(s.index_dir)
    manifest = json.loads((gen / "manifest.json").read_text())
    on_disk = {p.relative_to(gen).as_posix() for p in gen.rglob("*") if p.is_file()} - {"manifest.json"}
    assert set(manifest["files"]) == on_disk
    # one list names every file (a small index has one vector file, not IVF-PQ shards)
    assert set(manifest["artifacts"]) == {a.name for a in ARTIFACTS} - {"faiss_shards"}
    for rel, want in manifest["files"].items():
        assert hashlib.sha256((gen / rel).read_bytes()).hexdigest() == want["sha256"]
    seen = [gen.name]
    for i in range(3):
        (corpus / f"extra{i}.txt").write_text(f"Extra note {i}\n\nThe note lists {i + 2} items.\n")
        ingest([corpus], s, embedder=embedder)
        seen.append(current_generation(s.index_dir).name)
    assert [g.name for g in generations(s.index_dir)] == seen[-2:]  # keep_generations=2: live + previous
    s3 = s.with_overrides(keep_generations=3)
    (corpus / "extra9.txt").write_text("Extra note 9\n\nThe note lists 11 items.\n")
    ingest([corpus], s3, embedder=embedder)
    (corpus / "extra8.txt").write_text("Extra note 8\n\nThe note lists 10 items.\n")
    ingest([corpus], s3, embedder=embedder)
    assert len(generations(s.index_dir)) == 3


def test_a_new_artifact_is_one_line_and_gets_the_same_checks(small_index, monkeypatch) -> None:
    import rag.index as index_module
    from rag.index import _table

    _, s = small_index
    data = load_generation(current_generation(s.index_dir))
    monkeypatch.setattr(index_module, "ARTIFACTS",
                        (*ARTIFACTS, _table("roles.npz", "roles", type(data.annotations), rows="sentences")))
    data.faiss = data.lexical = None
    data.extra["roles"] = data.annotations
    gen = write_generation(s.index_dir, data, s)
    manifest = json.loads((gen / "manifest.json").read_text())
    assert "roles.npz" in manifest["artifacts"] and "roles.npz" in manifest["files"]
    assert len(load_data(s.index_dir).extra["roles"]) == manifest["counts"]["sentences"]
    short = load_generation(gen)
    short.faiss = short.lexical = None
    short.extra["roles"] = type(data.annotations).pack([short.annotations.raw(0)])  # one row, not one per sentence
    with pytest.raises(CorruptIndexError, match="roles.npz holds 1 rows"):
        write_generation(s.index_dir, short, s)
    assert current_generation(s.index_dir) == gen


def test_a_generation_that_fails_verification_never_goes_live(small_index) -> None:
    _, s = small_index
    live = current_generation(s.index_dir)
    data = load_generation(live)
    bad = data.chunks[0]
    doc_len = len(data.documents[bad.doc_id].text)
    data.chunks = list(data.chunks)  # read back as columns; a list of Chunks is what ingest writes
    data.chunks[0] = Chunk(bad.chunk_id, bad.doc_id, bad.start, doc_len + 40, bad.text, bad.sentences, bad.n_tokens)
    data.faiss = data.lexical = None
    with pytest.raises(CorruptIndexError, match="outside its document"):
        write_generation(s.index_dir, data, s)
    assert current_generation(s.index_dir) == live
    assert generations(s.index_dir) == [live] and partial_generations(s.index_dir) == []
    load_data(s.index_dir)  # the live one still loads


def test_disk_full_leaves_the_live_generation_and_the_next_ingest_succeeds(tmp_path: Path, embedder) -> None:
    """A real ENOSPC: the index folder is a 2 MB tmpfs mounted in a private mount namespace."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")
    index = tmp_path / "index"
    index.mkdir()
    first = write_corpus(tmp_path / "first")
    second = write_corpus(tmp_path / "second", {f"{k}2": v.replace("euros", "euros in total") * 30
                                                for k, v in ARTICLES.items()})
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                            f"mount -t tmpfs -o size=2m tmpfs {index}"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs in a private namespace here: {probe.stderr.strip()}")
    env = {**os.environ, "RAG_CACHE_DIR": str(CACHE), "RAG_INDEX_SENTENCES": "false"}  # no spaCy: faster
    script = f'mount -t tmpfs -o size=2m tmpfs "$1" && exec {sys.executable} {ROOT / "tests" / "faults_disk_full.py"} "$@"'
    out = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, "_",
                          str(index), str(first), str(second)], capture_output=True, text=True, env=env,
                         timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["first"]["code"] == 0
    before = r["after_first"]
    assert r["full"]["code"] == 2
    line = one_line_error(r["full"]["stderr"])
    assert "no space left" in line and "live index is unchanged" in line
    assert r["after_full"] == before  # same live generation, no partial folder, same documents
    assert r["freed"]["code"] == 0, r["freed"]["stderr"]
    after = r["after_freed"]
    assert after["live"] != before["live"] and after["partial"] == []
    assert set(after["documents"]) == set(before["documents"]) | {"harbour2", "tram2", "library2"}


# ---------------------------------------------------------------- 3. corrupt generations refused, rolled back


@pytest.fixture(scope="module")
def two_generations(tmp_path_factory: pytest.TempPathFactory, settings: Settings, embedder: Embedder) -> Path:
    """A pristine index whose live generation follows an older good one (harbour at 12, then 15 million)."""
    base = tmp_path_factory.mktemp("two-gens")
    corpus = write_corpus(base / "corpus")
    s = settings.with_overrides(corpus_dir=corpus, index_dir=base / "index")
    ingest([corpus], s, embedder=embedder)
    (corpus / "harbour.txt").write_text(ARTICLES["harbour"].replace("12 million", "15 million"))
    ingest([corpus], s, embedder=embedder)
    return s.index_dir


def _rehash(gen: Path, rel: str) -> None:
    """Update the manifest's checksum of a tampered file, so the deeper checks must catch the fault."""
    path = gen / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["files"][rel] = {"sha256": hashlib.sha256((gen / rel).read_bytes()).hexdigest(),
                              "bytes": (gen / rel).stat().st_size}
    path.write_text(json.dumps(manifest))


def _garble_faiss(gen: Path) -> None:
    path = gen / "faiss.index"
    data = bytearray(path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = os.urandom(64)
    path.write_bytes(bytes(data))


def _faiss_other_dimension(gen: Path) -> None:
    n = faiss.read_index(str(gen / "faiss.index")).ntotal
    other = faiss.IndexFlatIP(8)
    other.add(np.ones((n, 8), dtype=np.float32))
    faiss.write_index(other, str(gen / "faiss.index"))
    _rehash(gen, "faiss.index")


def _retouch(gen: Path, rel: str, change) -> None:
    """Rewrite one column of the generation (a valid .npy file) and its checksum."""
    arr = np.load(gen / rel).copy()
    change(arr)
    np.save(gen / rel, arr)
    _rehash(gen, rel)


def _offsets_out_of_range(gen: Path) -> None:
    _retouch(gen, "chunks/end.npy", lambda end: end.__setitem__(0, end[0] + 10_000))


def _garble_text_blob(gen: Path) -> None:
    path = gen / "documents" / "text.npy"
    data = bytearray(path.read_bytes())
    data[-8:] = b"\xff" * 8
    path.write_bytes(bytes(data))


def _text_offsets_past_the_blob(gen: Path) -> None:
    _retouch(gen, "documents/text_offsets.npy", lambda off: off.__setitem__(-1, off[-1] + 1))


def _sentence_offsets_decreasing(gen: Path) -> None:
    _retouch(gen, "chunks/sentence_offsets.npy", lambda off: off.__setitem__(1, off[2] + 1))


def _truncated_sentence_vectors(gen: Path) -> None:
    path = gen / "sentence_vectors.npy"
    arr = np.load(path)
    np.save(path, arr[: len(arr) // 2])  # a valid .npy file with half the rows
    _rehash(gen, "sentence_vectors.npy")


def _manifest_keys_missing(gen: Path) -> None:
    path = gen / "manifest.json"
    manifest = json.loads(path.read_text())
    del manifest["files"], manifest["counts"]
    path.write_text(json.dumps(manifest))


def _current_not_utf8(gen: Path) -> None:
    (gen.parent / CURRENT).write_bytes(b"\xff\xfe" + gen.name.encode()[:10])


# kind -> (how to corrupt the live generation, what the refusal says, the figure after `doctor --repair`:
# the older generation's, or for a broken pointer the newest good generation's)
CORRUPTIONS = {
    "garbled faiss.index": (_garble_faiss, "faiss.index does not match its checksum", "12 million"),
    "faiss of another dimension": (_faiss_other_dimension, "faiss.index has dimension 8, the index 384",
                                   "12 million"),
    "offsets out of range": (_offsets_out_of_range, "outside its document", "12 million"),
    "garbled text blob": (_garble_text_blob, "documents/text.npy does not match its checksum", "12 million"),
    "text offsets past the blob": (_text_offsets_past_the_blob, "text offsets are not 4 increasing offsets",
                                   "12 million"),
    "sentence offsets decreasing": (_sentence_offsets_decreasing, "sentence offsets are not", "12 million"),
    "truncated sentence_vectors.npy": (_truncated_sentence_vectors, "sentence_vectors.npy holds", "12 million"),
    "manifest keys missing": (_manifest_keys_missing, "manifest.json lacks counts, files", "12 million"),
    "non-UTF-8 CURRENT": (_current_not_utf8, "CURRENT is not UTF-8", "15 million"),
}


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_corrupt_generation_is_refused_in_one_line_and_doctor_rolls_back(cli, two_generations: Path,
                                                                         tmp_path: Path, kind: str) -> None:
    index = tmp_path / "index"
    shutil.copytree(two_generations, index)
    corrupt, reason, figure = CORRUPTIONS[kind]
    corrupt(current_generation(index))
    question = "How much did the council approve for harbour dredging?"
    code, _, err = cli("ask", question, "--index", str(index))
    line = one_line_error(err)
    assert code == 2 and reason in line and f"rag doctor --repair --index {index}" in line
    code, out, _ = cli("doctor", "--index", str(index))
    assert code == 1 and "needs repair" in out
    code, out, _ = cli("doctor", "--repair", "--index", str(index))
    assert code == 0 and "repaired: " in out and "(live): ok, 3 documents, 3 chunks" in out
    code, out, err = cli("ask", question, "--index", str(index))
    assert code == 0 and f"{figure} euros" in out, (out, err)  # a good generation answers again


def test_a_lock_that_is_a_folder_is_refused_and_repaired(cli, two_generations: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    shutil.copytree(two_generations, index)
    (index / ".lock").unlink(missing_ok=True)
    (index / ".lock").mkdir()
    corpus = tmp_path / "more"
    write_corpus(corpus, {"extra": "Extra\n\nThe extra note lists 4 items.\n"})
    code, _, err = cli("ingest", str(corpus), "--index", str(index), "-q")
    assert code == 2 and f"rmdir {index / '.lock'}" in one_line_error(err)
    code, out, _ = cli("doctor", "--repair", "--index", str(index))
    assert code == 0 and "removed the folder .lock" in out
    code, out, _ = cli("ingest", str(corpus), "--index", str(index), "-q")
    assert code == 0 and "added 1" in out


# ---------------------------------------------------------------- 4. bad documents skipped, the rest ingested


def test_bad_documents_are_skipped_with_reasons_and_the_rest_ingested(cli, tmp_path: Path, monkeypatch,
                                                                      embedder: Embedder) -> None:
    from http_helpers import running_server

    from api.app import create_app
    from rag.assistant import Assistant

    corpus = write_corpus(tmp_path / "c", {"good": ARTICLES["harbour"]})
    (corpus / "sub").mkdir()
    (corpus / "sub" / "inner.md").write_text("# Inner note\n\nThe inner note says 7 boats left.\n")
    rng = np.random.default_rng(0)
    (corpus / "random.txt").write_bytes(rng.integers(0, 256, 2000, dtype=np.uint8).tobytes())
    (corpus / "controls.txt").write_bytes(bytes(rng.integers(1, 32, 400, dtype=np.uint8)) + b" some words")
    (corpus / "big.txt").write_text("Big file.\n\n" + "The big file repeats itself. " * 200)
    secret = tmp_path / "secret.txt"
    secret.write_text("Outside the corpus: the password is 1234.\n")
    (corpus / "escape.txt").symlink_to(secret)
    beir = [json.dumps({"_id": "b1", "title": "Ferry", "text": "The ferry carries 200 cars."}),
            '{"_id": "b2", "text": "broken',
            json.dumps({"_id": "b1", "text": "A second b1."}),
            json.dumps({"_id": "x/y", "title": "Pier", "text": "The pier is 80 metres long."})]
    (corpus / "set.jsonl").write_text("\n".join(beir) + "\n")
    monkeypatch.setenv("RAG_MAX_DOCUMENT_BYTES", "3000")
    index = tmp_path / "i"
    code, out, err = cli("ingest", str(corpus), "--index", str(index), "--create", "-q")
    assert code == 1, err  # some files failed: non-zero, yet the index is written
    failed = [ln for ln in out.splitlines() if ln.startswith("  failed: ")]
    reasons = {name: next(ln for ln in failed if name in ln) for name in
               ("random.txt", "controls.txt", "big.txt", "escape.txt", "set.jsonl line 2", "set.jsonl line 3")}
    assert "binary data" in reasons["random.txt"] or "undecodable" in reasons["random.txt"]
    assert "control characters" in reasons["controls.txt"]
    assert "over the per-document limit" in reasons["big.txt"] and "RAG_MAX_DOCUMENT_BYTES" in reasons["big.txt"]
    assert "outside the folder" in reasons["escape.txt"]
    assert "not valid JSON" in reasons["set.jsonl line 2"] and "duplicate _id" in reasons["set.jsonl line 3"]
    assert len(failed) == 6
    docs = load_data(index).documents
    assert set(docs) == {"good", "sub__inner", "b1", "x__y"}
    assert docs["b1"].text == "Ferry\n\nThe ferry carries 200 cars."  # the first b1 is kept
    assert not any("password" in d.text for d in docs.values())
    # The next ingest, the bad line still there, removes nothing of that file even with --prune.
    code, out, _ = cli("ingest", str(corpus), "--index", str(index), "--prune", "-q")
    assert code == 1 and "removed 0" in out and set(load_data(index).documents) == set(docs)
    # Ids from subfolders and BEIR ids with "/" are served by /sources/{doc_id}.
    s = Settings(index_dir=index, cache_dir=CACHE)
    app = create_app(Assistant.open(s, embedder), s)
    with running_server(app) as url:
        for doc_id, words in (("sub__inner", "7 boats"), ("x__y", "80 metres")):
            r = httpx.get(f"{url}/sources/{doc_id}", timeout=30)
            assert r.status_code == 200 and words in r.text


# ---------------------------------------------------------------- 5. reading never writes


def test_ask_search_and_open_never_write_even_with_other_chunk_settings(cli, small_index, monkeypatch, caplog,
                                                                        embedder: Embedder) -> None:
    from rag.assistant import Assistant

    corpus, s = small_index
    (corpus / "new.txt").write_text("New note\n\nThe new note says 9 things.\n")  # unindexed: must stay so
    before = snapshot(s.index_dir)
    monkeypatch.setenv("RAG_CHUNK_TOKENS", "60")
    code, out, err = cli("ask", "How much will the tram line extension cost?", "--index", str(s.index_dir),
                         "--corpus", str(corpus))
    assert code == 0 and "48 million euros" in out
    assert "apply at the next `rag ingest`" in caplog.text and "chunk_tokens 200 -> 60" in caplog.text
    code, out, _ = cli("search", "library renovation", "--index", str(s.index_dir), "--corpus", str(corpus))
    assert code == 0 and "Library renovation" in out
    Assistant.open(s.with_overrides(chunk_tokens=60), embedder)  # what `rag serve` does at start
    assert snapshot(s.index_dir) == before
    assert "new" not in load_data(s.index_dir).documents


def test_a_waiting_ingest_says_so_within_a_second(small_index, embedder: Embedder) -> None:
    corpus, s = small_index
    (corpus / "late.txt").write_text("Late note\n\nThe late note says 2 things.\n")
    said: list[tuple[float, str]] = []
    done: list[object] = []
    with write_lock(s.index_dir):
        start = time.monotonic()
        t = threading.Thread(target=lambda: done.append(
            ingest([corpus], s, embedder=embedder, say=lambda m: said.append((time.monotonic() - start, m)))))
        t.start()
        while not said and time.monotonic() - start < 5:
            time.sleep(0.01)
        assert said and said[0][0] < 1.0
        assert said[0][1].startswith(f"waiting for another ingest (pid {os.getpid()})")
        assert t.is_alive()  # still waiting while the lock is held
    t.join(timeout=60)
    assert done and done[0].added == ["late"]


def test_concurrent_ingests_lose_nothing_and_a_waiting_process_says_so(tmp_path: Path, settings: Settings,
                                                                       embedder: Embedder) -> None:
    """A `rag ingest` process and an in-process ingest into one index at once, both queued behind a held
    lock: the process says whom it waits for on stderr; both folders end up in the index."""
    a = write_corpus(tmp_path / "a", {f"a{i}": t for i, t in enumerate(ARTICLES.values())})
    b = write_corpus(tmp_path / "b", {f"b{i}": t.replace("euros", "dollars") for i, t in enumerate(ARTICLES.values())})
    index = tmp_path / "index"
    s = settings.with_overrides(index_dir=index, index_sentences=False)
    env = {**os.environ, "RAG_CACHE_DIR": str(CACHE), "RAG_INDEX_SENTENCES": "false"}
    done: list[object] = []
    with write_lock(index):
        proc = subprocess.Popen([sys.executable, "-m", "rag.cli", "ingest", str(a), "--index", str(index),
                                 "--create", "-q"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stderr is not None
        lines = [proc.stderr.readline() for _ in range(1)]  # blocks until the process reaches the lock
        while "waiting for another ingest" not in lines[-1] and lines[-1] and len(lines) < 50:
            lines.append(proc.stderr.readline())  # library warnings may come first
        assert lines[-1].startswith(f"waiting for another ingest (pid {os.getpid()}) to finish with {index}"), lines
        t = threading.Thread(target=lambda: done.append(ingest([b], s, embedder=embedder)))
        t.start()
        time.sleep(0.2)
    out, err = proc.communicate(timeout=240)
    t.join(timeout=120)
    assert proc.returncode == 0, err
    assert done and set(load_data(index).documents) == {"a0", "a1", "a2", "b0", "b1", "b2"}


# ---------------------------------------------------------------- 6. ingest never loses a document by surprise


def test_ingest_adds_and_removes_only_when_asked(cli, tmp_path: Path) -> None:
    first = write_corpus(tmp_path / "first")
    second = write_corpus(tmp_path / "second", {"ferry": "Ferry news\n\nThe ferry carries 200 cars.\n",
                                                "pier": "Pier news\n\nThe pier is 80 metres long.\n",
                                                "harbour": ARTICLES["harbour"].replace("12", "13")})
    index = tmp_path / "index"
    assert cli("ingest", str(first), "--index", str(index), "--create", "-q")[0] == 0
    code, out, _ = cli("ingest", str(second), "--index", str(index), "-q")
    assert code == 0 and "added 3" in out and "removed 0" in out
    docs = load_data(index).documents
    assert set(docs) == {"harbour", "tram", "library", "ferry", "pier", "harbour~2"}  # a name in both: both kept
    assert "13 million" in docs["harbour~2"].text and "12 million" in docs["harbour"].text
    (second / "pier.txt").unlink()
    code, out, _ = cli("ingest", str(second), "--index", str(index), "-q")
    assert code == 0 and "removed 0" in out and "pier" in load_data(index).documents
    live = current_generation(index)
    code, out, err = cli("ingest", str(second), "--index", str(index), "--prune", "--dry-run", "-q")
    assert code == 0 and "would remove 1 document: pier" in err and current_generation(index) == live
    code, out, err = cli("ingest", str(second), "--index", str(index), "--prune", "-q")
    assert code == 0 and err.startswith("removing 1 document: pier") and "removed: pier" in out
    assert set(load_data(index).documents) == {"harbour", "tram", "library", "ferry", "harbour~2"}
    code, out, err = cli("remove", "tram", "ferry", "--index", str(index))
    assert code == 0 and err.startswith("removing 2 documents: ferry, tram")
    assert set(load_data(index).documents) == {"harbour", "library", "harbour~2"}
    code, _, err = cli("remove", "nope", "--index", str(index))
    assert code == 2 and "not in the index" in one_line_error(err)


def test_removing_a_document_keeps_its_identical_copy(small_index, embedder: Embedder, tmp_path: Path) -> None:
    corpus, s = small_index
    other = write_corpus(tmp_path / "other", {"harbour-copy": ARTICLES["harbour"]})
    summary = ingest([other], s, embedder=embedder)
    assert summary.duplicates == {"harbour-copy": "harbour"}
    from rag.ingest import remove_documents

    remove_documents(["harbour"], s)
    data = load_data(s.index_dir)
    assert "harbour" not in data.documents and data.documents["harbour-copy"].text == ARTICLES["harbour"]
    assert any(c.doc_id == "harbour-copy" for c in data.chunks)


def test_index_folder_must_exist_or_be_created_and_never_hold_articles(cli, tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "c")
    code, _, err = cli("ingest", str(corpus), "--index", str(tmp_path / "typo"), "-q")
    assert code == 2 and "add --create" in one_line_error(err) and not (tmp_path / "typo").exists()
    code, _, err = cli("ingest", str(corpus), "--index", str(corpus), "--create", "-q")
    assert code == 2 and "inside" in one_line_error(err)
    articles = write_corpus(tmp_path / "articles", {"note": "Note\n\nA note with 1 line.\n"})
    (tmp_path / "own").mkdir()
    (tmp_path / "own" / "README.md").write_text("Indexes live here.\n")  # a folder's README is no article
    assert cli("ingest", str(corpus), "--index", str(tmp_path / "own"), "--create", "-q")[0] == 0
    code, _, err = cli("ingest", str(corpus), "--index", str(articles), "--create", "-q")
    assert code == 2 and "holds articles (note.txt)" in one_line_error(err)
    assert sorted(p.name for p in articles.iterdir()) == ["note.txt"]
    code, _, err = cli("search", "harbour", "--index", str(tmp_path / "none"))
    assert code == 2 and "no index at" in one_line_error(err)


def test_cli_from_another_directory_works_on_the_project_index(cli, tmp_path: Path, monkeypatch) -> None:
    project = tmp_path / "project"
    write_corpus(project / "corpus")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("RAG_ROOT_DIR", str(project))
    code, out, err = cli("ingest", "-q")  # the project's corpus/ into the project's index/
    assert code == 0 and "added 3" in out, err
    code, out, _ = cli("ask", "How much will the tram line extension cost?")
    assert code == 0 and "48 million euros" in out
    assert current_generation(project / "index") is not None and list(elsewhere.iterdir()) == []
    monkeypatch.delenv("RAG_ROOT_DIR")
    assert Settings().index_dir == ROOT / "index"  # by default the root is this checkout, wherever run from


def test_make_run_ingests_before_it_serves() -> None:
    out = subprocess.run(["make", "-n", "run"], cwd=ROOT, capture_output=True, text=True, timeout=60).stdout
    steps = [ln for ln in out.splitlines() if "/rag " in ln]
    # `rag serve --ingest` runs the ingest before it starts the answering processes (api/cli.py)
    assert [ln.split("/rag ")[1].split()[:2] for ln in steps] == [["serve", "--ingest"]]


# ---------------------------------------------------------------- 7. -k bounds


@pytest.mark.parametrize(("argv", "k"), [(("ask", "How much?"), "0"), (("search", "harbour"), "-5"),
                                         (("ask", "How much?"), "51")])
def test_k_out_of_range_is_an_error(cli, tmp_path: Path, argv: tuple[str, ...], k: str) -> None:
    code, out, err = cli(*argv, "-k", k, "--index", str(tmp_path))
    assert code == 2 and not out
    assert one_line_error(err) == f"error: -k must be between 1 and 50 (RAG_MAX_TOP_K), got {k}"
