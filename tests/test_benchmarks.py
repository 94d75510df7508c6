"""QA benchmark harness: SQuAD metrics, the seeded split, corpus building, news quizzes, and `rag eval-qa`
on tiny hand-made SQuAD and news files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from eval.benchmarks import index_name, load_bench, run
from eval.benchmarks.corpus import SourceDoc, select, split_groups, write_corpus
from eval.benchmarks.metrics import (
    QAItem,
    QARecord,
    calibration,
    contains_answer,
    exact_match,
    f1_score,
    normalize_answer,
    score_answer,
    summarize,
)
from eval.benchmarks.news import docs_for_ids, iso_date, publisher_of, quiz_bench, read_ids
from eval.benchmarks.squad import load_squad
from rag.cli import main
from rag.config import Settings
from rag.errors import ReadError

# --- SQuAD's official metrics --------------------------------------------------------------------------

def test_normalisation_is_squads() -> None:
    assert normalize_answer("The  Denver Broncos!") == "denver broncos"
    assert normalize_answer("an Apple, a day") == "apple day"
    assert normalize_answer("Theory") == "theory"  # "the" only as a whole word


@pytest.mark.parametrize(("pred", "golds", "em", "f1"), [
    ("Denver Broncos", ["Denver Broncos", "the Broncos"], 1.0, 1.0),
    ("the Broncos", ["Denver Broncos"], 0.0, 0.6667),
    ("Broncos won", ["Denver Broncos", "Broncos"], 0.0, 0.6667),
    ("", ["Denver Broncos"], 0.0, 0.0),
    ("Carolina Panthers", ["Denver Broncos"], 0.0, 0.0),
])
def test_exact_match_and_f1_take_the_best_gold(pred: str, golds: list[str], em: float, f1: float) -> None:
    assert exact_match(pred, golds) == em
    assert f1_score(pred, golds) == pytest.approx(f1, abs=1e-4)


def test_a_gold_answer_is_contained_as_whole_tokens() -> None:
    assert contains_answer("The crisis began in October 1973.", ["1973"])
    assert not contains_answer("The crisis began in October 1973.", ["197"])
    assert contains_answer("It was won by the Denver Broncos, 24-10.", ["Denver Broncos"])
    assert not contains_answer("anything", ["the"])  # normalises to nothing: never contained


ITEM = QAItem(id="q1", question="Who won?", answers=("Denver Broncos", "Broncos"), doc_ids=("SB",), group="SB")


def _answer(short: str | None, quotes: list[str], answerable: bool = True, confidence: float | None = None) -> dict:
    cites = [{"n": n, "doc_id": "SB", "quote": q, "start": 0, "end": len(q)} for n, q in enumerate(quotes, 1)]
    lead = f"{short} [1]." if short else "According to the source [1]:"
    return {"answer": lead + "\n\n" + "\n".join(f'[{c["n"]}] "{c["quote"]}" (Wikipedia)' for c in cites),
            "short_answer": short, "answerable": answerable, "citations": cites,
            "timings_ms": {"retrieve": 4.0, "compose": 1.5, "total": 5.5}, "confidence": confidence}


def test_the_claim_is_scored_and_the_first_two_quotes_are_checked() -> None:
    wrong_claim = score_answer(ITEM, _answer("Carolina Panthers", ["The Denver Broncos won."]))
    assert (wrong_claim.em, wrong_claim.f1, wrong_claim.quote_holds) == (0.0, 0.0, True)
    right = score_answer(ITEM, _answer("the Denver Broncos", ["x", "y"]))
    assert (right.em, right.quote_holds, right.compose_ms, right.total_ms) == (1.0, False, 1.5, 5.5)
    third = score_answer(ITEM, _answer(None, ["a", "b", "The Broncos won."]))
    assert not third.quote_holds and third.claim == "According to the source:"
    second = score_answer(ITEM, _answer(None, ["a", "The Broncos won."]))
    assert second.quote_holds and second.cited_gold_doc


def test_the_claim_holds_when_it_says_a_gold_answer() -> None:
    """The strict scorer's right: a short answer or a passage that says a gold answer, whatever the quotes."""
    longer = score_answer(ITEM, _answer("the Denver Broncos team", ["x"]))
    assert longer.claim_holds and longer.em == 0.0
    assert not score_answer(ITEM, _answer("Carolina Panthers", ["The Denver Broncos won."])).claim_holds
    passage = {**_answer(None, ["The Broncos won."]), "answer": "The Broncos won the game [1]."}
    assert score_answer(ITEM, passage).claim_holds
    assert not score_answer(ITEM, _answer("Broncos", ["x"], answerable=False)).claim_holds


