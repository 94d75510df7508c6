"""The HTTP server: uvicorn (uvloop + httptools) with a connection guard against slow, huge and idle clients.

uvicorn's httptools protocol reads headers and bodies without time or size limits and keeps every idle
connection. `guarded_protocol` adds, per server: a deadline for the request head and one for the body
(408), a cap on the head's size (431, checked before the parser buffers it), and a cap on open
connections that closes the longest-waiting idle ones so new clients (and /health) still get in.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from rag.config import Settings

log = logging.getLogger("rag.api.server")

GRACEFUL_SHUTDOWN_S = 10
LINGER_S = 2.0  # after refusing a request, read and drop what the client still sends, then close
FD_RESERVE = 128  # descriptors kept for index files, answering-process pipes, Slack calls, logs


@dataclass(frozen=True)
class Limits:
    """What one connection may do before its request reaches the app."""

    header_timeout_s: float
    body_timeout_s: float
    max_header_bytes: int
    max_connections: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(settings.header_timeout_s, settings.body_timeout_s, settings.max_header_bytes,
                   connection_cap(settings.max_connections))


def raise_fd_limit() -> int:
    """Raise the soft open-file limit to the hard one (idle clients cost a descriptor each); the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def connection_cap(wanted: int) -> int:
    """`wanted`, lowered so that a full server still has descriptors left to accept and answer."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(16, min(wanted, soft - FD_RESERVE))


def _error_response(status: int, reason: str, message: str, code: str) -> bytes:
    body = json.dumps({"error": {"message": message, "type": "invalid_request_error", "param": None,
                                 "code": code}}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            "connection: close\r\n\r\n").encode()
    return head + body


def guarded_protocol(limits: Limits) -> type[HttpToolsProtocol]:
    """An httptools protocol class enforcing `limits`; its connection bookkeeping is shared by the
    connections of one server only (each call makes a new class)."""
    # Connections waiting for a request head (fresh or keep-alive idle, or sending one slowly), oldest first:
    # the ones to close when the cap is reached. An OrderedDict makes every update O(1).
    waiting: OrderedDict[GuardedProtocol, None] = OrderedDict()

    class GuardedProtocol(HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._in_head = True  # between requests or inside a request head
            self._head_bytes = 0
            self._message_done = True
            self._deadline: asyncio.TimerHandle | None = None
            self._refused = False

        # -- connection lifecycle -------------------------------------------------------------------

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._wait_for_head()
            self._arm(limits.header_timeout_s, 408, "Request Timeout", "request head not received in time",
                      "header_timeout")
            excess = len(self.connections) - limits.max_connections
            while excess > 0 and waiting:
                oldest = next(iter(waiting))
                if oldest is self:
                    break
                oldest._drop("idle connection closed: the server is at its connection limit")
                excess -= 1
            if excess > 0:  # every other connection is busy with a request: refuse this one
                self._refuse(503, "Service Unavailable", "too many connections; retry shortly", "too_many_connections")

        def connection_lost(self, exc: Exception | None) -> None:
            waiting.pop(self, None)
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return  # lingering after a refusal: read and drop
            if not self._in_head:
                super().data_received(data)
                return
            if self._deadline is None:  # the first bytes of a request on a keep-alive connection
                self._arm(limits.header_timeout_s, 408, "Request Timeout", "request head not received in time",
                          "header_timeout")
            room = limits.max_header_bytes - self._head_bytes
            if len(data) <= room:
                self._head_bytes += len(data)
                super().data_received(data)
                return
            # Feed only what the head may use: if the head is not complete within it, it is too large.
            self._head_bytes += room
            super().data_received(data[:room])
            if self._in_head:
                self._refuse(431, "Request Header Fields Too Large",
                             f"request head larger than {limits.max_header_bytes} bytes", "header_too_large")
            elif not self.transport.is_closing():
                super().data_received(data[room:])

        # -- parser callbacks -----------------------------------------------------------------------

        def on_message_begin(self) -> None:
            self._message_done = False
            super().on_message_begin()

        def on_headers_complete(self) -> None:
            self._in_head = False
            waiting.pop(self, None)
            self._arm(limits.body_timeout_s, 408, "Request Timeout", "request body not received in time",
                      "body_timeout")
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._message_done = True
            self._disarm()
            super().on_message_complete()
            if self.cycle is not None and self.cycle.response_complete:  # answered before the body ended
                self._wait_for_head()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            done = self.cycle is None or self.cycle.response_complete  # not a pipelined request's turn
            if self._message_done and done and not self.transport.is_closing():
                self._wait_for_head()

        # -- helpers --------------------------------------------------------------------------------

        def _wait_for_head(self) -> None:
            self._in_head = True
            self._head_bytes = 0
            waiting[self] = None
            waiting.move_to_end(self)

        def _arm(self, seconds: float, status: int, reason: str, message: str, code: str) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(seconds, self._refuse, status, reason, message, code)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _drop(self, why: str) -> None:
            log.debug("%s (%s)", why, self.client)
            waiting.pop(self, None)
            self._disarm()
            self.transport.close()

        def _refuse(self, status: int, reason: str, message: str, code: str) -> None:
            """Answer `status` when no response is under way, then read and drop input for a moment before
            closing, so the client reads the answer instead of a connection reset."""
            self._deadline = None
            waiting.pop(self, None)
            if self.transport.is_closing() or self._refused:
                return
            self._refused = True
            cycle = self.cycle
            if cycle is None or (cycle.response_complete and self._in_head):
                self.transport.write(_error_response(status, reason, message, code))
            elif not cycle.response_complete and not cycle.response_started:  # the app waits for the body
                cycle.disconnected = True
                cycle.message_event.set()
                self.transport.write(_error_response(status, reason, message, code))
            if self.transport.can_write_eof():
                self.transport.write_eof()
            self.loop.call_later(LINGER_S, self.transport.close)

    return GuardedProtocol


def server_config(app: Any, settings: Settings, **overrides: Any) -> uvicorn.Config:
    """The uvicorn configuration `rag serve` uses (and the tests): the guarded protocol, no proxy-header
    rewriting here (the app applies RAG_TRUSTED_PROXIES itself), no uvicorn access log (ours is JSON)."""
    options: dict[str, Any] = dict(
        loop="uvloop", http=guarded_protocol(Limits.from_settings(settings)), host=settings.host,
        port=settings.port, proxy_headers=False, server_header=False, access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S, backlog=2048,
    )
    options.update(overrides)
    return uvicorn.Config(app, **options)
