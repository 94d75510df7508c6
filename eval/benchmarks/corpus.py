"""Benchmark corpora on disk: one `ID.txt` with an `ID.meta.json` sidecar per article, in a cache folder with
its own index beside it, and the seeded split of articles into a tuning and a measuring half."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.errors import ReadError
from rag.readers import SIDECAR_SUFFIX

PARTS = ("tune", "measure", "all")
_UNSAFE = re.compile(r"[^A-Za-z0-9-]+")


@dataclass(frozen=True, slots=True)
class SourceDoc:
    """An article as a benchmark corpus holds it: the text verbatim and the sidecar's metadata."""

    doc_id: str
    text: str
    title: str
    publisher: str | None = None
    published: str | None = None  # ISO date
    url: str | None = None

    def sidecar(self) -> dict[str, Any]:
        meta = {"title": self.title, "publisher": self.publisher, "published": self.published, "url": self.url}
        return {k: v for k, v in meta.items() if v is not None}


def safe_id(name: str) -> str:
    """A document id usable as a file name: "Jacksonville,_Florida" -> "Jacksonville_Florida"."""
    slug = _UNSAFE.sub("_", name).strip("_")
    if not slug:
        raise ReadError(f"cannot make a document id from {name!r}")
    return slug


def _write_if_changed(path: Path, text: str) -> None:
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8", newline="")


def write_corpus(folder: Path, docs: Sequence[SourceDoc]) -> Path:
    """Make `folder` hold exactly these documents; files already equal are left alone, so an ingest over an
    unchanged corpus finds nothing to do."""
    ids = [d.doc_id for d in docs]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise ReadError(f"duplicate document ids in the benchmark corpus: {', '.join(dup[:5])}")
    empty = [d.doc_id for d in docs if not d.text.strip()]
    if empty:
        raise ReadError(f"benchmark documents with no text: {', '.join(empty[:5])}")
    folder.mkdir(parents=True, exist_ok=True)
    keep = set()
    for d in docs:
        txt, side = folder / f"{d.doc_id}.txt", folder / f"{d.doc_id}{SIDECAR_SUFFIX}"
        _write_if_changed(txt, d.text)
        _write_if_changed(side, json.dumps(d.sidecar(), ensure_ascii=False, indent=1, sort_keys=True) + "\n")
        keep |= {txt.name, side.name}
    for path in folder.iterdir():
        if path.is_file() and path.name not in keep:
            path.unlink()
    return folder


def bench_settings(settings: Settings, name: str) -> Settings:
    """Settings whose corpus and index are the benchmark's own folders under `bench_cache_dir`."""
    root = settings.bench_cache_dir / name
    return settings.with_overrides(corpus_dir=root / "corpus", index_dir=root / "index")


def open_assistant(settings: Settings, name: str, docs: Sequence[SourceDoc], embedder: Any = None,
                   progress: bool = False) -> Any:
    """The Assistant over the benchmark's corpus: written to disk, ingested (incrementally: an unchanged
    corpus is not re-embedded, and the embedding cache is shared), then loaded."""
    from rag.assistant import Assistant
    from rag.ingest import ingest

    own = bench_settings(settings, name)
    write_corpus(own.corpus_dir, docs)
    ingest([own.corpus_dir], own, progress=progress, embedder=embedder, prune=True)  # the index mirrors the folder
    return Assistant.open(own, embedder=embedder)


@dataclass(frozen=True, slots=True)
class Split:
    """Articles (or other groups) assigned to the tuning and the measuring half by a seeded shuffle."""

    seed: int
    tune: frozenset[str]
    measure: frozenset[str]

    def part_of(self, group: str) -> str:
        return "tune" if group in self.tune else "measure"

    def describe(self) -> dict[str, Any]:
        return {"seed": self.seed, "tune": sorted(self.tune), "measure": sorted(self.measure)}


def split_groups(groups: Iterable[str], seed: int) -> Split:
    """Half the distinct groups (rounded down) to tuning, the rest to measuring; the same groups and seed
    always give the same halves, whatever order they come in."""
    ordered = sorted(set(groups))
    random.Random(seed).shuffle(ordered)
    half = len(ordered) // 2
    return Split(seed=seed, tune=frozenset(ordered[:half]), measure=frozenset(ordered[half:]))


def select(items: Sequence[Any], group_of: Any, part: str, seed: int, limit: int | None = None
           ) -> tuple[list[Any], Split]:
    """The items of one part (by the split of their groups), then at most `limit` of them by a seeded sample
    (a smaller limit takes a prefix of a larger one's sample), returned in their original order."""
    if part not in PARTS:
        raise ReadError(f"part must be one of {', '.join(PARTS)}, got {part!r}")
    if limit is not None and limit < 1:
        raise ReadError("--limit must be at least 1")
    split = split_groups((group_of(i) for i in items), seed)
    chosen = [i for i in items if part == "all" or split.part_of(group_of(i)) == part]
    if limit is not None and limit < len(chosen):
        order = list(range(len(chosen)))
        random.Random(seed).shuffle(order)
        keep = set(order[:limit])
        chosen = [it for n, it in enumerate(chosen) if n in keep]
    return chosen, split
