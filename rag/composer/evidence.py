"""Evidence: the distinct sentences of the retrieved chunks with their ingest-time parse, dense similarity to
the question, neighbours and title, and corpus statistics (lemma IDF over sentences) for weighting."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rag.annotate import Parsed
from rag.figures import Quantity, extract_figures
from rag.types import Hit

_WORD = re.compile(r"\w+")


@dataclass(slots=True)
class Sentence:
    doc_id: str
    start: int
    end: int
    text: str
    sim: float  # cosine of the sentence vector and the question vector
    rank: int  # rank of the best retrieved chunk holding it (1 = first)
    parse: Parsed
    context: frozenset[str]  # lower-cased words of the neighbouring sentences and the title
    derived: dict[str, Any] = field(default_factory=dict)  # what depends on the text only, shared by questions
    lemmas: frozenset[str] = field(default_factory=frozenset)
    figures: tuple[Quantity, ...] = ()

    def __post_init__(self) -> None:
        d = self.derived
        if "lemmas" not in d:
            d["lemmas"] = frozenset(t.lemma for t in self.parse.tokens)
            d["figures"] = tuple(extract_figures(self.text))
        self.lemmas, self.figures = d["lemmas"], d["figures"]


class Memo:
    """Per-sentence facts that depend on its text only (lemmas, figures, candidates, dependency graph), kept
    across questions so a sentence is prepared once; bounded, cleared when full."""

    def __init__(self, size: int = 50_000) -> None:
        self.size = size
        self._items: dict[tuple[str, int], dict[str, Any]] = {}

    def get(self, key: tuple[str, int]) -> dict[str, Any]:
        item = self._items.get(key)
        if item is None:
            if len(self._items) >= self.size:
                self._items.clear()
            item = self._items[key] = {}
        return item


@dataclass(slots=True)
class CorpusStats:
    """Sentence frequency of each lemma, for IDF weights of the question's words."""

    n: int
    df: dict[str, int]

    def idf(self, lemma: str) -> float:
        return math.log((self.n + 1) / (self.df.get(lemma, 0) + 0.5))


def corpus_stats(store: Any) -> CorpusStats:
    """Computed once per loaded index from the annotation table (lemma ids per sentence row)."""
    cached = getattr(store, "_composer_stats", None)
    if cached is not None:
        return cached
    table = store._data.annotations
    if table is None or len(table) == 0:
        stats = CorpusStats(1, {})
    else:
        rows = np.repeat(np.arange(len(table)), np.diff(table.tok_offsets))
        pairs = np.unique(np.stack([rows, table.tokens[:, 2]], axis=1), axis=0)
        counts = np.bincount(pairs[:, 1], minlength=len(table.strings))
        stats = CorpusStats(len(table), {table.strings[i]: int(c) for i, c in enumerate(counts) if c})
    store._composer_stats = stats
    return stats


def gather(hits: list[Hit], store: Any, query_vector: np.ndarray | None, memo: Memo | None = None
           ) -> list[Sentence]:
    """Every distinct sentence of the retrieved chunks (first seen at its best chunk's rank)."""
    seen: dict[tuple[str, int], Sentence] = {}
    for hit in hits:
        chunk = hit.chunk
        doc = store.documents.get(chunk.doc_id)
        parses = store.sentence_parses(chunk)
        if doc is None or parses is None:
            continue
        vecs = store.sentence_vectors(chunk) if query_vector is not None else None
        if vecs is not None and len(vecs) == len(chunk.sentences):
            sims = (vecs @ query_vector.astype(np.float32)).tolist()
        else:
            sims = [float(hit.dense_score or 0.0)] * len(chunk.sentences)
        contexts: list[frozenset[str]] | None = None
        for i, (span, sim, parse) in enumerate(zip(chunk.sentences, sims, parses, strict=True)):
            key = (chunk.doc_id, span.start)
            if key in seen:
                continue
            if contexts is None:
                contexts = _contexts(chunk, doc, parses, memo)
            seen[key] = Sentence(chunk.doc_id, span.start, span.end, parse.text, float(sim), hit.rank, parse,
                                 contexts[i], memo.get(key) if memo is not None else {})
    return list(seen.values())


def _contexts(chunk: Any, doc: Any, parses: list[Parsed], memo: Memo | None) -> list[frozenset[str]]:
    """Each sentence's context words: its neighbours in the chunk and the title (kept per chunk in the memo)."""
    item = memo.get((chunk.chunk_id, -1)) if memo is not None else {}
    if "contexts" not in item:
        title = frozenset(w.lower() for w in _WORD.findall(doc.meta.title or ""))
        texts = [p.text for p in parses]
        item["contexts"] = [title | frozenset(w.lower() for w in _WORD.findall(
            " ".join(texts[max(0, i - 1):i] + texts[i + 1:i + 2]))) for i in range(len(texts))]
    return item["contexts"]