def test_an_abstention_or_an_error_scores_zero() -> None:
    abstained = score_answer(ITEM, _answer("Denver Broncos", ["The Denver Broncos won."], answerable=False))
    assert (abstained.answered, abstained.em, abstained.f1, abstained.quote_holds) == (False, 0.0, 0.0, False)
    error = score_answer(ITEM, None, wall_ms=3.0)
    assert (error.answered, error.em, error.total_ms) == (False, 0.0, 3.0)


def test_calibration_bins_and_confident_precision() -> None:
    def rec(short: str, conf: float | None) -> QARecord:
        return QARecord(ITEM, None, score_answer(ITEM, _answer(short, ["Broncos"], confidence=conf)))

    records = [rec("Broncos", 0.95), rec("Panthers", 0.85), rec("Broncos", 0.5), rec("Broncos", 1.0),
               rec("Broncos", None), QARecord(ITEM, None, score_answer(ITEM, None), error="RuntimeError: x")]
    cal = calibration(records)
    assert (cal["answered"], cal["without_confidence"], cal["confident_n"]) == (5, 1, 3)
    assert cal["confident_em"] == pytest.approx(2 / 3, abs=1e-4)
    assert cal["confident_claim_holds"] == pytest.approx(2 / 3, abs=1e-4)
    top = cal["bins"][-1]
    assert (top["from"], top["to"], top["n"], top["em"]) == (0.9, 1.0, 2, 1.0)
    mid = next(b for b in cal["bins"] if b["from"] == 0.4)
    assert (mid["n"], mid["em"]) == (1, 1.0)
    s = summarize(records)
    assert (s["items"], s["answered"], s["errors"], s["exact_match"]) == (6, 5, 1, pytest.approx(4 / 6, abs=1e-4))
    assert s["latency_ms"]["compose_p50"] == 1.5


# --- split and selection -------------------------------------------------------------------------------

def test_the_split_is_seeded_by_group_and_order_free() -> None:
    groups = [f"a{i}" for i in range(10)]
    one, two = split_groups(groups, 7), split_groups(reversed(groups * 2), 7)
    assert one == two and len(one.tune) == 5 and not one.tune & one.measure
    assert one.tune | one.measure == set(groups)
    assert any(split_groups(groups, seed).tune != one.tune for seed in range(8, 14))


def test_select_keeps_parts_apart_and_a_smaller_limit_takes_a_prefix_of_the_sample() -> None:
    items = [QAItem(f"q{i:02d}", "?", ("x",), (f"a{i % 6}",), f"a{i % 6}") for i in range(60)]
    tune, split = select(items, lambda i: i.group, "tune", 3)
    measure, _ = select(items, lambda i: i.group, "measure", 3)
    assert {i.group for i in tune} == split.tune and {i.group for i in measure} == split.measure
    assert len(tune) + len(measure) == 60
    small, _ = select(items, lambda i: i.group, "measure", 3, limit=5)
    large, _ = select(items, lambda i: i.group, "measure", 3, limit=12)
    assert len(small) == 5 and set(small) <= set(large) and set(large) <= set(measure)
    with pytest.raises(ReadError, match="part must be one of"):
        select(items, lambda i: i.group, "train", 3)


# --- corpora on disk -------------------------------------------------------------------------------------

SQUAD = {"version": "1.1", "data": [
    {"title": "Lake_Varna", "paragraphs": [
        {"context": "Lake Varna is a freshwater lake in the north of the Tessin valley. It covers 42 square "
                    "kilometres and is 61 metres deep at its deepest point.",
         "qas": [{"id": "v1", "question": "How deep is Lake Varna at its deepest point?",
                  "answers": [{"answer_start": 0, "text": "61 metres"}, {"answer_start": 0, "text": "61 metres"}]},
                 {"id": "v2", "question": "How large is the area Lake Varna covers?",
                  "answers": [{"answer_start": 0, "text": "42 square kilometres"}]}]},
        {"context": "The lake was dammed in 1911 by the engineer Clara Moretti to supply the town of Osca.",
         "qas": [{"id": "v3", "question": "Who dammed Lake Varna?",
                  "answers": [{"answer_start": 0, "text": "Clara Moretti"}]}]}]},
    {"title": "Osca,_Tessin", "paragraphs": [
        {"context": "Osca is a market town of 8,400 people. Its weekly cheese market has been held since 1604.",
         "qas": [{"id": "o1", "question": "How many people live in Osca?",
                  "answers": [{"answer_start": 0, "text": "8,400"}]},
                 {"id": "o2", "question": "Since when has the cheese market of Osca been held?",
                  "answers": [{"answer_start": 0, "text": "1604"}, {"answer_start": 0, "text": "since 1604"}]}]}]},
]}


def squad_dir(tmp_path: Path) -> Path:
    (tmp_path / "squad").mkdir(parents=True, exist_ok=True)
    (tmp_path / "squad" / "dev-half-a.json").write_text(json.dumps(SQUAD), encoding="utf-8")
    return tmp_path


