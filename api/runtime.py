"""What the HTTP handlers share: errors with the API's shape, and the backend that answers, either an
Assistant in this process (answering in threads) or a supervised pool of answering processes.

Work for the Assistant is a module-level function `func(assistant, *args)`, so the same call runs in a
thread here or, pickled by name, in an answering process.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import multiprocessing
import multiprocessing.util
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

import anyio
import anyio.to_thread

from api.forkserver import fork_context
from api.observability import TIMINGS_KEY
from rag.config import Settings
from rag.errors import QuestionError, RagError
from rag.types import Answer, Document, Filters, Turn

if TYPE_CHECKING:  # fastapi only for annotations: answering processes never import it
    from multiprocessing.connection import Connection

    from fastapi import Request
    from fastapi.exceptions import RequestValidationError

    from rag.assistant import Assistant, LiveAssistant

log = logging.getLogger("rag.api")

WARM_UP_QUESTION = "How much was it?"


class ApiError(Exception):
    """An error answered as `{"error": {...}}` with the given status."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", *,
                 param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.param = param
        self.code = code
        self.headers = headers


class Unavailable(Exception):
    """No answering process could take the work (all restarting, failed to start, or shutting down)."""


def invalid(loc: Sequence[str | int], message: str, value: Any = None) -> RequestValidationError:
    """A 422 in the same shape as FastAPI's own validation errors, naming the field at `loc`."""
    from fastapi.exceptions import RequestValidationError

    return RequestValidationError([{"type": "value_error", "loc": tuple(loc), "msg": message, "input": value}])


# --- work run against an Assistant (here or in an answering process) ----------------------------------


def source_meta(doc: Document) -> dict[str, Any]:
    m = doc.meta
    return {"doc_id": doc.doc_id, "title": m.title, "publisher": m.publisher, "published": m.published,
            "languages": list(m.languages), "url": m.url, "source_file": m.source_file, "chars": len(doc.text)}


def catalog_of(assistant: Assistant) -> dict[str, dict[str, Any]]:
    """Every indexed document's metadata (no text), by id."""
    return {doc_id: source_meta(doc) for doc_id, doc in assistant.documents.items()}


@functools.cache
def _ask_takes(method: Callable[..., Any], name: str) -> bool:
    return name in inspect.signature(method).parameters


def ask_assistant(assistant: Assistant, question: str, history: Sequence[Turn], top_k: int | None,
                  filters: Filters | None, explain: bool = False) -> Answer:
    """`Assistant.ask`, passing `explain` only to an Assistant whose `ask` takes it."""
    kwargs: dict[str, Any] = {}
    if _ask_takes(type(assistant).ask, "explain"):
        kwargs["explain"] = explain
    return assistant.ask(question, history=history, top_k=top_k, filters=filters, **kwargs)


def document_text(assistant: Assistant, doc_id: str) -> str | None:
    doc = assistant.documents.get(doc_id)
    return None if doc is None else doc.text


def search_passages(assistant: Assistant, query: str, k: int, mode: str) -> tuple[str, list[dict[str, Any]]]:
    """The generation searched and its ranked passages as the HTTP /search returns them."""
    keys = ("rank", "doc_id", "title", "published", "chunk_id", "start", "end", "text", "score", "bm25_rank",
            "dense_rank")
    hits = [assistant.hit_dict(h) for h in assistant.search(query, k=k, mode=mode)]
    return assistant.generation, [{key: h[key] for key in keys} for h in hits]


# --- backends -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str | None = None
    answering: int = 1  # processes (or 1 for in-process) able to answer now
    total: int = 1


class Backend(Protocol):
    """What the handlers need from whatever holds the Assistant."""

    def readiness(self) -> Readiness: ...

    def info(self) -> dict[str, Any]: ...

    def catalog(self) -> dict[str, dict[str, Any]]: ...

    async def run(self, func: Callable[..., Any], *args: Any) -> Any: ...


def warm_up(assistant: Assistant) -> None:
    """Answer one question, so the lazily initialised parts are ready before real questions come."""
    try:
        ask_assistant(assistant, WARM_UP_QUESTION, (), None, None)
    except QuestionError:
        pass


