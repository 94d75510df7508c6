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
    lemmas: frozenset[str] = field(default_factory=frozenset)
    figures: tuple[Quantity, ...] = ()

    def __post_init__(self) -> None:
        self.lemmas = frozenset(t.lemma for t in self.parse.tokens)
        self.figures = tuple(extract_figures(self.text))


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


def gather(hits: list[Hit], store: Any, query_vector: np.ndarray | None) -> list[Sentence]:
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
        title = frozenset(w.lower() for w in _WORD.findall(doc.meta.title or ""))
        texts = [p.text for p in parses]
        for i, (span, sim, parse) in enumerate(zip(chunk.sentences, sims, parses, strict=True)):
            key = (chunk.doc_id, span.start)
            if key in seen:
                continue
            around = " ".join(texts[max(0, i - 1):i] + texts[i + 1:i + 2])
            context = title | frozenset(w.lower() for w in _WORD.findall(around))
            seen[key] = Sentence(chunk.doc_id, span.start, span.end, parse.text, float(sim), hit.rank, parse,
                                 context)
    return list(seen.values())
