"""The `rag` command as people use it: ask (in-process and through a running server), chat on stdin,
sources, search, --version and help."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from http_helpers import free_port, running_server, without_timings

from api.app import create_app
from rag.assistant import Assistant
from rag.cli import build_parser, command_of, format_confidence, highlight, main, print_answer
from rag.config import Settings
from rag.types import Answer, Turn

ROOT = Path(__file__).resolve().parent.parent
RAG = Path(sys.executable).parent / "rag"
QUESTION = "How much did the government give Rapidus?"
FIRST = "How big is ASRA's new government subsidy?"
FOLLOW_UP = "And what did it get before that?"




def run_rag(args: list[str], settings: Settings, cwd: Path, port: int | None = None, stdin: str | None = None,
            index_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`rag ARGS` in a new process, on the test index given by absolute paths, from folder `cwd`."""
    env = {**os.environ, "RAG_INDEX_DIR": str(index_dir or settings.index_dir),
           "RAG_CORPUS_DIR": str(settings.corpus_dir), "RAG_CACHE_DIR": str(settings.cache_dir),
           "RAG_PORT": str(port or free_port()), "RAG_HOST": "127.0.0.1"}
    env.pop("RAG_API_KEY", None)
    return subprocess.run([str(RAG), *args], cwd=cwd, env=env, input=stdin, capture_output=True, text=True,
                          timeout=180)


def rendered(answer: Answer) -> str:
    """What `rag ask` prints for an answer: its text, then its confidence."""
    return f"{answer.answer}\n{format_confidence(answer.confidence)}\n"