class LocalBackend:
    """An Assistant in this process; work runs in worker threads (abandoned, not killed, on timeout). Once
    started it follows the live index generation (a new CURRENT is loaded in a background thread and
    swapped in between requests)."""

    def __init__(self, assistant: Assistant) -> None:
        from rag.assistant import LiveAssistant

        self.live: LiveAssistant = LiveAssistant(assistant, prepare=warm_up)
        self._catalog: tuple[str, dict[str, dict[str, Any]]] | None = None

    @property
    def assistant(self) -> Assistant:
        return self.live.current

    def follow_generations(self) -> None:
        """Begin following the index's CURRENT (every `generation_check_s` seconds)."""
        self.live.watch(self.assistant.settings.generation_check_s)

    def readiness(self) -> Readiness:
        return Readiness(True)

    def info(self) -> dict[str, Any]:
        return dict(self.assistant.info())

    def catalog(self) -> dict[str, dict[str, Any]]:
        assistant = self.assistant
        if self._catalog is None or self._catalog[0] != assistant.generation:
            self._catalog = (assistant.generation, catalog_of(assistant))
        return self._catalog[1]

    async def run(self, func: Callable[..., Any], *args: Any) -> Any:
        return await anyio.to_thread.run_sync(partial(func, self.assistant, *args), abandon_on_cancel=True)

    async def close(self) -> None:
        self.live.close()
        close = getattr(self.assistant, "close", None)
        if callable(close):
            close()


