"""The HTTP service: `/ask`, `/health`, `/sources`, OpenAI-compatible `/v1`, `/metrics`, the web page
at `/`, and offline OpenAPI docs at `/docs`. The Assistant (model + index) loads once per process."""

# No `from __future__ import annotations`: the /ask body model is built per app from Settings and
# FastAPI must see the real class in the handler's annotation.

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException as StarletteHTTPException

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
)
from api.runtime import AnswerPool, ApiError, ServiceState, answer_question, invalid
from api.schemas import (
    ERROR_RESPONSES,
    AnswerOut,
    ErrorOut,
    HealthOut,
    SourceOut,
    SourcesOut,
    ask_request_model,
)
from api.slack import mount_slack
from rag.assistant import VERSION, Assistant
from rag.config import Settings
from rag.types import Document

log = logging.getLogger("rag.api")

STATIC_DIR = Path(__file__).parent / "static"
PUBLIC_PATHS = frozenset({
    "/health", "/", "/favicon.ico", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json",
    "/slack/events",  # Slack cannot send our key; the Slack app verifies its own request signatures
})
PUBLIC_PREFIXES = ("/static/", "/static-offline-docs/")
_STATUS_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                 404: "not_found_error", 405: "invalid_request_error", 413: "invalid_request_error",
                 429: "rate_limit_error", 503: "service_unavailable", 504: "timeout_error"}


def source_meta(doc: Document) -> dict[str, Any]:
    m = doc.meta
    return {"doc_id": doc.doc_id, "title": m.title, "publisher": m.publisher, "published": m.published,
            "languages": list(m.languages), "url": m.url, "source_file": m.source_file, "chars": len(doc.text)}


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

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(error_body(exc.message, exc.type, param=exc.param, code=exc.code),
                            status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = jsonable_encoder(exc.errors())
        message, param = _validation_message(errors)
        body = error_body(message, "invalid_request_error", param=param, code="validation_error")
        for e in errors:  # echoing a whole oversized input back helps nobody
            if isinstance(e.get("input"), str) and len(e["input"]) > 200:
                e["input"] = e["input"][:200] + "..."
        body["detail"] = errors
        return JSONResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.method} {request.url.path}"
        return JSONResponse(error_body(message, _STATUS_TYPES.get(exc.status_code, "api_error")),
                            status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        rid = request.scope.get(REQUEST_ID_KEY, "")
        log.exception("unhandled error in %s %s (request %s)", request.method, request.url.path, rid)
        return JSONResponse(error_body(f"internal error (request id {rid})", "api_error"), status_code=500)


def create_app(assistant: "Assistant | None" = None, settings: Settings | None = None, *,
               answer_processes: int = 0) -> FastAPI:
    """The service over `assistant`, or over one opened at startup from `settings` (building the index
    from the corpus when missing). With `answer_processes` > 0, answers
    are computed in that many processes, each loading its own model, to use every core."""
    if settings is None:
        settings = getattr(assistant, "settings", None) or Settings()
    assert settings is not None
    state = ServiceState(settings=settings, assistant=assistant, started_at=time.time())
    metrics = Metrics()
    configure_access_log()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if state.assistant is None:
            from rag.assistant import Assistant

            log.info("loading the model and index from %s ...", settings.index_dir)
            state.assistant = await anyio.to_thread.run_sync(Assistant.open, settings)
            state.extras["slack"] = mount_slack(app, state.assistant, settings)
        if answer_processes > 0:
            log.info("starting %d answering processes ...", answer_processes)
            state.pool = AnswerPool(settings, answer_processes)
            await anyio.to_thread.run_sync(state.pool.warm_up)
        info = state.assistant.info()
        log.info("ready: %s documents, %s chunks, model %s, index built %s; Slack: %s",
                 info.get("documents"), info.get("chunks"), info.get("model"), info.get("built_at"),
                 "on (POST /slack/events)" if state.extras.get("slack")
                 else "off (set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET to enable)")
        yield
        log.info("shutting down")
        if state.pool is not None:
            await anyio.to_thread.run_sync(state.pool.close)
        close = getattr(state.assistant, "close", None)
        if callable(close):
            close()

    app = _fastapi_class()(
        title="rag-cited",
        version=VERSION,
        description="Cited answers over a news collection: every answer quotes its sources verbatim.",
        lifespan=lifespan,
    )
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
    )
    if assistant is not None:
        state.extras["slack"] = mount_slack(app, assistant, settings)

    AskRequest = ask_request_model(settings)

    @app.post("/ask", response_model=AnswerOut, responses=ERROR_RESPONSES | {504: {"model": ErrorOut}},
              summary="Answer a question with verbatim citations", tags=["answers"])
    async def ask(body: AskRequest, request: Request) -> Response:  # type: ignore[valid-type]
        answer = await answer_question(
            request, state, body.question,
            history=[t.to_turn() for t in body.history], top_k=body.top_k,
            filters=body.filters.to_filters() if body.filters else None,
        )
        # The dataclass is the contract; AnswerOut only documents it.
        return JSONResponse(answer.to_dict())

    @app.get("/health", response_model=HealthOut, summary="Liveness and what is loaded", tags=["service"],
             responses={503: {"model": HealthOut, "description": "still loading"}})
    async def health() -> Any:
        if state.assistant is None:
            return JSONResponse({"status": "loading", "version": VERSION}, status_code=503)
        info = dict(state.assistant.info())
        info.setdefault("status", "ok")
        info.setdefault("version", VERSION)
        return info

    @app.get("/sources", response_model=SourcesOut, responses=ERROR_RESPONSES,
             summary="The indexed documents with their metadata", tags=["sources"])
    async def sources() -> Any:
        docs = state.require().documents
        return {"count": len(docs), "documents": [source_meta(d) for d in docs.values()]}

    @app.get("/sources/{doc_id}", response_model=SourceOut,
             responses=ERROR_RESPONSES | {404: {"model": ErrorOut, "description": "unknown document"}},
             summary="A document's text and metadata; `start`/`end` mark a span", tags=["sources"])
    async def source(doc_id: str,
                     start: int | None = Query(None, ge=0, description="span start (character offset)"),
                     end: int | None = Query(None, ge=0, description="span end (exclusive)")) -> Any:
        doc = state.require().documents.get(doc_id)
        if doc is None:
            raise ApiError(404, f"unknown document id '{doc_id}'; GET /sources lists them", "not_found_error",
                           param="doc_id", code="unknown_document")
        body = source_meta(doc) | {"text": doc.text, "span": None}
        if start is None and end is None:
            return body
        if start is None or end is None:
            missing = "start" if start is None else "end"
            raise invalid(("query", missing), "give both start and end to mark a span")
        if end > len(doc.text):
            raise invalid(("query", "end"), f"end must be at most the text length {len(doc.text)}", end)
        if start > end:
            raise invalid(("query", "start"), "start must not be after end", start)
        body["span"] = {"start": start, "end": end, "text": doc.text[start:end]}
        return body

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
