"""The chat page end to end in headless Chromium (Debian's) against a real server: the welcome with example
questions from the index, the source list and its filters, answers with their quote once and the figure
marked, confidence, conflicts side by side, the articles' own note marks as text, errors with a retry,
scrolling, the source as an overlay on small screens, the conversation across a reload, copy and thumbs
stored server-side, framing in the question's language, and safety from HTML in sources. Screenshots at
1280 and 390 px, light and dark, land in the git-ignored build/screenshots/ to look at after a run."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from http_helpers import ROOT, free_port, plain_questions, running_server, seed_items

from api.app import create_app
from api.feedback import feedback_path
from rag.assistant import Assistant

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = ROOT / "build" / "screenshots"
WIDE, NARROW = 1280, 390
VIEWPORTS = {WIDE: {"width": WIDE, "height": 860}, NARROW: {"width": NARROW, "height": 844}}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM),
                       reason=f"{CHROMIUM} is missing: install Debian's chromium (`make browser`)"),
]

XSS_TITLE = 'Harbor grants <img src=x onerror="window.__xss=\'title\'">'
XSS_PUBLISHER = "<b>Bay Wire</b><script>window.__xss='publisher'</script>"
XSS_TEXT = """Harbor Robotics Fund names its first grant winners

2025-03-10

The Harbor Robotics Fund awarded 12 million euros to coastal robotics startups <script>window.__xss = 'script'; document.title = 'pwned';</script> in its first round.
Its director said the money <img src=x onerror="window.__xss = 'img'"> would pay for 40 underwater inspection projects.
The fund was set up by three port authorities in 2024 <iframe src="javascript:window.__xss='iframe'"></iframe> after a long debate.
"""
XSS_QUESTION = "How much did the Harbor Robotics Fund award to coastal robotics startups?"
FOOTNOTE = re.compile(r"(?:\[\d+\])+")


# --- fixtures ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def web_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seed corpus plus one article whose text and metadata look like HTML and script."""
    corpus = tmp_path_factory.mktemp("web-corpus")
    for path in (ROOT / "corpus").iterdir():
        if path.is_file():
            shutil.copy(path, corpus / path.name)
    (corpus / "harbor_grants.txt").write_text(XSS_TEXT, encoding="utf-8")
    (corpus / "harbor_grants.meta.json").write_text(
        json.dumps({"title": XSS_TITLE, "publisher": XSS_PUBLISHER, "published": "2025-03-10"}), encoding="utf-8")
    return corpus


@pytest.fixture(scope="module")
def web_assistant(make_assistant: Callable[[Path], Assistant], web_corpus: Path) -> Assistant:
    return make_assistant(web_corpus)


@pytest.fixture(scope="module")
def answered(web_assistant: Assistant) -> list[str]:
    """The first four stand-alone seed questions the assistant answers with citations (what it answers is
    the library's business: these tests need answers with citations)."""
    found: list[str] = []
    for question in plain_questions(1000):
        answer = web_assistant.ask(question)
        if answer.answerable and answer.citations:
            found.append(question)
            if len(found) == 4:
                return found
    raise AssertionError(f"the assistant answered only {len(found)} seed questions with citations")


