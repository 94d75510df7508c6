"""The spaCy pipeline is the official en_core_web_sm 3.8.0, and every indexed sentence carries its parse."""

from __future__ import annotations

import pytest

from rag.annotate import load_pipeline
from rag.config import Settings

# From the official release's meta.json (explosion/spacy-models, meta/en_core_web_sm-3.8.0.json).
OFFICIAL = {"version": "3.8.0", "ents_f": 0.8433119744, "ents_p": 0.8429743795, "ents_r": 0.8436498397,
            "tag_acc": 0.972937262, "dep_uas": 0.9176955214, "dep_las": 0.8991533598, "speed": 9426.1029865937}


def test_pipeline_is_the_official_release() -> None:
    meta = load_pipeline(Settings().spacy_pipeline).meta
    perf = meta["performance"]
    assert meta["version"] == OFFICIAL["version"] and meta["lang"] == "en"
    for key in ("ents_f", "ents_p", "ents_r", "tag_acc", "dep_uas", "dep_las", "speed"):
        assert perf[key] == pytest.approx(OFFICIAL[key], abs=1e-9), key


def test_every_indexed_sentence_has_its_parse(seed_assistant) -> None:
    store = seed_assistant.store
    for chunk in store.chunks:
        parses = store.sentence_parses(chunk)
        assert parses is not None and len(parses) == len(chunk.sentences)
        doc = store.documents[chunk.doc_id].text
        for span, p in zip(chunk.sentences, parses, strict=True):
            assert p.text == doc[span.start:span.end]
            for t in p.tokens:
                assert p.text[t.start:t.end] == t.text  # token offsets point into the sentence
            for e in p.ents:
                assert p.span_text(e)
