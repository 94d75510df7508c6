"""The server under faults and bad input: a real `rag serve --workers 2` process on 127.0.0.1 (the HTTP
process plus two answering processes over the session's test index), probed with killed processes, idle
and slow connections, huge headers and JSON no encoder can write back. Every loop is bounded in count and
time; nothing leaves 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from http_helpers import ROOT, answered_questions, free_port, stop_process, wait_for

from rag.assistant import Assistant
from rag.config import Settings

HEADER_TIMEOUT_S = 2
BODY_TIMEOUT_S = 2
MAX_CONNECTIONS = 200
STARTUP_TIMEOUT_S = 300  # two processes loading a model each, on two cores shared with other work
REPLACEMENT_TIMEOUT_S = 240
REPLACEMENT_TARGET_S = 5.0  # issue 10's target, printed beside the measured time (bench/startup.py holds it)


@dataclass
class Served:
    url: str
    port: int
    process: subprocess.Popen
    log: Path

    def answering_pids(self) -> list[int]:
        """The answering processes: children of the fork server, itself a child of the HTTP process."""
        return sorted(pid for server in children(self.process.pid) if b"forkserver" in cmdline(server)
                      for pid in children(server))

    def health(self) -> httpx.Response:
        return httpx.get(f"{self.url}/health", timeout=5)


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return b""




def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def fully_ready(served: Served) -> bool:
    try:
        r = served.health()
    except httpx.TransportError:
        return False
    return r.status_code == 200 and r.json()["answering"] == {"ready": 2, "total": 2}


@pytest.fixture(scope="module")
def served(settings: Settings, seed_assistant: Assistant, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`rag serve --workers 2` over the session's seed index (built by `seed_assistant`), small time and
    connection limits so the guards can be seen at work."""
    port = free_port()
    log = tmp_path_factory.mktemp("served") / "serve.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "RAG_CACHE_DIR": str(settings.cache_dir),
           "RAG_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S), "RAG_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S),
           "RAG_MAX_CONNECTIONS": str(MAX_CONNECTIONS)}
    for name in ("RAG_API_KEY", "RAG_RATE_LIMIT_PER_MINUTE", "RAG_TRUSTED_PROXIES", "SLACK_BOT_TOKEN"):
        env.pop(name, None)
    cmd = [sys.executable, "-m", "rag.cli", "serve", "--workers", "2", "--port", str(port),
           "--index", str(settings.index_dir), "--corpus", str(settings.corpus_dir), "--log-level", "info"]
    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    server = Served(f"http://127.0.0.1:{port}", port, process, log)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not fully_ready(server):
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "rag serve --workers 2 did not come up: " + log.read_text()[-3000:]
            time.sleep(0.5)
        yield server
    finally:
        stop_process(process)
    assert not re.search(r"Traceback|Exception in ASGI", log.read_text()), log.read_text()[-5000:]


@pytest.fixture(scope="module")
def question(seed_assistant: Assistant) -> str:
    return answered_questions(seed_assistant)[0]


# --- the HTTP process holds no model ------------------------------------------------------------------


def test_http_process_loads_no_model_or_index(served: Served) -> None:
    """With --workers 2 the HTTP process maps neither FAISS nor ONNX Runtime nor torch; the answering
    processes do. (RSS figures are printed for the report: `pytest -s`.)"""
    heavy = re.compile(r"libfaiss|_swigfaiss|onnxruntime|libtorch")
    http_maps = Path(f"/proc/{served.process.pid}/maps").read_text()
    assert not heavy.search(http_maps)
    workers = served.answering_pids()
    assert len(workers) == 2
    for pid in workers:
        assert heavy.search(Path(f"/proc/{pid}/maps").read_text())
    http_rss, worker_rss = rss_mib(served.process.pid), [rss_mib(p) for p in workers]
    print(f"\nRSS: HTTP process {http_rss:.0f} MiB, answering processes {', '.join(f'{r:.0f}' for r in worker_rss)} MiB")
    assert http_rss < 150 and http_rss < min(worker_rss) / 2


# --- JSON that cannot be echoed ---------------------------------------------------------------------------

# The 12 cases: a lone surrogate in the question or in history, NaN/Infinity for question or top_k.
UNENCODABLE = [
    ('{"question": "\\ud800"}', "question"),
    ('{"question": "How much\\udfff?"}', "question"),
    ('{"question": "\\udc00 and \\ud800"}', "question"),
    ('{"question": "How much?", "history": [{"role": "user", "content": "\\ud800"}]}', "history"),
    ('{"question": "How much?", "history": [{"role": "assistant", "content": "x\\udbff"}]}', "history"),
    ('{"question": "How much?", "history": [{"role": "\\ud800", "content": "hi"}]}', "history"),
    ('{"question": NaN}', "NaN"),
    ('{"question": Infinity}', "Infinity"),
    ('{"question": -Infinity}', "-Infinity"),
    ('{"question": "How much?", "top_k": NaN}', "NaN"),
    ('{"question": "How much?", "top_k": Infinity}', "Infinity"),
    ('{"question": "How much?", "top_k": -Infinity}', "-Infinity"),
]


