"""Cross-cutting HTTP concerns in one pure-ASGI middleware: request ids, auth, rate limit, body cap,
one JSON log line per request, and Prometheus metrics."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import os
import re
import sys
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import multiprocess as prom_multiprocess

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

access_log = logging.getLogger("rag.api.access")

# Per-request values the handlers leave for the middleware (stage timings from Answer.timings_ms).
TIMINGS_KEY = "rag.timings"
REQUEST_ID_KEY = "rag.request_id"

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_SURROGATES = re.compile("[\ud800-\udfff]")
SECURITY_HEADERS = [
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
]
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ClientGone(Exception):
    """The client disconnected before its request was complete."""


def error_body(message: str, type_: str, *, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    """The one error shape of every endpoint (OpenAI's, so chat clients read it too)."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def json_safe(value: Any, max_chars: int = 0) -> Any:
    """`value` made encodable as strict JSON: lone surrogates escaped, NaN/Infinity and other objects as
    text, bytes decoded with escapes, strings cut at `max_chars` (0: not cut). Error bodies echo client
    input through this, so an unencodable input can never turn a 4xx into a 500."""
    if isinstance(value, str):
        if max_chars and len(value) > max_chars:
            value = value[:max_chars] + "..."
        return _SURROGATES.sub(lambda m: f"\\u{ord(m.group()):04x}", value)
    if isinstance(value, bool) or value is None or isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(json_safe(k)): json_safe(v, max_chars) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v, max_chars) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return json_safe(bytes(value).decode("utf-8", "backslashreplace"), max_chars)
    return json_safe(str(value), max_chars)


def json_bytes(content: Any) -> bytes:
    """`content` as strict JSON, which every client parses; should it hold what JSON cannot (NaN, an
    object), those values go as text rather than the reply becoming a 500 or invalid JSON."""
    try:
        return json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")
    except (ValueError, TypeError) as exc:
        logging.getLogger("rag.api").warning("reply held values JSON cannot encode (%s); sent as text", exc)
        return json.dumps(json_safe(content), ensure_ascii=False, allow_nan=False,
                          separators=(",", ":")).encode("utf-8")


def bearer_matches(authorization: str | None, api_key: str) -> bool:
    """True when an `Authorization: Bearer <key>` header carries the key (constant-time compare)."""
    if not authorization:
        return False
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(token.strip().encode("utf-8"), api_key.encode("utf-8"))


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


@dataclass
class RateLimiter:
    """Token bucket per client: `per_minute` requests a minute with bursts up to the same number.

    Buckets are kept in order of last use, so forgetting the refilled ones (indistinguishable from new
    clients) pops from the front: O(1) amortised per call, never a scan of every client. Runs on the
    event loop only (no awaits inside), so no lock is needed."""

    per_minute: int
    clock: Callable[[], float] = time.monotonic
    max_clients: int = 100_000
    _buckets: OrderedDict[str, _Bucket] = field(default_factory=OrderedDict)

    def check(self, key: str) -> float:
        """Take one token for `key`; 0.0 when allowed, else the seconds until a token is available."""
        bucket = self._refilled(key)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / (self.per_minute / 60.0)

    def peek(self, key: str) -> float:
        """Like `check` without taking a token: 0.0 when one is available."""
        bucket = self._buckets.get(key)
        if bucket is None:
            return 0.0
        rate = self.per_minute / 60.0
        tokens = min(float(self.per_minute), bucket.tokens + (self.clock() - bucket.updated) * rate)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / rate

    def __len__(self) -> int:
        return len(self._buckets)

    def _refilled(self, key: str) -> _Bucket:
        now = self.clock()
        self._forget_refilled(now)
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = _Bucket(float(self.per_minute), now)
        else:
            bucket.tokens = min(float(self.per_minute), bucket.tokens + (now - bucket.updated) * self.per_minute / 60.0)
            bucket.updated = now
        self._buckets[key] = bucket  # now the most recently used
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return bucket

    def _forget_refilled(self, now: float) -> None:
        while self._buckets:
            oldest = next(iter(self._buckets.values()))
            if now - oldest.updated < 60.0:  # a bucket refills completely in a minute
                return
            self._buckets.popitem(last=False)


