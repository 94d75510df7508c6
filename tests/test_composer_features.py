"""Each composer feature and decision rule alone, on hand-built annotated sentences: no model is loaded."""

from __future__ import annotations

import pytest

from rag.annotate import AnnotationTable, Parsed, Phrase, Token
from rag.composer.candidates import candidates
from rag.composer.decide import answer_confidence, decide, mentions, score_candidates, score_sentences
from rag.composer.evidence import Sentence
from rag.composer.features import (
    adjective,
    align,
    article_names_met,
    bigrams,
    candidate_features,
    coverage,
    dep_coverage,
    focus_near,
    head_asked,
    in_question,
    matched_tokens,
    names_met,
    nearest,
    repeats_question,
    roles,
    sentence_features,
    surface_near,
    syntax_near,
    type_scores,
    unit_ok,
    window_coverage,
)
from rag.composer.model import ComposerModel
from rag.composer.question import Question, kana_skeleton, latin_skeleton

STOP = {"the", "a", "in", "of", "to", "by", "was", "is", "and", "for"}


def parsed(rows: list[tuple[str, str, str, str, int, str]], ents: list[tuple[int, int, str]] = (),
           chunks: list[tuple[int, int]] = ()) -> Parsed:
    """A sentence from (text, lemma, pos, dep, head, entity label) rows, tokens joined by single spaces."""
    tokens, pos = [], 0
    for i, (text, lemma, upos, dep, head, ent) in enumerate(rows):
        iob = 0 if not ent else (1 if i == 0 or rows[i - 1][5] != ent else 2)
        tokens.append(Token(i, pos, pos + len(text), text, lemma, upos, "", dep, head, ent, iob,
                            lemma in STOP))
        pos += len(text) + 1
    text = " ".join(r[0] for r in rows)
    return Parsed(text, tuple(tokens), tuple(Phrase(a, b, lab) for a, b, lab in ents),
                  tuple(Phrase(a, b, "NP") for a, b in chunks))


# "The company was founded in 1922 by John Smith ."
FOUNDED = parsed([
    ("The", "the", "DET", "det", 1, ""), ("company", "company", "NOUN", "nsubjpass", 3, ""),
    ("was", "be", "AUX", "auxpass", 3, ""), ("founded", "found", "VERB", "ROOT", 3, ""),
    ("in", "in", "ADP", "prep", 3, ""), ("1922", "1922", "NUM", "pobj", 4, "DATE"),
    ("by", "by", "ADP", "agent", 3, ""), ("John", "john", "PROPN", "compound", 8, "PERSON"),
    ("Smith", "smith", "PROPN", "pobj", 6, "PERSON"), (".", ".", "PUNCT", "punct", 3, ""),
], ents=[(5, 6, "DATE"), (7, 9, "PERSON")], chunks=[(0, 2), (7, 9)])


def sentence(p: Parsed, sim: float = 0.5, rank: int = 1, context: frozenset[str] = frozenset()) -> Sentence:
    return Sentence("doc", 0, len(p.text), p.text, sim, rank, p, context)


def question(terms: dict[str, float], expected: tuple[str, ...] = (), wh: str = "when", focus: str | None = None,
             unit: str | None = None, names: tuple[str, ...] = (), descriptive: bool = False) -> Question:
    return Question(text="q", english="q", lang="en", wh=wh, focus=focus, expected=expected, unit=unit,
                    terms=terms, names=names, descriptive=descriptive)


def cand(s: Sentence, text: str):
    return next(c for c in candidates(s) if c.text == text)


def test_coverage_weights_words_by_idf() -> None:
    q = question({"found": 3.0, "company": 1.0, "capital": 4.0})
    assert coverage(q, frozenset({"found", "company"})) == pytest.approx(4 / 8)
    assert coverage(q, frozenset()) == 0.0


def test_bigrams_count_adjacent_question_words_near_each_other() -> None:
    qp = Question("q", "q", "en", "who", None, (), None, {"john": 1.0, "smith": 1.0},
                  parsed=parsed([("John", "john", "PROPN", "compound", 1, ""), ("Smith", "smith", "PROPN", "ROOT", 1, "")]))
    assert bigrams(qp, sentence(FOUNDED)) == 1.0
    far = Question("q", "q", "en", "who", None, (), None, {"company": 1.0, "smith": 1.0},
                   parsed=parsed([("company", "company", "NOUN", "ROOT", 0, ""), ("Smith", "smith", "PROPN", "dobj", 0, "")]))
    assert bigrams(far, sentence(FOUNDED)) == 0.0


