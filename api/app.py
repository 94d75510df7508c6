"""The HTTP service: `/ask`, `/health`, `/sources`, OpenAI-compatible `/v1`, `/metrics`, the web page
at `/`, and offline OpenAPI docs at `/docs`. The Assistant (model + index) loads once per process."""

# No `from __future__ import annotations`: the /ask body model is built per app from Settings and
# FastAPI must see the real class in the handler's annotation.

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import anyio.to_thread
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException as StarletteHTTPException
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from api.chat import build_chat_router
from api.examples import build_examples_router
from api.feedback import build_feedback_router
from api.observability import (
    REQUEST_ID_KEY,
    Metrics,
    Policy,
    RateLimiter,
    ServiceMiddleware,
    configure_access_log,
    error_body,
    json_bytes,
    json_safe,
)
from api.runtime import (
    AnswerPool,
    ApiError,
    Backend,
    LocalBackend,
    ServiceState,
    answer_question,
    document_text,
    invalid,
    run_timed,
    search_passages,
)
from api.schemas import (
    ERROR_RESPONSES,
    AnswerOut,
    ErrorOut,
    HealthOut,
    SearchOut,
    SourceOut,
    SourcesOut,
    StrictJSONRoute,
    ask_request_model,
)
from rag.config import Settings

if TYPE_CHECKING:
    from rag.assistant import Assistant

try:  # not rag.assistant.VERSION: importing it would load FAISS into a process that needs no index
    VERSION = version("rag-cited")
except PackageNotFoundError:
    VERSION = "0.0.0"

log = logging.getLogger("rag.api")

STATIC_DIR = Path(__file__).parent / "static"
PUBLIC_PATHS = frozenset({
    "/health", "/", "/favicon.ico", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json",
    "/slack/events",  # Slack cannot send our key; the Slack app verifies its own request signatures
})
PUBLIC_PREFIXES = ("/static/", "/static-offline-docs/")
MAX_CONTEXT_CHARS = 100_000  # /sources/{doc_id}?context=: more is the whole text, asked for without a span
_STATUS_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                 404: "not_found_error", 405: "invalid_request_error", 413: "invalid_request_error",
                 429: "rate_limit_error", 503: "service_unavailable", 504: "timeout_error"}


def _validation_message(errors: list[dict[str, Any]]) -> tuple[str, str | None]:
    """One readable line naming each bad field, e.g. "question: String should have at most 2000 characters"."""
    parts: list[str] = []
    first: str | None = None
    for e in errors:
        loc = [str(x) for x in e.get("loc", ())]
        if e.get("type") == "json_invalid":
            field = "body"
            reason = (e.get("ctx") or {}).get("error", "")
            pos = loc[1] if len(loc) > 1 else "?"
            msg = f"malformed JSON ({reason}) at position {pos}" if reason else f"malformed JSON at position {pos}"
        else:
            if len(loc) > 1 and loc[0] in ("body", "query", "path", "header", "cookie"):
                loc = loc[1:]
            field = ".".join(loc) or "body"
            msg = e.get("msg", "invalid value")
        first = first or field
        parts.append(f"{field}: {msg}")
    return "; ".join(parts) or "invalid request", first