def test_squad_articles_become_titled_text_files(tmp_path: Path) -> None:
    docs, items = load_squad(squad_dir(tmp_path) / "squad" / "dev-half-a.json")
    assert [d.doc_id for d in docs] == ["Lake_Varna", "Osca_Tessin"]
    lake = docs[0]
    assert lake.title == "Lake Varna" and lake.publisher == "Wikipedia"
    assert lake.text.startswith("Lake Varna\n\nLake Varna is a freshwater lake") and "\n\nThe lake was dammed" in lake.text
    assert [i.id for i in items] == ["v1", "v2", "v3", "o1", "o2"]
    assert items[0].answers == ("61 metres",) and items[4].answers == ("1604", "since 1604")
    assert {i.group for i in items} == {"Lake_Varna", "Osca_Tessin"}
    bad = tmp_path / "bad.json"
    bad.write_text('{"data": [{"paragraphs": []}]}', encoding="utf-8")
    with pytest.raises(ReadError, match="data\\[0\\] lacks a title"):
        load_squad(bad)


def test_write_corpus_writes_text_and_sidecar_and_only_what_changed(tmp_path: Path) -> None:
    folder = tmp_path / "corpus"
    docs = [SourceDoc("a", "Alpha text.\n", "Alpha", "Wikipedia"), SourceDoc("b", "Beta.\n", "Beta", None, "2024-01-05")]
    write_corpus(folder, docs)
    assert (folder / "a.txt").read_text(encoding="utf-8") == "Alpha text.\n"
    assert json.loads((folder / "b.meta.json").read_text(encoding="utf-8")) == {"title": "Beta", "published": "2024-01-05"}
    before = (folder / "a.txt").stat().st_mtime_ns
    (folder / "stale.txt").write_text("old", encoding="utf-8")
    write_corpus(folder, docs[:1] + [SourceDoc("b", "Beta, revised.\n", "Beta")])
    assert (folder / "a.txt").stat().st_mtime_ns == before
    assert sorted(p.name for p in folder.iterdir()) == ["a.meta.json", "a.txt", "b.meta.json", "b.txt"]
    with pytest.raises(ReadError, match="no text"):
        write_corpus(folder, [SourceDoc("c", "  \n", "C")])


# --- news ------------------------------------------------------------------------------------------------

ARTICLES = [
    {"id": "n1", "url": "https://www.cnn.com/2024/01/05/x", "title": "Storm hits coast", "published": "2024/01/05",
     "text": "A storm named Helga hit the coast of Maine on Friday, cutting power to 40,000 homes."},
    {"id": "n2", "url": "https://eu.usatoday.com/story/y", "title": "Markets", "published": "2024/01/06",
     "text": "Shares of Boeing fell 8% after a door panel blew out mid-flight."},
    {"id": "n3", "url": "https://www.cnn.com/z", "title": "Budget", "published": "not a date",
     "text": "The city council approved a budget of $2.1 billion for 2025."},
    {"id": "n4", "url": "https://www.cnn.com/w", "title": "Other", "published": "2024/02/01",
     "text": "Helga weakened over Canada."},
]
QUIZZES = [
    {"question_id": "w1_0", "question_sentence": "Which state did storm Helga hit?",
     "choices": ["Maine", "Ohio", "Texas", "Utah"], "answer": ["0"], "articles": ["n1", "n4"]},
    {"question_id": "w1_1", "question_sentence": "Whose shares fell after a door panel blew out?",
     "choices": ["Airbus", "Boeing"], "answer": ["1"], "articles": ["n2"]},
    {"question_id": "w1_2", "question_sentence": "Which company did NOT lose value?",
     "choices": ["Airbus", "Boeing"], "answer": ["0"], "articles": ["n2"]},
    {"question_id": "w1_3", "question_sentence": "Which city approved a budget?",
     "choices": ["Denver", "Austin"], "answer": ["1"], "articles": ["n3"]},  # the choice is in no article
    {"question_id": "w1_4", "question_sentence": "How many homes lost power?",
     "choices": ["40,000", "4,000"], "answer": ["0"], "articles": ["n1"]},
]