def test_names_met_in_sentence_or_context() -> None:
    s = sentence(FOUNDED, context=frozenset({"acme"}))
    assert names_met(question({}, names=("john smith",)), s) == 1.0
    assert names_met(question({}, names=("acme",)), s) == 1.0
    assert names_met(question({}, names=("mary jones",)), s) == 0.0


def test_repeats_question_flags_a_sentence_with_nothing_new() -> None:
    p = parsed([("company", "company", "NOUN", "nsubj", 1, ""), ("founded", "found", "VERB", "ROOT", 1, "")])
    assert repeats_question(question({"company": 1, "found": 1}), sentence(p)) == 1.0
    assert repeats_question(question({"company": 1}), sentence(FOUNDED)) == 0.0


def test_candidates_are_entities_chunks_and_figures_without_determiners() -> None:
    texts = {c.text: c.kind for c in candidates(sentence(FOUNDED))}
    assert texts["1922"] == "entity" and texts["John Smith"] == "entity"
    assert texts["company"] == "chunk"  # "The company" trimmed of its determiner
    assert cand(sentence(FOUNDED), "1922").figure is not None


def test_type_and_unit_scores() -> None:
    s = sentence(FOUNDED)
    when = question({"found": 1.0}, expected=("DATE", "TIME"))
    assert type_scores(when, cand(s, "1922")) == (1.0, 0.0)
    assert type_scores(when, cand(s, "John Smith")) == (0.0, 1.0)
    assert type_scores(question({}), cand(s, "1922")) == (0.0, 0.0)
    assert not unit_ok(question({}, unit="USD"), cand(s, "1922"))
    assert unit_ok(question({}), cand(s, "1922"))


def test_in_question_penalises_a_span_the_question_already_says() -> None:
    s = sentence(FOUNDED)
    q = question({"company": 1.0, "found": 1.0})
    assert in_question(q, s, cand(s, "company")) == 1.0
    assert in_question(q, s, cand(s, "John Smith")) == 0.0


def test_surface_and_syntax_nearness_to_question_words() -> None:
    s = sentence(FOUNDED)
    q = question({"found": 1.0})
    matched = matched_tokens(q, s)
    assert matched == [3]
    year, name = cand(s, "1922"), cand(s, "John Smith")
    assert surface_near(year, matched) == pytest.approx(1 / 3)  # founded _in_ 1922: gap of 2
    assert syntax_near(s, year, matched) == pytest.approx(1 / 3)  # 1922 -> in -> founded
    assert syntax_near(s, name, matched) == pytest.approx(1 / 3)  # Smith -> by -> founded
    assert surface_near(year, []) == 0.0 and syntax_near(s, year, []) == 0.0


def test_head_asked_climbs_through_a_preposition() -> None:
    s = sentence(FOUNDED)
    assert head_asked(question({"found": 1.0}), s, cand(s, "1922")) == 1.0
    assert head_asked(question({"company": 1.0}), s, cand(s, "1922")) == 0.0


def test_focus_near_links_the_focus_noun() -> None:
    p = parsed([("14", "14", "NUM", "nummod", 1, "CARDINAL"), ("companies", "company", "NOUN", "ROOT", 1, "")],
               ents=[(0, 1, "CARDINAL")])
    s = sentence(p)
    assert focus_near(question({}, focus="company"), s, cand(s, "14")) == 1.0
    assert focus_near(question({}, focus="employee"), s, cand(s, "14")) == 0.0


def test_candidate_features_are_named_and_complete() -> None:
    s = sentence(FOUNDED)
    q = question({"found": 1.0}, expected=("DATE",))
    f = candidate_features(q, s, cand(s, "1922"), align(q, s), 1.5)
    assert f["sentence"] == 1.5 and f["type_expected"] == 1.0 and f["is_entity"] == 1.0


MODEL = ComposerModel.load({
    "sentence": {"bias": -2.0, "weights": {"coverage": 6.0}},
    "candidate": {"bias": 0.0, "weights": {"type_expected": 3.0, "syntax_near": 4.0, "in_question": -3.0}},
    "answer": {"bias": -2.0, "weights": {"type_expected": 4.0, "share": 1.0}},
    "answer_threshold": 0.5, "sentences_threshold": 0.5, "conflict_share": 0.9, "more_sentences_margin": 0.1,
    "evidence_sentences": 4})


def test_roles_name_the_candidates_grammatical_role() -> None:
    s = sentence(FOUNDED)
    assert roles(s, cand(s, "1922"))["prep_object"] == 1.0 and roles(s, cand(s, "1922"))["subject"] == 0.0
    assert roles(s, cand(s, "company"))["subject"] == 1.0


