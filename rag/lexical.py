"""BM25 over chunks (bm25s) with a tokenizer that stems English and splits CJK runs into bigrams."""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import Stemmer

if TYPE_CHECKING:
    import bm25s

WORD = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+|[^\W_]+(?:[.,'][^\W_]+)*")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_stemmer = Stemmer.Stemmer("english")


@lru_cache(maxsize=1)
def _bm25s():  # imported when first needed: it pulls in scipy, which a no-op `rag ingest` never uses
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)  # bm25s sets its own logger to DEBUG
    return bm25s


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    return frozenset(_bm25s().stopwords.STOPWORDS_EN)


@lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    return _stemmer.stemWord(word)


def tokenize(text: str) -> list[str]:
    """Lower-cased, stemmed English words without stopwords; CJK runs as overlapping character bigrams."""
    tokens: list[str] = []
    stop = _stopwords()
    for match in WORD.finditer(unicodedata.normalize("NFKC", text).lower()):
        word = match.group()
        if _CJK.match(word):
            tokens.extend(word if len(word) == 1 else (word[i : i + 2] for i in range(len(word) - 1)))
        elif word not in stop:
            tokens.append(_stem(word.replace(",", "")))
    return tokens


class Lexical:
    """A BM25 index whose row i is chunk i of the index store."""

    def __init__(self, model: bm25s.BM25) -> None:
        self._model = model
        self._vocab = model.vocab_dict

    @classmethod
    def build(cls, texts: Sequence[str]) -> Lexical:
        model = _bm25s().BM25()
        model.index([tokenize(t) or [""] for t in texts], show_progress=False)
        return cls(model)

    @classmethod
    def load(cls, folder: Path, mmap: bool = False) -> Lexical:
        """Read a saved index; with `mmap` its score matrix stays on disk, memory-mapped (large indexes)."""
        return cls(_bm25s().BM25.load(str(folder), mmap=mmap, show_progress=False, verbosity=0))

    def __len__(self) -> int:
        """Number of chunk rows indexed."""
        return int(self._model.scores["num_docs"])

    def save(self, folder: Path) -> None:
        self._model.save(str(folder), show_progress=False)

    def _term_ids(self, query: str) -> list[int]:
        return [self._vocab[t] for t in tokenize(query) if t in self._vocab]

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every chunk for the query (zeros where no query term occurs): bm25s's own sum,
        float32 term by term, over the score matrix's columns of the query terms (a repeated term twice)."""
        m = self._model.scores
        out = np.zeros(len(self), dtype=np.float32)
        data, indices, indptr = _plain(m["data"]), _plain(m["indices"]), _plain(m["indptr"])
        for t in self._term_ids(query):
            lo, hi = indptr[t], indptr[t + 1]
            np.add.at(out, indices[lo:hi], data[lo:hi])  # a term's rows are distinct; add.at is numpy's fastest
        return out

    def top(self, query: str, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Rows and scores of the k best chunks with a positive score (among allowed rows), best first, ties by
        row: exactly the ranking of `scores(query)`, selected without sorting every scored chunk."""
        dense = self.scores(query)
        if allowed is not None:
            dense[~allowed] = 0
        sample = dense[::16]
        sample = sample[sample > 0]
        if len(sample) >= k > 0:  # the sample's k-th best is a floor at least k rows reach: the top k lie above it
            floor = np.partition(sample, len(sample) - k)[len(sample) - k]
            found = np.flatnonzero(dense >= floor)
        else:
            found = np.flatnonzero(dense > 0)
        summed = dense[found]
        k = min(k, len(found))
        if k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        if k < len(found):  # the k best; of those tied with the k-th, the lowest rows (`found` is ascending)
            kth = -np.partition(-summed, k - 1)[k - 1]
            above = np.flatnonzero(summed > kth)
            pick = np.concatenate([above, np.flatnonzero(summed == kth)[: k - len(above)]])
            found, summed = found[pick], summed[pick]
        order = np.lexsort((found, -summed))
        return found[order].astype(np.int64), summed[order]


def _plain(arr: np.ndarray) -> np.ndarray:
    """A memory map as a plain ndarray of the same pages (slicing a np.memmap costs far more)."""
    return arr.view(np.ndarray) if isinstance(arr, np.memmap) else arr