def install_error_handlers(app: FastAPI) -> None:
    """Every error answers `{"error": {message, type, param, code}}` (plus `detail` for 422s)."""

    def reply(body: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse(json_safe(body), status_code=status, headers=headers)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return reply(error_body(exc.message, exc.type, param=exc.param, code=exc.code), exc.status, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Inputs are echoed cut to 200 characters and made encodable (no lone surrogate, NaN, bytes).
        errors = [{k: v for k, v in e.items() if k != "url"} for e in json_safe(list(exc.errors()), 200)]
        message, param = _validation_message(errors)
        body = error_body(message, "invalid_request_error", param=param, code="validation_error")
        body["detail"] = errors
        return reply(body, 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.method} {request.url.path}"
        return reply(error_body(message, _STATUS_TYPES.get(exc.status_code, "api_error")), exc.status_code,
                     getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        rid = request.scope.get(REQUEST_ID_KEY, "")
        log.exception("unhandled error in %s %s (request %s)", request.method, request.url.path, rid)
        return reply(error_body(f"internal error (request id {rid})", "api_error"), 500)


def create_app(assistant: "Assistant | None" = None, settings: Settings | None = None, *,
               answer_processes: int = 0, backend: Backend | None = None) -> FastAPI:
    """The service, answering from the first of: `backend` (e.g. an AnswerPool already started; closed at
    shutdown); `answer_processes` > 0 supervised processes started at startup, each loading its own model
    and index while this process holds neither; `assistant`; or an Assistant opened at startup from
    `settings`. The last two answer in threads of this process."""
    if settings is None:
        settings = getattr(assistant, "settings", None) or Settings()
    assert settings is not None
    state = ServiceState(settings=settings, started_at=time.time(), backend=backend)
    if backend is None and assistant is not None and answer_processes <= 0:
        state.backend = LocalBackend(assistant)
    metrics = Metrics()
    configure_access_log()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if state.backend is None and answer_processes > 0:
            log.info("starting %d answering processes ...", answer_processes)
            pool = AnswerPool(settings, answer_processes)
            await pool.start()
            state.backend = pool
        elif state.backend is None:
            from rag.assistant import Assistant

            log.info("loading the model and index from %s ...", settings.index_dir)
            state.backend = LocalBackend(await anyio.to_thread.run_sync(Assistant.open, settings))
        if isinstance(state.backend, LocalBackend):
            state.backend.follow_generations()
        info = state.backend.info()
        log.info("ready: %s documents, %s chunks, model %s, index generation %s; Slack: %s",
                 info.get("documents"), info.get("chunks"), info.get("model"), info.get("generation"),
                 f"on (POST /slack/events, command {settings.slack_command})" if state.extras.get("slack")
                 else "off (set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET to enable)")
        yield
        log.info("shutting down")
        close = getattr(state.backend, "close", None)
        if callable(close):
            await close()

    app = _fastapi_class()(
        title="rag-cited",
        version=VERSION,
        description="Cited answers over a news collection: every answer quotes its sources verbatim.",
        lifespan=lifespan,
    )
    app.router.route_class = StrictJSONRoute
    app.state.service = state
    app.state.metrics = metrics
    install_error_handlers(app)
    app.add_middleware(
        ServiceMiddleware,
        policy=Policy(
            api_key=settings.api_key or None,
            rate_limit_per_minute=settings.rate_limit_per_minute,
            max_body_bytes=settings.max_body_bytes,
            public_paths=PUBLIC_PATHS,
            public_prefixes=PUBLIC_PREFIXES,
            unlimited_paths=PUBLIC_PATHS | {"/metrics"},
        ),
        metrics=metrics,
        limiter=RateLimiter(settings.rate_limit_per_minute) if settings.rate_limit_per_minute > 0 else None,
        auth_failures=(RateLimiter(settings.auth_failures_per_minute)
                       if settings.api_key and settings.auth_failures_per_minute > 0 else None),
    )
    if settings.trusted_proxies.strip():  # outermost: the client address is settled before anything reads it
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    state.extras["slack"] = False
    if settings.slack_bot_token and settings.slack_signing_secret:  # slack_bolt is imported only then
        from api.slack import mount_slack

        state.extras["slack"] = mount_slack(app, state.require, settings)

    AskRequest = ask_request_model(settings)

    @app.post("/ask", response_model=AnswerOut,
              responses=ERROR_RESPONSES | {503: {"model": ErrorOut}, 504: {"model": ErrorOut}},
              summary="Answer a question with verbatim citations", tags=["answers"])
    async def ask(body: AskRequest, request: Request) -> Response:  # type: ignore[valid-type]
        answer = await answer_question(
            request, state, body.question,
            history=[t.to_turn() for t in body.history], top_k=body.top_k,
            filters=body.filters.to_filters() if body.filters else None, explain=body.explain,
        )
        # The dataclass is the contract; AnswerOut only documents it.
        return Response(json_bytes(answer.to_dict()), media_type="application/json")

    @app.get("/health", response_model=HealthOut, summary="Readiness and what is loaded", tags=["service"],
             responses={503: {"model": HealthOut, "description": "loading, or fewer answering processes "
                                                                "than configured (see reason)"}})
    async def health() -> Any:
        if state.backend is None:
            return JSONResponse({"status": "loading", "reason": "loading the model and index",
                                 "version": VERSION}, status_code=503)
        readiness = state.backend.readiness()
        body = state.backend.info() | {
            "status": "ok" if readiness.ready else "degraded", "version": VERSION,
            "answering": {"ready": readiness.answering, "total": readiness.total},
        }
        if readiness.ready:
            return body
        return JSONResponse(body | {"reason": readiness.reason}, status_code=503, headers={"Retry-After": "2"})

    @app.get("/sources", response_model=SourcesOut, responses=ERROR_RESPONSES | {503: {"model": ErrorOut}},
             summary="The indexed documents with their metadata", tags=["sources"])
    async def sources() -> Any:
        docs = state.require().catalog()
        return {"count": len(docs), "documents": list(docs.values())}

    @app.get("/sources/{doc_id}", response_model=SourceOut,
             responses=ERROR_RESPONSES | {404: {"model": ErrorOut, "description": "unknown document"},
                                          503: {"model": ErrorOut}, 504: {"model": ErrorOut}},
             summary="A document's text and metadata; `start`/`end` mark a span", tags=["sources"])
    async def source(doc_id: str,
                     start: int | None = Query(None, ge=0, description="span start (character offset)"),
                     end: int | None = Query(None, ge=0, description="span end (exclusive)"),
                     context: int = Query(0, ge=0, le=MAX_CONTEXT_CHARS,
                                          description="with a span: characters of text either side")) -> Any:
        meta = state.require().catalog().get(doc_id)
        if meta is None:
            raise ApiError(404, f"unknown document id '{doc_id}'; GET /sources lists them", "not_found_error",
                           param="doc_id", code="unknown_document")
        if (start is None) != (end is None):
            missing = "start" if start is None else "end"
            raise invalid(("query", missing), "give both start and end to mark a span")
        if start is not None and end is not None and start > end:
            raise invalid(("query", "start"), "start must not be after end", start)
        text = await run_timed(state, document_text, doc_id)
        if text is None:  # an answering process restarted onto another index generation
            raise ApiError(404, f"unknown document id '{doc_id}'", "not_found_error", param="doc_id",
                           code="unknown_document")
        if start is None or end is None:
            return meta | {"text": text, "offset": 0, "span": None}
        if end > len(text):
            raise invalid(("query", "end"), f"end must be at most the text length {len(text)}", end)
        first, last = max(0, start - context), min(len(text), end + context)
        return meta | {"text": text[first:last], "offset": first,
                       "span": {"start": start, "end": end, "text": text[start:end]}}

    @app.get("/search", response_model=SearchOut,
             responses=ERROR_RESPONSES | {503: {"model": ErrorOut}, 504: {"model": ErrorOut}},
             summary="Passages that match a query (words and meaning); no answer composed", tags=["sources"])
    async def search(q: str = Query(min_length=1, max_length=settings.max_question_chars, description="the query"),
                     k: int = Query(10, ge=1, le=settings.max_top_k, description="passages to return"),
                     mode: Literal["hybrid", "bm25", "dense"] = Query("hybrid")) -> Any:
        if not q.strip():
            raise invalid(("query", "q"), "the query is empty", q)
        generation, hits = await run_timed(state, search_passages, q, k, mode)
        return {"query": q, "generation": generation, "hits": hits}

    @app.get("/metrics", summary="Prometheus metrics", tags=["service"], response_class=Response,
             responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}, 401: ERROR_RESPONSES[401]})
    async def prometheus_metrics() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    app.include_router(build_chat_router(state))
    app.include_router(build_examples_router(state))  # the chat page's welcome and thumbs
    app.include_router(build_feedback_router(state))

    @app.get("/", include_in_schema=False)
    async def index_page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def _fastapi_class() -> Any:
    """FastAPI whose /docs serves Swagger UI from the `fastapi-offline` package (no CDN), when installed."""
    try:
        from fastapi_offline import FastAPIOffline
    except ImportError:
        log.warning("fastapi-offline is not installed: /docs will load Swagger UI from a CDN")
        return FastAPI
    return FastAPIOffline
