"""SQuAD v1.1 as a corpus nobody here wrote: one text file per article, the questions asked with no
paragraph given, gold answers scored with the official normalisation."""

from __future__ import annotations

import json
from pathlib import Path

from eval.benchmarks.corpus import SourceDoc, safe_id
from eval.benchmarks.metrics import QAItem
from rag.errors import ReadError

PUBLISHER = "Wikipedia"


def article_text(title: str, paragraphs: list[str]) -> str:
    """Title, blank line, then the paragraphs separated by blank lines."""
    return "\n\n".join([title, *(p.strip() for p in paragraphs)]) + "\n"


def load_squad(path: Path) -> tuple[list[SourceDoc], list[QAItem]]:
    """Articles and questions of a SQuAD v1.1 file; a malformed file raises ReadError naming what is wrong."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ReadError(f"SQuAD file not found: {path} (set RAG_BENCH_DIR to the folder holding squad/)") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReadError(f"{path}: not a readable SQuAD JSON file ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise ReadError(f"{path}: expected the SQuAD v1.1 layout {{\"data\": [{{\"title\", \"paragraphs\"}}]}}")
    docs: list[SourceDoc] = []
    items: list[QAItem] = []
    for n, article in enumerate(data["data"]):
        try:
            raw_title = str(article["title"])
            paragraphs = article["paragraphs"]
            contexts = [str(p["context"]) for p in paragraphs]
        except (KeyError, TypeError) as exc:
            raise ReadError(f"{path}: data[{n}] lacks a title or paragraphs with a context ({exc})") from exc
        title = raw_title.replace("_", " ")
        doc_id = safe_id(raw_title)
        docs.append(SourceDoc(doc_id=doc_id, text=article_text(title, contexts), title=title, publisher=PUBLISHER))
        for p in paragraphs:
            for qa in p.get("qas", []):
                answers = tuple(dict.fromkeys(str(a["text"]) for a in qa.get("answers", []) if str(a["text"]).strip()))
                if not answers:  # SQuAD 2.0's impossible questions have none; v1.1 always has one
                    continue
                items.append(QAItem(id=str(qa["id"]), question=str(qa["question"]), answers=answers,
                                    doc_ids=(doc_id,), group=doc_id))
    if not docs:
        raise ReadError(f"{path}: no articles")
    return docs, items
