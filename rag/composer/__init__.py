"""Composer 2: question analysis -> evidence -> candidates -> features -> decision -> rendering, every step
general and traced. `Composer.compose` turns retrieved chunks into a cited Answer or a refusal."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from rag.annotate import Annotator, Parsed
from rag.composer.decide import decide, trace
from rag.composer.evidence import Memo, corpus_stats, gather
from rag.composer.followup import leans_on_context, merge, previous_questions
from rag.composer.label_vectors import LabelVectors, load_label_vectors
from rag.composer.model import ComposerModel
from rag.composer.question import Question, analyse, latin_skeleton
from rag.composer.render import render
from rag.config import Settings
from rag.types import Answer, Hit, Turn

__all__ = ["Composer", "Question"]


class Composer:
    """One per loaded index: the question parser, the fitted model and the index's statistics."""

    def __init__(self, settings: Settings, store: Any, model: ComposerModel | None = None, embedder: Any = None
                 ) -> None:
        self.annotator = Annotator(settings.spacy_pipeline)
        self.model = model or ComposerModel.load()
        self.store = store
        self.stats = corpus_stats(store)
        self.memo = Memo()
        self._names = _latin_names(store)
        self.embedder = embedder
        self.label_vectors: LabelVectors | None = load_label_vectors()

    def focus_labels(self, noun: str) -> tuple[str, ...]:
        """Entity labels for a focus noun the fitted table lacks: the nearest label centroids (none when no
        embedder, or the centroids were computed with another model)."""
        lv = self.label_vectors
        if self.embedder is None or lv is None or lv.model != self.embedder.model_name:
            return ()
        return lv.nearest(self.embedder.embed_query(noun), self.model.focus_margin)

    def parse(self, text: str) -> Parsed:
        """A question's parse: tokens, tags, lemmas and dependencies; its names are read from its proper nouns."""
        return self.annotator.parse(text, entities=False)

    def analyse(self, question: str, history: Sequence[Turn] = ()) -> Question:
        """The question analysed and weighted by IDF; a follow-up merged with the question before it."""
        q = self._one(question)
        prev_texts = previous_questions(history)
        if prev_texts and leans_on_context(q):
            prev = self._one(prev_texts[-1])
            q = merge(q, prev)
        return q

    def _one(self, text: str) -> Question:
        q = analyse(text, self.parse, self.model.focus_types, self._names, self.focus_labels)
        q = replace(q, label_prior=self.model.prior(q.wh, q.focus))
        q.terms.update({t: self.stats.idf(t) for t in q.terms})
        return q

    def compose(self, q: Question, hits: list[Hit], query_vector: np.ndarray | None,
                explain: bool = False) -> Answer:
        sentences = gather(hits, self.store, query_vector, self.memo)
        d = decide(q, sentences, self.model, self.store)
        answer = render(q, d, self.store)
        if explain:
            answer.trace = trace(q, d)
        return answer


def _latin_names(store: Any) -> dict[str, str]:
    """Consonant skeleton -> a proper noun of the corpus, so a katakana name finds its Latin spelling."""
    table = store._data.annotations
    if table is None:
        return {}
    propn = table.strings.index("PROPN") if "PROPN" in table.strings else -1
    ids = np.unique(table.tokens[table.tokens[:, 3] == propn][:, 2]) if propn >= 0 else []
    out: dict[str, str] = {}
    for i in ids:
        word = table.strings[int(i)]
        if word.isalpha() and len(word) >= 3:
            out.setdefault(latin_skeleton(word), word)
    return out
