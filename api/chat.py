"""OpenAI-compatible `POST /v1/chat/completions` (plain and SSE streaming) and `GET /v1/models`.

The last user message is the question, earlier user/assistant messages are the history for follow-ups.
Citations travel as an extra `citations` field (on the response, the message and the final stream chunk)
and as a "Sources" list at the end of the message text."""

import re
import time
import uuid
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, create_model

from api.observability import json_bytes
from api.runtime import ApiError, ServiceState, answer_question, invalid
from api.schemas import ERROR_RESPONSES, FiltersIn, StrictJSONRoute, WholeNumber, bounded_whole_number
from rag.config import Settings
from rag.types import Answer, Citation, Turn

MODEL_ID = "rag-cited"
SOURCES_HEADING = "Sources:"
_SOURCES_BLOCK = re.compile(r"\n+" + re.escape(SOURCES_HEADING) + r"\n.*\Z", re.S)
_WORDS_PER_CHUNK = 8


class ContentPart(BaseModel):
    """One part of a multi-part message; only text parts carry a question."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(max_length=50)
    text: str | None = Field(None, max_length=100_000)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = Field(None, max_length=100_000)
    name: str | None = Field(None, max_length=200)

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        if not self.content:
            return ""
        return "\n".join(p.text for p in self.content if p.type == "text" and p.text)


class ChatCompletionRequest(BaseModel):
    """The OpenAI request; sampling options (temperature, max_tokens, ...) are accepted and ignored,
    since no language model writes the answer."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(MODEL_ID, max_length=200, description=f"any name is accepted; answers come from {MODEL_ID}")
    messages: Annotated[list[ChatMessage], Field(min_length=1, max_length=200)]
    stream: StrictBool | None = False
    top_k: WholeNumber | None = None
    filters: FiltersIn | None = Field(None, description="extension: retrieval filters")


def chat_request_model(settings: Settings) -> type[ChatCompletionRequest]:
    """The request model with this app's top_k bound in its schema."""
    return create_model(
        "ChatCompletionRequest",
        __base__=ChatCompletionRequest,
        top_k=(bounded_whole_number(1, settings.max_top_k, "extension: passages to retrieve") | None, None),
    )


def sources_text(citations: list[Citation]) -> str:
    """The "Sources" list appended to the message text: marker, title, publisher, date and quote."""
    lines = [SOURCES_HEADING]
    for c in citations:
        where = ", ".join(x for x in (c.publisher, c.published) if x)
        quote = " ".join(c.quote.split())
        lines.append(f"[{c.n}] {c.title}" + (f" ({where})" if where else "") + f": \u201c{quote}\u201d")
    return "\n".join(lines)


def message_text(answer: Answer) -> str:
    text = answer.answer.rstrip()
    if answer.citations:
        text += "\n\n" + sources_text(answer.citations)
    return text


def split_conversation(messages: list[ChatMessage], max_chars: int) -> tuple[str, list[Turn]]:
    """The question (the last message, which must be the user's) and the earlier turns as history."""
    last_index = len(messages) - 1
    last = messages[last_index]
    loc = ("body", "messages", last_index, "content")
    if last.role != "user":
        raise invalid(("body", "messages", last_index, "role"),
                      f"the last message must have role 'user', got '{last.role}'", last.role)
    question = last.text()
    if not question.strip():
        raise invalid(loc, "the last user message has no text", question)
    if len(question) > max_chars:
        raise invalid(loc, f"the question must be at most {max_chars} characters, got {len(question)}",
                      question[:100])
    history: list[Turn] = []
    for m in messages[:last_index]:
        if m.role not in ("user", "assistant"):
            continue
        content = m.text()
        if m.role == "assistant":
            content = _SOURCES_BLOCK.sub("", content)  # our own citations list is not conversation
        if content.strip():
            history.append(Turn(role=m.role, content=content))
    return question, history


def _citations(answer: Answer) -> list[dict[str, Any]]:
    return answer.to_dict()["citations"]


def completion_body(answer: Answer, completion_id: str, created: int) -> dict[str, Any]:
    citations = _citations(answer)
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": MODEL_ID,
        "system_fingerprint": None,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": message_text(answer), "refusal": None,
                        "citations": citations},
            "finish_reason": "stop",
            "logprobs": None,
        }],
        "citations": citations,
        "answer": answer.to_dict(),
    }


def stream_events(answer: Answer, completion_id: str, created: int) -> Iterator[str]:
    """`chat.completion.chunk` events: the role, the text a few words at a time, then the finish
    chunk carrying the citations, then `[DONE]`."""

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        body = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": MODEL_ID,
                "system_fingerprint": None,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **extra}
        return f"data: {json_bytes(body).decode('utf-8')}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    words = re.findall(r"\s*\S+", message_text(answer))
    for i in range(0, len(words), _WORDS_PER_CHUNK):
        yield chunk({"content": "".join(words[i:i + _WORDS_PER_CHUNK])})
    yield chunk({}, "stop", citations=_citations(answer), answer=answer.to_dict())
    yield "data: [DONE]\n\n"


def build_chat_router(state: ServiceState) -> APIRouter:
    """The `/v1` routes over the app's Assistant."""
    router = APIRouter(prefix="/v1", tags=["openai"], route_class=StrictJSONRoute)
    ChatRequest = chat_request_model(state.settings)

    def model_card() -> dict[str, Any]:
        return {"id": MODEL_ID, "object": "model", "created": int(state.started_at), "owned_by": "rag-cited"}

    @router.get("/models", summary="List the one model (OpenAI-compatible)", responses=ERROR_RESPONSES)
    async def list_models() -> dict[str, Any]:
        return {"object": "list", "data": [model_card()]}

    @router.get("/models/{model_id}", summary="Describe a model (OpenAI-compatible)",
                responses={**ERROR_RESPONSES, 404: ERROR_RESPONSES[422] | {"description": "unknown model"}})
    async def get_model(model_id: str) -> dict[str, Any]:
        if model_id != MODEL_ID:
            raise ApiError(404, f"model '{model_id}' not found; this service serves '{MODEL_ID}'",
                           param="model", code="model_not_found")
        return model_card()

    @router.post(
        "/chat/completions",
        summary="Answer the last user message with citations (OpenAI-compatible, `stream` for SSE)",
        responses={**ERROR_RESPONSES, 200: {"content": {"text/event-stream": {}}}, 503: ERROR_RESPONSES[422]
                   | {"description": "no answering process ready"}, 504: ERROR_RESPONSES[422]
                   | {"description": "answering took too long"}},
    )
    async def chat_completions(body: ChatRequest, request: Request) -> Any:  # type: ignore[valid-type]
        question, history = split_conversation(body.messages, state.settings.max_question_chars)
        answer = await answer_question(
            request, state, question, history=history, top_k=body.top_k,
            filters=body.filters.to_filters() if body.filters else None,
            question_loc=("body", "messages", len(body.messages) - 1, "content"),
        )
        completion_id = "chatcmpl-" + uuid.uuid4().hex
        created = int(time.time())
        if body.stream:
            return StreamingResponse(
                stream_events(answer, completion_id, created), media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        return Response(json_bytes(completion_body(answer, completion_id, created)), media_type="application/json")

    return router
