"""The OpenAI-compatible API, driven by the official `openai` package against a real uvicorn server."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
from http_helpers import answered_questions, plain_questions, running_server, seed_items

from api.app import create_app
from api.chat import MODEL_ID, SOURCES_HEADING
from rag.assistant import Assistant
from rag.config import Settings
from rag.types import Turn


@pytest.fixture(scope="module")
def base_url(seed_assistant: Assistant, settings: Settings):
    with running_server(create_app(seed_assistant, settings)) as url:
        yield url


@pytest.fixture(scope="module")
def client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key="not-needed", max_retries=0, timeout=60)


def extra(obj: Any, name: str) -> Any:
    """An extra field the openai models keep beside the standard ones."""
    return (obj.model_extra or {}).get(name)


def test_models_list(client: openai.OpenAI) -> None:
    models = client.models.list()
    assert [m.id for m in models.data] == [MODEL_ID]
    assert client.models.retrieve(MODEL_ID).id == MODEL_ID
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-nothing")


def test_plain_completion_carries_answer_and_citations(client: openai.OpenAI, seed_assistant: Assistant) -> None:
    question = answered_questions(seed_assistant)[0]
    expected = seed_assistant.ask(question)
    completion = client.chat.completions.create(
        model="any-name", messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": question}])
    assert completion.object == "chat.completion" and completion.model == MODEL_ID
    choice = completion.choices[0]
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    content = choice.message.content or ""
    assert content.startswith(expected.answer.rstrip())
    expected_citations = expected.to_dict()["citations"]
    assert expected_citations, "a seed question should be answered with citations"
    assert extra(completion, "citations") == expected_citations
    assert extra(choice.message, "citations") == expected_citations
    sources = content.split(SOURCES_HEADING, 1)[1]
    for c in expected.citations:
        assert f"[{c.n}] {c.title}" in sources
        assert " ".join(c.quote.split()) in sources


def test_streamed_completion_matches_plain(client: openai.OpenAI, seed_assistant: Assistant) -> None:
    question = answered_questions(seed_assistant, 2)[1]
    plain = client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": question}])
    stream = client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": question}],
                                            stream=True)
    chunks = list(stream)
    assert len(chunks) >= 3
    assert all(ch.object == "chat.completion.chunk" for ch in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks)
    assert text == plain.choices[0].message.content
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert extra(chunks[-1], "citations") == extra(plain, "citations")


def test_stream_is_server_sent_events(base_url: str) -> None:
    body = {"model": MODEL_ID, "stream": True, "messages": [{"role": "user", "content": plain_questions(1)[0]}]}
    with httpx.stream("POST", f"{base_url}/v1/chat/completions", json=body, timeout=60) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        raw = r.read().decode("utf-8")
    events = raw.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    for event in events[:-2]:
        assert event.startswith("data: ")
        assert json.loads(event[len("data: "):])["object"] == "chat.completion.chunk"


def test_follow_up_through_chat(client: openai.OpenAI, seed_assistant: Assistant) -> None:
    """Earlier turns (our own answer, Sources list included) serve as history for the last question."""
    item = next(it for it in seed_items() if it.get("history"))
    earlier = item["history"][-1]
    first = client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": earlier}])
    first_text = first.choices[0].message.content or ""
    follow = client.chat.completions.create(model=MODEL_ID, messages=[
        {"role": "user", "content": earlier},
        {"role": "assistant", "content": first_text},
        {"role": "user", "content": [{"type": "text", "text": item["question"]}]},
    ])
    first_answer = seed_assistant.ask(earlier).answer
    expected = seed_assistant.ask(item["question"], history=[Turn("user", earlier), Turn("assistant", first_answer)])
    assert (follow.choices[0].message.content or "").startswith(expected.answer.rstrip())
    assert extra(follow, "citations") == expected.to_dict()["citations"]


def test_bad_conversations_are_422(client: openai.OpenAI, settings: Settings) -> None:
    cases = [
        ([{"role": "user", "content": "How much?"}, {"role": "assistant", "content": "Not sure."}], "messages.1.role"),
        ([{"role": "user", "content": "   "}], "messages.0.content"),
        ([{"role": "user", "content": "x" * (settings.max_question_chars + 1)}], "messages.0.content"),
        ([], "messages"),
    ]
    for messages, field in cases:
        with pytest.raises(openai.UnprocessableEntityError) as info:
            client.chat.completions.create(model=MODEL_ID, messages=messages)
        assert field in info.value.message, info.value.message


def test_openai_client_with_api_key(seed_assistant: Assistant, settings: Settings) -> None:
    app = create_app(seed_assistant, settings.with_overrides(api_key="chat-key"))
    with running_server(app) as url:
        good = openai.OpenAI(base_url=f"{url}/v1", api_key="chat-key", max_retries=0)
        bad = openai.OpenAI(base_url=f"{url}/v1", api_key="other-key", max_retries=0)
        messages = [{"role": "user", "content": plain_questions(1)[0]}]
        assert good.chat.completions.create(model=MODEL_ID, messages=messages).choices[0].message.content
        with pytest.raises(openai.AuthenticationError):
            bad.chat.completions.create(model=MODEL_ID, messages=messages)
