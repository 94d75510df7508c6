"""What the HTTP handlers share: the loaded Assistant, errors with the API's shape, and answering off
the event loop with a timeout."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
from fastapi import Request
from fastapi.exceptions import RequestValidationError

from api.observability import TIMINGS_KEY
from rag.config import Settings
from rag.errors import QuestionError
from rag.types import Answer, Filters, Turn

if TYPE_CHECKING:
    from rag.assistant import Assistant


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


def invalid(loc: Sequence[str | int], message: str, value: Any = None) -> RequestValidationError:
    """A 422 in the same shape as FastAPI's own validation errors, naming the field at `loc`."""
    return RequestValidationError([{"type": "value_error", "loc": tuple(loc), "msg": message, "input": value}])


_process_assistant: Assistant | None = None


def _open_in_process(settings_json: str) -> None:
    """Pool initializer: each answering process loads the model and index once."""
    global _process_assistant
    from rag.assistant import Assistant

    _process_assistant = Assistant.open(Settings.model_validate_json(settings_json))


def _ask_in_process(question: str, history: Sequence[Turn], top_k: int | None, filters: Filters | None) -> Answer:
    assert _process_assistant is not None
    return _process_assistant.ask(question, history=history, top_k=top_k, filters=filters)


class AnswerPool:
    """Answers in `n` separate processes, each with its own Assistant: compose is pure Python, so
    threads share one core (the GIL) while processes use them all, balanced request by request."""

    def __init__(self, settings: Settings, n: int) -> None:
        self.n = n
        self.executor = ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("spawn"),
                                            initializer=_open_in_process,
                                            initargs=(settings.model_dump_json(),))

    def warm_up(self) -> None:
        """Start every process and wait until each has loaded (blocking; call from a thread)."""
        futures = [self.executor.submit(_ask_in_process, "warm up", (), None, None) for _ in range(2 * self.n)]
        for f in futures:
            try:
                f.result()
            except QuestionError:
                pass

    async def ask(self, question: str, history: Sequence[Turn], top_k: int | None,
                  filters: Filters | None) -> Answer:
        return await asyncio.wrap_future(self.executor.submit(_ask_in_process, question, tuple(history), top_k,
                                                              filters))

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


@dataclass
class ServiceState:
    """The app's Assistant (loaded once, at creation or at startup), its settings, and the optional
    pool of answering processes."""

    settings: Settings
    assistant: Assistant | None = None
    pool: AnswerPool | None = None
    started_at: float = 0.0
    extras: dict[str, Any] = field(default_factory=dict)

    def require(self) -> Assistant:
        if self.assistant is None:
            raise ApiError(503, "the index and model are still loading; retry shortly", "service_unavailable",
                           code="loading", headers={"Retry-After": "5"})
        return self.assistant


async def answer_question(request: Request, state: ServiceState, question: str, *,
                          history: Sequence[Turn] = (), top_k: int | None = None,
                          filters: Filters | None = None, question_loc: Sequence[str | int] = ("body", "question"),
                          ) -> Answer:
    """Run `Assistant.ask` off the event loop (a worker thread, or the process pool when there is one)
    under the request timeout (504), and leave the stage timings for the access log and metrics."""
    assistant = state.require()
    timeout = state.settings.request_timeout_s
    try:
        with anyio.fail_after(timeout):
            if state.pool is not None:
                answer = await state.pool.ask(question, history, top_k, filters)
            else:
                call = partial(assistant.ask, question, history=history, top_k=top_k, filters=filters)
                # abandon_on_cancel: on timeout answer 504 now; the thread finishes on its own.
                answer = await anyio.to_thread.run_sync(call, abandon_on_cancel=True)
    except TimeoutError:
        raise ApiError(504, f"answering took longer than {timeout:g} s", "timeout_error",
                       code="timeout") from None
    except QuestionError as exc:
        raise invalid(question_loc, str(exc), question) from None
    timings = request.scope.get(TIMINGS_KEY)
    if isinstance(timings, dict):
        timings.update(answer.timings_ms)
    return answer
