"""Request and response models of the HTTP API; limits that come from Settings are set per app."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Literal

from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    create_model,
    model_validator,
)

from rag.config import Settings
from rag.types import Filters, Turn

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_date_text(value: Any) -> Any:
    """Dates come as "YYYY-MM-DD" strings only (not numbers, not timestamps)."""
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        return value
    raise ValueError("must be a date written YYYY-MM-DD")


IsoDate = Annotated[dt.date, BeforeValidator(_iso_date_text)]


def _whole_number(value: Any) -> Any:
    """A JSON integer, as JSON Schema counts them: 5 and 5.0 are the same number; 5.5, "5" and true are not."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValueError("must be a whole number")


WholeNumber = Annotated[int, BeforeValidator(_whole_number)]


def bounded_whole_number(low: int, high: int, description: str) -> Any:
    """WholeNumber within [low, high]; Field first, or its bounds would not reach the JSON schema."""
    return Annotated[int, Field(ge=low, le=high, description=description), BeforeValidator(_whole_number)]


class FiltersIn(BaseModel):
    """Restrict retrieval to some documents and/or a publication date range (inclusive)."""

    model_config = ConfigDict(extra="forbid")

    doc_ids: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        None, max_length=1000, description="only these documents")
    date_from: IsoDate | None = Field(None, description="published on or after (YYYY-MM-DD)")
    date_to: IsoDate | None = Field(None, description="published on or before (YYYY-MM-DD)")

    @model_validator(mode="after")
    def _ordered(self) -> FiltersIn:
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError("date_from must not be after date_to")
        return self

    def to_filters(self) -> Filters:
        return Filters(
            doc_ids=tuple(self.doc_ids) if self.doc_ids is not None else None,
            date_from=self.date_from.isoformat() if self.date_from else None,
            date_to=self.date_to.isoformat() if self.date_to else None,
        )


class TurnIn(BaseModel):
    """An earlier turn of the conversation, oldest first."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant"]
    content: str = Field(max_length=20_000)

    def to_turn(self) -> Turn:
        return Turn(role=self.role, content=self.content)


class AskRequestBase(BaseModel):
    """`POST /ask` body; `question` and `top_k` bounds are added per app from Settings."""

    model_config = ConfigDict(extra="forbid")

    filters: FiltersIn | None = None
    history: list[TurnIn] = Field(default_factory=list, max_length=50,
                                  description="earlier turns, for follow-up questions")
    explain: StrictBool = Field(False, description="add the composer's reasoning as `trace` to the answer")

    question: str
    top_k: int | None = None


def ask_request_model(settings: Settings) -> type[AskRequestBase]:
    """The `/ask` body model with this app's question length and top_k bounds in its schema."""
    return create_model(
        "AskRequest",
        __base__=AskRequestBase,
        question=(Annotated[str, Field(min_length=1, max_length=settings.max_question_chars,
                                       description="the question, in any language")], ...),
        top_k=(bounded_whole_number(1, settings.max_top_k, "passages to retrieve") | None, None),
    )


# --- responses (documentation of the contract; handlers return Answer.to_dict() itself) ---


class CitationOut(BaseModel):
    n: int
    doc_id: str
    title: str
    publisher: str | None
    published: str | None
    quote: str = Field(description="verbatim: document.text[start:end]")
    start: int
    end: int


class FigureRefOut(BaseModel):
    text: str
    value: float
    unit: str
    citation: int


class ConflictValueOut(BaseModel):
    text: str
    citation: int


class ConflictOut(BaseModel):
    quantity: str
    values: list[ConflictValueOut]


class RelatedOut(BaseModel):
    doc_id: str
    title: str
    quote: str
    start: int
    end: int