@pytest.fixture(scope="module")
def seed_answer(web_url: str) -> Callable[[Callable[[dict[str, Any]], bool]], dict[str, Any] | None]:
    """The API's answer to the first stand-alone seed question whose answer satisfies a predicate, or None
    (answers are fetched once, as far as needed)."""
    questions = plain_questions(1000)
    fetched: list[dict[str, Any]] = []

    def first(predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
        found = next((a for a in fetched if predicate(a)), None)
        while found is None and len(fetched) < len(questions):
            fetched.append(api_answer(web_url, questions[len(fetched)]))
            found = fetched[-1] if predicate(fetched[-1]) else None
        return found

    return first


@pytest.fixture(scope="module")
def web_url(web_assistant: Assistant) -> Iterator[str]:
    with running_server(create_app(web_assistant, web_assistant.settings)) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def open_page(browser: Any, web_url: str) -> Iterator[Callable[..., Any]]:
    """Factory: a fresh browser context (own localStorage) on the page, loaded; no page errors allowed."""
    contexts: list[Any] = []
    errors: list[str] = []

    def make(width: int = WIDE, scheme: str = "light", url: str | None = None, locale: str = "en-US") -> Any:
        # bypass_csp: Playwright's wait_for_function needs eval, which the page's CSP forbids; and the
        # escaping test below must hold on its own, without the CSP's help.
        context = browser.new_context(viewport=VIEWPORTS[width], color_scheme=scheme, bypass_csp=True,
                                      locale=locale)
        contexts.append(context)
        p = context.new_page()
        p.on("pageerror", lambda exc: errors.append(str(exc)))
        p.goto(url or web_url)
        p.wait_for_function("document.getElementById('status').textContent.includes('documents')")
        p.wait_for_function("document.querySelectorAll('#doc-list input').length > 0")
        return p

    yield make
    for context in contexts:
        context.close()
    assert errors == [], errors


@pytest.fixture
def page(open_page: Callable[..., Any]) -> Any:
    return open_page()


# --- helpers -----------------------------------------------------------------------------------------------

def api_answer(url: str, question: str, history: list[dict[str, str]] | None = None,
               filters: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"question": question, "history": history or []}
    if filters:
        body["filters"] = filters
    r = httpx.post(f"{url}/ask", json=body, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def shoot(page: Any, name: str, full_page: bool = False) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    width = page.viewport_size["width"]
    scheme = page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light'")
    page.screenshot(path=str(SHOTS / f"{name}-{width}-{scheme}.png"), full_page=full_page)


def ask_on_page(page: Any, question: str) -> Any:
    """Type and send a question; the newest answer card once it is rendered."""
    before = page.locator("article.answer").count()
    page.fill("#question", question)
    page.press("#question", "Enter")
    page.wait_for_function(f"document.querySelectorAll('article.answer').length > {before}", timeout=60_000)
    return page.locator("article.answer").nth(before)


def ask_and_expect(page: Any, url: str, question: str) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """Ask on the page; its card, the API's answer to exactly the request the page sent (history and
    filters included), and that request's body."""
    with page.expect_request(lambda r: r.url.endswith("/ask") and r.method == "POST") as sent:
        card = ask_on_page(page, question)
    body = json.loads(sent.value.post_data or "{}")
    r = httpx.post(f"{url}/ask", json=body, timeout=60)
    assert r.status_code == 200, r.text
    return card, r.json(), body


def figure_sentences(assistant: Assistant, note_marks: bool) -> Iterator[tuple[Any, int, int, Any]]:
    """(document, start, end, first sum) of indexed sentences that state a sum, with or without the
    article's own note marks in them."""
    from rag.figures import extract_figures

    for chunk in assistant.store.chunks:
        doc = assistant.documents[chunk.doc_id]
        for span in chunk.sentences:
            text = doc.text[span.start:span.end]
            sums = [q for q in extract_figures(text) if q.kind == "money"]
            if sums and bool(FOOTNOTE.search(text)) == note_marks:
                yield doc, span.start, span.end, sums[0]


def built_answer(assistant: Assistant, kind: str) -> dict[str, Any]:
    """An answer object built from verbatim corpus sentences, for the page's rendering when the composer
    happens to give no such answer to any seed question: "footnote" (one quote with note marks) or
    "conflict" (two articles stating different sums)."""
    picked: list[tuple[Any, int, int, Any]] = []
    for found in figure_sentences(assistant, note_marks=kind == "footnote"):
        if all(found[0].doc_id != p[0].doc_id for p in picked):
            picked.append(found)
        if len(picked) == (1 if kind == "footnote" else 2):
            break
    picked.sort(key=lambda p: p[0].meta.published or "", reverse=True)  # newest first, as the composer orders
    citations = [{"n": i + 1, "doc_id": d.doc_id, "title": d.meta.title, "publisher": d.meta.publisher,
                  "published": d.meta.published, "quote": d.text[a:b], "start": a, "end": b}
                 for i, (d, a, b, _) in enumerate(picked)]
    figures = [{"text": q.text, "value": q.value, "unit": q.unit, "citation": i + 1}
               for i, (_, _, _, q) in enumerate(picked)]
    conflicts = [{"quantity": "the sum", "values": [{"text": f["text"], "citation": f["citation"]} for f in figures]}]
    return {"question": "How much was it?", "answer": " ".join(c["quote"] for c in citations),
            "short_answer": figures[0]["text"], "answerable": True, "citations": citations, "figures": figures,
            "conflicts": conflicts if kind == "conflict" else [], "related": [], "timings_ms": {"total": 1.0},
            "confidence": 0.5, "trace": None}


def inject(page: Any, answer: dict[str, Any]) -> Any:
    """Show an answer object as the page shows answers from /ask (its own renderAnswer); its card."""
    entry_id = page.evaluate("""(answer) => {
        const entry = {id: newId(), question: answer.question, lang: languageOf(answer.question),
                       filters: null, answer, vote: null};
        state.entries.push(entry);
        renderWelcome();
        const card = renderAnswer(entry);
        document.getElementById('entries').append(card);
        scrollToCard(card);
        return entry.id; }""", answer)
    return page.locator(f"article.answer[data-entry='{entry_id}']")


def answer_on_page(page: Any, url: str, seed_answer: Callable[..., dict[str, Any] | None], assistant: Assistant,
                   predicate: Callable[[dict[str, Any]], bool], kind: str) -> tuple[Any, dict[str, Any]]:
    """A card satisfying `predicate`: a seed question's, asked on the page, when the composer gives one;
    else a built answer of `kind` shown by the page's renderer. The card and its answer object."""
    real = seed_answer(predicate)
    if real is not None:
        card, expected, _ = ask_and_expect(page, url, real["question"])
        if predicate(expected):
            return card, expected
    built = built_answer(assistant, kind)
    return inject(page, built), built


def open_citation(page: Any, card: Any, citation: dict[str, Any]) -> None:
    """Click the citation's marker in the answer and check the panel shows its source and quote."""
    card.locator(f".marker[data-n='{citation['n']}']").first.click()
    page.wait_for_function(f"document.querySelector('#highlight[data-n=\"{citation['n']}\"]') !== null")
    assert page.text_content("#highlight") == citation["quote"]
    assert page.text_content("#source-title") == citation["title"]
    meta = page.text_content("#source-meta") or ""
    for value in (citation["publisher"], citation["published"]):
        if value:
            assert value in meta
    assert page.is_visible("#highlight")


def has_footnote_quote(a: dict[str, Any]) -> bool:
    return a["answerable"] and bool(a["figures"]) and any(FOOTNOTE.search(c["quote"]) for c in a["citations"])


def is_conflict(a: dict[str, Any]) -> bool:
    return bool(a["conflicts"])


def in_viewport(page: Any, selector_js: str) -> bool:
    return page.evaluate(f"""() => {{ const r = {selector_js}.getBoundingClientRect();
        return r.top >= -1 && r.top < innerHeight * 0.6; }}""")


@contextmanager
def serve_on(app: FastAPI, port: int) -> Iterator[str]:
    """Serve `app` on a given 127.0.0.1 port (to stop and bring back the server a page talks to)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()




# --- the screens, at both widths and in both colour schemes ---------------------------------------------------

@pytest.mark.parametrize("width", [WIDE, NARROW])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_screens(open_page: Callable[..., Any], web_url: str, seed_answer: Any, web_assistant: Assistant,
                 width: int, scheme: str) -> None:
    """Welcome, a cited answer, a conflict, the open source and an abstention, in each layout; the
    colours follow prefers-color-scheme."""
    page = open_page(width, scheme)
    page.wait_for_selector("#examples .example")
    bg = page.evaluate("getComputedStyle(document.documentElement).backgroundColor")
    assert (bg == "rgb(14, 17, 22)") == (scheme == "dark"), bg
    shoot(page, "01-welcome")

    answer_on_page(page, web_url, seed_answer, web_assistant, has_footnote_quote, "footnote")
    shoot(page, "02-answer")
    card, conflict = answer_on_page(page, web_url, seed_answer, web_assistant, is_conflict, "conflict")
    page.wait_for_function("() => { const c = [...document.querySelectorAll('article.answer')].pop();"
                           " const r = c.getBoundingClientRect(); return r.top >= -1 && r.top < innerHeight * 0.6; }")
    shoot(page, "03-conflict")
    boxes = side_boxes(card)
    if width == WIDE:  # side by side
        assert len({round(b["y"]) for b in boxes}) == 1 and boxes[0]["x"] < boxes[1]["x"]
    else:  # stacked, each as wide as the card
        assert boxes[0]["y"] < boxes[1]["y"] and abs(boxes[0]["x"] - boxes[1]["x"]) < 1

    open_citation(page, card, conflict["citations"][0])
    page.wait_for_timeout(250)
    shoot(page, "04-source")
    page.keyboard.press("Escape")
    assert page.is_hidden("#source")

    abstained = seed_answer(lambda a: not a["answerable"])
    if abstained is not None:
        ask_on_page(page, abstained["question"])
        page.wait_for_timeout(300)
        shoot(page, "05-abstention")


# --- what each answer shows -----------------------------------------------------------------------------------

def test_quote_once_figure_marked_note_marks_plain(page: Any, web_url: str, seed_answer: Any,
                                                   web_assistant: Assistant) -> None:
    card, expected = answer_on_page(page, web_url, seed_answer, web_assistant, has_footnote_quote, "footnote")
    assert "answerable" in (card.get_attribute("class") or "")
    # the short answer, marked with the citations that hold it (its figures'), nothing else clickable in it
    assert card.locator(".answer-text .short").text_content() == expected["short_answer"]
    held = sorted({f["citation"] for f in expected["figures"]}) or [c["n"] for c in expected["citations"]]
    marks = card.locator(".answer-text .marker")
    assert [int(marks.nth(i).get_attribute("data-n")) for i in range(marks.count())] == held
    # every quote exactly once on the card (the answer's text, which repeats them, is not shown)
    text = card.inner_text()
    for c in expected["citations"]:
        assert card.locator(f".citations li[data-n='{c['n']}'] .quote").text_content() == c["quote"]
        assert text.count(c["quote"][:60]) == 1
    # the figure is marked in its quote
    for f in expected["figures"]:
        marks = card.locator(f".citations li[data-n='{f['citation']}'] .quote mark.fig").all_text_contents()
        assert f["text"] in marks
    # the article's own note marks stay plain text: the only buttons are the answer's markers
    quoted = card.locator(".citations .quote")
    assert quoted.locator("button, a").count() == 0
    notes = [m for c in expected["citations"] for m in FOOTNOTE.findall(c["quote"])]
    assert notes and card.locator(".quote .fn").all_text_contents() == notes
    markers = card.locator(".marker").all_text_contents()
    assert sorted(set(markers)) == sorted({f"[{c['n']}]" for c in expected["citations"]})
    # the marker opens the source with the quote highlighted and the figure in it emphasised
    citation = expected["citations"][0]
    open_citation(page, card, citation)
    figure = next(f["text"] for f in expected["figures"] if f["citation"] == citation["n"])
    assert page.text_content("#highlight .fig") == figure
    shoot(page, "answer-source-open")


MARK_CASES = [
    ("Rapidus, established in 2022, makes 2nm chips [2][3].", ["2"], []),  # not inside a year or a note mark
    ("It cost 1.5 trillion yen [1].", ["5 trillion yen"], []),  # nor inside a decimal
    ("It cost 1.5 trillion yen [1].", ["1.5 trillion yen"], ["1.5 trillion yen"]),
    ("about 5 yen, then 5 yen", ["5 yen", "about 5 yen"], ["about 5 yen", "5 yen"]),  # longest first
    ("计划每年砸1万亿日元!", ["1万亿日元"], ["1万亿日元"]),  # CJK neighbours do not block
    ("Toyota and Honda", ["Toyota, Honda"], []),
]


def test_figure_marks_stand_alone(page: Any) -> None:
    """The page's own rule for marking a figure in a quote (a unit test on hand-built quotes)."""
    for text, needles, marked in MARK_CASES:
        ranges = page.evaluate("([text, needles]) => findRanges(text, needles)", [text, needles])
        assert [text[a:b] for a, b in ranges] == marked, text


def side_boxes(card: Any) -> list[dict[str, float]]:
    """The positions of a conflict card's sides, all measured in one frame (the page may still be scrolling
    the card into view, so one measurement at a time can see them at different heights)."""
    return card.evaluate("c => [...c.querySelectorAll('.side')].map(s => s.getBoundingClientRect())"
                         ".map(r => ({x: r.x, y: r.y}))")


def test_conflict_values_side_by_side(page: Any, web_url: str, seed_answer: Any, web_assistant: Assistant) -> None:
    card, expected = answer_on_page(page, web_url, seed_answer, web_assistant, is_conflict, "conflict")
    assert card.get_attribute("data-kind") == "conflict"
    values = expected["conflicts"][0]["values"]
    sides = card.locator(".conflict-grid .side")
    assert sides.count() == len(values)
    by_n = {c["n"]: c for c in expected["citations"]}
    for i, v in enumerate(values):
        side = sides.nth(i)
        assert side.locator(".value").text_content() == v["text"]
        assert side.locator(".quote").text_content() == by_n[v["citation"]]["quote"]
        marks = side.locator(".quote mark.fig").all_text_contents()
        if v["text"] in by_n[v["citation"]]["quote"]:
            assert v["text"] in marks
        else:  # "about 5 yen" where the article says "approximately 5 yen": the figure itself is marked
            assert any(m in v["text"] for m in marks), (marks, v)
        assert by_n[v["citation"]]["title"] in (side.locator(".cite-source").text_content() or "")
    boxes = side_boxes(card)
    assert len({round(b["y"]) for b in boxes}) == 1  # one row
    # quotes once: no separate citation list repeating the sides
    assert card.locator(".citations").count() == 0
    open_citation(page, card, by_n[values[1]["citation"]])


def test_confidence_shown_when_present(page: Any, web_url: str, answered: list[str]) -> None:
    """The page shows `confidence` when the answer carries it: from the API when the composer sends it,
    and always on a real answer given one (rendered by the page's own code)."""
    question = answered[0]
    expected = api_answer(web_url, question)
    card = ask_on_page(page, question)
    if isinstance(expected.get("confidence"), (int, float)):
        assert f"{round(expected['confidence'] * 100)}%" in card.locator(".confidence").text_content()
    else:
        assert card.locator(".confidence").count() == 0

    for value, level in ((0.42, "low"), (0.6, "medium"), (0.91, "high")):
        shown = page.evaluate("""([answer, value]) => {
            const entry = {id: 'conf' + value, question: answer.question, lang: 'en', filters: null,
                           vote: null, answer: {...answer, confidence: value}};
            const card = renderAnswer(entry);
            document.getElementById('entries').append(card);
            const c = card.querySelector('.confidence');
            return {text: c.textContent, level: c.dataset.level};
        }""", [expected, value])
        assert f"{round(value * 100)}%" in shown["text"] and shown["level"] == level
    shoot(page, "confidence")


def test_abstention_looks_different(page: Any, web_url: str, answered: list[str]) -> None:
    unanswerable = [it["question"] for it in seed_items() if not it["answerable"]]
    refused = next((a for q in unanswerable if not (a := api_answer(web_url, q))["answerable"]), None)
    answered_card = ask_on_page(page, answered[0])
    if refused is None:  # the composer answers them all: an article-free date range makes a sure refusal
        page.fill("#date-from", "2099-01-01")
        page.dispatch_event("#date-from", "change")
    abstained, expected, _ = ask_and_expect(page, web_url, (refused or {"question": unanswerable[0]})["question"])
    assert not expected["answerable"] and abstained.get_attribute("data-kind") == "abstain"

    def look(card: Any) -> dict[str, str]:
        return card.evaluate("""el => { const s = getComputedStyle(el);
            return {border: s.borderLeftStyle + ' ' + s.borderLeftColor, bg: s.backgroundColor,
                    badge: el.querySelector('.badge').textContent}; }""")

    a, b = look(answered_card), look(abstained)
    assert a["border"] != b["border"] and a["bg"] != b["bg"] and a["badge"] != b["badge"]
    assert abstained.locator(".answer-text .marker").count() == 0
    if expected["related"]:  # nearby passages open like citations, but are listed apart
        abstained.locator(".related .marker").first.click()
        page.wait_for_function("document.querySelector('#highlight[data-n=\"r1\"]') !== null")
        assert page.text_content("#highlight") == expected["related"][0]["quote"]
    shoot(page, "abstention")


# --- welcome, sources and filters --------------------------------------------------------------------------

def test_welcome_offers_questions_from_the_index(page: Any, web_url: str, web_assistant: Assistant) -> None:
    examples = httpx.get(f"{web_url}/examples", timeout=30).json()["examples"]
    assert examples
    page.wait_for_selector("#examples .example")
    assert page.locator("#examples .example").all_text_contents() == [e["question"] for e in examples]
    docs = web_assistant.documents
    assert f"{len(docs)}" in (page.text_content("#welcome-title") or "")
    # clicking one asks it, and the answer comes from the document it was written from
    card_count = page.locator("article.answer").count()
    page.locator("#examples .example").first.click()
    page.wait_for_function(f"document.querySelectorAll('article.answer').length > {card_count}")
    card = page.locator("article.answer").last
    assert card.get_attribute("data-kind") == "answerable"
    first = card.locator(".marker").first
    assert first.get_attribute("title").startswith(docs[examples[0]["doc_id"]].meta.title)
    assert page.is_hidden("#welcome")
    page.click("#new-chat")
    assert page.is_visible("#welcome") and page.locator("article.answer").count() == 0


def kind_of(answer: dict[str, Any]) -> str:
    return "abstain" if not answer["answerable"] else "conflict" if answer["conflicts"] else "answerable"


def test_source_list_and_filters(page: Any, web_url: str, web_assistant: Assistant, answered: list[str]) -> None:
    """The list shows every indexed document; the filters go into /ask, and what comes back cites only
    what they let through (retrieval's guarantee, whatever the composer then answers)."""
    docs = web_assistant.documents
    rows = page.locator("#doc-list li.doc")
    assert rows.count() == len(docs)
    assert sorted(rows.locator(".doc-title").all_text_contents()) == sorted(d.meta.title for d in docs.values())

    question = answered[0]
    keep = api_answer(web_url, question)["citations"][0]["doc_id"]
    page.click("#docs-none")
    page.check(f"#doc-list input[value='{keep}']")
    assert page.is_visible("#filter-summary")
    assert f"1 of {len(docs)}" in (page.text_content("#filter-text") or "")
    card, expected, sent = ask_and_expect(page, web_url, question)
    assert sent["filters"] == {"doc_ids": [keep]}
    assert all(c["doc_id"] == keep for c in expected["citations"])
    assert card.get_attribute("data-kind") == kind_of(expected)
    titles = {m.get_attribute("title") for m in card.locator(".marker").all()}
    assert all(t.startswith(docs[keep].meta.title) for t in titles)
    assert card.locator(".filter-note").count() == 1
    shoot(page, "filters-documents")

    # a date range: from the newest article's date on, only articles of that date or later are cited
    newest = max(d.meta.published for d in docs.values() if d.meta.published)
    page.click("#filters-clear")
    page.fill("#date-from", newest)
    page.dispatch_event("#date-from", "change")
    assert page.is_visible("#date-hint")
    page.click("#new-chat")
    card, expected, sent = ask_and_expect(page, web_url, question)
    assert sent["filters"] == {"date_from": newest}
    assert all((c["published"] or "") >= newest for c in expected["citations"])
    assert card.get_attribute("data-kind") == kind_of(expected)
    # the filters survive a reload; clearing them sends none
    page.reload()
    page.wait_for_function("document.querySelectorAll('#doc-list input').length > 0")
    assert page.input_value("#date-from") == newest
    page.click("#filter-summary-clear")
    _, _, sent = ask_and_expect(page, web_url, question)
    assert "filters" not in sent
    # no source selected: nothing is sent, the page says why
    page.click("#docs-none")
    before = page.locator(".message.user").count()
    page.fill("#question", question)
    page.press("#question", "Enter")
    assert page.locator(".message.user").count() == before
    assert "at least one source" in (page.text_content("#filter-text") or "")


def test_sources_drawer_on_small_screen(open_page: Callable[..., Any], web_assistant: Assistant) -> None:
    page = open_page(NARROW)
    assert page.is_hidden("#doc-list")  # closed until asked for
    page.click("#sources-toggle")
    page.wait_for_function("getComputedStyle(document.getElementById('sidebar')).transform === 'none'")
    assert page.is_visible("#doc-list") and page.is_visible("#backdrop")
    shoot(page, "sources-drawer")
    doc_id = next(iter(web_assistant.documents))
    page.click(f"#doc-list .read[data-doc='{doc_id}']")  # reading one closes the drawer, opens the source
    page.wait_for_function("document.getElementById('source-text').textContent.length > 0")
    assert page.text_content("#source-text") == web_assistant.documents[doc_id].text
    assert page.is_hidden("#doc-list")


# --- errors, scrolling, overlay, reload --------------------------------------------------------------------------

def test_http_error_says_what_happened(browser: Any, web_assistant: Assistant, answered: list[str]) -> None:
    """A rate-limited /ask: the card names the status and the server's reason, the question stays."""
    settings = web_assistant.settings.with_overrides(rate_limit_per_minute=3)  # /sources, /examples, one /ask
    question = answered[0]
    with running_server(create_app(web_assistant, settings)) as url:
        context = browser.new_context(viewport=VIEWPORTS[WIDE], bypass_csp=True)
        page = context.new_page()
        page.goto(url)
        page.wait_for_function("document.querySelectorAll('#doc-list input').length > 0")
        ask_on_page(page, question)
        page.fill("#question", question)
        page.press("#question", "Enter")
        error = page.wait_for_selector(".message.error")
        assert error.get_attribute("data-status") == "429"
        assert "HTTP 429" in (page.text_content(".error-title") or "")
        assert "rate limit" in (page.text_content(".error-detail") or "")
        assert page.input_value("#question") == question
        assert page.is_visible(".message.error .retry")
        shoot(page, "error-http")
        context.close()


def test_network_error_and_retry_keep_the_question(browser: Any, web_assistant: Assistant,
                                                    answered: list[str]) -> None:
    """The server goes away: the card says it could not be reached; once it is back, Retry answers the
    same question in place."""
    question = answered[0]
    port = free_port()
    app = create_app(web_assistant, web_assistant.settings)
    context = browser.new_context(viewport=VIEWPORTS[NARROW], bypass_csp=True)
    page = context.new_page()
    with serve_on(app, port) as url:
        page.goto(url)
        page.wait_for_function("document.querySelectorAll('#doc-list input').length > 0")
    page.fill("#question", question)
    page.press("#question", "Enter")
    page.wait_for_selector(".message.error")
    assert page.get_attribute(".message.error", "data-network") == "true"
    assert "Could not reach the server" in (page.text_content(".error-title") or "")
    assert page.input_value("#question") == question
    shoot(page, "error-network")
    with serve_on(create_app(web_assistant, web_assistant.settings), port):
        page.click(".message.error .retry")
        page.wait_for_selector("article.answer")
        assert page.locator(".message.error").count() == 0
        assert page.locator(".message.user").all_text_contents() == [question]
        assert page.input_value("#question") == ""
        assert page.locator("article.answer .marker").count() >= 1
    context.close()


@pytest.mark.parametrize("width", [WIDE, NARROW])
def test_scrolls_to_each_new_answer(open_page: Callable[..., Any], answered: list[str], width: int) -> None:
    page = open_page(width)
    for question in answered:
        ask_on_page(page, question)
        page.wait_for_function("() => { const c = [...document.querySelectorAll('article.answer')].pop();"
                               " const r = c.getBoundingClientRect(); return r.top >= -1 && r.top < innerHeight * 0.6; }")
    # the answer's start is in view, not the end of a long card
    assert in_viewport(page, "[...document.querySelectorAll('article.answer')].pop()")


def test_source_is_an_overlay_on_small_screens(open_page: Callable[..., Any], web_url: str,
                                               answered: list[str]) -> None:
    page = open_page(NARROW)
    question = answered[0]
    expected = api_answer(web_url, question)
    card = ask_on_page(page, question)
    open_citation(page, card, expected["citations"][0])
    box = page.evaluate("""() => { const s = document.getElementById('source'); const r = s.getBoundingClientRect();
        return {pos: getComputedStyle(s).position, top: r.top, left: r.left, width: r.width, bottom: r.bottom}; }""")
    assert box["pos"] == "fixed" and box["left"] == 0 and box["width"] == NARROW
    assert box["top"] < 80 and box["bottom"] >= 844 - 1  # over the conversation, not below it
    assert page.is_visible("#backdrop")
    assert in_viewport(page, "document.getElementById('highlight')")
    shoot(page, "source-overlay")
    page.click("#source-close")
    assert page.is_hidden("#source") and page.is_hidden("#backdrop")
    open_citation(page, card, expected["citations"][0])
    page.mouse.click(NARROW // 2, 10)  # the backdrop closes it too
    assert page.is_hidden("#source")


def test_conversation_survives_a_reload(page: Any, web_url: str, answered: list[str]) -> None:
    questions = answered[:2]
    for q in questions:
        ask_on_page(page, q)
    page.locator("article.answer").first.locator(".vote.up").click()
    page.wait_for_function("document.querySelector('article.answer .action-status').textContent.length > 0")
    shorts = page.locator("article.answer .answer-text").all_text_contents()
    page.reload()
    page.wait_for_function("document.querySelectorAll('article.answer').length === 2")
    assert page.locator(".message.user").all_text_contents() == questions
    assert page.locator("article.answer .answer-text").all_text_contents() == shorts
    assert page.locator("article.answer").first.locator(".vote.up").get_attribute("aria-pressed") == "true"
    assert page.is_hidden("#welcome")
    # a follow-up after the reload carries the restored turns
    with page.expect_request(lambda r: r.url.endswith("/ask")) as sent:
        ask_on_page(page, questions[0])
    history = json.loads(sent.value.post_data or "{}")["history"]
    assert [t["content"] for t in history if t["role"] == "user"] == questions
    assert history[1]["content"] == api_answer(web_url, questions[0])["answer"]
    page.click("#new-chat")
    page.reload()
    page.wait_for_function("document.querySelectorAll('#doc-list input').length > 0")
    assert page.locator("article.answer").count() == 0 and page.is_visible("#welcome")


def test_follow_up_sends_the_earlier_turns(page: Any, web_url: str) -> None:
    item = next(it for it in seed_items() if it.get("history"))
    earlier = item["history"][-1]
    earlier_answer = api_answer(web_url, earlier)
    ask_on_page(page, earlier)
    with page.expect_request(lambda r: r.url.endswith("/ask") and r.method == "POST") as sent:
        follow_card = ask_on_page(page, item["question"])
    history = json.loads(sent.value.post_data or "{}")["history"]
    assert history == [{"role": "user", "content": earlier},
                       {"role": "assistant", "content": earlier_answer["answer"]}]
    expected = api_answer(web_url, item["question"], history)
    if expected["short_answer"]:
        assert follow_card.locator(".answer-text .short").text_content() == expected["short_answer"]
    if expected["citations"]:
        open_citation(page, follow_card, expected["citations"][0])


# --- copy and feedback ---------------------------------------------------------------------------------------

def test_copy_and_thumbs_are_stored(page: Any, web_url: str, web_assistant: Assistant,
                                    answered: list[str]) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=web_url)
    question = answered[0]
    expected = api_answer(web_url, question)
    card = ask_on_page(page, question)
    card.locator(".copy").click()
    page.wait_for_function("document.querySelector('article.answer .action-status').textContent === 'Copied'")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert expected["short_answer"] in copied and expected["citations"][0]["quote"] in copied
    assert expected["citations"][0]["title"] in copied

    entry_id = card.get_attribute("data-entry")
    store = feedback_path(web_assistant.settings)
    assert store == web_assistant.settings.index_dir / "feedback.sqlite3"

    def rows() -> list[tuple[Any, ...]]:
        with sqlite3.connect(store) as db:
            return db.execute("SELECT rating, question, answer, answer_json FROM feedback WHERE id = ?",
                              (entry_id,)).fetchall()

    card.locator(".vote.up").click()
    page.wait_for_function("document.querySelector('article.answer .action-status').textContent === 'Thanks, saved'")
    [(rating, q, answer, answer_json)] = rows()
    assert (rating, q, answer) == (1, question, expected["answer"])
    assert json.loads(answer_json)["citations"] == expected["citations"]
    assert card.locator(".vote.up").get_attribute("aria-pressed") == "true"
    card.locator(".vote.down").click()  # a second vote replaces the first
    page.wait_for_function("document.querySelector('article.answer .vote.down').getAttribute('aria-pressed') === 'true'")
    page.wait_for_function("document.querySelector('article.answer .action-status').textContent === 'Thanks, saved'")
    assert [r[0] for r in rows()] == [-1]
    shoot(page, "feedback")


# --- the page's own words in the question's language ----------------------------------------------------------------

@pytest.mark.parametrize("lang", ["zh", "ja"])
def test_framing_in_the_question_language(page: Any, web_url: str, lang: str) -> None:
    """The page's own words on a card follow its question's language, whatever kind of answer it is; an
    article-free date range makes a sure refusal to see the refusal's words too."""
    words = {"zh": {"answerable": "回答", "conflict": "来源说法不一", "abstain": "没有可引用的答案",
                    "copy": "复制", "ask": "提问", "abstain_text": "我没能在来源中找到"},
             "ja": {"answerable": "回答", "conflict": "情報源の記述が食い違っています",
                    "abstain": "根拠のある回答はありません", "copy": "コピー", "ask": "質問する",
                    "abstain_text": "情報源の中に見つけられませんでした"}}[lang]
    question = next(it["question"] for it in seed_items() if it.get("lang") == lang and not it.get("history"))
    card, expected, _ = ask_and_expect(page, web_url, question)
    assert card.get_attribute("lang") == lang
    assert card.locator(".badge").text_content() == words[kind_of(expected)]
    assert card.locator(".copy").text_content() == words["copy"]
    assert page.text_content("#ask-button") == words["ask"]
    assert page.evaluate("document.documentElement.lang") == lang

    page.fill("#date-from", "2099-01-01")
    page.dispatch_event("#date-from", "change")
    page.click("#new-chat")
    card, expected, _ = ask_and_expect(page, web_url, question)
    assert not expected["answerable"]
    assert card.locator(".badge").text_content() == words["abstain"]
    assert words["abstain_text"] in (card.locator(".answer-text").text_content() or "")
    shoot(page, f"framing-{lang}")
    page.click("#filter-summary-clear")
    english = ask_on_page(page, next(it["question"] for it in seed_items() if it.get("lang") == "en"))
    assert english.get_attribute("lang") == "en" and english.locator(".copy").text_content() == "Copy"


# --- safety and links ----------------------------------------------------------------------------------------------

def test_html_in_sources_is_shown_as_text(page: Any, web_url: str) -> None:
    expected = api_answer(web_url, XSS_QUESTION)
    harbor = [c for c in expected["citations"] if c["doc_id"] == "harbor_grants"]
    assert harbor, "the question about the injected article should cite it"
    card = ask_on_page(page, XSS_QUESTION)
    citation = harbor[0]
    open_citation(page, card, citation)  # the highlight's text equals the quote, tags and all
    source_text = page.text_content("#source-text") or ""
    assert "<script>window.__xss = 'script'" in source_text and 'onerror="window.__xss' in source_text
    assert page.text_content("#source-title") == XSS_TITLE
    assert XSS_PUBLISHER in (page.text_content("#source-meta") or "")
    assert XSS_TITLE in (page.text_content("#doc-list") or "")
    page.wait_for_timeout(300)  # time for any injected handler to fire
    assert page.evaluate("window.__xss") is None
    assert page.title() == "Cited answers"
    for area in ("#entries", "#source", "#sidebar"):
        assert page.locator(f"{area} script, {area} img, {area} iframe, {area} b").count() == 0
    shoot(page, "escaped-source")


def test_page_works_under_its_own_csp(browser: Any, web_url: str, answered: list[str]) -> None:
    """Without Playwright's CSP bypass: the page's scripts and styles load, answers render, and the
    browser reports no Content-Security-Policy violation."""
    context = browser.new_context(viewport=VIEWPORTS[WIDE])
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.goto(web_url)
    page.wait_for_selector("#doc-list input")
    page.fill("#question", answered[0])
    page.press("#question", "Enter")
    page.wait_for_selector("article.answer .marker")
    assert page.locator("article.answer .citations .quote").count() >= 1
    bar = page.locator("article.answer .confidence-fill")
    if bar.count():  # its width is set through CSSOM, which the CSP allows (a style attribute in markup is not)
        assert bar.first.bounding_box()["width"] > 0
    assert problems == [], problems
    context.close()


def test_api_key_is_asked_for_and_kept(browser: Any, web_assistant: Assistant, answered: list[str]) -> None:
    """With RAG_API_KEY set the page still loads; its first call fails with 401, shows the key field,
    and once the key is saved (localStorage) questions are answered."""
    settings = web_assistant.settings.with_overrides(api_key="page-key")
    question = answered[0]
    with running_server(create_app(web_assistant, settings)) as url:
        context = browser.new_context(bypass_csp=True)
        page = context.new_page()
        page.goto(url)
        page.wait_for_selector("#api-key", state="visible")
        page.fill("#question", question)
        page.press("#question", "Enter")
        page.wait_for_selector(".message.error")
        assert "API key" in (page.text_content(".message.error") or "")
        assert page.input_value("#question") == question
        page.fill("#api-key", "page-key")
        page.click("#key-form button[type=submit]")
        assert page.evaluate("localStorage.getItem('rag-api-key')") == "page-key"
        page.wait_for_function("document.querySelectorAll('#doc-list input').length > 0")
        page.click(".message.error .retry")
        page.wait_for_selector("article.answer")
        assert page.locator("article.answer .answer-text .marker").count() >= 1
        context.close()


def test_source_link_opens_the_span(open_page: Callable[..., Any], web_url: str, answered: list[str]) -> None:
    """The link form Slack replies carry (`/?doc=ID&start=S&end=E`) opens that source, span highlighted."""
    citation = api_answer(web_url, answered[0])["citations"][0]
    page = open_page(url=f"{web_url}/?doc={citation['doc_id']}&start={citation['start']}&end={citation['end']}")
    page.wait_for_function("document.querySelector('#highlight') !== null")
    assert page.text_content("#highlight") == citation["quote"]
    assert page.text_content("#source-title") == citation["title"]