def news_dir(tmp_path: Path) -> Path:
    root = tmp_path / "news-2024"
    root.mkdir(parents=True, exist_ok=True)
    with gzip.open(root / "articles.jsonl.gz", "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(a) + "\n" for a in ARTICLES)
    (root / "quizzes.jsonl").write_text("".join(json.dumps(q) + "\n" for q in QUIZZES), encoding="utf-8")
    return root


def test_news_metadata_from_the_record() -> None:
    assert publisher_of("https://www.cnn.com/2024/x") == "cnn.com" and publisher_of(None) is None
    assert iso_date("2024/01/05") == "2024-01-05" and iso_date("not a date") is None


def test_quiz_questions_need_their_answer_verbatim_in_an_article(tmp_path: Path) -> None:
    root = news_dir(tmp_path)
    docs, items = quiz_bench(root / "quizzes.jsonl", root / "articles.jsonl.gz", cap=10, seed=1)
    assert [i.id for i in items] == ["w1_0", "w1_1", "w1_4"]  # negated and answer-less quizzes left out
    assert {i.id: i.doc_ids for i in items} == {"w1_0": ("n1",), "w1_1": ("n2",), "w1_4": ("n1",)}
    assert [d.doc_id for d in docs] == ["n1", "n2"]
    assert (docs[0].publisher, docs[0].published, docs[1].publisher) == ("cnn.com", "2024-01-05", "eu.usatoday.com")
    _, capped = quiz_bench(root / "quizzes.jsonl", root / "articles.jsonl.gz", cap=1, seed=1)
    assert len({d for i in capped for d in i.doc_ids}) == 1


def test_a_quiz_corpus_of_another_size_keeps_its_own_index() -> None:
    assert index_name("news-quiz", Settings()) == "news-quiz"
    assert index_name("news-quiz", Settings(bench_news_articles=1000)) == "news-quiz-1000"
    assert index_name("squad", Settings(bench_news_articles=1000)) == "squad"


def test_corpus_ids_name_missing_articles(tmp_path: Path) -> None:
    root = news_dir(tmp_path)
    ids = tmp_path / "ids.txt"
    ids.write_text("# corpus\nn3\n\nn1  # storm\nn3\n", encoding="utf-8")
    assert read_ids(ids) == ["n3", "n1"]
    docs = docs_for_ids(root / "articles.jsonl.gz", read_ids(ids))
    assert [(d.doc_id, d.published) for d in docs] == [("n3", None), ("n1", "2024-01-05")]
    with pytest.raises(ReadError, match="1 listed article id\\(s\\) not in .*: n9"):
        docs_for_ids(root / "articles.jsonl.gz", ["n1", "n9"])


# --- real runs over tiny corpora -------------------------------------------------------------------------

def test_squad_bench_end_to_end(settings, embedder, tmp_path: Path) -> None:
    own = settings.with_overrides(bench_dir=squad_dir(tmp_path), bench_cache_dir=tmp_path / "bench", bench_seed=5)
    loaded = load_bench("squad", "all", settings=own, embedder=embedder)
    assert loaded.documents == 2 and len(loaded.items) == 5
    assert loaded.split.tune | loaded.split.measure == {"Lake_Varna", "Osca_Tessin"}
    records = run(loaded.assistant, loaded.items)
    assert [r.item.id for r in records] == [i.id for i in loaded.items] and not any(r.error for r in records)
    corpus = tmp_path / "bench" / "squad" / "corpus"
    for r in records:
        for c in r.answer["citations"]:  # quotes point into the files the harness wrote, as written
            assert (corpus / f"{c['doc_id']}.txt").read_text(encoding="utf-8")[c["start"]:c["end"]] == c["quote"]
            assert c["publisher"] == "Wikipedia"
        assert r.score.total_ms is not None and r.score.total_ms > 0
    generation = (tmp_path / "bench" / "squad" / "index" / "CURRENT").read_text()
    again = load_bench("squad", "measure", settings=own, embedder=embedder)
    assert (tmp_path / "bench" / "squad" / "index" / "CURRENT").read_text() == generation  # nothing re-ingested
    assert {i.group for i in again.items} == set(loaded.split.measure)


def test_rag_eval_qa_writes_reports(settings, embedder, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("RAG_BENCH_DIR", str(squad_dir(tmp_path)))
    monkeypatch.setenv("RAG_BENCH_CACHE_DIR", str(tmp_path / "bench"))
    monkeypatch.setenv("RAG_CACHE_DIR", str(settings.cache_dir))
    out = tmp_path / "out"
    code = main(["eval-qa", "--bench", "squad", "--part", "all", "--limit", "3", "--report", str(out),
                 "--json-out", str(tmp_path / "records.json"), "-q"])
    assert code == 0
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["run"]["seed"] == settings.bench_seed and report["summary"]["items"] == 3
    assert sorted(report["run"]["split"]["tune"] + report["run"]["split"]["measure"]) == ["Lake_Varna", "Osca_Tessin"]
    assert "quote holds @2" in (out / "report.md").read_text(encoding="utf-8")
    records = json.loads((tmp_path / "records.json").read_text(encoding="utf-8"))["records"]
    assert len(records) == 3 and all(set(r) >= {"item", "answer", "score", "error"} for r in records)
    assert "exact match" in capsys.readouterr().out