class AnswerOut(BaseModel):
    """The cited-answer contract shared by `rag ask --json`, `/ask`, chat and Slack."""

    question: str
    answer: str
    short_answer: str | None
    answerable: bool
    citations: list[CitationOut]
    figures: list[FigureRefOut]
    conflicts: list[ConflictOut]
    related: list[RelatedOut]
    timings_ms: dict[str, float]
    confidence: float | None = Field(None, ge=0, le=1, description="how sure the composer is, 0..1")
    trace: dict[str, Any] | None = Field(None, description="the composer's reasoning, with `explain: true`")


class AnsweringOut(BaseModel):
    ready: int = Field(description="answering processes (or 1 for in-process answering) able to answer")
    total: int


class HealthOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: str = Field(description="ok, degraded (fewer answering processes than configured) or loading")
    reason: str | None = Field(None, description="why the service is not ready, when it is not")
    answering: AnsweringOut | None = None
    model: str | None = None
    generation: str | None = Field(None, description="the index generation answers come from (a gen-* folder)")
    switching: bool | None = Field(None, description="true while answering processes move to a new generation")
    documents: int | None = Field(None, description="documents in that generation")
    chunks: int | None = None
    built_at: str | None = None
    version: str | None = None


class SourceMetaOut(BaseModel):
    doc_id: str
    title: str
    publisher: str | None
    published: str | None
    languages: list[str]
    url: str | None
    source_file: str | None
    chars: int


class SourcesOut(BaseModel):
    count: int
    documents: list[SourceMetaOut]


class SpanOut(BaseModel):
    start: int
    end: int
    text: str


class SourceOut(SourceMetaOut):
    text: str = Field(description="the whole text, or with start/end the span and `context` characters "
                                  "either side")
    offset: int = Field(0, description="where `text` starts in the document (0 for the whole text)")
    span: SpanOut | None = Field(None, description="the marked range when start/end were given")


class SearchHitOut(BaseModel):
    rank: int
    doc_id: str
    title: str
    published: str | None
    chunk_id: str
    start: int
    end: int
    text: str = Field(description="the passage, verbatim: the document's text between start and end")
    score: float = Field(description="fused rank score (only its order means something)")
    bm25_rank: int | None
    dense_rank: int | None


class SearchOut(BaseModel):
    query: str
    generation: str | None
    hits: list[SearchHitOut]


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorOut(BaseModel):
    error: ErrorDetail
    detail: list[dict[str, Any]] | None = None


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "missing or wrong API key (when RAG_API_KEY is set)"},
    413: {"model": ErrorOut, "description": "request body too large"},
    422: {"model": ErrorOut, "description": "invalid request; the message names the field"},
    429: {"model": ErrorOut, "description": "rate limited; see Retry-After"},
}


# --- request bodies: strict JSON -------------------------------------------------------------------------

_LONE_SURROGATE_ESCAPE = re.compile(
    r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    r"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile("[\ud800-\udfff]")


class _NotJsonNumber(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _NotJsonNumber(name)


def _has_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return _SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_surrogate(v) for v in value)
    return False


def strict_json(raw: bytes) -> Any:
    """JSON as RFC 8259 has it: UTF-8, no NaN/Infinity, no lone surrogates ("\\ud800"), which Python's
    json module accepts but no JSON encoder can write back. Errors are JSONDecodeError with a position,
    which FastAPI turns into a 422 naming the body."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise json.JSONDecodeError("the body is not UTF-8", raw.decode("utf-8", "replace"), exc.start) from None
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except _NotJsonNumber as exc:
        raise json.JSONDecodeError(f"{exc} is not a JSON number", text, max(0, text.find(str(exc)))) from None
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", text, 0) from None
    if _has_surrogate(value):
        match = _LONE_SURROGATE_ESCAPE.search(text)
        escape = match.group() if match else "\\ud800"
        raise json.JSONDecodeError(f"a lone surrogate {escape} is not Unicode text", text,
                                   match.start() if match else 0)
    return value


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = strict_json(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    """A route whose JSON body is parsed by `strict_json`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict_handler