def _named_generation(index_dir: Path) -> str | None:
    """The generation CURRENT names (rag.assistant.named_generation's read, without importing FAISS here)."""
    try:
        return (index_dir / "CURRENT").read_bytes().decode("utf-8").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def _leave(code: int) -> NoReturn:
    """multiprocessing's own exit steps (they release its semaphores), then no interpreter teardown: threads
    of the model's libraries can hang it for tens of seconds, and an answering process has nothing to save."""
    multiprocessing.util._exit_function()  # type: ignore[attr-defined]
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _answering_process(conn: Connection, settings_json: str) -> None:
    """An answering process: load the Assistant, say "ready", then run one call at a time until told to stop
    (None) or the server goes away (EOF). Told "reload" (between calls), it opens the generation CURRENT
    names if that moved, and says what it answers from ("switched")."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the server stops us
    try:
        t0 = time.perf_counter()
        from rag.assistant import Assistant, LiveAssistant

        settings = Settings.model_validate_json(settings_json)
        t1 = time.perf_counter()
        assistant = Assistant.open(settings)
        t2 = time.perf_counter()
        warm_up(assistant)  # the first answer initialises lazily loaded parts: pay for it before "ready"
        t3 = time.perf_counter()
        took = {"imports": t1 - t0, "open": t2 - t1, "warm-up": t3 - t2}
        conn.send(("ready", assistant.info(), catalog_of(assistant), took))
    except Exception as exc:
        try:
            conn.send(("failed", str(exc) if isinstance(exc, RagError) else f"{type(exc).__name__}: {exc}"))
        except OSError:  # the server is gone already
            pass
        _leave(1)
    live = LiveAssistant(assistant, prepare=warm_up)
    del assistant
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            message = None
        if message is None:
            _leave(0)
        if message == "reload":  # here, not in a thread: a busy thread would starve a loader of the GIL
            live.refresh()
            conn.send(("switched", live.current.info(), catalog_of(live.current)))
            continue
        func, args = message
        try:
            reply: tuple[str, Any] = ("done", func(live.current, *args))
        except Exception as exc:
            reply = ("raised", exc)
        try:
            conn.send(reply)
        except Exception as exc:  # an unpicklable result or exception
            conn.send(("raised", RuntimeError(f"{type(exc).__name__}: {exc}")))


@dataclass(eq=False)
class _Job:
    func: Callable[..., Any]
    args: tuple[Any, ...]
    future: asyncio.Future[Any]
    retried: bool = False
    started: float = 0.0


@dataclass(eq=False)
class _Worker:
    slot: int
    process: Any
    conn: Connection
    ready: bool = False
    job: _Job | None = None
    failure: str | None = None
    ever_ready: bool = False
    stuck: bool = False
    spawned: float = field(default_factory=time.monotonic)
    info: dict[str, Any] = field(default_factory=dict)  # what it answers from (its index generation)
    catalog: dict[str, dict[str, Any]] = field(default_factory=dict)
    stale: bool = False  # CURRENT names another generation than the one it answers from
    reloading: bool = False  # told to reload, not done yet: takes no call meanwhile


class AnswerPool:
    """`n` answering processes, each with its own Assistant (compose is pure Python, so threads would share
    one core), supervised: a process that dies is replaced (after a back-off when it never got ready), the
    call it was running is retried once on another process, and one stuck past the request timeout is
    killed. Calls go to idle processes one at a time, so load balances request by request. When the index's
    CURRENT moves, processes reload one at a time between calls while the others answer."""

    def __init__(self, settings: Settings, n: int) -> None:
        if n < 1:
            raise ValueError("an answering pool needs at least one process")
        self.settings = settings
        self.n = n
        self.restarts = 0
        # One model thread each: n processes already fill n cores, and idle ONNX Runtime threads spin.
        self._settings_json = settings.with_overrides(threads=1).model_dump_json()
        self._context = fork_context()  # processes are forks of a server that preloaded their libraries
        self._workers: dict[int, _Worker] = {}
        self._queue: deque[_Job] = deque()
        self._info: dict[str, Any] = {}  # of the generation the latest process to load or switch answers from
        self._catalog: dict[str, dict[str, Any]] = {}
        self._failures: dict[int, int] = {}  # slot -> consecutive starts that never got ready
        self._last_failure: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        self._running = False  # start() finished: from now on, a process that exits is replaced
        self._started = asyncio.Event()
        self._watchdog: asyncio.TimerHandle | None = None
        self._target: str | None = None  # the generation CURRENT named when last looked at

    # -- lifecycle -------------------------------------------------------------------------------------

    async def start(self, timeout_s: float = 600.0) -> None:
        """Start every process and wait until all are ready; RagError with the reason when one cannot start
        (then, as on Ctrl-C, every process is stopped)."""
        self._loop = asyncio.get_running_loop()
        try:
            for slot in range(self.n):
                self._spawn(slot)
            deadline = time.monotonic() + timeout_s
            while self.readiness().answering < self.n:
                if self._last_failure is not None:
                    raise RagError(f"an answering process could not start: {self._last_failure}")
                if time.monotonic() > deadline:
                    raise RagError(f"answering processes not ready after {timeout_s:g} s")
                self._started.clear()
                try:
                    await asyncio.wait_for(self._started.wait(), timeout=1.0)
                except TimeoutError:
                    pass
        except BaseException:
            await self.close()
            raise
        self._running = True
        self._follow_current()
        self._schedule_watchdog()

    async def close(self) -> None:
        """Ask every process to stop, wait a little, then kill what is left."""
        self._closing = True
        if self._watchdog is not None:
            self._watchdog.cancel()
        workers = list(self._workers.values())
        pending = [*self._queue, *(w.job for w in workers if w.job is not None)]
        self._queue.clear()
        for job in pending:
            if not job.future.done():
                job.future.set_exception(Unavailable("the server is shutting down"))
        for w in workers:
            try:
                w.conn.send(None)
            except (OSError, ValueError):
                pass

        def reap() -> None:
            for w in workers:
                w.process.join(5)
                if w.process.is_alive():
                    w.process.kill()
                    w.process.join(5)

        await anyio.to_thread.run_sync(reap)
        for w in workers:
            w.conn.close()

    # -- the Backend interface ---------------------------------------------------------------------------

    def readiness(self) -> Readiness:
        answering = sum(1 for w in self._workers.values() if w.ready)
        if answering == self.n:
            return Readiness(True, None, answering, self.n)
        if self._closing:
            reason = "shutting down"
        else:
            reason = f"{answering} of {self.n} answering processes ready"
            if self._last_failure:
                reason += f"; the last start failed: {self._last_failure}"
            elif self.restarts:
                reason += " (restarting one that stopped)"
        return Readiness(False, reason, answering, self.n)

    def info(self) -> dict[str, Any]:
        """What the processes answer from: the generation the latest process to load (or switch) has, with
        `switching` while ready processes answer from different ones."""
        info = dict(self._info)
        served = {w.info.get("generation") for w in self._workers.values() if w.ready}
        if len(served) > 1:
            info["switching"] = True
        return info

    def catalog(self) -> dict[str, dict[str, Any]]:
        return self._catalog

    async def run(self, func: Callable[..., Any], *args: Any) -> Any:
        if self._closing:
            raise Unavailable("the server is shutting down")
        if not any(w.ready for w in self._workers.values()) and self._all_failing():
            raise Unavailable(self.readiness().reason or "no answering process is ready")
        assert self._loop is not None, "AnswerPool.start() was not called"
        job = _Job(func, args, self._loop.create_future())
        self._queue.append(job)
        self._dispatch()
        return await job.future  # cancelled on timeout: a queued job is then skipped, a running one ignored

    # -- supervision (all on the event loop; reader threads only hand messages over) -----------------------

    def _spawn(self, slot: int) -> None:
        if self._closing:
            return
        parent, child = self._context.Pipe(duplex=True)
        process = self._context.Process(target=_answering_process, args=(child, self._settings_json),
                                        name=f"rag-answer-{slot}", daemon=True)
        process.start()
        child.close()  # the process holds the only other end now: its death is EOF here
        worker = _Worker(slot, process, parent)
        self._workers[slot] = worker
        threading.Thread(target=self._read, args=(worker,), name=f"rag-answer-{slot}-reader", daemon=True).start()

    def _read(self, worker: _Worker) -> None:
        loop = self._loop
        assert loop is not None
        while True:
            try:
                message = worker.conn.recv()
            except (EOFError, OSError):
                break
            except Exception as exc:  # a reply that cannot be unpickled here
                message = ("raised", RuntimeError(f"unreadable reply: {type(exc).__name__}: {exc}"))
            try:
                loop.call_soon_threadsafe(self._on_message, worker, message)
            except RuntimeError:  # the loop is closed: the server is gone
                return
        worker.process.join(5)
        try:
            loop.call_soon_threadsafe(self._on_exit, worker)
        except RuntimeError:
            pass

    def _on_message(self, worker: _Worker, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind in ("ready", "switched"):
            previous = worker.info.get("generation")
            worker.info, worker.catalog = message[1], message[2]
            self._info, self._catalog = worker.info, worker.catalog  # the latest to load read CURRENT last
            worker.stale = self._target is not None and worker.info.get("generation") != self._target
            if kind == "switched":
                worker.reloading = False
                worker.stale = False  # tried: a generation that would not load is not asked for again
                if worker.info.get("generation") != previous:
                    log.info("answering process %d (pid %s) answers from index generation %s",
                             worker.slot, worker.process.pid, worker.info.get("generation"))
                self._dispatch()
                return
            worker.ready = worker.ever_ready = True
            self._failures[worker.slot] = 0
            self._last_failure = None
            took = message[3] if len(message) > 3 else {}
            log.info("answering process %d (pid %s) ready %.1f s after its start (%s)", worker.slot,
                     worker.process.pid, time.monotonic() - worker.spawned,
                     ", ".join(f"{k} {v:.2f} s" for k, v in took.items()))
            self._started.set()
        elif kind == "failed":
            worker.failure = message[1]
        elif kind in ("done", "raised"):
            job, worker.job = worker.job, None
            if job is not None and not job.future.done():
                if kind == "done":
                    job.future.set_result(message[1])
                else:
                    job.future.set_exception(message[1])
        self._dispatch()

    def _on_exit(self, worker: _Worker) -> None:
        if self._closing or self._workers.get(worker.slot) is not worker:
            return
        worker.ready = False
        code = worker.process.exitcode
        if not self._running:  # still starting: start() gives up with the reason
            self._last_failure = worker.failure or f"exited with code {code} while loading"
            self._started.set()
            return
        job, worker.job = worker.job, None
        worker.reloading = False
        if job is not None and not job.future.done():
            if job.retried or worker.stuck:
                job.future.set_exception(Unavailable("the answering process stopped while answering; retry"))
            else:
                job.retried = True
                self._queue.appendleft(job)
        if worker.ever_ready:
            delay = 0.0
        else:  # it never got ready: back off, so a broken index does not spin up process after process
            failures = self._failures.get(worker.slot, 0) + 1
            self._failures[worker.slot] = failures
            self._last_failure = worker.failure or f"exited with code {code} while loading"
            delay = min(30.0, 0.5 * 2 ** (failures - 1))
        self.restarts += 1
        log.warning("answering process %d (pid %s) exited with code %s%s; starting a replacement in %.1f s",
                    worker.slot, worker.process.pid, code, f" ({worker.failure})" if worker.failure else "", delay)
        assert self._loop is not None
        self._loop.call_later(delay, self._spawn, worker.slot)
        if self._all_failing():
            while self._queue:
                queued = self._queue.popleft()
                if not queued.future.done():
                    queued.future.set_exception(Unavailable(self.readiness().reason or "no answering process"))
        self._dispatch()

    def _all_failing(self) -> bool:
        """True when every slot's last start failed (so waiting for a process would be in vain for a while)."""
        return all(self._failures.get(slot, 0) > 0 for slot in range(self.n))

    def _follow_current(self) -> None:
        """Mark the processes whose generation is not the one CURRENT names now; they reload in turn."""
        name = _named_generation(self.settings.index_dir)
        if name is None or name == self._target:
            return
        self._target = name
        for w in self._workers.values():
            w.stale = w.ready and w.info.get("generation") != name
        self._dispatch()

    def _roll(self) -> None:
        """Tell one idle stale process to reload, unless one is reloading already (the rest keep answering)."""
        if any(w.reloading for w in self._workers.values()):
            return
        stale = next((w for w in self._workers.values() if w.ready and w.stale and w.job is None), None)
        if stale is None:
            return
        try:
            stale.conn.send("reload")
        except (OSError, ValueError):  # it just died: its reader will report the exit
            stale.ready = False
            return
        stale.reloading = True

    def _dispatch(self) -> None:
        self._roll()
        while self._queue:
            idle = next((w for w in self._workers.values() if w.ready and w.job is None and not w.reloading),
                        None)
            if idle is None:
                return
            job = self._queue.popleft()
            if job.future.done():  # cancelled (timed out) while queued
                continue
            try:
                idle.conn.send((job.func, job.args))
            except (OSError, ValueError):  # it just died: its reader will report the exit
                idle.ready = False
                self._queue.appendleft(job)
                continue
            except Exception as exc:  # arguments that cannot be pickled
                job.future.set_exception(exc)
                continue
            job.started = time.monotonic()
            idle.job = job

    def _schedule_watchdog(self) -> None:
        assert self._loop is not None
        check = self.settings.generation_check_s
        self._watchdog = self._loop.call_later(min(1.0, check) if check > 0 else 1.0, self._watch)

    def _watch(self) -> None:
        """Kill a process whose call has run well past the request timeout (its caller gave up long ago), and
        look at CURRENT."""
        limit = self.settings.request_timeout_s + 5.0
        now = time.monotonic()
        for w in self._workers.values():
            if w.job is not None and not w.stuck and now - w.job.started > limit and w.process.pid:
                log.error("answering process %d (pid %s) stuck for %.0f s; killing it", w.slot, w.process.pid,
                          now - w.job.started)
                w.stuck = True
                try:
                    os.kill(w.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if not self._closing:
            if self.settings.generation_check_s > 0:
                self._follow_current()
            self._schedule_watchdog()


@dataclass
class ServiceState:
    """The app's backend (set at creation or at startup), its settings, and what other parts hang on it."""

    settings: Settings
    backend: Backend | None = None
    started_at: float = 0.0
    extras: dict[str, Any] = field(default_factory=dict)

    def require(self) -> Backend:
        if self.backend is None:
            raise ApiError(503, "the index and model are still loading; retry shortly", "service_unavailable",
                           code="loading", headers={"Retry-After": "5"})
        return self.backend


def unavailable(message: str) -> ApiError:
    return ApiError(503, message, "service_unavailable", code="answering_unavailable", headers={"Retry-After": "2"})


async def run_timed(state: ServiceState, func: Callable[..., Any], *args: Any) -> Any:
    """`func(assistant, *args)` on the backend under the request timeout: 504 when it runs too long, 503 when
    no answering process can take it."""
    backend = state.require()
    timeout = state.settings.request_timeout_s
    try:
        with anyio.fail_after(timeout):
            return await backend.run(func, *args)
    except TimeoutError:
        readiness = backend.readiness()
        if readiness.answering == 0:
            raise unavailable(f"no answering process became ready within {timeout:g} s "
                              f"({readiness.reason})") from None
        raise ApiError(504, f"answering took longer than {timeout:g} s", "timeout_error",
                       code="timeout") from None
    except Unavailable as exc:
        raise unavailable(str(exc)) from None


async def answer_question(request: Request, state: ServiceState, question: str, *,
                          history: Sequence[Turn] = (), top_k: int | None = None,
                          filters: Filters | None = None, explain: bool = False,
                          question_loc: Sequence[str | int] = ("body", "question")) -> Answer:
    """A cited answer from the backend, with the stage timings left for the access log and metrics;
    a question the Assistant refuses is a 422 naming `question_loc`."""
    try:
        answer: Answer = await run_timed(state, ask_assistant, question, tuple(history), top_k, filters, explain)
    except QuestionError as exc:
        raise invalid(question_loc, str(exc), question) from None
    timings = request.scope.get(TIMINGS_KEY)
    if isinstance(timings, dict):
        timings.update(answer.timings_ms)
    return answer
