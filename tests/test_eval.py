"""The eval harness: figure matching, item scoring, set validation, thresholds, reports, and `rag eval`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.dataset import KINDS, EvalItem, ExpectedFigure, load_set
from eval.report import write_reports
from eval.runner import HttpTarget, InProcessTarget, run_eval
from eval.scorer import (
    answer_figures,
    check_thresholds,
    claim_of,
    claims,
    figure_matched,
    load_thresholds,
    same_figure,
    score_item,
    summarize,
)
from rag.cli import main
from rag.errors import RagError, ReadError

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "eval" / "seed.jsonl"
ASRA = "000_7c53143ae9a80a5e"
REGISTER = "002_54fda2c3e1affe7a"
ASRA_TEXT = (ROOT / "corpus" / f"{ASRA}.txt").read_text(encoding="utf-8")
TEXTS = {ASRA: ASRA_TEXT, REGISTER: (ROOT / "corpus" / f"{REGISTER}.txt").read_text(encoding="utf-8")}


def doc_text(doc_id: str) -> str | None:
    return TEXTS.get(doc_id)


def citation(doc_id: str, sentence: str, n: int = 1, shift: int = 0) -> dict:
    """A citation of `sentence` with its true offsets in the document (moved by `shift` to break them)."""
    start = TEXTS[doc_id].index(sentence) + shift
    return {"n": n, "doc_id": doc_id, "title": "t", "publisher": None, "published": None,
            "quote": sentence, "start": start, "end": start + len(sentence)}


# --- figure matching: value, currency and scale -------------------------------------------------------

@pytest.mark.parametrize(("stated", "value", "unit", "equal"), [
    ("¥41 billion", 41e9, "JPY", True),
    ("41 billion yen", 41e9, "JPY", True),
    ("410億円", 41e9, "JPY", True),
    ("41 billion dollars", 41e9, "JPY", False),
    ("¥41 million", 41e9, "JPY", False),
    ("$3.07 billion", 3.07e9, "USD", True),
    ("$3.07 billion", 3.07e12, "USD", False),
    ("¥3.07 trillion", 3.07e12, "JPY", True),
    ("¥3.07 trillion", 3.07e9, "USD", False),
    ("$550b", 550e9, "USD", True),
    ("550 billion dollars", 550e9, "USD", True),
    ("US$2.5bn", 2.5e9, "USD", True),
    ("US$2.5bn", 2.5e9, "TWD", False),
    ("1万亿日元", 1e12, "JPY", True),
    ("1万亿日元", 1e8, "JPY", False),
    ("12%", 12, "%", True),
    ("12%", 12, "count", False),
    ("12 companies", 12, "count", True),
    ("12 companies", 12, "%", False),
])
def test_figure_forms_match_by_value_and_unit(stated: str, value: float, unit: str, equal: bool) -> None:
    got = answer_figures({"short_answer": f"The answer is {stated}.", "figures": []})
    assert figure_matched(ExpectedFigure(value, unit), got) is equal


def test_same_figure_is_exact_about_scale_and_unit_but_not_float_noise() -> None:
    assert same_figure(387.3e9, "JPY", 387_300_000_000, "jpy")
    assert same_figure(0.1 + 0.2, "%", 0.3, "percent")
    assert not same_figure(3.07e9, "USD", 3.07e12, "USD")
    assert not same_figure(2027, "year", 2027, "count")


def test_listed_figures_count_only_when_the_claim_states_them() -> None:
    listed = [{"text": "41 billion yen", "value": 4.1e10, "unit": "JPY", "citation": 1}]
    quote = '[1] "ASRA is set to receive 41 billion yen." (Nikkei)'
    cites = [{"n": 1, "quote": "ASRA is set to receive 41 billion yen."}]
    stated = {"short_answer": None, "figures": listed, "citations": cites,
              "answer": f"ASRA gets 41 billion yen [1].\n\n{quote}"}
    assert figure_matched(ExpectedFigure(41e9, "JPY"), answer_figures(stated))
    assert not figure_matched(ExpectedFigure(1e9, "JPY"), answer_figures(stated))
    only_quoted = {**stated, "answer": f"According to the source [1]:\n\n{quote}"}
    assert not figure_matched(ExpectedFigure(41e9, "JPY"), answer_figures(only_quoted))


# --- the claim: the short answer, or the lead text before the quotes -----------------------------------

@pytest.mark.parametrize(("text", "short", "claim"), [
    ('41 billion yen [1].\n\n[1] "Q one." (Nikkei, 2025-02-25)', None, "41 billion yen."),
    ('According to the source [1]:\n\n[1] "Q one." (Nikkei)', None, "According to the source:"),
    ('The sources differ, newest first: 41 billion yen [1] (A, 2025-02-25); 1 billion yen [2] (B).\n\n'
     '[1] "Q one." (A)\n[2] "Q two." (B)', None,
     "The sources differ, newest first: 41 billion yen (A, 2025-02-25); 1 billion yen (B)."),
    ('It cost a lot, as one source puts it: “Q one.” [1]', None, "It cost a lot, as one source puts it:"),
    ('No quote here [1][2].', None, "No quote here."),
    ('anything [1]\n\n[1] "Q one."', "  41 billion\nyen ", "41 billion yen"),
])
def test_the_claim_leaves_the_quotes_out(text: str, short: str | None, claim: str) -> None:
    cites = [{"n": 1, "quote": "Q one."}, {"n": 2, "quote": "Q two."}]
    assert claim_of({"answer": text, "short_answer": short, "citations": cites}) == claim


# --- scoring whole answers ----------------------------------------------------------------------------

SUBSIDY = "the automotive soc technology research association (asra), spearheaded by toyota, is set to receive"
SUBSIDY_SENTENCE = ASRA_TEXT[ASRA_TEXT.index(SUBSIDY):ASRA_TEXT.index("41 billion yen.") + len("41 billion yen.")]
ITEM = EvalItem(id="t1", question="How big is ASRA's new subsidy?", kind="money", lang="en", answerable=True,
                figures=(ExpectedFigure(41e9, "JPY"),), doc_ids=(ASRA,))


def answer(text: str, cites: list[dict], answerable: bool = True, short: str | None = None,
           figures: list[dict] | None = None) -> dict:
    return {"question": "q", "answer": text, "short_answer": short, "answerable": answerable,
            "citations": cites, "figures": figures or [], "conflicts": [], "related": []}


def test_a_cited_exact_answer_is_right() -> None:
    a = answer("ASRA's subsidy jumps to 41 billion yen [1].", [citation(ASRA, SUBSIDY_SENTENCE)],
               short="41 billion yen")
    s = score_item(ITEM, a, doc_text, ranked_docs=[ASRA, REGISTER], k=3)
    assert s.right and s.citation_ok and s.quotes_exact and s.faithful
    assert (s.recall, s.reciprocal_rank) == (1.0, 1.0)


def test_wrong_scale_wrong_source_bad_offsets_each_make_a_miss() -> None:
    good_cite = citation(ASRA, SUBSIDY_SENTENCE)
    wrong_scale = score_item(ITEM, answer("41 trillion yen [1]", [good_cite], short="41 trillion yen"), doc_text)
    assert not wrong_scale.right and "figure 41,000,000,000 JPY not stated in the claim" in wrong_scale.reasons
    other_doc = citation(REGISTER, "350 billion yen ($2.38 billion)")
    wrong_doc = score_item(ITEM, answer("41 billion yen [1]", [other_doc], short="41 billion yen"), doc_text)
    assert not wrong_doc.right and not wrong_doc.citation_ok
    shifted = score_item(ITEM, answer("41 billion yen [1]", [citation(ASRA, SUBSIDY_SENTENCE, shift=1)],
                                      short="41 billion yen"), doc_text)
    assert not shifted.right and not shifted.quotes_exact


def test_a_right_quote_with_a_wrong_claim_scores_wrong_but_holds() -> None:
    cite = [citation(ASRA, SUBSIDY_SENTENCE)]
    wrong = score_item(ITEM, answer("ASRA gets 1 billion yen [1].", cite, short="1 billion yen"), doc_text)
    assert not wrong.right and wrong.quote_holds and wrong.claim == "1 billion yen | ASRA gets 1 billion yen."
    assert "a cited quote holds the answer" in wrong.reasons
    quote_only = score_item(ITEM, answer(f'According to the source [1]:\n\n[1] "{SUBSIDY_SENTENCE}" (Nikkei)', cite),
                            doc_text)
    assert not quote_only.right and quote_only.quote_holds and quote_only.claim == "According to the source:"
    right = score_item(ITEM, answer("41 billion yen [1].", cite, short="41 billion yen"), doc_text)
    assert right.right and right.quote_holds


def test_a_conflict_lead_claims_every_value_its_short_answer_does_not() -> None:
    yen = "350 billion yen ($2.38 billion)"
    item = EvalItem(id="c", question="q", kind="conflict", lang="en", answerable=True,
                    figures=(ExpectedFigure(41e9, "JPY"), ExpectedFigure(350e9, "JPY")), doc_ids=(ASRA, REGISTER))
    cites = [citation(ASRA, SUBSIDY_SENTENCE), citation(REGISTER, yen, n=2)]
    quotes = f'\n\n[1] "{SUBSIDY_SENTENCE}" (A)\n[2] "{yen}" (B)'
    lead = "The sources differ, newest first: 41 billion yen [1] (A); 350 billion yen [2] (B)."
    both = score_item(item, answer(lead + quotes, cites, short="41 billion yen"), doc_text)
    assert both.right and claims({"answer": lead + quotes, "citations": cites, "short_answer": "41 billion yen"}) == [
        "41 billion yen", "The sources differ, newest first: 41 billion yen (A); 350 billion yen (B)."]
    one = score_item(item, answer("41 billion yen [1]." + quotes, cites, short="41 billion yen"), doc_text)
    assert not one.right and one.figures_matched == [True, False] and one.quote_holds


def test_expected_text_counts_in_the_claim_only() -> None:
    item = EvalItem(id="who", question="Who leads ASRA?", kind="organization", lang="en", answerable=True,
                    text=("Toyota",), doc_ids=(ASRA,))
    cite = [citation(ASRA, SUBSIDY_SENTENCE)]
    named_in_quote = score_item(item, answer(f'Honda [1].\n\n[1] "{SUBSIDY_SENTENCE}" (Nikkei)', cite,
                                             short="Honda"), doc_text)
    assert not named_in_quote.right and named_in_quote.quote_holds
    assert named_in_quote.reasons == ["text 'Toyota' not in the claim", "a cited quote holds the answer"]
    named = score_item(item, answer(f'Toyota [1].\n\n[1] "{SUBSIDY_SENTENCE}" (Nikkei)', cite), doc_text)
    assert named.right and named.claim == "Toyota."
    other_quote = [citation(REGISTER, "350 billion yen ($2.38 billion)")]
    assert score_item(item, answer("Toyota [1]", other_quote, short="Toyota"), doc_text).quote_holds is False


def test_a_figure_not_in_any_quote_is_unfaithful() -> None:
    a = answer("ASRA gets 41 billion yen [1], about $270 million.", [citation(ASRA, SUBSIDY_SENTENCE)],
               short="41 billion yen")
    s = score_item(ITEM, a, doc_text)
    assert s.right and not s.faithful and s.unsupported == ["$270 million"]


def test_conflict_items_need_every_value_and_every_source() -> None:
    yen = "350 billion yen ($2.38 billion)"
    item = EvalItem(id="c", question="q", kind="conflict", lang="en", answerable=True,
                    figures=(ExpectedFigure(41e9, "JPY"), ExpectedFigure(350e9, "JPY")), doc_ids=(ASRA, REGISTER))
    both = answer("41 billion yen [1] vs 350 billion yen [2]",
                  [citation(ASRA, SUBSIDY_SENTENCE), citation(REGISTER, yen, n=2)],
                  figures=[{"text": "41 billion yen", "value": 41e9, "unit": "JPY", "citation": 1},
                           {"text": "350 billion yen", "value": 350e9, "unit": "JPY", "citation": 2}])
    assert score_item(item, both, doc_text).right
    one = answer("41 billion yen [1]", [citation(ASRA, SUBSIDY_SENTENCE)], short="41 billion yen")
    s = score_item(item, one, doc_text)
    assert not s.right and not s.citation_ok and s.figures_matched == [True, False]


def test_abstention_is_right_only_when_the_sources_cannot_answer() -> None:
    unanswerable = EvalItem(id="u", question="How many staff?", kind="unanswerable", lang="en", answerable=False)
    abstain = answer("The sources do not say.", [], answerable=False)
    assert score_item(unanswerable, abstain, doc_text).right
    assert not score_item(ITEM, abstain, doc_text).right
    assert not score_item(unanswerable, answer("41 billion yen [1]", [citation(ASRA, SUBSIDY_SENTENCE)]),
                          doc_text).right


def test_summary_metrics_count_the_right_things() -> None:
    unanswerable = EvalItem(id="u", question="q", kind="unanswerable", lang="en", answerable=False)
    scores = [score_item(ITEM, answer("41 billion yen [1]", [citation(ASRA, SUBSIDY_SENTENCE)],
                                      short="41 billion yen"), doc_text, [REGISTER, ASRA], 3),
              score_item(ITEM, answer("no", [], answerable=False), doc_text, [REGISTER], 3),
              score_item(unanswerable, answer("no", [], answerable=False), doc_text)]
    s = summarize(scores, k=3)
    assert (s["accuracy"], s["answerable_accuracy"], s["abstention_accuracy"]) == (0.6667, 0.5, 1.0)
    assert (s["quote_holds"], s["errors"]) == (0.5, 0)
    assert (s["recall_at_k"], s["mrr"], s["figure_accuracy"]) == (0.5, 0.25, 0.5)


def test_confident_answers_are_counted_and_binned() -> None:
    from eval.scorer import calibration_bins

    cite = [citation(ASRA, SUBSIDY_SENTENCE)]

    def scored(short: str, confidence: float | None) -> object:
        return score_item(ITEM, {**answer(f"{short} [1].", cite, short=short), "confidence": confidence}, doc_text)

    scores = [scored("41 billion yen", 0.95), scored("1 billion yen", 0.85), scored("41 billion yen", 1.0),
              scored("41 billion yen", 0.3), scored("41 billion yen", None)]
    s = summarize(scores, k=3)
    assert (s["confident_answers"], s["confident_precision"]) == (3, 0.6667)
    bins = {b["from"]: (b["n"], b["right"]) for b in calibration_bins(scores)}
    assert bins[0.9] == (2, 2) and bins[0.8] == (1, 0) and bins[0.2] == (1, 1) and bins[0.0] == (0, 0)


# --- eval sets and thresholds -------------------------------------------------------------------------

def test_seed_set_is_well_formed_and_covers_the_required_cases() -> None:
    items = load_set(SEED)
    corpus_ids = {p.stem for p in (ROOT / "corpus").glob("*.txt")}
    assert len(items) >= 60
    assert all(set(i.doc_ids) <= corpus_ids for i in items)
    assert 8 <= sum(not i.answerable for i in items) <= 15
    assert {i.lang for i in items} >= {"en", "zh", "ja"}
    assert {i.kind for i in items} == set(KINDS)
    conflicts = [i for i in items if i.kind == "conflict"]
    assert conflicts and all(len(i.figures) >= 2 and len(i.doc_ids) >= 2 for i in conflicts)
    # expected figures come from the articles: each value is stated in one of its documents
    from rag.figures import extract_figures

    for i in items:
        stated = [q for d in i.doc_ids for q in extract_figures(TEXTS.get(d) or (ROOT / "corpus" / f"{d}.txt")
                                                                .read_text(encoding="utf-8"))]
        for f in i.figures:
            assert any(same_figure(f.value, f.unit, q.value, q.unit) for q in stated), (i.id, f)


@pytest.mark.parametrize(("line", "message"), [
    ('{"id": "a", "question": "q", "answerable": true, "kind": "money", "doc_ids": ["d"]', "not valid JSON"),
    ('{"id": "a", "question": "q", "answerable": "yes", "kind": "money"}', "'answerable' must be true or false"),
    ('{"id": "a", "question": "q", "answerable": true, "kind": "cash", "doc_ids": ["d"]}', "'kind' must be one of"),
    ('{"id": "a", "question": "q", "answerable": true, "kind": "money", "doc_ids": ["d"], '
     '"figures": [{"value": "41", "unit": "JPY"}]}', "figures[0] must be"),
    ('{"id": "a", "question": "q", "answerable": false, "kind": "unanswerable", "text": ["x"]}', "must not expect"),
])
def test_bad_eval_lines_are_named(tmp_path: Path, line: str, message: str) -> None:
    good = '{"id": "z", "question": "q", "answerable": false, "kind": "unanswerable"}'
    path = tmp_path / "set.jsonl"
    path.write_text(good + "\n\n" + line + "\n", encoding="utf-8")
    with pytest.raises(ReadError, match=r"set\.jsonl:3: ") as err:
        load_set(path)
    assert message in str(err.value)


def test_thresholds_name_the_metric_value_and_minimum(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text("[thresholds]\nanswerable_accuracy = 0.8\nfaithfulness = 0.5\n", encoding="utf-8")
    failures = check_thresholds({"answerable_accuracy": 0.75, "faithfulness": 0.9}, load_thresholds(path))
    assert [f.message() for f in failures] == ["answerable_accuracy 0.7500 is below the threshold 0.8000"]
    path.write_text("[thresholds]\naccuracyy = 0.8\n", encoding="utf-8")
    with pytest.raises(ReadError, match="unknown metric.*accuracyy"):
        check_thresholds({"accuracy": 1.0}, load_thresholds(path))


def test_the_shipped_thresholds_name_real_metrics() -> None:
    from eval.cli import DEFAULT_THRESHOLDS

    thresholds = load_thresholds(DEFAULT_THRESHOLDS)
    assert thresholds and all(0 < v <= 1 for v in thresholds.values())
    failures = check_thresholds(summarize([], k=3), thresholds)  # nothing measured: every one fails
    assert sorted(f.metric for f in failures) == sorted(thresholds)


# --- real runs over the seed corpus -------------------------------------------------------------------

def small_set(tmp_path: Path, n_answerable: int = 6) -> Path:
    """A few seed items of different kinds, plus two unanswerable ones, in a file of their own."""
    lines = SEED.read_text(encoding="utf-8").splitlines()
    items = [json.loads(x) for x in lines]
    chosen, kinds = [], set()
    for it in items:
        if it["answerable"] and it["kind"] not in kinds and len(chosen) < n_answerable:
            chosen.append(it)
            kinds.add(it["kind"])
    chosen += [it for it in items if not it["answerable"]][:2]
    path = tmp_path / "small.jsonl"
    path.write_text("".join(json.dumps(it, ensure_ascii=False) + "\n" for it in chosen), encoding="utf-8")
    return path


def test_two_runs_give_identical_scores_and_reports(seed_assistant, tmp_path: Path) -> None:
    items = load_set(small_set(tmp_path))
    target = InProcessTarget(seed_assistant)
    first = run_eval(items, target, "small.jsonl")
    second = run_eval(items, target, "small.jsonl")
    assert first.score_section() == second.score_section()
    write_reports(first, tmp_path / "a")
    write_reports(second, tmp_path / "b")
    a = json.loads((tmp_path / "a" / "report.json").read_text(encoding="utf-8"))
    b = json.loads((tmp_path / "b" / "report.json").read_text(encoding="utf-8"))
    assert a["scores"] == b["scores"] and a["scores"]["summary"]["items"] == len(items)
    md = (tmp_path / "a" / "report.md").read_text(encoding="utf-8")
    assert md.split("## Latency")[0] == (tmp_path / "b" / "report.md").read_text(encoding="utf-8").split("## Latency")[0]
    for i in a["scores"]["items"]:
        assert (i["id"] in md) is (not i["right"]) or i["id"] in md.split("## Misses")[1]
    assert (tmp_path / "a" / "accuracy_by_kind.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _cli_args(settings, *extra: str) -> list[str]:
    return ["eval", "--index", str(settings.index_dir), "--corpus", str(settings.corpus_dir), *extra]


def test_rag_eval_fails_below_a_threshold(seed_assistant, settings, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("RAG_CACHE_DIR", str(settings.cache_dir))
    small = small_set(tmp_path)
    strict = tmp_path / "strict.toml"
    strict.write_text("[thresholds]\nanswerable_accuracy = 1.01\n", encoding="utf-8")
    assert main(_cli_args(settings, "--set", str(small), "--thresholds", str(strict))) == 1
    err = capsys.readouterr().err
    assert "eval failed: answerable_accuracy" in err and "below the threshold 1.0100" in err
    lenient = tmp_path / "lenient.toml"
    lenient.write_text("[thresholds]\nanswerable_accuracy = 0.0\n", encoding="utf-8")
    out_dir = tmp_path / "reports"
    assert main(_cli_args(settings, "--set", str(small), "--thresholds", str(lenient), "--report", str(out_dir))) == 0
    assert {p.name for p in out_dir.iterdir()} == {"report.json", "report.md", "accuracy_by_kind.png"}


def test_rag_eval_names_a_bad_set_line(settings, tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "question": "q", "answerable": maybe}\n', encoding="utf-8")
    assert main(_cli_args(settings, "--set", str(bad))) == 2
    assert "bad.jsonl:1: not valid JSON" in capsys.readouterr().err


def test_http_run_scores_like_the_in_process_run(seed_assistant, tmp_path: Path) -> None:
    from http_helpers import running_server

    from api.app import create_app

    target = InProcessTarget(seed_assistant)
    seed = load_set(SEED)
    # answered items exercise citations and GET /sources; one unanswerable item exercises abstention
    answered = [i for i in seed if i.answerable and target.ask(i)["citations"]][:3]
    items = answered + [i for i in seed if not i.answerable][:1]
    assert len(answered) == 3
    local = run_eval(items, target, "seed.jsonl")
    with running_server(create_app(seed_assistant)) as url:
        remote = run_eval(items, HttpTarget(url), "seed.jsonl")
    assert all(s.quotes_exact and s.cited_docs for s in remote.scores[:3])
    strip = ("recall", "reciprocal_rank")
    assert ([{k: v for k, v in s.to_dict().items() if k not in strip} for s in remote.scores]
            == [{k: v for k, v in s.to_dict().items() if k not in strip} for s in local.scores])


def test_http_target_reports_an_unreachable_service() -> None:
    item = EvalItem(id="x", question="q", kind="unanswerable", lang="en", answerable=False)
    with pytest.raises(RagError, match="cannot reach http://127.0.0.1:9/ask"):
        HttpTarget("http://127.0.0.1:9", timeout=2).ask(item)


# --- a crash is an error, never an abstention ------------------------------------------------------------

class FaultyAssistant:
    """The real seed Assistant with an injected fault: asking about `trigger` raises, as a composer bug would."""

    def __init__(self, real, trigger: str) -> None:
        self.real, self.trigger = real, trigger

    def __getattr__(self, name: str):
        return getattr(self.real, name)

    def ask(self, question: str, **kwargs):
        if question == self.trigger:
            raise ZeroDivisionError("injected fault")
        return self.real.ask(question, **kwargs)


def test_an_exception_in_ask_is_an_error_not_an_abstention(seed_assistant) -> None:
    seed = load_set(SEED)
    unanswerable = next(i for i in seed if not i.answerable)
    answerable = next(i for i in seed if i.answerable and not i.history)
    run = run_eval([unanswerable, answerable], InProcessTarget(FaultyAssistant(seed_assistant, unanswerable.question)),
                   "seed.jsonl")
    crashed = next(s for s in run.scores if s.id == unanswerable.id)
    assert not crashed.right and not crashed.abstained and crashed.error == "ZeroDivisionError: injected fault"
    assert [s.id for s in run.errors()] == [unanswerable.id] and run.summary()["errors"] == 1
    assert run.summary()["abstention_accuracy"] == 0.0


def test_rag_eval_over_http_exits_1_on_a_server_error(seed_assistant, tmp_path: Path, capsys) -> None:
    from http_helpers import running_server

    from api.app import create_app

    small = small_set(tmp_path)
    items = load_set(small)
    victim = items[0]
    lenient = tmp_path / "lenient.toml"
    lenient.write_text("[thresholds]\nanswerable_accuracy = 0.0\n", encoding="utf-8")
    with running_server(create_app(FaultyAssistant(seed_assistant, victim.question),
                                   settings=seed_assistant.settings)) as url:
        code = main(["eval", "--url", url, "--set", str(small), "--thresholds", str(lenient),
                     "--report", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 1, err
    assert f"eval error: {victim.id}: ServiceError: HTTP 500" in err and "1 question(s) raised an error" in err
    md = (tmp_path / "r" / "report.md").read_text(encoding="utf-8")
    assert "## Errors (1)" in md and f"| {victim.id} |" in md.split("## Errors (1)")[1].split("##")[0]


# --- a set over a corpus built from news article ids, one part at a time --------------------------------

NEWS = [
    {"id": "n24-a", "url": "https://www.cnn.com/2024/03/01/a", "title": "Harbour bridge reopens",
     "published": "2024/03/01",
     "text": "The Eastside harbour bridge reopened on Friday after repairs costing $48 million. Mayor Ruth Olsen "
             "said 30,000 vehicles cross it every day."},
    {"id": "n24-b", "url": "https://eu.usatoday.com/story/b", "title": "Orchard harvest", "published": "2024/09/12",
     "text": "Apple growers in the valley picked 12% more fruit this year than last. The cooperative employs "
             "350 seasonal workers."},
]


def _news_set(tmp_path: Path) -> tuple[Path, Path, Path]:
    import gzip

    arts = tmp_path / "articles.jsonl.gz"
    with gzip.open(arts, "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(a) + "\n" for a in NEWS)
    ids = tmp_path / "corpus_ids.txt"
    ids.write_text("n24-a\nn24-b\n", encoding="utf-8")
    rows = [
        {"id": "a1", "question": "How much did the bridge repairs cost?", "kind": "money", "answerable": True,
         "figures": [{"value": 48e6, "unit": "USD"}], "doc_ids": ["n24-a"], "group": "n24-a"},
        {"id": "a2", "question": "How many vehicles cross the harbour bridge each day?", "kind": "count",
         "answerable": True, "figures": [{"value": 30000, "unit": "count"}], "doc_ids": ["n24-a"], "group": "n24-a"},
        {"id": "b1", "question": "How many seasonal workers does the cooperative employ?", "kind": "count",
         "answerable": True, "figures": [{"value": 350, "unit": "count"}], "doc_ids": ["n24-b"], "group": "n24-b"},
    ]
    qs = tmp_path / "questions.jsonl"
    qs.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return qs, ids, arts


def test_rag_eval_over_a_corpus_of_news_ids_by_part(settings, tmp_path: Path, monkeypatch, capsys) -> None:
    from eval.benchmarks.corpus import split_groups

    monkeypatch.setenv("RAG_CACHE_DIR", str(settings.cache_dir))
    monkeypatch.setenv("RAG_BENCH_CACHE_DIR", str(tmp_path / "bench"))
    qs, ids, arts = _news_set(tmp_path)
    lenient = tmp_path / "lenient.toml"
    lenient.write_text("[thresholds]\nanswerable_accuracy = 0.0\n", encoding="utf-8")
    split = split_groups(["n24-a", "n24-b"], settings.bench_seed)
    for part in ("tune", "measure"):
        out = tmp_path / part
        assert main(["eval", "--set", str(qs), "--corpus-ids", str(ids), "--articles", str(arts), "--part", part,
                     "--thresholds", str(lenient), "--report", str(out)]) == 0
        report = json.loads((out / "report.json").read_text(encoding="utf-8"))["scores"]
        groups = getattr(split, part)
        assert {i["id"][0] for i in report["items"]} == {g[-1] for g in groups}
        assert all(s["quotes_exact"] for s in report["items"])
    built = next((tmp_path / "bench").glob("news2024-*/corpus"))
    assert sorted(p.name for p in built.iterdir()) == ["n24-a.meta.json", "n24-a.txt", "n24-b.meta.json", "n24-b.txt"]
    assert json.loads((built / "n24-b.meta.json").read_text(encoding="utf-8"))["publisher"] == "eu.usatoday.com"
    ids.write_text("n24-b\n", encoding="utf-8")  # a1 and a2 expect n24-a, which the list no longer has
    capsys.readouterr()
    assert main(["eval", "--set", str(qs), "--corpus-ids", str(ids), "--articles", str(arts)]) == 2
    assert "error: item a1 expects document(s) not in" in capsys.readouterr().err
