"""Request and response models of the HTTP API; limits that come from Settings are set per app."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from rag.config import Settings
from rag.types import Filters, Turn


class FiltersIn(BaseModel):
    """Restrict retrieval to some documents and/or a publication date range (inclusive)."""

    model_config = ConfigDict(extra="forbid")

    doc_ids: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        None, max_length=1000, description="only these documents")
    date_from: dt.date | None = Field(None, description="published on or after (YYYY-MM-DD)")
    date_to: dt.date | None = Field(None, description="published on or before (YYYY-MM-DD)")

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

    question: str
    top_k: int | None = None


def ask_request_model(settings: Settings) -> type[AskRequestBase]:
    """The `/ask` body model with this app's question length and top_k bounds in its schema."""
    return create_model(
        "AskRequest",
        __base__=AskRequestBase,
        question=(Annotated[str, Field(min_length=1, max_length=settings.max_question_chars,
                                       description="the question, in any language")], ...),
        top_k=(Annotated[int, Field(ge=1, le=settings.max_top_k, description="passages to retrieve")] | None,
               None),
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


class HealthOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: str
    model: str | None = None
    documents: int | None = None
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
    text: str
    span: SpanOut | None = Field(None, description="the marked range when start/end were given")


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
