"""Real news of 2024 (RealTime QA): articles as a corpus, and quiz questions asked as open questions whose
right choice occurs verbatim in one of the question's articles."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from eval.benchmarks.corpus import SourceDoc, open_assistant
from eval.benchmarks.metrics import QAItem
from rag.config import Settings
from rag.errors import ReadError

MIN_CHOICE_CHARS = 2
# Questions whose open form asks the opposite of the quiz ("which is NOT a candidate?"): the right choice
# is the one the articles do not tie to the question.
_NEGATED = re.compile(r"\b(not|except|never)\b|n['’]t\b", re.I)


def publisher_of(url: str | None) -> str | None:
    """The URL's host without "www.": "https://www.cnn.com/..." -> "cnn.com"."""
    host = urlsplit(url or "").hostname or ""
    return host.removeprefix("www.") or None


def iso_date(value: object) -> str | None:
    """"2024/01/05" (or 2024-01-05) -> "2024-01-05"; anything else -> None."""
    text = str(value or "").strip().replace("/", "-")
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        return None


def read_articles(path: Path, wanted: set[str] | None = None) -> dict[str, dict[str, Any]]:
    """Article id -> raw record from articles.jsonl(.gz); only the wanted ids when given."""
    opener = gzip.open if str(path).endswith(".gz") else open
    out: dict[str, dict[str, Any]] = {}
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for lineno, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    raw = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ReadError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from exc
                if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
                    raise ReadError(f"{path}:{lineno}: expected an object with a string 'id'")
                if wanted is None or raw["id"] in wanted:
                    out[raw["id"]] = raw
    except FileNotFoundError as exc:
        raise ReadError(f"news articles not found: {path} (set RAG_BENCH_DIR to the folder holding news-2024/)") from exc
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise ReadError(f"cannot read news articles {path}: {exc}") from exc
    return out


def source_doc(raw: dict[str, Any]) -> SourceDoc:
    """An article record as a corpus document: text verbatim, publisher from the URL host, ISO date."""
    title = " ".join(str(raw.get("title") or "").split()) or str(raw["id"])
    return SourceDoc(doc_id=str(raw["id"]), text=str(raw.get("text") or ""), title=title,
                     publisher=publisher_of(raw.get("url")), published=iso_date(raw.get("published")),
                     url=raw.get("url") or None)


def read_ids(path: Path) -> list[str]:
    """Article ids, one a line (blank lines and `#` comments skipped), or a JSON list of ids."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ReadError(f"corpus id list not found: {path}") from exc
    if text.lstrip().startswith("["):
        try:
            ids = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ReadError(f"{path}: not a valid JSON list of ids ({exc.msg})") from exc
        if not isinstance(ids, list) or not all(isinstance(i, str) and i.strip() for i in ids):
            raise ReadError(f"{path}: a JSON id list must hold non-empty strings")
    else:
        ids = [line.split("#", 1)[0].strip() for line in text.splitlines()]
        ids = [i for i in ids if i]
    if not ids:
        raise ReadError(f"{path}: no article ids")
    return list(dict.fromkeys(i.strip() for i in ids))


def docs_for_ids(articles: Path, ids: Sequence[str]) -> list[SourceDoc]:
    """The listed articles as corpus documents; an id missing from the articles file is an error."""
    found = read_articles(articles, set(ids))
    missing = [i for i in ids if i not in found]
    if missing:
        raise ReadError(f"{len(missing)} listed article id(s) not in {articles}: {', '.join(missing[:5])}")
    return [source_doc(found[i]) for i in ids]


def open_id_corpus(ids: Sequence[str], settings: Settings, articles: Path | None = None) -> Any:
    """An Assistant over the listed articles (default source: RAG_BENCH_DIR/news-2024/articles.jsonl.gz), in
    a folder and index of their own named by the list's content, so two lists never share one."""
    source = articles or settings.bench_dir / "news-2024" / "articles.jsonl.gz"
    name = "news2024-" + hashlib.sha256("\n".join(ids).encode("utf-8")).hexdigest()[:12]
    return open_assistant(settings, name, docs_for_ids(source, ids))


def _occurs(choice: str, text: str) -> bool:
    return re.search(r"(?<!\w)" + re.escape(choice) + r"(?!\w)", text) is not None


def read_quizzes(path: Path) -> list[dict[str, Any]]:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise ReadError(f"news quizzes not found: {path} (set RAG_BENCH_DIR to the folder holding news-2024/)") from exc
    out = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ReadError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from exc
    return out


def quiz_gold(quiz: dict[str, Any]) -> str | None:
    """The right choice's text, or None when the record does not name one."""
    try:
        return str(quiz["choices"][int(quiz["answer"][0])]).strip() or None
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def _item(quiz: dict[str, Any], gold: str, docs: Sequence[str]) -> QAItem:
    return QAItem(id=str(quiz.get("question_id")), question=" ".join(str(quiz["question_sentence"]).split()),
                  answers=(gold,), doc_ids=tuple(docs), group=docs[0])


def quiz_bench(quizzes: Path, articles: Path, cap: int, seed: int) -> tuple[list[SourceDoc], list[QAItem]]:
    """Open questions from the quizzes whose right choice occurs verbatim (whole words, case kept) in one of
    the question's articles; corpus = those answer-bearing articles of a seeded sample of the quizzes, added
    quiz by quiz while they fit under `cap` articles. Each item is grouped by its first answer-bearing article."""
    if cap < 1:
        raise ReadError("the news-quiz corpus cap (RAG_BENCH_NEWS_ARTICLES) must be at least 1")
    raw = read_quizzes(quizzes)
    wanted = {a for q in raw for a in q.get("articles") or [] if isinstance(a, str)}
    arts = read_articles(articles, wanted)
    texts = {i: str(r.get("text") or "") for i, r in arts.items()}
    candidates: list[tuple[dict[str, Any], str, list[str]]] = []
    for q in raw:
        gold = quiz_gold(q)
        question = " ".join(str(q.get("question_sentence") or "").split())
        if gold is None or len(gold) < MIN_CHOICE_CHARS or not question or _NEGATED.search(question):
            continue
        bearing = [a for a in q.get("articles") or [] if a in texts and _occurs(gold, texts[a])]
        if bearing:
            candidates.append((q, gold, list(dict.fromkeys(bearing))))
    random.Random(seed).shuffle(candidates)
    corpus: dict[str, None] = {}
    items = []
    for q, gold, bearing in candidates:
        new = [a for a in bearing if a not in corpus]
        if len(corpus) + len(new) > cap:
            continue
        corpus.update(dict.fromkeys(new))
        items.append(_item(q, gold, bearing))
    taken = {i.id for i in items}
    for q, gold, bearing in candidates:  # quizzes left out whose answer is in an article the corpus has anyway
        inside = [a for a in bearing if a in corpus]
        if str(q.get("question_id")) not in taken and inside:
            items.append(_item(q, gold, inside))
    if not items:
        raise ReadError(f"no quiz in {quizzes} has its right choice in an article of {articles}")
    return [source_doc(arts[a]) for a in sorted(corpus)], sorted(items, key=lambda i: i.id)
