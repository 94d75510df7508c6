"""The chat page end to end in headless Chromium (Debian's) against a real server: ask, open the cited
source with its quote highlighted, follow up, see an abstention, and stay safe from HTML in sources."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from http_helpers import ROOT, answered_questions, running_server, seed_items

from api.app import create_app
from rag.assistant import Assistant

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Screenshots land in the repository's git-ignored tmp/ folder, to look at after a run.
ARTIFACTS = ROOT / "tmp" / "artifacts"

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
def web_url(web_assistant: Assistant) -> Iterator[str]:
    assistant = web_assistant
    with running_server(create_app(assistant, assistant.settings)) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, web_url: str) -> Iterator[Any]:
    # bypass_csp: Playwright's wait_for_function needs eval, which the page's CSP forbids; and the
    # escaping test below must hold on its own, without the CSP's help.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda exc: errors.append(str(exc)))
    p.goto(web_url)
    p.wait_for_function("document.getElementById('status').textContent.includes('documents')")
    yield p
    context.close()
    assert errors == [], errors


def api_answer(url: str, question: str, history: list[dict[str, str]] | None = None) -> dict[str, Any]:
    r = httpx.post(f"{url}/ask", json={"question": question, "history": history or []}, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def ask_on_page(page: Any, question: str) -> Any:
    """Type and send a question; the newest answer card once it is rendered."""
    before = page.locator("article.answer").count()
    page.fill("#question", question)
    page.press("#question", "Enter")
    page.wait_for_function(f"document.querySelectorAll('article.answer').length > {before}", timeout=60_000)
    return page.locator("article.answer").nth(before)


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


def test_ask_open_source_and_follow_up(page: Any, web_url: str, web_assistant: Assistant) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    question = answered_questions(web_assistant)[0]
    expected = api_answer(web_url, question)
    assert expected["answerable"] and expected["citations"]

    card = ask_on_page(page, question)
    assert "answerable" in (card.get_attribute("class") or "")
    assert card.locator(".answer-text .marker").count() >= 1
    first = expected["citations"][0]
    open_citation(page, card, first)
    page.screenshot(path=str(ARTIFACTS / "web-answer-source.png"), full_page=True)

    # A follow-up in a fresh conversation sends the earlier turns and gets the answer for them.
    item = next(it for it in seed_items() if it.get("history"))
    page.click("#new-chat")
    earlier = item["history"][-1]
    earlier_answer = api_answer(web_url, earlier)
    ask_on_page(page, earlier)
    with page.expect_request(lambda r: r.url.endswith("/ask") and r.method == "POST") as sent:
        follow_card = ask_on_page(page, item["question"])
    history = json.loads(sent.value.post_data or "{}")["history"]
    assert history == [{"role": "user", "content": earlier},
                       {"role": "assistant", "content": earlier_answer["answer"]}]
    expected_follow = api_answer(web_url, item["question"], history)
    assert follow_card.locator(".answer-text").text_content().startswith(expected_follow["answer"][:40])
    if expected_follow["citations"]:
        open_citation(page, follow_card, expected_follow["citations"][0])
    page.screenshot(path=str(ARTIFACTS / "web-follow-up.png"), full_page=True)


def test_abstention_looks_different(page: Any, web_url: str, web_assistant: Assistant) -> None:
    unanswerable = [it["question"] for it in seed_items() if not it["answerable"]]
    expected = next((a for q in unanswerable if not (a := api_answer(web_url, q))["answerable"]), None)
    assert expected is not None, "the assistant answered every unanswerable seed question"
    question = expected["question"]
    answered = ask_on_page(page, answered_questions(web_assistant)[0])
    abstained = ask_on_page(page, question)
    assert "abstain" in (abstained.get_attribute("class") or "")
    assert abstained.get_attribute("data-kind") == "abstain"

    def look(card: Any) -> dict[str, str]:
        return card.evaluate("""el => { const s = getComputedStyle(el);
            return {border: s.borderLeftStyle + ' ' + s.borderLeftColor, bg: s.backgroundColor,
                    badge: el.querySelector('.badge').textContent}; }""")

    a, b = look(answered), look(abstained)
    assert a["border"] != b["border"] and a["bg"] != b["bg"] and a["badge"] != b["badge"]
    assert abstained.locator(".answer-text .marker").count() == 0
    if expected["related"]:  # nearby passages open like citations, but are listed apart
        abstained.locator(".related .marker").first.click()
        page.wait_for_function("document.querySelector('#highlight[data-n=\"r1\"]') !== null")
        assert page.text_content("#highlight") == expected["related"][0]["quote"]
    page.screenshot(path=str(ARTIFACTS / "web-abstention.png"), full_page=True)


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
    page.wait_for_timeout(300)  # time for any injected handler to fire
    assert page.evaluate("window.__xss") is None
    assert page.title() == "Cited answers"
    for area in ("#log", "#source"):
        assert page.locator(f"{area} script, {area} img, {area} iframe, {area} b").count() == 0
    page.screenshot(path=str(ARTIFACTS / "web-escaped-source.png"), full_page=True)


def test_api_key_is_asked_for_and_kept(browser: Any, web_assistant: Assistant) -> None:
    """With RAG_API_KEY set the page still loads; its first call fails with 401, shows the key field,
    and once the key is saved (localStorage) questions are answered."""
    settings = web_assistant.settings.with_overrides(api_key="page-key")
    question = answered_questions(web_assistant)[0]
    with running_server(create_app(web_assistant, settings)) as url:
        context = browser.new_context(bypass_csp=True)
        page = context.new_page()
        page.goto(url)
        page.wait_for_function("document.getElementById('status').textContent.includes('documents')")
        page.fill("#question", question)
        page.press("#question", "Enter")
        page.wait_for_selector(".message.error")
        assert "API key" in (page.text_content(".message.error") or "")
        assert page.is_visible("#api-key")
        page.fill("#api-key", "page-key")
        page.click("#key-form button[type=submit]")
        assert page.evaluate("localStorage.getItem('rag-api-key')") == "page-key"
        card = ask_on_page(page, question)
        assert card.locator(".answer-text .marker").count() >= 1
        context.close()


def test_source_link_opens_the_span(browser: Any, web_url: str, web_assistant: Assistant) -> None:
    """The link form Slack replies carry (`/?doc=ID&start=S&end=E`) opens that source, span highlighted."""
    citation = api_answer(web_url, answered_questions(web_assistant)[0])["citations"][0]
    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    page.goto(f"{web_url}/?doc={citation['doc_id']}&start={citation['start']}&end={citation['end']}")
    page.wait_for_function("document.querySelector('#highlight') !== null")
    assert page.text_content("#highlight") == citation["quote"]
    assert page.text_content("#source-title") == citation["title"]
    context.close()
