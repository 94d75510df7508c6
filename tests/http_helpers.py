"""Helpers for the HTTP tests: a real uvicorn server in a thread on a free 127.0.0.1 port, and the
seed evaluation questions (asked, never answered here: expected answers come from the library)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from api.server import server_config

ROOT = Path(__file__).resolve().parent.parent
SEED_SET = ROOT / "eval" / "seed.jsonl"


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago (for a server started in another process)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05, what: str = "condition") -> Any:
    """Poll until `check()` is truthy (returned) or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"{what} not met within {timeout:g} s")


def stop_process(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if it has not exited within 30 s."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def seed_items() -> list[dict[str, Any]]:
    return [json.loads(line) for line in SEED_SET.read_text(encoding="utf-8").splitlines() if line.strip()]


def plain_questions(n: int) -> list[str]:
    """Distinct stand-alone seed-set questions (no follow-ups)."""
    return [it["question"] for it in seed_items() if not it.get("history")][:n]


def answered_questions(assistant: Any, n: int = 1) -> list[str]:
    """The first `n` stand-alone seed questions the assistant answers with citations (what the answer
    says is the library's business; the HTTP tests need questions that exercise citations)."""
    found = [q for q in plain_questions(1000) if (a := assistant.ask(q)).answerable and a.citations][:n]
    assert len(found) == n, f"the assistant answered only {len(found)} seed questions with citations"
    return found


def without_timings(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k != "timings_ms"}


@contextmanager
def running_server(app: FastAPI, startup_timeout_s: float = 60.0) -> Iterator[str]:
    """Serve `app` with the uvicorn configuration `rag serve` uses (uvloop, the guarded httptools
    protocol, the app's own limits) and yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # the port is ours from here on: no race with other processes
    port = sock.getsockname()[1]
    config = server_config(app, app.state.service.settings, log_level="warning", lifespan="on",
                           timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name=f"uvicorn-{port}")
    thread.start()
    deadline = time.monotonic() + startup_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