def test_adjective_marks_one_word_adjective_entities() -> None:
    p = parsed([("annual", "annual", "ADJ", "amod", 1, "DATE"), ("fees", "fee", "NOUN", "ROOT", 1, "")],
               ents=[(0, 1, "DATE")])
    s = sentence(p)
    assert adjective(s, cand(s, "annual")) == 1.0 and adjective(sentence(FOUNDED), cand(sentence(FOUNDED), "1922")) == 0.0


def test_is_question_marks_a_sentence_that_asks() -> None:
    p = parsed([("Who", "who", "PRON", "nsubj", 1, ""), ("won", "win", "VERB", "ROOT", 1, ""), ("?", "?", "PUNCT", "punct", 1, "")])
    assert sentence_features(question({"win": 1.0}), sentence(p), 0.0)["is_question"] == 1.0
    assert sentence_features(question({"win": 1.0}), sentence(FOUNDED), 0.0)["is_question"] == 0.0


def test_mentions_counts_the_sentences_that_name_a_candidate() -> None:
    q = question({"found": 1.0}, expected=("DATE",))
    ranked = score_sentences(q, [sentence(FOUNDED), Sentence("doc2", 0, len(FOUNDED.text), FOUNDED.text, 0.5, 2,
                                                             FOUNDED, frozenset())], MODEL)
    assert mentions(ranked)["1922"] == 2
    spans = score_candidates(q, ranked, MODEL)
    assert spans[0].features["mentions"] > 0 and sum(sc.prob for sc in spans) == pytest.approx(1.0)


def test_candidates_take_a_money_sign_outside_the_entity_and_drop_bullets() -> None:
    p = parsed([("•Acme", "•acme", "PROPN", "nsubj", 1, "ORG"), ("paid", "pay", "VERB", "ROOT", 1, ""),
                ("$", "$", "SYM", "nmod", 3, ""), ("820,000", "820,000", "NUM", "dobj", 1, "MONEY")],
               ents=[(0, 1, "ORG"), (3, 4, "MONEY")])
    texts = {c.text: c for c in candidates(sentence(p))}
    money = texts["$ 820,000"]  # the helper joins tokens with spaces
    assert money.label == "MONEY" and money.figure is not None and money.figure.value == 820000.0
    assert "Acme" in texts and "•Acme" not in texts


def test_answer_confidence_sums_the_share_of_one_text() -> None:
    q = question({"found": 1.0}, expected=("DATE",))
    ranked = score_sentences(q, [sentence(FOUNDED)], MODEL)
    spans = score_candidates(q, ranked, MODEL)
    conf, f = answer_confidence(q, spans, MODEL)
    assert spans[0].candidate.text == "1922" and f["type_expected"] == 1.0 and 0.5 < conf < 1.0
    assert f["share"] == pytest.approx(spans[0].prob)


def test_decide_answers_the_typed_span_near_the_question_words() -> None:
    d = decide(question({"found": 1.0}, expected=("DATE",)), [sentence(FOUNDED)], MODEL, store=None)
    assert d.kind == "span" and d.best.candidate.text == "1922"


def test_decide_refuses_below_the_threshold() -> None:
    d = decide(question({"capital": 1.0}, expected=("GPE",)), [sentence(FOUNDED)], MODEL, store=None)
    assert d.kind == "refuse" and "<" in d.reason


def test_decide_refuses_when_no_sentence_names_the_asked_name() -> None:
    q = question({"found": 1.0}, expected=("DATE",), names=("globex",))
    d = decide(q, [sentence(FOUNDED)], MODEL, store=None)
    assert d.kind == "refuse" and "names" in d.reason


def test_decide_answers_descriptive_questions_with_sentences() -> None:
    q = question({"found": 1.0, "company": 1.0}, wh="why", descriptive=True)
    d = decide(q, [sentence(FOUNDED)], MODEL, store=None)
    assert d.kind == "sentences" and d.sentences[0].sentence.text == FOUNDED.text


def test_decide_with_no_evidence_refuses() -> None:
    assert decide(question({"found": 1.0}), [], MODEL, store=None).kind == "refuse"


def test_annotation_table_round_trips(tmp_path) -> None:
    raw = ([(0, 3, "the", "DET", "DT", "det", 1, "", 0, True), (4, 7, "cat", "NOUN", "NN", "ROOT", 1, "", 0, False)],
           [], [(0, 2)])
    table = AnnotationTable.pack([raw, ([], [], [])])
    table.save(tmp_path / "a.npz")
    again = AnnotationTable.load(tmp_path / "a.npz")
    assert len(again) == 2 and again.raw(0) == raw and again.raw(1) == ([], [], [])
    p = again.parsed(0, "the cat")
    assert p.span_text(p.chunks[0]) == "the cat" and p.tokens[1].pos == "NOUN"


