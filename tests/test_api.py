"""The HTTP API against a real uvicorn server on 127.0.0.1: contract, errors, auth, limits, metrics,
logs, concurrency, and `rag serve` itself."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from typing import Any

import httpx
import pytest
from http_helpers import (
    ROOT,
    answered_questions,
    plain_questions,
    running_server,
    seed_items,
    without_timings,
)

from api.app import create_app
from api.observability import JsonLineFormatter
from rag.assistant import Assistant
from rag.config import Settings
from rag.types import Answer, Turn


@pytest.fixture(scope="module")
def base_url(seed_assistant: Assistant, settings: Settings):
    with running_server(create_app(seed_assistant, settings)) as url:
        yield url


@pytest.fixture(scope="module")
def client(base_url: str):
    with httpx.Client(base_url=base_url, timeout=60) as c:
        yield c


def assert_error(response: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    """The response has the status and the API's error shape, and its message names `field`."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"] and error["type"]
    if field is not None:
        assert field in error["message"], error
    return error


# --- contract -------------------------------------------------------------------------------------


def test_health_reports_what_is_loaded(client: httpx.Client, seed_assistant: Assistant) -> None:
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["documents"] == len(seed_assistant.documents) > 0
    assert body["chunks"] >= body["documents"]
    assert body["model"] and body["built_at"] and body["version"]
    assert body["generation"] == seed_assistant.generation and body["generation"].startswith("gen-")
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])


def test_ask_returns_the_answer_contract(client: httpx.Client, seed_assistant: Assistant) -> None:
    question = answered_questions(seed_assistant)[0]
    r = client.post("/ask", json={"question": question})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {f.name for f in fields(Answer)}
    assert body["question"] == question
    assert without_timings(body) == without_timings(seed_assistant.ask(question).to_dict())
    assert {"retrieve", "compose", "total"} <= set(body["timings_ms"])
    assert body["answerable"] and body["citations"]
    for c in body["citations"]:  # every quote is verbatim at its offsets, as served by /sources
        src = client.get(f"/sources/{c['doc_id']}", params={"start": c["start"], "end": c["end"]}).json()
        assert src["span"]["text"] == c["quote"] == src["text"] and src["offset"] == c["start"]
        assert c["title"] == src["title"] and c["publisher"] == src["publisher"]