def test_version() -> None:
    done = subprocess.run([str(RAG), "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == f"rag {version('rag-cited')}"


def test_help_has_examples_and_no_plugin_talk(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in ([], ["ask"], ["chat"], ["search"], ["sources"]):
        with pytest.raises(SystemExit):
            main([*argv, "--help"])
        out = capsys.readouterr().out
        assert "examples:" in out and "plugin" not in out.lower(), argv
    assert main([]) == 2  # no command: the help, with examples
    assert "rag ask" in capsys.readouterr().out


def test_ask_from_another_directory(seed_assistant: Assistant, settings: Settings, tmp_path: Path) -> None:
    done = run_rag(["ask", QUESTION], settings, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == rendered(seed_assistant.ask(QUESTION))
    assert done.stderr == ""  # no library noise
    assert not (tmp_path / "index").exists()  # nothing written where it was run from

    as_json = json.loads(run_rag(["ask", QUESTION, "--json"], settings, cwd=tmp_path).stdout)
    expected = json.loads(json.dumps(seed_assistant.ask(QUESTION).to_dict()))
    assert without_timings(as_json) == without_timings(expected)


def test_ask_goes_through_a_running_server_of_the_same_index(seed_assistant: Assistant, settings: Settings,
                                                            make_assistant, tmp_path: Path) -> None:
    expected = rendered(seed_assistant.ask(QUESTION))
    with running_server(create_app(seed_assistant, settings)) as url:
        port = int(url.rsplit(":", 1)[1])
        done = run_rag(["-v", "ask", QUESTION], settings, cwd=tmp_path, port=port)
        assert done.returncode == 0, done.stderr
        assert f"answering through {url}" in done.stderr
        assert done.stdout == expected

        local = run_rag(["-v", "ask", QUESTION, "--local"], settings, cwd=tmp_path, port=port)
        assert "answering through this process" in local.stderr and local.stdout == expected

        # A server of another index is not used for this one.
        city = make_assistant(ROOT / "tests" / "fixtures" / "city")
        other = run_rag(["-v", "ask", QUESTION], settings, cwd=tmp_path, port=port, index_dir=city.store.index_dir)
        assert "answering through this process" in other.stderr, other.stderr


def test_chat_on_stdin(seed_assistant: Assistant, settings: Settings, tmp_path: Path) -> None:
    first = seed_assistant.ask(FIRST)
    follow = seed_assistant.ask(FOLLOW_UP, history=[Turn("user", FIRST), Turn("assistant", first.answer)])
    alone = seed_assistant.ask(FOLLOW_UP)
    assert follow.answer != alone.answer  # so the chat's answer shows whether the history was sent
    lines = [FIRST, FOLLOW_UP, "/sources", "/explain", "/nonsense", "   ", "/quit", "Never asked?"]
    done = run_rag(["chat", "--local"], settings, cwd=tmp_path, stdin="\n".join(lines) + "\n")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("Ask about the indexed articles") and "/sources" in out.splitlines()[0]
    before, after = out.split(f"> {FOLLOW_UP}\n")
    assert rendered(first) in before
    assert after.startswith(rendered(follow))
    after = after[len(rendered(follow)):]
    for c in follow.citations:  # /sources: what the last answer cites, where in which document
        assert f"[{c.n}] {c.title}" in after and f"{c.doc_id}, characters {c.start}-{c.end}" in after
    assert "timings:" in after  # /explain
    assert "unknown command /nonsense" in after
    assert "Never asked?" not in out


def test_chat_reports_a_bad_question_and_goes_on(settings: Settings, tmp_path: Path) -> None:
    done = run_rag(["chat", "--local"], settings, cwd=tmp_path, stdin="/sources\n" + "x" * 3000 + "\n/quit\n")
    assert done.returncode == 0, done.stderr
    assert "ask a question first" in done.stdout and "error: question is 3000 characters" in done.stdout


def test_sources(seed_assistant: Assistant, capsys: pytest.CaptureFixture[str], settings: Settings) -> None:
    assert main(["sources", "--index", str(settings.index_dir)]) == 0
    out = capsys.readouterr().out
    docs = seed_assistant.documents
    assert out.startswith(f"{len(docs)} documents, {len(seed_assistant.store.chunks)} chunks")
    for doc in docs.values():
        assert doc.meta.title in out and doc.doc_id in out
    assert "智通财经网 · 2025-11-06" in out

    assert main(["sources", "--index", str(settings.index_dir), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    counts = {r["doc_id"]: r["chunks"] for r in rows}
    assert counts == {d: sum(c.doc_id == d for c in seed_assistant.store.chunks) for d in docs}
    assert {r["publisher"] for r in rows} >= {"智通财经网", "MarketsandMarkets"}


def test_sources_without_an_index_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["sources", "--index", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1


def test_search_shows_ranks_titles_dates_not_scores(seed_assistant: Assistant, capsys: pytest.CaptureFixture[str],
                                                    settings: Settings) -> None:
    assert main(["search", "Rapidus subsidy", "-k", "3", "--index", str(settings.index_dir)]) == 0
    out = capsys.readouterr().out
    hits = seed_assistant.search("Rapidus subsidy", k=3)
    for h in hits:
        meta = seed_assistant.documents[h.chunk.doc_id].meta
        assert f"{h.rank:>2}. {meta.title}" in out
        if meta.published:
            assert meta.published in out
    assert "found by" in out
    assert not re.search(r"\b0\.\d{3,}", out)  # no raw fusion scores


def test_highlight_marks_matching_words() -> None:
    text = highlight("The subsidies were raised for chip plants.", "subsidy raise plant")
    marked = {text.plain[s.start:s.end] for s in text.spans}
    assert marked == {"subsidies", "raised", "plants"}
    cjk = highlight("日本政府补贴半导体产业", "半导体")
    covered = sorted({i for s in cjk.spans for i in range(s.start, s.end)})
    assert "".join(cjk.plain[i] for i in covered) == "半导体"  # through its bigrams 半导 and 导体


def test_confidence_is_shown_when_present(capsys: pytest.CaptureFixture[str]) -> None:
    assert format_confidence(0.91) == "confidence 0.91 (high)"
    assert format_confidence(0.3) == "confidence 0.30 (low)"
    assert format_confidence(None) is None and format_confidence(True) is None
    print_answer({"answer": "About 5 billion yen [1].", "confidence": 0.62})
    print_answer({"answer": "No confidence here."})
    assert capsys.readouterr().out == "About 5 billion yen [1].\nconfidence 0.62 (medium)\nNo confidence here.\n"


def test_long_chat_through_the_server_keeps_within_its_history_limit(seed_assistant: Assistant, settings: Settings,
                                                                   tmp_path: Path) -> None:
    """The API takes at most 50 turns of history; a chat of 30 questions keeps sending only recent ones."""
    with running_server(create_app(seed_assistant, settings)) as url:
        port = int(url.rsplit(":", 1)[1])
        done = run_rag(["-v", "chat"], settings, cwd=tmp_path, port=port, stdin=f"{QUESTION}\n" * 30)
    assert done.returncode == 0, done.stderr
    assert f"answering through {url}" in done.stderr
    assert "error:" not in done.stdout and done.stdout.count(f"> {QUESTION}") == 30
    assert done.stdout.count(seed_assistant.ask(QUESTION).answer) == 30


def _commands(parser) -> set[str]:
    return set(next(a for a in parser._actions if a.dest == "command").choices)


def test_only_the_command_that_runs_has_its_plugin_loaded() -> None:
    """`rag ask` builds no serving or evaluation commands (their imports cost start-up); help lists all."""
    assert command_of(["-v", "ask", "How much?"]) == "ask" and command_of(["--version"]) is None
    builtins = {"ingest", "remove", "doctor", "search", "ask", "chat", "sources"}
    assert _commands(build_parser("ask")) == builtins
    assert _commands(build_parser("serve")) == builtins | {"serve"}
    everything = _commands(build_parser(None))
    assert builtins | {"serve", "slack", "eval", "eval-retrieval", "eval-qa"} <= everything
    assert _commands(build_parser("no-such-command")) == everything  # argparse then lists every choice
