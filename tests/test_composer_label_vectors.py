"""Label centroids for focus nouns the fitted table never saw: the vectors alone on hand-built data, and the
shipped ones through the real embedding model."""

from __future__ import annotations

import numpy as np
import pytest

from rag.composer.label_vectors import LabelVectors, centroids, load_label_vectors, sample_mentions
from rag.composer.question import analyse


def unit(*xs: float) -> np.ndarray:
    v = np.array(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


LV = LabelVectors(("GPE", "ORG", "PERSON"), np.stack([unit(1, 0, 0), unit(0, 1, 0), unit(0, 0, 1)]), "m")


def test_nearest_gives_the_labels_within_the_margin_nearest_first() -> None:
    assert LV.nearest(unit(0.1, 0.2, 1.0), margin=0.05) == ("PERSON",)
    assert LV.nearest(unit(1.0, 0.98, 0.0), margin=0.05) == ("GPE", "ORG")


def test_centroids_average_each_labels_mentions_and_skip_rare_labels() -> None:
    vectors = {"Paris": (1, 0.2, 0), "Rome": (1, -0.2, 0), "Acme": (0, 1, 0)}
    lv = centroids({"GPE": ["Paris", "Rome", "Rome"], "ORG": ["Acme"]},
                   lambda texts: np.array([vectors[t] for t in texts], dtype=np.float32), "m", min_mentions=2)
    assert lv.labels == ("GPE",) and lv.model == "m"
    assert np.allclose(lv.matrix[0], [1, 0, 0], atol=1e-6)


def test_sample_mentions_is_seeded_distinct_and_bounded() -> None:
    pairs = [("PERSON", f"name {i % 50}") for i in range(200)] + [("GPE", "Ohio")]
    a, b = sample_mentions(pairs, 10, seed=3), sample_mentions(reversed(pairs), 10, seed=3)
    assert a == b and len(a["PERSON"]) == len(set(a["PERSON"])) == 10 and a["GPE"] == ["Ohio"]


def test_save_and_load_keep_labels_matrix_and_model(tmp_path) -> None:
    LV.save(tmp_path / "lv.npz")
    back = load_label_vectors(tmp_path / "lv.npz")
    assert back.labels == LV.labels and back.model == "m" and np.array_equal(back.matrix, LV.matrix)
    assert load_label_vectors(tmp_path / "missing.npz") is None


def test_an_unknown_focus_noun_is_typed_only_when_nothing_else_types_it(parse) -> None:
    asked: list[str] = []

    def typed(noun: str) -> tuple[str, ...]:
        asked.append(noun)
        return ("PERSON",)

    singer = analyse("Which singer won the award?", parse, focus_labels=typed)
    assert singer.expected == ("PERSON",) and singer.expected_by == "label centroids"
    assert analyse("Which company built it?", parse, {"company": ["ORG"]}, focus_labels=typed).expected == ("ORG",)
    assert analyse("How many players were injured?", parse, focus_labels=typed).expected[0] == "CARDINAL"
    assert asked == ["singer"]


@pytest.mark.parametrize("noun, label", [("singer", "PERSON"), ("senator", "PERSON"), ("state", "GPE"),
                                         ("month", "DATE"), ("budget", "MONEY")])
def test_the_shipped_vectors_type_nouns_through_the_real_model(seed_assistant, noun, label) -> None:
    assert seed_assistant.composer.focus_labels(noun)[0] == label
