"""What the chat page needs from the server beyond /ask: example questions written from the indexed
documents (`GET /examples`) and thumbs stored with question and answer in SQLite (`POST /feedback`)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from http_helpers import ROOT, plain_questions, running_server

from api.app import create_app
from api.examples import example_questions, lead_parses, money_questions
from api.feedback import FeedbackStore, feedback_path
from rag.annotate import Annotator
from rag.assistant import Assistant
from rag.config import Settings

CITY = ROOT / "tests" / "fixtures" / "city"


@pytest.fixture(scope="module")
def served(seed_assistant: Assistant, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    db = tmp_path_factory.mktemp("feedback") / "votes.sqlite3"
    settings = seed_assistant.settings.with_overrides(feedback_db=db)
    with running_server(create_app(seed_assistant, settings)) as url:
        yield url, db


@pytest.fixture(scope="module")
def annotator(settings: Settings) -> Annotator:
    return Annotator(settings.spacy_pipeline)


# --- example questions ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("sentence, expected", [
    ("In last year's budget, about 1.5 trillion yen was allocated for school repairs, officials said.",
     "How much was allocated for school repairs in last year's budget?"),
    ("The Harbor Fund is aiming to invest 40 million euros in coastal robotics.",
     "How much is the Harbor Fund aiming to invest in coastal robotics?"),
    ("Acme Corp raised $12 million from investors last week.",
     "How much did Acme Corp raise from investors last week?"),
])
def test_money_questions_from_a_parse(annotator: Annotator, sentence: str, expected: str) -> None:
    assert [q for q, _, _ in money_questions(annotator.parse(sentence))] == [expected]


@pytest.mark.parametrize("sentence", [
    "It will cost 5 million euros.",  # a pronoun subject: asks nothing
    "The centre will cost 4 million euros.",  # nothing to tell it from any other centre
    "Prices rose 5% in May.",  # no sum
])
def test_vague_or_figure_free_sentences_give_no_question(annotator: Annotator, sentence: str) -> None:
    assert list(money_questions(annotator.parse(sentence))) == []


@pytest.mark.parametrize("corpus", ["seed", "city"])
def test_every_collection_yields_candidate_questions(seed_assistant: Assistant,
                                                     make_assistant: Callable[[Path], Assistant], corpus: str) -> None:
    """The rules find askable sums in most articles of either corpus, none copied from the sentence."""
    assistant = seed_assistant if corpus == "seed" else make_assistant(CITY)
    leads = lead_parses(assistant, list(assistant.documents.values()))
    asked = {doc_id: [q for p in parses for q, _, _ in money_questions(p)] for doc_id, parses in leads.items()}
    assert sum(bool(qs) for qs in asked.values()) >= len(assistant.documents) // 2
    for doc_id, questions in asked.items():
        for q in questions:
            assert q.startswith("How much ") and q.endswith("?") and len(q.split()) <= 18
            assert q.rstrip("?") not in assistant.documents[doc_id].text


@pytest.mark.parametrize("corpus", ["seed", "city"])
def test_examples_are_answered_from_their_documents(seed_assistant: Assistant,
                                                    make_assistant: Callable[[Path], Assistant], corpus: str) -> None:
    assistant = seed_assistant if corpus == "seed" else make_assistant(CITY)
    examples = example_questions(assistant)
    assert 1 <= len(examples) <= 4
    assert len({e.doc_id for e in examples}) == len(examples)  # one per document
    published = [assistant.documents[e.doc_id].meta.published or "" for e in examples]
    assert published == sorted(published, reverse=True)  # newest articles first
    for e in examples:
        doc = assistant.documents[e.doc_id]
        assert e.title == doc.meta.title
        answer = assistant.ask(e.question)
        assert answer.answerable and not answer.conflicts and answer.citations[0].doc_id == e.doc_id


def test_examples_endpoint(served: tuple[str, Path], seed_assistant: Assistant) -> None:
    url, _ = served
    r = httpx.get(f"{url}/examples", timeout=30)
    assert r.status_code == 200
    body = r.json()
    assert [e["question"] for e in body["examples"]] == [e.question for e in example_questions(seed_assistant)]
    assert set(body["examples"][0]) == {"question", "doc_id", "title"}


# --- feedback -------------------------------------------------------------------------------------------------

def _vote(url: str, **body: Any) -> httpx.Response:
    return httpx.post(f"{url}/feedback", json=body, timeout=30)


def test_feedback_is_stored_and_a_second_vote_replaces_the_first(served: tuple[str, Path],
                                                                 seed_assistant: Assistant) -> None:
    url, db = served
    question = next(q for q in plain_questions(1000) if seed_assistant.ask(q).answerable)
    answer = httpx.post(f"{url}/ask", json={"question": question}, timeout=30).json()
    r = _vote(url, id="entry-0001", rating="up", question=question, answer=answer)
    assert r.status_code == 200 and r.json() == {"id": "entry-0001", "rating": "up", "stored": True}
    r = _vote(url, id="entry-0001", rating="down", question=question, answer=answer, comment="wrong year")
    assert r.status_code == 200
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT rating, question, answer, answer_json, comment FROM feedback "
                            "WHERE id = 'entry-0001'").fetchall()
    assert len(rows) == 1
    rating, q, text, answer_json, comment = rows[0]
    assert (rating, q, text, comment) == (-1, question, answer["answer"], "wrong year")
    assert json.loads(answer_json) == answer


@pytest.mark.parametrize("body, field", [
    ({"rating": "up", "question": "q", "answer": {"answer": "a"}}, "id"),
    ({"id": "short", "rating": "up", "question": "q", "answer": {"answer": "a"}}, "id"),
    ({"id": "entry-0002", "rating": "meh", "question": "q", "answer": {"answer": "a"}}, "rating"),
    ({"id": "entry-0002", "rating": "up", "question": "", "answer": {"answer": "a"}}, "question"),
    ({"id": "entry-0002", "rating": "up", "question": "q", "answer": {"text": "a"}}, "answer"),
    ({"id": "entry-0002", "rating": "up", "question": "q", "answer": {"answer": "a"}, "extra": 1}, "extra"),
    ({"id": "../../etc", "rating": "up", "question": "q", "answer": {"answer": "a"}}, "id"),
])
def test_bad_feedback_is_refused_with_the_field_named(served: tuple[str, Path], body: dict[str, Any],
                                                      field: str) -> None:
    url, db = served
    r = _vote(url, **body)
    assert r.status_code == 422, r.text
    assert field in r.json()["error"]["message"]
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM feedback WHERE id = 'entry-0002'").fetchone() == (0,)


@pytest.mark.parametrize("raw", [
    '{"id": "entry-0003", "rating": "up", "question": "\\ud800", "answer": {"answer": "a"}}',
    '{"id": "entry-0003", "rating": "up", "question": "q", "answer": {"answer": "a", "x": NaN}}',
    b'{"id": "entry-0003", "rating": "up", "question": "\xff", "answer": {"answer": "a"}}',
])
def test_unstorable_feedback_is_a_422_not_a_500(served: tuple[str, Path], raw: str | bytes) -> None:
    url, db = served
    r = httpx.post(f"{url}/feedback", content=raw, headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["param"] == "body"
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM feedback WHERE id = 'entry-0003'").fetchone() == (0,)


def test_feedback_path_defaults_to_the_index_folder(tmp_path: Path) -> None:
    assert feedback_path(Settings(index_dir=tmp_path)) == tmp_path / "feedback.sqlite3"
    assert feedback_path(Settings(index_dir=tmp_path, feedback_db=tmp_path / "x.db")) == tmp_path / "x.db"


def test_unwritable_store_is_a_clear_503(served: tuple[str, Path], seed_assistant: Assistant,
                                         tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store's folder should be", encoding="utf-8")
    settings = seed_assistant.settings.with_overrides(feedback_db=blocker / "votes.sqlite3")
    with running_server(create_app(seed_assistant, settings)) as url:
        r = _vote(url, id="entry-0004", rating="up", question="q", answer={"answer": "a"})
    assert r.status_code == 503
    assert "feedback store" in r.json()["error"]["message"]
    assert FeedbackStore(tmp_path / "ok.sqlite3").all() == []