def test_katakana_names_meet_latin_names_by_skeleton() -> None:
    assert kana_skeleton("ラピダス") == latin_skeleton("Rapidus")
    assert kana_skeleton("ソニー") != latin_skeleton("Rapidus")


def test_decide_keeps_the_asked_unit() -> None:
    """Rule: a question asked in dollars is never answered with a year, however near it stands."""
    q = question({"found": 1.0}, expected=("DATE",), unit="USD")
    assert decide(q, [sentence(FOUNDED)], MODEL, store=None).kind == "refuse"


# "Gold was found in the top row of windows , about 1300 ."
ROW = parsed([
    ("Gold", "gold", "NOUN", "nsubjpass", 2, ""), ("was", "be", "AUX", "auxpass", 2, ""),
    ("found", "find", "VERB", "ROOT", 2, ""), ("in", "in", "ADP", "prep", 2, ""),
    ("the", "the", "DET", "det", 6, ""), ("top", "top", "ADJ", "amod", 6, ""), ("row", "row", "NOUN", "pobj", 3, ""),
    ("of", "of", "ADP", "prep", 6, ""), ("windows", "window", "NOUN", "pobj", 7, ""),
    (",", ",", "PUNCT", "punct", 2, ""), ("about", "about", "ADV", "advmod", 11, "DATE"),
    ("1300", "1300", "NUM", "npadvmod", 2, "DATE"), (".", ".", "PUNCT", "punct", 2, ""),
], ents=[(10, 12, "DATE")], chunks=[(0, 1), (4, 7), (8, 9)])

# "Neptune and Triton were seen ."
MOONS = parsed([
    ("Neptune", "neptune", "PROPN", "nsubjpass", 4, ""), ("and", "and", "CCONJ", "cc", 0, ""),
    ("Triton", "triton", "PROPN", "conj", 0, ""), ("were", "be", "AUX", "auxpass", 4, ""),
    ("seen", "see", "VERB", "ROOT", 4, ""), (".", ".", "PUNCT", "punct", 4, ""),
], chunks=[(0, 1), (2, 3)])


def test_candidates_include_a_chunk_with_its_complement_or_its_conjuncts() -> None:
    kinds = {c.text: c.kind for c in candidates(sentence(ROW))}
    assert kinds["top row"] == "chunk" and kinds["top row of windows"] == "phrase"
    assert {c.text: c.kind for c in candidates(sentence(MOONS))}["Neptune and Triton"] == "phrase"


def test_candidates_hold_a_bare_figure_beside_its_hedged_entity() -> None:
    kinds = {c.text: c.kind for c in candidates(sentence(ROW))}
    assert kinds["about 1300"] == "entity" and kinds["1300"] == "figure"


def test_entity_spans_lose_a_trailing_possessive_or_preposition() -> None:
    p = parsed([("Renmin", "renmin", "PROPN", "compound", 1, "ORG"), ("University", "university", "PROPN", "poss", 3, "ORG"),
                ("'s", "'s", "PART", "case", 1, "ORG"), ("campus", "campus", "NOUN", "ROOT", 3, "")],
               ents=[(0, 3, "ORG")])
    assert "Renmin University" in {c.text for c in candidates(sentence(p))}


def test_dep_coverage_counts_question_words_two_links_away() -> None:
    s = sentence(FOUNDED)
    q = question({"found": 1.0, "company": 1.0})
    assert dep_coverage(q, s, cand(s, "1922")) == pytest.approx(0.5)  # 1922 -> in -> founded; company is 3 away
    assert dep_coverage(q, s, cand(s, "1922"), hops=3) == pytest.approx(1.0)


def test_nearest_marks_the_closest_new_candidate_and_the_closest_of_the_expected_type() -> None:
    rows = [{"in_question": 0.0, "syntax_near": 0.5, "type_expected": 0.0},
            {"in_question": 0.0, "syntax_near": 0.25, "type_expected": 1.0},
            {"in_question": 1.0, "syntax_near": 1.0, "type_expected": 1.0},
            {"in_question": 0.0, "syntax_near": 0.0, "type_expected": 1.0}]
    for f in rows:
        f.update(nearest=0.0, nearest_expected=0.0)
    nearest(rows)
    assert [f["nearest"] for f in rows] == [1.0, 0.0, 0.0, 0.0]
    assert [f["nearest_expected"] for f in rows] == [0.0, 1.0, 0.0, 0.0]


