"""Linguistic annotation of sentences with spaCy, once at ingest: tokens, lemmas, POS, dependencies,
entities and noun chunks, packed into flat arrays stored in the index generation. Only questions are
parsed at ask time."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import sys
import threading
import types
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from rag.errors import RagError

ANNOTATION_VERSION = 1  # bump when what is stored per sentence changes: generations re-annotate
POS_TAGS = ("", "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN",
            "PUNCT", "SCONJ", "SYM", "VERB", "X", "SPACE")
# Fields of one token row, in the packed array's column order.
COLUMNS = ("start", "end", "lemma", "pos", "tag", "dep", "head", "ent", "ent_iob", "is_stop")


@dataclass(frozen=True, slots=True)
class Token:
    i: int
    start: int  # offsets relative to the sentence start
    end: int
    text: str
    lemma: str  # lower-cased
    pos: str
    tag: str
    dep: str
    head: int  # index within the sentence
    ent: str  # entity label of the token, "" outside entities
    ent_iob: int  # 0 outside, 1 begin, 2 inside
    is_stop: bool


@dataclass(frozen=True, slots=True)
class Phrase:
    """A token range [start, end) of a sentence with a label (an entity's, or "NP" for a noun chunk)."""

    start: int
    end: int
    label: str


@dataclass(frozen=True, slots=True)
class Parsed:
    """One annotated sentence: its text, tokens, entities and noun chunks."""

    text: str
    tokens: tuple[Token, ...]
    ents: tuple[Phrase, ...]
    chunks: tuple[Phrase, ...]

    def span_text(self, p: Phrase) -> str:
        return self.text[self.tokens[p.start].start:self.tokens[p.end - 1].end]

    def char_span(self, p: Phrase) -> tuple[int, int]:
        return self.tokens[p.start].start, self.tokens[p.end - 1].end


class Vocab:
    """String tables for the packed arrays (labels, tags, lemmas), grown as sentences are packed."""

    def __init__(self, strings: Sequence[str] = ("",)) -> None:
        self.strings = list(strings)
        self._ids = {s: i for i, s in enumerate(self.strings)}

    def id(self, s: str) -> int:
        i = self._ids.get(s)
        if i is None:
            i = self._ids[s] = len(self.strings)
            self.strings.append(s)
        return i


def _rows(doc) -> tuple[list[tuple], list[tuple[int, int, str]], list[tuple[int, int]]]:
    rows = []
    for t in doc:
        iob = {"B": 1, "I": 2}.get(t.ent_iob_, 0)
        rows.append((t.idx, t.idx + len(t.text), t.lemma_.lower(), t.pos_, t.tag_, t.dep_, t.head.i,
                     t.ent_type_, iob, bool(t.is_stop)))
    ents = [(e.start, e.end, e.label_) for e in doc.ents]
    try:
        chunks = [(c.start, c.end) for c in doc.noun_chunks]
    except ValueError:  # no parse
        chunks = []
    return rows, ents, chunks


def _parsed(text: str, rows: Sequence[tuple], ents: Sequence[tuple], chunks: Sequence[tuple]) -> Parsed:
    tokens = tuple(Token(i, s, e, text[s:e], lem, pos, tag, dep, head, ent, iob, stop)
                   for i, (s, e, lem, pos, tag, dep, head, ent, iob, stop) in enumerate(rows))
    return Parsed(text, tokens, tuple(Phrase(a, b, lab) for a, b, lab in ents),
                  tuple(Phrase(a, b, "NP") for a, b in chunks))


class AnnotationCache:
    """Annotations on disk keyed by sha256(pipeline, version, text): no sentence is parsed twice."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS parses (key BLOB PRIMARY KEY, value TEXT NOT NULL)")

    def get_many(self, keys: Sequence[bytes]) -> dict[bytes, str]:
        found: dict[bytes, str] = {}
        with self._lock:
            for i in range(0, len(keys), 500):
                part = list(keys[i:i + 500])
                marks = ",".join("?" * len(part))
                found.update(self._db.execute(f"SELECT key, value FROM parses WHERE key IN ({marks})", part))
        return found

    def put_many(self, items: Sequence[tuple[bytes, str]]) -> None:
        with self._lock, self._db:
            self._db.executemany("INSERT OR REPLACE INTO parses (key, value) VALUES (?, ?)", items)


@contextmanager
def _torch_hidden() -> Iterator[None]:
    """Import as if torch were absent, unless it is loaded already: spaCy's thinc imports it when installed
    (about 1 s and 190 MB per process) though our pipeline never uses it."""
    hide = "torch" not in sys.modules
    if hide:
        sys.modules["torch"] = None  # type: ignore[assignment]  # makes `import torch` raise ImportError
    try:
        yield
    finally:
        if hide and sys.modules.get("torch", 0) is None:
            del sys.modules["torch"]


def _spacy_info(*args, **kwargs):
    """spacy.info, imported when called (see _spacy_cli_deferred)."""
    from spacy.cli.info import info

    return info(*args, **kwargs)


@contextmanager
def _spacy_cli_deferred() -> Iterator[None]:
    """Import spaCy without its command line: `import spacy` loads spacy.cli (typer, weasel, httpx, about
    0.5 s) only to offer spacy.info, which loading and running a pipeline never use. A later
    `import spacy.cli` imports the real one."""
    if "spacy" in sys.modules:
        yield
        return
    cli = types.ModuleType("spacy.cli")
    cli.__path__ = []  # a package, so `spacy.cli.info` resolves to the module below
    info = types.ModuleType("spacy.cli.info")
    info.info = _spacy_info  # type: ignore[attr-defined]
    sys.modules["spacy.cli"], sys.modules["spacy.cli.info"] = cli, info
    try:
        yield
    finally:
        for name, stub in (("spacy.cli", cli), ("spacy.cli.info", info)):
            if sys.modules.get(name) is stub:
                del sys.modules[name]
        spacy = sys.modules.get("spacy")
        if spacy is not None and getattr(spacy, "cli", None) is cli:
            delattr(spacy, "cli")


class _EntryPointsByGroup:
    """catalogue's table of installed entry points with `select(group=...)` remembered per group: loading a
    pipeline asks it some 250 times, and each ask otherwise scans every installed distribution's entry
    points (about 0.2 s a load)."""

    def __init__(self, entry_points) -> None:
        self._all = entry_points
        self._groups: dict[str, object] = {}

    def select(self, **params):
        if params.keys() != {"group"}:
            return self._all.select(**params)
        group = params["group"]
        if group not in self._groups:
            self._groups[group] = self._all.select(group=group)
        return self._groups[group]


def _index_entry_points() -> None:
    import catalogue

    if not isinstance(catalogue.AVAILABLE_ENTRY_POINTS, _EntryPointsByGroup) and \
            hasattr(catalogue.AVAILABLE_ENTRY_POINTS, "select"):
        catalogue.AVAILABLE_ENTRY_POINTS = _EntryPointsByGroup(catalogue.AVAILABLE_ENTRY_POINTS)


@lru_cache(maxsize=2)
def load_pipeline(name: str):
    """The spaCy pipeline, loaded once per process (disabled: nothing; senter is not in the default set)."""
    try:
        with _torch_hidden(), _spacy_cli_deferred():
            import spacy
        _index_entry_points()

        return spacy.load(name)
    except (ImportError, OSError) as exc:
        raise RagError(f"cannot load the spaCy pipeline {name!r}: {exc}; install it with `make setup`") from exc


class Annotator:
    """Parses sentences with one spaCy pipeline; a disk cache makes re-ingest free."""

    def __init__(self, pipeline: str, cache_path: Path | None = None, batch_size: int = 64) -> None:
        self.pipeline = pipeline
        self.nlp = load_pipeline(pipeline)
        self.identity = f"{pipeline}-{self.nlp.meta.get('version', '?')}-v{ANNOTATION_VERSION}"
        self.batch_size = batch_size
        self._cache = AnnotationCache(cache_path) if cache_path else None
        self._lock = threading.Lock()  # a spaCy pipeline is not safe across threads

    def _key(self, text: str) -> bytes:
        return hashlib.sha256(f"{self.identity}\0{text}".encode()).digest()

    def parse(self, text: str, entities: bool = True) -> Parsed:
        """A parsed short text, not cached; `entities=False` skips the entity recogniser (half the time of a
        question's parse; a question's names come from its proper nouns)."""
        with self._lock:
            doc = self.nlp(text, disable=[] if entities else ["ner"])
        return _parsed(text, *_rows(doc))

    def cached(self, texts: Sequence[str]) -> tuple[list[tuple[list, list, list] | None], list[bytes]]:
        """The annotations of texts the disk cache holds (None for the others), and every text's cache key:
        what an ingest engine has to parse."""
        keys = [self._key(t) for t in texts]
        cached = self._cache.get_many(keys) if self._cache else {}
        return [tuple(json.loads(cached[k])) if k in cached else None for k in keys], keys

    def remember(self, items: Sequence[tuple[bytes, str]]) -> None:
        """Store parses, as JSON of what `annotate` returns, under their cache keys (from `cached`)."""
        if self._cache and items:
            self._cache.put_many(items)

    def annotate(self, texts: Sequence[str], on_progress: Callable[[int], None] | None = None
                 ) -> list[tuple[list, list, list]]:
        """Packed rows, entities and noun chunks of each text, from the cache where parsed before."""
        out, keys = self.cached(texts)
        todo = [i for i, o in enumerate(out) if o is None]
        if on_progress and len(texts) - len(todo):
            on_progress(len(texts) - len(todo))
        new: list[tuple[bytes, str]] = []
        with self._lock:
            for i, doc in zip(todo, self.nlp.pipe((texts[i] for i in todo), batch_size=self.batch_size),
                              strict=True):
                out[i] = _rows(doc)
                new.append((keys[i], json.dumps(out[i], ensure_ascii=False)))
                if on_progress:
                    on_progress(1)
        self.remember(new)
        return [o for o in out if o is not None]


class AnnotationTable:
    """Annotations of every indexed sentence, one row per sentence vector row, in flat arrays."""

    def __init__(self, tokens: np.ndarray, tok_offsets: np.ndarray, phrases: np.ndarray,
                 phrase_offsets: np.ndarray, strings: list[str]) -> None:
        self.tokens = tokens  # int32 [n_tokens, len(COLUMNS)]
        self.tok_offsets = tok_offsets  # int64 [n_sentences + 1]
        self.phrases = phrases  # int32 [n_phrases, 3]: start, end, label id (label "NP" for noun chunks)
        self.phrase_offsets = phrase_offsets
        self.strings = strings

    def __len__(self) -> int:
        return len(self.tok_offsets) - 1

    @classmethod
    def pack(cls, annotations: Sequence[tuple[list, list, list]]) -> AnnotationTable:
        vocab = Vocab()
        np_id = vocab.id("NP")
        tok_rows, phr_rows = [], []
        tok_off, phr_off = [0], [0]
        for rows, ents, chunks in annotations:
            for s, e, lem, pos, tag, dep, head, ent, iob, stop in rows:
                tok_rows.append((s, e, vocab.id(lem), vocab.id(pos), vocab.id(tag), vocab.id(dep), head,
                                 vocab.id(ent), iob, int(stop)))
            phr_rows.extend((a, b, vocab.id(lab)) for a, b, lab in ents)
            phr_rows.extend((a, b, np_id) for a, b in chunks)
            tok_off.append(len(tok_rows))
            phr_off.append(len(phr_rows))
        return cls(np.array(tok_rows, dtype=np.int32).reshape(-1, len(COLUMNS)), np.array(tok_off, np.int64),
                   np.array(phr_rows, dtype=np.int32).reshape(-1, 3), np.array(phr_off, np.int64), vocab.strings)

    def save(self, path: Path) -> None:
        with open(path, "wb") as fh:
            np.savez(fh, tokens=self.tokens, tok_offsets=self.tok_offsets, phrases=self.phrases,
                     phrase_offsets=self.phrase_offsets, strings=np.array(json.dumps(self.strings)))

    @classmethod
    def load(cls, path: Path) -> AnnotationTable:
        z = np.load(path, allow_pickle=False)
        return cls(z["tokens"], z["tok_offsets"], z["phrases"], z["phrase_offsets"], json.loads(str(z["strings"])))

    def raw(self, row: int) -> tuple[list, list, list]:
        """Row `row` in the form `Annotator.annotate` returns, to carry it into a new generation."""
        st = self.strings
        a, b = self.tok_offsets[row], self.tok_offsets[row + 1]
        rows = [(int(s), int(e), st[lem], st[pos], st[tag], st[dep], int(h), st[ent], int(iob), bool(stop))
                for s, e, lem, pos, tag, dep, h, ent, iob, stop in self.tokens[a:b].tolist()]
        pa, pb = self.phrase_offsets[row], self.phrase_offsets[row + 1]
        ents = [(x, y, st[lab]) for x, y, lab in self.phrases[pa:pb].tolist() if st[lab] != "NP"]
        chunks = [(x, y) for x, y, lab in self.phrases[pa:pb].tolist() if st[lab] == "NP"]
        return rows, ents, chunks

    def parsed(self, row: int, text: str) -> Parsed:
        return _parsed(text, *self.raw(row))
