"""The composer's fitted settings: feature weights, thresholds and the focus-noun answer-type table, in one
object read from model.json (written by eval/fit_composer.py)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

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


@dataclass(frozen=True, slots=True)
class ComposerModel:
    sentence: Linear
    candidate: Linear
    answer_threshold: float  # a span answer needs at least this confidence
    sentences_threshold: float  # a descriptive answer: its best sentence needs this probability
    conflict_share: float  # another source's figure within this share of the best one's confidence
    more_sentences_margin: float  # further sentences of a descriptive answer: within this of the best
    evidence_sentences: int  # candidates come from this many best sentences
    support_below: float = 0.8  # an answer less confident than this also cites the next best passage
    calibration: tuple[float, float] = (1.0, 0.0)  # Platt scale and shift of the best span's probability
    focus_types: dict[str, list[str]] = field(default_factory=dict)
    fitted_on: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, data: dict[str, Any] | None = None) -> ComposerModel:
        d = data if data is not None else fitted_model()
        return cls(sentence=Linear(d["sentence"]["bias"], d["sentence"]["weights"]),
                   candidate=Linear(d["candidate"]["bias"], d["candidate"]["weights"]),
                   answer_threshold=d["answer_threshold"], sentences_threshold=d["sentences_threshold"],
                   conflict_share=d["conflict_share"], more_sentences_margin=d["more_sentences_margin"],
                   evidence_sentences=d["evidence_sentences"], support_below=d.get("support_below", 0.8),
                   calibration=(d.get("calibration", {}).get("scale", 1.0), d.get("calibration", {}).get("shift", 0.0)),
                   focus_types=d.get("focus_types", {}),
                   fitted_on=d.get("fitted_on", {}))

    def confidence(self, prob: float) -> float:
        """The calibrated chance that an answer whose best span has this probability is right."""
        p = min(max(prob, 1e-6), 1 - 1e-6)
        z = self.calibration[0] * math.log(p / (1 - p)) + self.calibration[1]
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))
