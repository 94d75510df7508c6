"""Publisher, author and date from what a document states: HTML meta tags, JSON-LD, bylines; sidecars win."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.metadata import Found, apply, fill, from_byline, from_html
from rag.readers import load_document, read_paths
from rag.types import DocMeta

BODY = ("<p>The ministry gave 5 billion yen to the chip maker on Tuesday, officials said, after months of "
        "talks with the company and its banks about the new plant.</p>")

META_TAGS = f"""<html><head><title>Chip subsidy doubles | Example Times</title>
<meta name="author" content="Jane Doe">
<meta property="og:site_name" content="Example Times">
<meta property="article:published_time" content="2025-03-04T10:00:00Z">
</head><body><article><h1>Chip subsidy doubles</h1>{BODY}</article></body></html>"""

JSON_LD = f"""<html><head><title>x</title><script type="application/ld+json">
{{"@context": "https://schema.org", "@type": "NewsArticle", "headline": "Chip subsidy doubles",
 "datePublished": "2025-03-04", "author": {{"@type": "Person", "name": "Jane Doe"}},
 "publisher": {{"@type": "Organization", "name": "Example Times"}}}}
</script></head><body><article>{BODY}</article></body></html>"""


def test_html_meta_tags() -> None:
    found = from_html(META_TAGS)
    assert (found.author, found.publisher, found.published) == ("Jane Doe", "Example Times", "2025-03-04")


def test_html_json_ld() -> None:
    found = from_html(JSON_LD)
    assert (found.title, found.author, found.publisher, found.published) == (
        "Chip subsidy doubles", "Jane Doe", "Example Times", "2025-03-04")


def test_html_without_metadata_states_nothing() -> None:
    found = from_html(f"<html><body>{BODY}</body></html>")
    assert (found.author, found.publisher, found.published) == (None, None, None)


@pytest.mark.parametrize(("line", "author", "publisher"), [
    ("By Jane Doe", "Jane Doe", None),
    ("By Jane Doe | Reuters", "Jane Doe", "Reuters"),
    ("BY Jane Doe - The Example Times", "Jane Doe", "The Example Times"),
    ("By Jane Doe and John Smith, Nikkei Asia", "Jane Doe and John Smith", "Nikkei Asia"),
    ("By Jane Doe · 5 min read", "Jane Doe", None),
    ("By Jane Doe, March 4, 2025", "Jane Doe", None),
    ("By Ludwig van Beethoven", "Ludwig van Beethoven", None),
    ("Jane Doe | The Guardian", "Jane Doe", "The Guardian"),
    ("Written by J. R. Smith", "J. R. Smith", None),
    ("作者：张三", "张三", None),
])
def test_bylines(line: str, author: str, publisher: str | None) -> None:
    text = f"Chip subsidy doubles\n\n{line}\n\nThe ministry gave 5 billion yen to the chip maker on Tuesday.\n"
    found = from_byline(text, title="Chip subsidy doubles")
    assert (found.author, found.publisher) == (author, publisher)


@pytest.mark.parametrize("line", [
    "By 2027, the plant will make 2nm chips for three customers.",
    "by the numbers: how the subsidy grew",
    "Home | News | Sport",
    "Breaking News | Live",
    "Markets | Reuters",
    "The ministry gave 5 billion yen | officials",
])
def test_lines_that_are_no_bylines(line: str) -> None:
    text = f"Chip subsidy doubles\n\n{line}\n\nThe ministry gave 5 billion yen to the chip maker on Tuesday.\n"
    assert from_byline(text, title="Chip subsidy doubles") == Found()


def test_title_line_is_not_a_byline() -> None:
    text = "Jane Doe | Example Times\n\nThe ministry gave 5 billion yen to the chip maker on Tuesday.\n"
    assert from_byline(text, title="Jane Doe | Example Times") == Found()


def test_apply_and_fill() -> None:
    meta = DocMeta(title="t", publisher="guessed", published=None)
    found = Found(author="A", publisher="Stated", published="2025-01-02")
    assert apply(meta, found) == DocMeta(title="t", publisher="Stated", published="2025-01-02", author="A")
    assert fill(meta, found) == DocMeta(title="t", publisher="guessed", published="2025-01-02", author="A")


def test_html_file_metadata_and_sidecar_wins(tmp_path: Path) -> None:
    page = tmp_path / "chips.html"
    page.write_text(META_TAGS, encoding="utf-8")
    meta = load_document(page).meta
    assert (meta.title, meta.author, meta.publisher, meta.published) == (
        "Chip subsidy doubles", "Jane Doe", "Example Times", "2025-03-04")
    (tmp_path / "chips.meta.json").write_text(json.dumps({"publisher": "Sidecar Press", "author": "Ann Other"}))
    meta = load_document(page).meta
    assert (meta.author, meta.publisher, meta.published) == ("Ann Other", "Sidecar Press", "2025-03-04")


def test_text_file_byline_and_sidecar_wins(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Chip subsidy doubles\n\nBy Jane Doe | Example Times\n\n"
                                    "The ministry gave 5 billion yen to the chip maker on Tuesday, 4 March 2025.\n",
                                    encoding="utf-8")
    (tmp_path / "b.txt").write_text("Plant opens\n\nBy John Smith | Example Times\n\nThe plant opened.\n",
                                    encoding="utf-8")
    (tmp_path / "b.meta.json").write_text(json.dumps({"title": "Plant opens", "publisher": "Sidecar Press"}))
    docs = {d.doc_id: d.meta for d in read_paths([tmp_path]).documents}
    assert (docs["a"].author, docs["a"].publisher) == ("Jane Doe", "Example Times")
    assert (docs["b"].author, docs["b"].publisher) == ("John Smith", "Sidecar Press")


def test_bad_sidecar_author_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Title\n\nSome text.\n", encoding="utf-8")
    (tmp_path / "a.meta.json").write_text(json.dumps({"author": 5}))
    result = read_paths([tmp_path])
    assert not result.documents and "author" in result.failed[0]