@pytest.mark.parametrize(("body", "named"), UNENCODABLE, ids=range(len(UNENCODABLE)))
def test_unencodable_json_is_422_never_500(served: Served, body: str, named: str) -> None:
    r = httpx.post(f"{served.url}/ask", content=body.encode(), headers={"Content-Type": "application/json"},
                   timeout=30)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "validation_error" and error["param"] == "body"
    assert "surrogate" in error["message"] or f"{named} is not a JSON number" in error["message"]
    r.content.decode("utf-8")  # the reply itself is valid UTF-8 JSON


CHAT_UNENCODABLE = [
    '{"messages": [{"role": "user", "content": "\\ud800"}]}',
    '{"messages": [{"role": "user", "content": [{"type": "text", "text": "\\udfff"}]}]}',
    '{"messages": [{"role": "user", "content": "Hi", "name": "\\ud800"}]}',
    '{"messages": [{"role": "user", "content": NaN}]}',
    '{"messages": [{"role": "user", "content": "How much?"}], "top_k": Infinity}',
    '{"messages": [{"role": "user", "content": "How much?"}], "temperature": NaN}',
]


@pytest.mark.parametrize("body", CHAT_UNENCODABLE, ids=range(len(CHAT_UNENCODABLE)))
def test_unencodable_chat_json_is_422_never_500(served: Served, body: str) -> None:
    r = httpx.post(f"{served.url}/v1/chat/completions", content=body.encode(),
                   headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["param"] == "body"


def test_invalid_inputs_are_echoed_encodable(served: Served) -> None:
    """Inputs that reach the validator come back readable: bytes, and strings cut to 200 characters."""
    r = httpx.post(f"{served.url}/ask", content=b"\xff\xfe\x00 binary", headers={"Content-Type": "text/plain"},
                   timeout=30)
    assert r.status_code == 422 and json.loads(r.content)["detail"]
    r = httpx.post(f"{served.url}/ask", content=b"\xff\xfe", headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 422 and "UTF-8" in r.json()["error"]["message"]
    r = httpx.post(f"{served.url}/ask", json={"question": 7, "history": "x" * 5000}, timeout=30)
    assert r.status_code == 422 and all(len(str(d.get("input", ""))) <= 203 for d in r.json()["detail"])


# --- slow, huge and idle clients --------------------------------------------------------------------------


def read_response(sock: socket.socket, timeout: float) -> bytes:
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return data


def test_ten_megabyte_header_is_refused_fast(served: Served) -> None:
    head = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (10 * 1024 * 1024) + b"\r\n\r\n"
    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        started = time.monotonic()
        sender = threading.Thread(target=lambda: _send_quietly(sock, head), daemon=True)
        sender.start()
        reply = read_response(sock, timeout=5)
        elapsed = time.monotonic() - started
    assert reply.startswith(b"HTTP/1.1 431 "), reply[:200]
    assert b"header_too_large" in reply
    assert elapsed < 3
    # Just under the limit is served; the server stayed responsive throughout.
    ok = httpx.get(f"{served.url}/health", headers={"X-Big": "a" * 20_000}, timeout=5)
    assert ok.status_code == 200


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    try:
        sock.sendall(data)
    except OSError:  # the server closed after answering 431: expected
        pass


def test_slow_head_and_slow_body_get_408(served: Served) -> None:
    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # and never the rest
        started = time.monotonic()
        reply = read_response(sock, timeout=HEADER_TIMEOUT_S + 5)
    assert reply.startswith(b"HTTP/1.1 408 ") and b"header_timeout" in reply, reply[:200]
    assert HEADER_TIMEOUT_S - 0.5 <= time.monotonic() - started <= HEADER_TIMEOUT_S + 4
    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        sock.sendall(b"POST /ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
                     b'{"question": ')  # 13 of 100 bytes
        reply = read_response(sock, timeout=BODY_TIMEOUT_S + 5)
    assert reply.startswith(b"HTTP/1.1 408 ") and b"body_timeout" in reply, reply[:200]
    # A keep-alive connection that answered one request and then sends half a head times out too.
    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(5)
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 ")
        sock.sendall(b"GET /health HTTP/1.1\r\n")
        reply = read_response(sock, timeout=HEADER_TIMEOUT_S + 5)
    assert b"HTTP/1.1 408 " in reply, reply[:200]


def test_a_thousand_idle_connections_do_not_stop_health(served: Served) -> None:
    """1,000 connections (half silent, half stuck inside a request head) against a cap of 200: the oldest
    waiting ones are closed to make room, and /health still answers at once."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1500:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    sockets: list[socket.socket] = []
    try:
        for i in range(1000):
            s = socket.create_connection(("127.0.0.1", served.port), timeout=5)
            if i % 2:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            sockets.append(s)
        started = time.monotonic()
        r = httpx.get(f"{served.url}/health", timeout=5)
        assert r.status_code == 200
        assert time.monotonic() - started < 2
        time.sleep(0.5)
        closed = sum(1 for s in sockets if _closed_by_peer(s))
        assert closed >= 1000 - MAX_CONNECTIONS - 10, closed
        wait_for(lambda: all(_closed_by_peer(s) for s in sockets), HEADER_TIMEOUT_S + 10,
                   what="the header timeout closing every idle connection")
    finally:
        for s in sockets:
            s.close()
    assert httpx.get(f"{served.url}/health", timeout=5).status_code == 200


def _closed_by_peer(sock: socket.socket) -> bool:
    """True once the server has closed the connection (EOF, or a reset), reading whatever it sent first."""
    sock.setblocking(False)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True


# --- answering processes die ------------------------------------------------------------------------------


def ask_retrying_once(url: str, question: str) -> tuple[int, int]:
    """(first status, final status) of /ask from a client that retries once on a 5xx or a dropped connection."""
    statuses = []
    for _ in range(2):
        try:
            status = httpx.post(f"{url}/ask", json={"question": question}, timeout=60).status_code
        except httpx.TransportError:
            status = 0
        statuses.append(status)
        if 0 < status < 500:
            break
    return statuses[0], statuses[-1]


def test_kill_9_of_an_answering_process(served: Served, question: str) -> None:
    """kill -9 of one answering process under load: no client that retries once sees a 500, /ask answers
    200 again within 5 s, /health says degraded (503, with the reason) until a replacement is ready."""
    before = served.answering_pids()
    results: list[tuple[float, int, int]] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            first, final = ask_retrying_once(served.url, question)
            results.append((time.monotonic(), first, final))

    threads = [threading.Thread(target=client, daemon=True) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    os.kill(before[0], signal.SIGKILL)
    killed_at = time.monotonic()
    health = wait_for(lambda: (r := served.health()).status_code == 503 and r, 5, 0.05,
                        what="/health reporting the lost process")
    body = health.json()
    assert body["status"] == "degraded" and body["answering"] == {"ready": 1, "total": 2}
    assert "1 of 2" in body["reason"]
    # A replacement is a fork of the preloaded fork server: it only opens the index and its ONNX session.
    wait_for(lambda: fully_ready(served), REPLACEMENT_TIMEOUT_S, 0.05, what="a replacement answering process")
    replaced_in = time.monotonic() - killed_at
    # The 5 s target is bench/startup.py's figure (about 1 s of CPU: the wall time follows the machine's load).
    print(f"\nreplacement answering process ready {replaced_in:.2f} s after the kill -9 "
          f"(target {REPLACEMENT_TARGET_S:g} s, load average {os.getloadavg()[0]:.1f})")
    time.sleep(max(0.0, 5.0 - replaced_in))
    stop.set()
    for t in threads:
        t.join(60)
    after_kill = [r for r in results if r[0] >= killed_at]
    assert after_kill, "no request completed after the kill"
    assert all(final == 200 for _, _, final in results), results
    assert all(first in (0, 200, 503) for _, first, _ in results)  # never a 500
    first_ok = min(t for t, _, final in after_kill if final == 200)
    assert first_ok - killed_at < 5.0
    after = served.answering_pids()
    assert len(after) == 2 and before[0] not in after and before[1] in after
    assert ask_retrying_once(served.url, question) == (200, 200)


def test_all_answering_processes_killed(served: Served, question: str) -> None:
    """With every answering process gone, /ask waits for a replacement (or says 503): never a 500."""
    for pid in served.answering_pids():
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: served.health().json()["answering"]["ready"] == 0, 10, 0.05, what="/health seeing no process")
    r = httpx.post(f"{served.url}/ask", json={"question": question}, timeout=120)
    assert r.status_code in (200, 503), r.text
    wait_for(lambda: fully_ready(served), REPLACEMENT_TIMEOUT_S, 0.5, what="both answering processes replaced")
    assert httpx.post(f"{served.url}/ask", json={"question": question}, timeout=60).status_code == 200


def test_serve_on_a_broken_index_exits_with_one_line(settings: Settings, tmp_path: Path) -> None:
    """An answering process that cannot load the index stops `rag serve` with the reason, no traceback."""
    (tmp_path / "CURRENT").write_text("gen-that-does-not-exist")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "RAG_CACHE_DIR": str(settings.cache_dir)}
    cmd = [sys.executable, "-m", "rag.cli", "serve", "--workers", "2", "--port", str(free_port()),
           "--index", str(tmp_path), "--corpus", str(settings.corpus_dir)]
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=STARTUP_TIMEOUT_S)
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "gen-that-does-not-exist" in errors[0], done.stderr
    assert "Traceback" not in done.stderr + done.stdout
