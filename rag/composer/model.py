"""The composer's fitted settings: feature weights, thresholds and the focus-noun answer-type table, in one
object read from model.json (written by eval/fit_composer.py)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rag.composer.lexicon import fitted_model


@dataclass(frozen=True, slots=True)
class Linear:
    """A logistic model over named features: P = sigmoid(bias + sum(weight * feature))."""

    bias: float
    weights: dict[str, float]

    def logit(self, features: dict[str, float]) -> float:
        return self.bias + sum(w * features.get(name, 0.0) for name, w in self.weights.items())

    def prob(self, features: dict[str, float]) -> float:
        z = max(-30.0, min(30.0, self.logit(features)))
        return 1.0 / (1.0 + math.exp(-z))

    def logits(self, rows: list[dict[str, float]]) -> np.ndarray:
        """`logit` of many feature rows at once (the same sums, as one matrix product)."""
        names = list(self.weights)
        x = np.array([[f.get(k, 0.0) for k in names] for f in rows], dtype=np.float64).reshape(len(rows), len(names))
        return self.bias + x @ np.array([self.weights[k] for k in names])


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30.0, 30.0)))


@dataclass(frozen=True, slots=True)
class ComposerModel:
    """`sentence`: does a sentence hold the answer; `candidate`: a ranking score, turned into each candidate's
    share of the question's candidates (softmax); `answer`: the chance that the best candidate is right."""

    sentence: Linear
    candidate: Linear
    answer: Linear
    answer_threshold: float  # a span answer needs at least this confidence
    sentences_threshold: float  # a passage answer: its best sentence needs this probability
    conflict_share: float  # another source's figure within this share of the best one's confidence
    more_sentences_margin: float  # further sentences of a descriptive answer: within this of the best
    evidence_sentences: int  # candidates come from this many best sentences
    support_below: float = 0.8  # an answer less confident than this also cites the next best passage
    focus_margin: float = 0.07  # an unknown focus noun expects the labels this close to its nearest centroid
    focus_types: dict[str, list[str]] = field(default_factory=dict)
    label_prior: dict[str, dict[str, float]] = field(default_factory=dict)  # "focus:X" / "wh:Y" -> label shares
    fitted_on: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, data: dict[str, Any] | None = None) -> ComposerModel:
        d = data if data is not None else fitted_model()
        return cls(sentence=Linear(d["sentence"]["bias"], d["sentence"]["weights"]),
                   candidate=Linear(d["candidate"]["bias"], d["candidate"]["weights"]),
                   answer=Linear(d["answer"]["bias"], d["answer"]["weights"]),
                   answer_threshold=d["answer_threshold"], sentences_threshold=d["sentences_threshold"],
                   conflict_share=d["conflict_share"], more_sentences_margin=d["more_sentences_margin"],
                   evidence_sentences=d["evidence_sentences"], support_below=d.get("support_below", 0.8),
                   focus_margin=d.get("focus_margin", 0.07),
                   focus_types=d.get("focus_types", {}), label_prior=d.get("label_prior", {}),
                   fitted_on=d.get("fitted_on", {}))

    def prior(self, wh: str, focus: str | None) -> dict[str, float]:
        """The answer labels' shares for a question's focus noun when fitted, else for its wh-word."""
        return self.label_prior.get(f"focus:{focus}") or self.label_prior.get(f"wh:{wh}", {})
