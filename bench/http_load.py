"""HTTP load on 127.0.0.1: `POST /ask` with the seed questions, and `GET /health` as the framework's
floor, at several concurrency levels; prints requests/s, p50, p99 and errors. Bounded in count and time.

Starts `rag serve` itself on a free port (one server per --workers value), or measures --url."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import aiohttp

from common import ROOT, percentile, rag_serve

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass
class Result:
    server: str
    endpoint: str
    concurrency: int
    requests: int
    errors: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float


def load_payloads(path: Path) -> list[dict[str, Any]]:
    """One /ask body per seed question; follow-ups carry their earlier questions as history."""
    payloads = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            history = [{"role": "user", "content": q} for q in item.get("history", [])]
            payloads.append({"question": item["question"], "history": history})
    return payloads


async def run_level(url: str, endpoint: str, payloads: list[dict[str, Any]], concurrency: int, total: int,
                    time_cap_s: float, headers: dict[str, str]) -> tuple[list[float], int, float]:
    """`total` requests (or as many as fit in the time cap) from `concurrency` clients on keep-alive
    connections; latencies in ms, error count, wall seconds."""
    latencies: list[float] = []
    errors = 0
    issued = 0
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(url, connector=connector, timeout=timeout, headers=headers) as session:
        started = time.perf_counter()
        deadline = started + time_cap_s

        async def client() -> None:
            nonlocal issued, errors
            while issued < total and time.perf_counter() < deadline:
                i = issued
                issued += 1
                t0 = time.perf_counter()
                try:
                    if endpoint == "/ask":
                        async with session.post("/ask", json=payloads[i % len(payloads)]) as r:
                            body = await r.read()
                            ok = r.status == 200 and body.startswith(b"{")
                    else:
                        async with session.get(endpoint) as r:
                            await r.read()
                            ok = r.status == 200
                except (TimeoutError, aiohttp.ClientError):
                    ok = False
                latencies.append((time.perf_counter() - t0) * 1000.0)
                errors += not ok

        await asyncio.gather(*(client() for _ in range(concurrency)))
        return latencies, errors, time.perf_counter() - started


def measure(url: str, label: str, payloads: list[dict[str, Any]], args: argparse.Namespace) -> list[Result]:
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    results = []
    for endpoint in ("/ask", "/health"):
        asyncio.run(run_level(url, endpoint, payloads, 4, args.warmup, 60, headers))  # warm caches
        for c in args.concurrency:
            latencies, errors, seconds = asyncio.run(
                run_level(url, endpoint, payloads, c, args.requests, args.time_cap, headers))
            n = len(latencies)
            res = Result(label, endpoint, c, n, errors, round(seconds, 2), round(n / seconds, 1),
                         round(percentile(latencies, 50), 2), round(percentile(latencies, 99), 2))
            results.append(res)
            print(f"{label:>10} {endpoint:<8} c={c:<3} n={n:<5} {res.rps:>8.1f} req/s  p50 {res.p50_ms:7.2f} ms  "
                  f"p99 {res.p99_ms:7.2f} ms  errors {errors}", flush=True)
    return results


def report(results: list[Result]) -> None:
    """The targets: /ask p50 <= 10 ms at concurrency 1; c=8 throughput >= 1.6x c=1; zero errors."""
    for server in dict.fromkeys(r.server for r in results):
        ask = {r.concurrency: r for r in results if r.server == server and r.endpoint == "/ask"}
        lines = []
        if 1 in ask:
            lines.append(f"/ask p50 at c=1 {ask[1].p50_ms:.2f} ms (target <= 10): "
                         f"{'met' if ask[1].p50_ms <= 10 else 'NOT met'}")
        if 1 in ask and 8 in ask:
            ratio = ask[8].rps / ask[1].rps
            lines.append(f"c=8 / c=1 throughput {ratio:.2f}x (target >= 1.6x): {'met' if ratio >= 1.6 else 'NOT met'}")
        errors = sum(r.errors for r in results if r.server == server)
        lines.append(f"errors {errors} (target 0): {'met' if errors == 0 else 'NOT met'}")
        print(f"{server}: " + "; ".join(lines))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", help="measure a running server (loopback only) instead of starting one")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts to start servers with")
    parser.add_argument("--index", type=Path, help="index folder for the started servers (default: index/)")
    parser.add_argument("--requests", type=int, default=2000, help="requests per level")
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated concurrency levels")
    parser.add_argument("--time-cap", type=float, default=30.0, help="seconds at most per level")
    parser.add_argument("--warmup", type=int, default=100, help="requests before each endpoint's levels")
    parser.add_argument("--set", type=Path, default=ROOT / "eval" / "seed.jsonl", help="questions (eval JSONL)")
    parser.add_argument("--api-key", default=os.environ.get("RAG_API_KEY"), help="bearer key if the server needs one")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    payloads = load_payloads(args.set)
    results: list[Result] = []
    if args.url:
        if urlparse(args.url).hostname not in LOOPBACK:
            parser.error("--url must be a loopback address (127.0.0.1 / localhost)")
        results += measure(args.url.rstrip("/"), "given", payloads, args)
    else:
        for workers in (int(w) for w in args.workers.split(",")):
            with rag_serve(workers, args.index) as (url, _):
                results += measure(url, f"workers={workers}", payloads, args)
    report(results)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    return 0 if all(r.errors == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
