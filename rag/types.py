"""The shared data types of the pipeline, defined once: documents, chunks, hits, and cited answers."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class DocMeta:
    """What is known about a source beyond its text; kept beside the text, never edited into it."""

    title: str
    publisher: str | None = None
    published: str | None = None  # ISO date (YYYY-MM-DD) where the text states one
    languages: tuple[str, ...] = ()
    source_file: str | None = None
    url: str | None = None
    author: str | None = None


@dataclass(frozen=True, slots=True)
class Document:
    """A source as read: `text` is the decoded original; every offset in the system points into it."""

    doc_id: str
    text: str
    meta: DocMeta

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Span:
    """A half-open character range [start, end) in a document's text."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Chunk:
    """A sentence-aligned passage: `text == document.text[start:end]`, sentences in absolute offsets."""

    chunk_id: str
    doc_id: str
    start: int
    end: int
    text: str
    sentences: tuple[Span, ...]
    n_tokens: int


@dataclass(slots=True)
class Hit:
    """One retrieved chunk with its fused score and each retriever's rank and score (None: not found)."""

    chunk: Chunk
    score: float
    rank: int
    dense_rank: int | None = None
    dense_score: float | None = None
    bm25_rank: int | None = None
    bm25_score: float | None = None


@dataclass(frozen=True, slots=True)
class Filters:
    """Restrictions on what retrieval may return."""

    doc_ids: tuple[str, ...] | None = None
    date_from: str | None = None  # ISO date, inclusive
    date_to: str | None = None  # ISO date, inclusive


@dataclass(frozen=True, slots=True)
class Turn:
    """An earlier turn of a conversation: role is "user" or "assistant"."""

    role: str
    content: str


@dataclass(slots=True)
class Citation:
    n: int
    doc_id: str
    title: str
    publisher: str | None
    published: str | None
    quote: str
    start: int
    end: int


@dataclass(slots=True)
class FigureRef:
    text: str
    value: float
    unit: str
    citation: int


@dataclass(slots=True)
class ConflictValue:
    text: str
    citation: int


@dataclass(slots=True)
class Conflict:
    quantity: str
    values: list[ConflictValue]


@dataclass(slots=True)
class Related:
    doc_id: str
    title: str
    quote: str
    start: int
    end: int


@dataclass(slots=True)
class Answer:
    """The JSON contract shared by `rag ask --json`, HTTP `/ask`, chat and Slack."""

    question: str
    answer: str
    short_answer: str | None
    answerable: bool
    citations: list[Citation] = field(default_factory=list)
    figures: list[FigureRef] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    related: list[Related] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    confidence: float = 0.0  # calibrated probability that the answer (or the refusal) is right
    trace: dict[str, Any] | None = None  # with explain: the features and decisions behind the answer

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