class Metrics:
    """Prometheus metrics of one app; in multi-worker mode (PROMETHEUS_MULTIPROC_DIR) summed over workers."""

    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        # Multiprocess values live in files, so the metrics need no registry; otherwise one per app,
        # so several apps (tests) never collide in the global registry.
        self.registry: CollectorRegistry | None = None if self.multiprocess else CollectorRegistry()
        self.requests = Counter(
            "rag_http_requests_total", "HTTP requests by route, method and status",
            ["route", "method", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "rag_http_request_duration_seconds", "Wall time of HTTP requests by route",
            ["route"], buckets=_LATENCY_BUCKETS, registry=self.registry,
        )
        self.stages = Histogram(
            "rag_answer_stage_duration_seconds", "Time per answering stage (Answer.timings_ms)",
            ["route", "stage"], buckets=_LATENCY_BUCKETS, registry=self.registry,
        )

    def observe(self, route: str, method: str, status: int, seconds: float, stages: dict[str, float]) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)
        for stage, ms in stages.items():
            self.stages.labels(route, stage).observe(ms / 1000.0)

    def render(self) -> bytes:
        """The exposition text for `/metrics`."""
        if self.registry is not None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        prom_multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)


class JsonLineFormatter(logging.Formatter):
    """Log records as one JSON object a line; structured fields come from `extra={"fields": {...}}`."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        data.update(getattr(record, "fields", {}) or {})
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


def configure_access_log(stream: Any = None) -> None:
    """Give the access logger a JSON handler once (idempotent), independent of the root logger's format."""
    if any(isinstance(h.formatter, JsonLineFormatter) for h in access_log.handlers):
        return
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonLineFormatter())
    access_log.addHandler(handler)
    access_log.setLevel(logging.INFO)
    access_log.propagate = False


@dataclass(frozen=True)
class Policy:
    """Which paths skip auth and rate limiting, and the limits that apply to the rest."""

    api_key: str | None
    rate_limit_per_minute: int
    max_body_bytes: int
    public_paths: frozenset[str]
    public_prefixes: tuple[str, ...]
    unlimited_paths: frozenset[str]

    def is_public(self, path: str) -> bool:
        return path in self.public_paths or path.startswith(self.public_prefixes)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def _peer(scope: Scope) -> str:
    """The client address: the socket's peer, or what a trusted proxy said it was (RAG_TRUSTED_PROXIES)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _fingerprint(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def _seconds(wait: float) -> int:
    return max(1, math.ceil(wait))


def _unauthorized() -> Rejection:
    return 401, error_body("missing or wrong API key: send 'Authorization: Bearer <key>'", "authentication_error",
                           code="invalid_api_key"), [(b"www-authenticate", b"Bearer")]


def _too_many(wait: float, message: str, code: str) -> Rejection:
    return 429, error_body(message, "rate_limit_error", code=code), [(b"retry-after", str(_seconds(wait)).encode())]


def _route_label(scope: Scope) -> str:
    """The route template (bounded label set); unmatched paths share one label."""
    route = scope.get("route")
    path = getattr(route, "path", None) or getattr(route, "path_format", None)
    return path if isinstance(path, str) else "unmatched"


Rejection = tuple[int, dict[str, Any], list[tuple[bytes, bytes]]]


def _security_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The response's headers plus framing and sniffing protection; an app's own CSP gains
    `frame-ancestors 'none'` unless it sets frame-ancestors itself."""
    out: list[tuple[bytes, bytes]] = []
    for name, value in headers:
        if name.lower() == b"content-security-policy":
            if b"frame-ancestors" not in value:
                value = value.rstrip(b"; ") + b"; frame-ancestors 'none'"
        out.append((name, value))
    present = {name.lower() for name, _ in out}
    out.extend(h for h in SECURITY_HEADERS if h[0] not in present)
    return out


def relative_location(location: bytes) -> bytes:
    """A redirect target without scheme and host (so a forged Host header never ends up in it), and
    never `//host` (which a browser would read as another site)."""
    text = location.decode("latin-1")
    parts = urlsplit(text)
    path = "/" + (parts.path or "").lstrip("/")
    return (path + (f"?{parts.query}" if parts.query else "")).encode("latin-1")