def test_ask_honours_top_k_and_doc_filter(client: httpx.Client, seed_assistant: Assistant) -> None:
    question = answered_questions(seed_assistant)[0]
    other = sorted(seed_assistant.documents)[-1]
    r = client.post("/ask", json={"question": question, "top_k": 3, "filters": {"doc_ids": [other]}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert all(c["doc_id"] == other for c in body["citations"])
    from rag.types import Filters

    expected = seed_assistant.ask(question, top_k=3, filters=Filters(doc_ids=(other,)))
    assert without_timings(body) == without_timings(expected.to_dict())


def test_follow_up_uses_history(client: httpx.Client, seed_assistant: Assistant) -> None:
    """History reaches the assistant: the API answer equals the library's with the same turns, and for
    at least one seed follow-up the turns change the answer."""
    follow_ups = [it for it in seed_items() if it.get("history")]
    assert follow_ups
    changed = 0
    for item in follow_ups[:4]:
        earlier = item["history"][-1]
        first = client.post("/ask", json={"question": earlier}).json()
        history = [{"role": "user", "content": earlier}, {"role": "assistant", "content": first["answer"]}]
        r = client.post("/ask", json={"question": item["question"], "history": history})
        assert r.status_code == 200, r.text
        turns = [Turn(**t) for t in history]
        expected = seed_assistant.ask(item["question"], history=turns).to_dict()
        assert without_timings(r.json()) == without_timings(expected)
        alone = client.post("/ask", json={"question": item["question"]}).json()
        changed += without_timings(alone) != without_timings(r.json())
    assert changed >= 1


def test_sources_list_and_document(client: httpx.Client, seed_assistant: Assistant) -> None:
    r = client.get("/sources")
    assert r.status_code == 200
    body = r.json()
    assert body["count"] == len(body["documents"]) == len(seed_assistant.documents)
    listed = {d["doc_id"]: d for d in body["documents"]}
    doc_id, doc = next(iter(seed_assistant.documents.items()))
    assert listed[doc_id]["title"] == doc.meta.title and listed[doc_id]["chars"] == len(doc.text)
    full = client.get(f"/sources/{doc_id}").json()
    assert full["text"] == doc.text and full["span"] is None and full["offset"] == 0
    assert full["published"] == doc.meta.published and full["publisher"] == doc.meta.publisher
    # A span serves the span (issue 10 point 7), with `context` characters either side when asked.
    assert len(doc.text) > 200
    marked = client.get(f"/sources/{doc_id}", params={"start": 50, "end": 70}).json()
    assert marked["span"] == {"start": 50, "end": 70, "text": doc.text[50:70]}
    assert marked["text"] == doc.text[50:70] and marked["offset"] == 50 and marked["chars"] == len(doc.text)
    around = client.get(f"/sources/{doc_id}", params={"start": 50, "end": 70, "context": 30}).json()
    assert around["text"] == doc.text[20:100] and around["offset"] == 20
    edge = client.get(f"/sources/{doc_id}", params={"start": 5, "end": len(doc.text), "context": 30}).json()
    assert edge["text"] == doc.text and edge["offset"] == 0


def test_sources_errors(client: httpx.Client, seed_assistant: Assistant) -> None:
    assert_error(client.get("/sources/no-such-document"), 404, "no-such-document")
    doc_id, doc = next(iter(seed_assistant.documents.items()))
    assert_error(client.get(f"/sources/{doc_id}", params={"start": 10, "end": 5}), 422, "start")
    assert_error(client.get(f"/sources/{doc_id}", params={"start": 0, "end": len(doc.text) + 1}), 422, "end")
    assert_error(client.get(f"/sources/{doc_id}", params={"start": 3}), 422, "end")
    assert_error(client.get(f"/sources/{doc_id}", params={"start": -1, "end": 3}), 422, "start")
    assert_error(client.get(f"/sources/{doc_id}", params={"start": "x", "end": 3}), 422, "start")
    assert_error(client.get(f"/sources/{doc_id}", params={"start": 1, "end": 3, "context": -1}), 422, "context")


def test_search_returns_ranked_passages(client: httpx.Client, seed_assistant: Assistant) -> None:
    """GET /search is the library's hybrid search: the same passages in the same order, each verbatim."""
    doc = next(iter(seed_assistant.documents.values()))
    query = doc.meta.title
    r = client.get("/search", params={"q": query, "k": 4})
    assert r.status_code == 200, r.text
    body = r.json()
    expected = seed_assistant.search(query, k=4)
    assert body["generation"] == seed_assistant.generation and body["query"] == query
    assert [h["chunk_id"] for h in body["hits"]] == [h.chunk.chunk_id for h in expected]
    assert [h["rank"] for h in body["hits"]] == list(range(1, len(expected) + 1))
    for h in body["hits"]:
        assert h["text"] == seed_assistant.documents[h["doc_id"]].text[h["start"]:h["end"]]
    bm25 = client.get("/search", params={"q": query, "k": 2, "mode": "bm25"}).json()
    assert [h["chunk_id"] for h in bm25["hits"]] == [h.chunk.chunk_id for h in seed_assistant.search(query, 2, mode="bm25")]
    assert all(h["dense_rank"] is None for h in bm25["hits"])
    assert_error(client.get("/search", params={"q": "x", "k": 0}), 422, "k")
    assert_error(client.get("/search", params={"q": "x", "k": 51}), 422, "k")
    assert_error(client.get("/search", params={"q": "   "}), 422, "q")
    assert_error(client.get("/search", params={"q": "x", "mode": "magic"}), 422, "mode")
    assert_error(client.get("/search"), 422, "q")


# --- bad input --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"question": ""}, "question"),
        ({"question": "   "}, "question"),
        ({"question": "x" * (Settings().max_question_chars + 1)}, "question"),
        ({"question": 42}, "question"),
        ({}, "question"),
        ({"question": "How much?", "top_k": 0}, "top_k"),
        ({"question": "How much?", "top_k": Settings().max_top_k + 1}, "top_k"),
        ({"question": "How much?", "top_k": "many"}, "top_k"),
        ({"question": "How much?", "top_k": "5"}, "top_k"),
        ({"question": "How much?", "top_k": 5.5}, "top_k"),
        ({"question": "How much?", "top_k": True}, "top_k"),
        ({"question": "How much?", "explain": "yes"}, "explain"),
        ({"question": "How much?", "explain": 1}, "explain"),
        ({"question": "How much?", "filters": {"date_from": 0}}, "filters.date_from"),
        ({"question": "How much?", "filters": {"date_to": "2025-01-01T00:00:00"}}, "filters.date_to"),
        ({"question": ["How much?"]}, "question"),
        ({"question": "How much?", "filters": {"date_from": "yesterday"}}, "filters.date_from"),
        ({"question": "How much?", "filters": {"date_from": "2025-02-01", "date_to": "2025-01-01"}}, "filters"),
        ({"question": "How much?", "filters": {"doc_ids": "000"}}, "filters.doc_ids"),
        ({"question": "How much?", "history": [{"role": "robot", "content": "hi"}]}, "history.0.role"),
        ({"question": "How much?", "colour": "blue"}, "colour"),
    ],
)
def test_bad_ask_requests_are_422_naming_the_field(client: httpx.Client, payload: dict, field: str) -> None:
    error = assert_error(client.post("/ask", json=payload), 422, field)
    assert error["param"] == field.split(".")[0] or error["param"] == field