def test_a_short_answer_keeps_the_hedge_words_of_its_sentence() -> None:
    from rag.composer.decide import ScoredCandidate, ScoredSentence
    from rag.composer.render import short_text

    s = sentence(ROW)
    ss = ScoredSentence(s, {}, 0.0, 0.5)
    when = question({"find": 1.0}, expected=("DATE",))
    assert short_text(ScoredCandidate(cand(s, "1300"), ss, {}, 0.0), when) == "about 1300"
    assert short_text(ScoredCandidate(cand(s, "about 1300"), ss, {}, 0.0), when) == "about 1300"


def test_alignment_distances_give_the_same_syntax_nearness_as_a_search_per_candidate() -> None:
    for p in (FOUNDED, ROW):
        s = sentence(p)
        q = question({"found": 1.0, "company": 1.0, "row": 1.0})
        al = align(q, s)
        for c in candidates(s):
            assert syntax_near(s, c, al.matched, al.distance) == pytest.approx(syntax_near(s, c, al.matched))


def test_window_and_dependency_coverage_are_the_same_from_the_alignment() -> None:
    for p in (FOUNDED, ROW):
        s = sentence(p)
        q = question({"found": 1.0, "company": 2.0, "row": 1.0, "window": 3.0, "gold": 1.0})
        al = align(q, s)
        for c in candidates(s):
            assert dep_coverage(q, s, c, al=al) == pytest.approx(dep_coverage(q, s, c))
            assert window_coverage(q, s, c, matched=al.matched) == pytest.approx(window_coverage(q, s, c))


def test_decide_answers_with_the_best_passage_when_no_span_is_confident() -> None:
    """A likely sentence with no candidate of the expected type: the sentence answers, no span."""
    q = question({"found": 1.0}, expected=("ORG",), wh="which")
    d = decide(q, [sentence(FOUNDED)], MODEL, store=None)
    assert d.kind == "sentences" and d.best is None and d.spans and "best passage" in d.reason
    assert d.confidence == pytest.approx(d.ranked[0].prob)


def test_a_question_asking_for_a_figure_gets_no_passage_answer() -> None:
    """Rule: a figure question is answered by its figure or refused, never by sentences that leave the pick."""
    for q in (question({"found": 1.0}, expected=("MONEY",)), question({"found": 1.0}, expected=("ORG",), unit="USD")):
        d = decide(q, [sentence(FOUNDED)], MODEL, store=None)
        assert d.kind == "refuse" and "figure" in d.reason
        if d.spans:  # the refusal's confidence is the span's, not the sentence's (no passage was allowed)
            assert d.confidence == pytest.approx(answer_confidence(q, d.spans, MODEL)[0])


def test_pick_threshold_answers_only_where_answering_gains() -> None:
    from eval.fit_composer import pick_threshold

    rows = [(0.9, True, True), (0.6, False, True), (0.55, False, False)]  # (confidence, right, answerable)
    assert 0.55 < pick_threshold(rows) <= 0.9
    assert pick_threshold([(0.3, True, True)]) == 0.5  # never below 0.5


def test_passage_rows_are_the_questions_left_without_a_span() -> None:
    from eval.fit_composer import Example, Prepared, passage_rows

    ex = Example("q", [sentence(FOUNDED)], frozenset({"1922"}))
    def prepared(q: Question) -> Prepared:
        return Prepared(ex, q, score_sentences(q, [sentence(FOUNDED)], MODEL))

    plain, named = prepared(question({"found": 1.0})), prepared(question({"found": 1.0}, names=("globex",)))
    ranked = plain.ranked
    stores = {"": None}  # no article to look the names up in: the sentence's own names decide
    assert passage_rows([plain, named], {id(ex): 0.2}, 0.5, MODEL, stores) == [(ranked[0].prob, True, True)]
    assert passage_rows([plain], {id(ex): 0.9}, 0.5, MODEL, stores) == []  # answered with its span


def test_focus_table_breaks_ties_by_label() -> None:
    from eval.fit_composer import Example, focus_table

    ex = Example("q", [sentence(FOUNDED)], frozenset({"1922", "john smith"}))
    assert focus_table([(ex, question({}, focus="founder"), "set")] * 4) == {"founder": ["DATE", "PERSON"]}


def test_article_names_met_looks_through_the_whole_article_and_its_title() -> None:
    q = question({}, names=("globex",))
    assert article_names_met(q, "Acme grew. Later, Globex bought it.", None)
    assert article_names_met(q, "Acme grew.", "Globex buys Acme")
    assert not article_names_met(q, "Acme grew.", "Acme's year")