class ServiceMiddleware:
    """Request id, auth, rate limits and body cap before the app; security headers on every response;
    log line and metrics after it."""

    def __init__(self, app: ASGIApp, policy: Policy, metrics: Metrics, limiter: RateLimiter | None,
                 auth_failures: RateLimiter | None = None) -> None:
        self.app = app
        self.policy = policy
        self.metrics = metrics
        self.limiter = limiter
        self.auth_failures = auth_failures

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
        scope[REQUEST_ID_KEY] = request_id
        scope[TIMINGS_KEY] = {}
        status_box = [500]
        rid_header = (b"x-request-id", request_id.encode("latin-1"))

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = status_box[0] = message["status"]
                headers = [*message.get("headers", []), rid_header]
                if 300 <= status < 400:
                    headers = [(k, relative_location(v) if k.lower() == b"location" else v) for k, v in headers]
                message["headers"] = _security_headers(headers)
            await send(message)

        error: str | None = None
        try:
            rejection = self._reject(scope)
            if rejection is None:
                receive, rejection = await self._cap_body(scope, receive)
            if rejection is not None:
                status, body, headers = rejection
                await _send_json(send_wrapper, status, body, headers)
            else:
                await self.app(scope, receive, send_wrapper)
        except ClientGone:
            status_box[0] = 499  # nginx's "client closed request": nothing to answer, nothing went wrong
        except Exception as exc:  # logged here, re-raised for the server's 500
            error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self._record(scope, request_id, status_box[0], started, error)

    def _reject(self, scope: Scope) -> Rejection | None:
        path: str = scope.get("path", "")
        policy = self.policy
        if policy.is_public(path):
            return None
        peer = "ip:" + _peer(scope)
        client = peer
        if policy.api_key:
            authorization = _header(scope, b"authorization")
            if authorization is None:
                return _unauthorized()
            if self.auth_failures is not None and (wait := self.auth_failures.peek(peer)) > 0:
                return _too_many(wait, f"too many wrong API keys from this address; retry in {_seconds(wait)} s",
                                 "auth_rate_limited")
            if not bearer_matches(authorization, policy.api_key):
                if self.auth_failures is not None:
                    self.auth_failures.check(peer)
                return _unauthorized()
            client = "key:" + _fingerprint(policy.api_key)  # the verified key, however the header was spelled
        if self.limiter is not None and path not in policy.unlimited_paths:
            wait = self.limiter.check(client)
            if wait > 0:
                return _too_many(wait, f"rate limit of {policy.rate_limit_per_minute} requests per minute "
                                       f"exceeded; retry in {_seconds(wait)} s", "rate_limited")
        return None

    async def _cap_body(self, scope: Scope, receive: Receive) -> tuple[Receive, Any]:
        """Read the body up to the cap (413 past it) and hand the app a receive that replays it."""
        limit = self.policy.max_body_bytes
        too_large = (413, error_body(f"request body larger than {limit} bytes", "invalid_request_error",
                                     code="body_too_large"), [])
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return receive, too_large
        if scope.get("method") in ("GET", "HEAD", "OPTIONS", "DELETE") and declared is None:
            return receive, None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":  # gone (or timed out) before sending the whole body
                raise ClientGone
            body = message.get("body", b"")
            size += len(body)
            if size > limit:
                return receive, too_large
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        return replay, None

    def _record(self, scope: Scope, request_id: str, status: int, started: float, error: str | None) -> None:
        seconds = time.perf_counter() - started
        route = _route_label(scope)
        stages: dict[str, float] = dict(scope.get(TIMINGS_KEY) or {})
        method = scope.get("method", "")
        self.metrics.observe(route, method, status, seconds, stages)
        latency = {k: round(v, 2) for k, v in stages.items()}
        latency["http"] = round(seconds * 1000.0, 2)
        fields: dict[str, Any] = {
            "event": "request", "request_id": request_id, "pid": os.getpid(), "method": method, "route": route,
            "path": scope.get("path", ""), "status": status, "latency_ms": latency,
        }
        if error:
            fields["error"] = error
        access_log.info("request", extra={"fields": fields})


async def _send_json(send: Send, status: int, body: dict[str, Any], headers: Iterable[tuple[bytes, bytes]]) -> None:
    payload = json.dumps(body).encode("utf-8")
    await send({
        "type": "http.response.start", "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                    *headers],
    })
    await send({"type": "http.response.body", "body": payload})