def test_top_k_is_a_json_integer(client: httpx.Client, seed_assistant: Assistant) -> None:
    """5 and 5.0 are one integer to JSON (and to the schema's "integer"); both give the same answer."""
    question = answered_questions(seed_assistant)[0]
    five = client.post("/ask", json={"question": question, "top_k": 5})
    five_point_oh = client.post("/ask", content=f'{{"question": "{question}", "top_k": 5.0}}'.encode(),
                                headers={"Content-Type": "application/json"})
    assert five.status_code == five_point_oh.status_code == 200
    assert without_timings(five.json()) == without_timings(five_point_oh.json())


def test_malformed_json_is_422(client: httpx.Client) -> None:
    r = client.post("/ask", content=b'{"question": "How much', headers={"Content-Type": "application/json"})
    error = assert_error(r, 422, "body")
    assert "JSON" in error["message"]


def test_body_cap_is_413(client: httpx.Client, settings: Settings) -> None:
    big = {"question": "How much?", "history": [{"role": "user", "content": "y" * 10_000}] * 10}
    assert len(json.dumps(big)) > settings.max_body_bytes
    assert_error(client.post("/ask", json=big), 413, "bytes")

    def chunks():  # no Content-Length: the cap holds for streamed bodies too
        for _ in range(settings.max_body_bytes // 1000 + 2):
            yield b" " * 1000

    assert_error(client.post("/ask", content=chunks(), headers={"Content-Type": "application/json"}), 413)


def test_unknown_route_has_error_shape(client: httpx.Client) -> None:
    assert_error(client.get("/nope"), 404, "/nope")


def test_request_id_is_echoed(client: httpx.Client) -> None:
    r = client.get("/health", headers={"X-Request-ID": "trace-abc.123"})
    assert r.headers["x-request-id"] == "trace-abc.123"
    r = client.get("/health", headers={"X-Request-ID": "bad id with spaces"})
    assert r.headers["x-request-id"] != "bad id with spaces"


# --- auth, rate limit, timeout ---------------------------------------------------------------------


def test_api_key_guards_everything_but_health(seed_assistant: Assistant, settings: Settings) -> None:
    app = create_app(seed_assistant, settings.with_overrides(api_key="s3cret-key"))
    with running_server(app) as url, httpx.Client(base_url=url, timeout=60) as c:
        assert c.get("/health").status_code == 200
        assert c.get("/").status_code == 200  # the page itself; its API calls carry the key
        ask = {"question": plain_questions(1)[0]}
        for method, path, body in [("POST", "/ask", ask), ("GET", "/sources", None), ("GET", "/metrics", None),
                                   ("GET", "/v1/models", None)]:
            r = c.request(method, path, json=body)
            assert_error(r, 401, "API key")
            assert r.headers["www-authenticate"] == "Bearer"
            wrong = c.request(method, path, json=body, headers={"Authorization": "Bearer s3cret-kez"})
            assert wrong.status_code == 401
            assert c.request(method, path, json=body, headers={"Authorization": "Basic s3cret-key"}).status_code == 401
            ok = c.request(method, path, json=body, headers={"Authorization": "Bearer s3cret-key"})
            assert ok.status_code == 200, (path, ok.text)


def test_rate_limit_answers_429_with_retry_after(seed_assistant: Assistant, settings: Settings) -> None:
    app = create_app(seed_assistant, settings.with_overrides(rate_limit_per_minute=3))
    with running_server(app) as url, httpx.Client(base_url=url, timeout=60) as c:
        statuses = [c.get("/sources").status_code for _ in range(3)]
        assert statuses == [200, 200, 200]
        r = c.get("/sources")
        assert_error(r, 429, "rate limit")
        assert 1 <= int(r.headers["retry-after"]) <= 20
        assert c.get("/health").status_code == 200  # health is never limited


def test_explain_adds_the_trace_and_changes_nothing_else(client: httpx.Client, seed_assistant: Assistant) -> None:
    question = answered_questions(seed_assistant)[0]
    explained = client.post("/ask", json={"question": question, "explain": True})
    assert explained.status_code == 200, explained.text
    plain = client.post("/ask", json={"question": question, "explain": False}).json()
    body = explained.json()
    assert plain["trace"] is None and isinstance(body["trace"], dict) and body["trace"]
    assert 0.0 <= body["confidence"] <= 1.0
    assert without_timings(body | {"trace": None}) == without_timings(plain)


def test_explain_reaches_an_assistant_that_takes_it() -> None:
    """`explain` is passed to `Assistant.ask` only when its signature has the parameter."""
    from api.runtime import ask_assistant

    class Explaining:
        def ask(self, question, history=(), top_k=None, filters=None, explain=False):
            return ("explaining", explain)

    class Plain:
        def ask(self, question, history=(), top_k=None, filters=None):
            return "plain"

    assert ask_assistant(Explaining(), "q", (), None, None, True) == ("explaining", True)
    assert ask_assistant(Explaining(), "q", (), None, None, False) == ("explaining", False)
    assert ask_assistant(Plain(), "q", (), None, None, True) == "plain"


def test_rate_limit_keys_on_the_verified_key_not_the_header_spelling(seed_assistant: Assistant,
                                                                     settings: Settings) -> None:
    app = create_app(seed_assistant, settings.with_overrides(api_key="k3y-for-limits", rate_limit_per_minute=3))
    spellings = ["Bearer k3y-for-limits", "bearer k3y-for-limits", "BEARER   k3y-for-limits", "Bearer  k3y-for-limits"]
    with running_server(app) as url, httpx.Client(base_url=url, timeout=60) as c:
        statuses = [c.get("/sources", headers={"Authorization": a}).status_code for a in spellings]
    assert statuses == [200, 200, 200, 429]


def test_forwarded_for_is_ignored_unless_the_proxy_is_trusted(seed_assistant: Assistant, settings: Settings) -> None:
    limited = settings.with_overrides(rate_limit_per_minute=2)
    with running_server(create_app(seed_assistant, limited)) as url, httpx.Client(base_url=url, timeout=60) as c:
        statuses = [c.get("/sources", headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code for i in range(3)]
    assert statuses == [200, 200, 429]  # one client (the peer address), whatever the header says
    trusted = limited.with_overrides(trusted_proxies="127.0.0.1")
    with running_server(create_app(seed_assistant, trusted)) as url, httpx.Client(base_url=url, timeout=60) as c:
        statuses = [c.get("/sources", headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code for i in range(3)]
        assert statuses == [200, 200, 200]  # three clients, as the trusted proxy says
        same = [c.get("/sources", headers={"X-Forwarded-For": "198.51.100.7"}).status_code for _ in range(3)]
        assert same == [200, 200, 429]


def test_failed_api_keys_are_limited_per_address(seed_assistant: Assistant, settings: Settings) -> None:
    app = create_app(seed_assistant, settings.with_overrides(api_key="right-key", auth_failures_per_minute=3))
    with running_server(app) as url, httpx.Client(base_url=url, timeout=60) as c:
        wrong = [c.get("/sources", headers={"Authorization": f"Bearer guess-{i}"}).status_code for i in range(3)]
        assert wrong == [401, 401, 401]
        blocked = c.get("/sources", headers={"Authorization": "Bearer right-key"})
        assert_error(blocked, 429, "wrong API keys")
        assert int(blocked.headers["retry-after"]) >= 1
        assert c.get("/sources").status_code == 401  # no key at all is not an attempt, and is refused
        assert c.get("/health").status_code == 200


def test_security_headers_on_every_response(client: httpx.Client) -> None:
    for path in ("/", "/health", "/sources", "/nope", "/docs", "/static/app.js"):
        r = client.get(path)
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"], path
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["x-content-type-options"] == "nosniff"


def test_trailing_slash_redirect_is_relative(base_url: str) -> None:
    with httpx.Client(base_url=base_url, timeout=30, follow_redirects=False) as c:
        r = c.get("/sources/", headers={"Host": "evil.example"})
        assert r.status_code == 307 and r.headers["location"] == "/sources"
        r = c.get("//evil.example/", headers={"Host": "evil.example"})
        assert not r.headers.get("location", "/").startswith("//")
        r = c.get("/sources/?x=1")
        assert r.headers["location"] == "/sources?x=1"


def test_slow_answer_is_504(seed_assistant: Assistant, settings: Settings) -> None:
    app = create_app(seed_assistant, settings.with_overrides(request_timeout_s=1e-9))
    with running_server(app) as url, httpx.Client(base_url=url, timeout=60) as c:
        assert_error(c.post("/ask", json={"question": plain_questions(1)[0]}), 504, "longer than")


# --- observability ---------------------------------------------------------------------------------


def test_metrics_count_requests_and_stage_latency(client: httpx.Client) -> None:
    client.post("/ask", json={"question": plain_questions(2)[1]})
    client.get("/sources/unknown-doc")
    text = client.get("/metrics").text
    assert re.search(r'rag_http_requests_total\{method="POST",route="/ask",status="200"\} [1-9]', text)
    assert re.search(r'rag_http_requests_total\{method="GET",route="/sources/\{doc_id\}",status="404"\} [1-9]', text)
    for stage in ("retrieve", "compose", "total"):
        assert re.search(rf'rag_answer_stage_duration_seconds_count\{{route="/ask",stage="{stage}"\}} [1-9]', text)
    assert 'rag_http_request_duration_seconds_bucket{le="0.01",route="/ask"}' in text


def test_one_json_log_line_per_request(client: httpx.Client) -> None:
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("rag.api.access")
    logger.addHandler(handler)
    try:
        r = client.post("/ask", json={"question": plain_questions(3)[2]}, headers={"X-Request-ID": "log-test-1"})
        time.sleep(0.05)
    finally:
        logger.removeHandler(handler)
    mine = [json.loads(JsonLineFormatter().format(rec)) for rec in records]
    mine = [line for line in mine if line.get("request_id") == "log-test-1"]
    assert len(mine) == 1
    line = mine[0]
    assert line["method"] == "POST" and line["route"] == "/ask" and line["status"] == r.status_code == 200
    assert {"retrieve", "compose", "total", "http"} <= set(line["latency_ms"])
    assert line["latency_ms"]["http"] >= line["latency_ms"]["retrieve"]


# --- docs --------------------------------------------------------------------------------------------


def test_openapi_and_offline_docs(client: httpx.Client, settings: Settings) -> None:
    spec = client.get("/openapi.json").json()
    for path in ("/ask", "/health", "/sources", "/sources/{doc_id}", "/metrics", "/v1/chat/completions",
                 "/v1/models"):
        assert path in spec["paths"], path
    ask_schema = spec["components"]["schemas"]["AskRequest"]["properties"]
    assert ask_schema["question"]["maxLength"] == settings.max_question_chars
    docs = client.get("/docs").text
    assert "cdn" not in docs.lower()
    assets = re.findall(r"""(?:src|href)=['"]([^'"]+\.(?:js|css))['"]""", docs)
    assert assets
    for asset in assets:  # served by us, so /docs works without internet
        assert asset.startswith("/") and client.get(asset).status_code == 200


# --- concurrency -----------------------------------------------------------------------------------


def test_concurrent_requests_get_their_own_answers(base_url: str) -> None:
    questions = plain_questions(16)
    assert len(questions) == 16
    with httpx.Client(base_url=base_url, timeout=120) as c:
        alone = [without_timings(c.post("/ask", json={"question": q}).json()) for q in questions]

    def ask(q: str) -> dict[str, Any]:
        with httpx.Client(base_url=base_url, timeout=120) as c:
            r = c.post("/ask", json={"question": q})
            assert r.status_code == 200
            return without_timings(r.json())

    with ThreadPoolExecutor(max_workers=16) as pool:
        together = list(pool.map(ask, questions))
    assert together == alone
    assert len({a["question"] for a in together}) == 16


# --- the command -----------------------------------------------------------------------------------


def test_rag_serve_starts_answers_and_shuts_down_gracefully(settings: Settings, seed_assistant: Assistant) -> None:
    """`rag serve` over the already-built test index: serves, then exits cleanly on SIGTERM."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAG_CACHE_DIR": str(settings.cache_dir)}
    env.pop("RAG_API_KEY", None)
    cmd = [sys.executable, "-m", "rag.cli", "serve", "--port", str(port), "--index", str(settings.index_dir),
           "--corpus", str(settings.corpus_dir)]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "rag serve did not come up"
            time.sleep(0.3)
        question = plain_questions(1)[0]
        r = httpx.post(f"{url}/ask", json={"question": question}, timeout=60)
        assert without_timings(r.json()) == without_timings(seed_assistant.ask(question).to_dict())
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode in (0, -signal.SIGTERM), out  # uvicorn re-raises the signal after shutting down
    assert "Slack:" in out and "shutting down" in out
    access = [json.loads(line) for line in out.splitlines() if '"rag.api.access"' in line]
    assert any(a["route"] == "/ask" and a["status"] == 200 for a in access), out


def test_answer_processes_give_the_same_answers(seed_assistant: Assistant, settings: Settings) -> None:
    """`rag serve --workers N`: answers computed in N processes equal the library's, in parallel too,
    and unaskable questions still get a 422."""
    questions = plain_questions(8)
    expected = [without_timings(seed_assistant.ask(q).to_dict()) for q in questions]
    app = create_app(seed_assistant, settings, answer_processes=2)
    with running_server(app, startup_timeout_s=180) as url:

        def ask(q: str) -> dict[str, Any]:
            with httpx.Client(base_url=url, timeout=120) as c:
                r = c.post("/ask", json={"question": q})
                assert r.status_code == 200, r.text
                return without_timings(r.json())

        with ThreadPoolExecutor(max_workers=8) as pool:
            assert list(pool.map(ask, questions)) == expected
        assert_error(httpx.post(f"{url}/ask", json={"question": "\u0000\u0001"}, timeout=60), 422, "question")


# --- small pieces, on hand-built inputs ------------------------------------------------------------------


def test_rate_limiter_forgets_refilled_clients_without_scanning() -> None:
    from api.observability import RateLimiter

    now = [0.0]
    limiter = RateLimiter(per_minute=2, clock=lambda: now[0], max_clients=50_000)
    for i in range(20_000):
        assert limiter.check(f"ip:{i}") == 0.0
    assert len(limiter) == 20_000
    assert limiter.check("ip:7") == 0.0 and limiter.check("ip:7") > 0  # its burst of 2 is used up
    now[0] = 30.0
    limiter.check("ip:late")  # nothing refilled yet: nothing forgotten
    assert len(limiter) == 20_001
    now[0] = 60.5
    limiter.check("ip:new")  # every bucket untouched for a minute is full again: forgotten, oldest first
    assert len(limiter) == 2 and limiter.peek("ip:7") == 0.0  # only ip:late (30 s ago) and ip:new remain
    assert limiter.check("ip:late") == 0.0


def test_rate_limiter_is_bounded_in_clients() -> None:
    from api.observability import RateLimiter

    now = [0.0]
    limiter = RateLimiter(per_minute=5, clock=lambda: now[0], max_clients=100)
    for i in range(1000):
        limiter.check(f"ip:{i}")
        now[0] += 0.001
    assert len(limiter) == 100
    assert limiter.peek("ip:999") == 0.0 and limiter.check("ip:999") == 0.0


def test_json_safe_makes_anything_encodable() -> None:
    from api.observability import json_safe

    value = {"q": "a\ud800b", "n": float("nan"), "i": [float("inf"), 1, True, None], b"k": b"\xff\x00", "o": object,
             "long": "x" * 500}
    safe = json_safe(value, max_chars=10)
    text = json.dumps(safe, allow_nan=False, ensure_ascii=False)
    text.encode("utf-8")
    assert safe["q"] == "a\\ud800b" and safe["n"] == "nan" and safe["i"] == ["inf", 1, True, None]
    assert safe["k"] == "\\xff\x00" and safe["long"] == "x" * 10 + "..."


def test_strict_json_refuses_what_json_loads_lets_through() -> None:
    from api.schemas import strict_json

    assert strict_json(b'{"a": [1, 2.5, "\\ud83d\\ude00"]}') == {"a": [1, 2.5, "\U0001f600"]}  # a surrogate pair
    for raw, message in [(b'{"a": NaN}', "NaN is not a JSON number"), (b"[-Infinity]", "-Infinity"),
                         (b'{"a": "\\ud800"}', "lone surrogate \\ud800"), (b'["x\\udc00"]', "\\udc00"),
                         (b'{"\\udfff": 1}', "surrogate"), (b"\xff{}", "not UTF-8"), (b"[" * 100_000, "nested too deeply")]:
        with pytest.raises(json.JSONDecodeError, match=re.escape(message)):
            strict_json(raw)


def test_redirects_never_name_a_host() -> None:
    from api.observability import relative_location

    assert relative_location(b"http://evil.example/ask?x=1") == b"/ask?x=1"
    assert relative_location(b"http://evil.example//other.example/") == b"/other.example/"
    assert relative_location(b"/sources") == b"/sources"


def test_an_apps_own_csp_gains_frame_ancestors() -> None:
    from api.observability import _security_headers

    headers = dict(_security_headers([(b"content-security-policy", b"default-src 'self';")]))
    assert headers[b"content-security-policy"] == b"default-src 'self'; frame-ancestors 'none'"
    assert headers[b"x-frame-options"] == b"DENY"
    kept = dict(_security_headers([(b"content-security-policy", b"frame-ancestors 'self'")]))
    assert kept[b"content-security-policy"] == b"frame-ancestors 'self'"


def test_replies_are_strict_json_even_for_values_json_cannot_hold() -> None:
    from api.observability import json_bytes

    assert json_bytes({"a": 1, "b": "é"}) == '{"a":1,"b":"é"}'.encode()
    odd = json.loads(json_bytes({"x": float("nan"), "y": [float("-inf")], "o": object()}))
    assert odd["x"] == "nan" and odd["y"] == ["-inf"] and odd["o"].startswith("<object object")
