"""Entity labels for a focus noun the fitted table never saw ("which singer", "which state"): the labels whose
centroid, the mean embedding of entity mentions spaCy gave that label in the tuning corpora, lies nearest to
the noun's embedding. Fitted by eval/fit_composer.py into label_vectors.npz, for one embedding model."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from rag.composer.lexicon import HERE

LABEL_VECTORS_FILE = HERE / "label_vectors.npz"


@dataclass(frozen=True, slots=True)
class LabelVectors:
    """One unit vector per entity label, and the embedding model they were computed with."""

    labels: tuple[str, ...]
    matrix: np.ndarray  # float32 [len(labels), dim], rows of unit length
    model: str

    def nearest(self, vector: np.ndarray, margin: float) -> tuple[str, ...]:
        """Labels by similarity to `vector`, those within `margin` of the nearest; nearest first."""
        sims = self.matrix @ np.asarray(vector, dtype=np.float32)
        order = np.argsort(-sims, kind="stable")
        top = float(sims[order[0]])
        return tuple(self.labels[i] for i in order if top - float(sims[i]) <= margin)

    def save(self, path: Path) -> None:
        with open(path, "wb") as fh:
            np.savez(fh, labels=np.array(self.labels), matrix=self.matrix.astype(np.float32),
                     model=np.array(self.model))


def centroids(mentions: dict[str, list[str]], embed: Callable[[list[str]], np.ndarray], model: str,
              min_mentions: int = 20) -> LabelVectors:
    """The unit-length mean embedding of each label's mentions (labels with fewer distinct mentions left out)."""
    labels, rows = [], []
    for label in sorted(mentions):
        texts = sorted(set(mentions[label]))
        if len(texts) < min_mentions:
            continue
        mean = np.asarray(embed(texts), dtype=np.float64).mean(axis=0)
        labels.append(label)
        rows.append(mean / (np.linalg.norm(mean) or 1.0))
    return LabelVectors(tuple(labels), np.array(rows, dtype=np.float32).reshape(len(rows), -1), model)


@lru_cache(maxsize=4)
def load_label_vectors(path: Path = LABEL_VECTORS_FILE) -> LabelVectors | None:
    """The fitted label vectors, or None when none were fitted."""
    if not path.exists():
        return None
    z = np.load(path, allow_pickle=False)
    return LabelVectors(tuple(str(x) for x in z["labels"]), z["matrix"].astype(np.float32), str(z["model"]))


def sample_mentions(groups: Iterable[tuple[str, str]], per_label: int, seed: int) -> dict[str, list[str]]:
    """At most `per_label` distinct mention texts per label from (label, text) pairs, a seeded sample."""
    by: dict[str, set[str]] = {}
    for label, text in groups:
        by.setdefault(label, set()).add(text)
    rng = np.random.default_rng(seed)
    out = {}
    for label, texts in sorted(by.items()):
        ordered = sorted(texts)
        if len(ordered) > per_label:
            ordered = [ordered[i] for i in sorted(rng.choice(len(ordered), per_label, replace=False))]
        out[label] = ordered
    return out
