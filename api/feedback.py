"""Thumbs up/down on answers, kept with the question and the answer in a local SQLite file
(`Settings.feedback_db`, by default `feedback.sqlite3` in the index folder) so they can be reviewed later."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio.to_thread
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.runtime import ApiError, ServiceState
from api.schemas import ERROR_RESPONSES, ErrorOut, StrictJSONRoute
from rag.config import Settings

SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id TEXT PRIMARY KEY,          -- chosen by the page, one per answer: a second vote replaces the first
    rating INTEGER NOT NULL,      -- 1 up, -1 down
    question TEXT NOT NULL,
    answer TEXT NOT NULL,         -- the answer's text as the API gave it
    answer_json TEXT NOT NULL,    -- the whole answer object
    comment TEXT,
    created_at TEXT NOT NULL,     -- UTC, ISO 8601
    updated_at TEXT NOT NULL
)
"""


def feedback_path(settings: Settings) -> Path:
    return Path(settings.feedback_db) if settings.feedback_db else Path(settings.index_dir) / "feedback.sqlite3"


class RatedAnswer(BaseModel):
    """The answer object as `/ask` returned it (kept whole: citations, figures, confidence...)."""

    model_config = ConfigDict(extra="allow")

    answer: Annotated[str, Field(max_length=100_000, description="the answer's text")]


class FeedbackIn(BaseModel):
    """`POST /feedback` body: a rating of one answer, with the question and the answer it rates."""

    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$",
                             description="the page's id for this answer; voting again replaces the vote")]
    rating: Literal["up", "down"]
    question: Annotated[str, Field(min_length=1, max_length=20_000)]
    answer: RatedAnswer
    comment: Annotated[str, Field(max_length=2000)] | None = None


class FeedbackOut(BaseModel):
    id: str
    rating: Literal["up", "down"]
    stored: bool


class FeedbackStore:
    """The feedback table; one short transaction per vote, safe across threads and processes (WAL)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._ready = False

    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(str(self.path), timeout=10)
            if not self._ready:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute(SCHEMA)
                self._ready = True
        except (OSError, sqlite3.Error) as exc:
            raise ApiError(503, f"feedback store {self.path} is unavailable: {exc}", "service_unavailable",
                           code="feedback_unavailable") from exc
        return db

    def put(self, item: FeedbackIn) -> None:
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        row = (item.id, 1 if item.rating == "up" else -1, item.question, item.answer.answer,
               json.dumps(item.answer.model_dump(), ensure_ascii=False), item.comment, now, now)
        with self._lock:
            db = self._connect()
            try:
                with db:
                    db.execute(
                        "INSERT INTO feedback VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                        "rating = excluded.rating, question = excluded.question, answer = excluded.answer, "
                        "answer_json = excluded.answer_json, comment = excluded.comment, "
                        "updated_at = excluded.updated_at", row)
            except sqlite3.Error as exc:
                raise ApiError(503, f"could not store feedback in {self.path}: {exc}", "service_unavailable",
                               code="feedback_unavailable") from exc
            finally:
                db.close()

    def all(self) -> list[dict[str, Any]]:
        """Every vote, oldest first (for review and tests)."""
        with self._lock:
            db = self._connect()
            try:
                db.row_factory = sqlite3.Row
                return [dict(r) for r in db.execute("SELECT * FROM feedback ORDER BY created_at, id")]
            finally:
                db.close()


def build_feedback_router(state: ServiceState) -> APIRouter:
    """`POST /feedback`: store a vote on an answer."""
    # Strict JSON (no NaN, no lone surrogates) as the rest of the API reads it: what is stored is encodable.
    router = APIRouter(route_class=StrictJSONRoute)
    store = FeedbackStore(feedback_path(state.settings))
    state.extras["feedback"] = store

    @router.post("/feedback", response_model=FeedbackOut, tags=["answers"],
                 responses=ERROR_RESPONSES | {503: {"model": ErrorOut, "description": "cannot write the store"}},
                 summary="Rate an answer (thumbs up or down); kept with its question and answer")
    async def feedback(body: FeedbackIn) -> Any:
        await anyio.to_thread.run_sync(store.put, body)
        return {"id": body.id, "rating": body.rating, "stored": True}

    return router
