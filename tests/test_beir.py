"""BEIR harness: metrics on a hand-computed example, the TREC run format, and `rag eval-retrieval` end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from eval.beir import evaluate, load_qrels, mrr_at_k, ndcg_at_k, recall_at_k, write_trec_run
from rag.cli import main
from rag.errors import ReadError

JUDGED = {"a": 2, "c": 1, "x": 1, "n": 0}  # "n" judged not relevant
RANKED = ["b", "a", "c", "d", "n"]


def test_ndcg_uses_graded_gain_log2_discount_and_the_ideal_from_judgments() -> None:
    dcg = 0 + 2 / math.log2(3) + 1 / math.log2(4)  # b (unjudged), a (2), c (1), d, n (0)
    idcg = 2 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)  # ideal order: a, c, x
    assert ndcg_at_k(RANKED, JUDGED, 10) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(RANKED, JUDGED, 10) == pytest.approx(0.56273, abs=1e-5)
    assert ndcg_at_k(RANKED, JUDGED, 1) == 0.0
    assert ndcg_at_k(["a", "c", "x"], JUDGED, 10) == pytest.approx(1.0)


def test_recall_and_mrr_at_cutoffs() -> None:
    assert recall_at_k(RANKED, JUDGED, 100) == pytest.approx(2 / 3)
    assert recall_at_k(RANKED, JUDGED, 2) == pytest.approx(1 / 3)
    assert mrr_at_k(RANKED, JUDGED, 10) == 0.5
    assert mrr_at_k(RANKED, JUDGED, 1) == 0.0


def test_queries_without_results_count_as_zero_and_only_judged_queries_count() -> None:
    qrels = {"q1": JUDGED, "q2": {"z": 1}}
    run = {"q1": [(d, 1.0 / (i + 1)) for i, d in enumerate(RANKED)], "q9": [("z", 1.0)]}
    m = evaluate(run, qrels)
    assert m["ndcg@10"] == round(ndcg_at_k(RANKED, JUDGED) / 2, 4)
    assert m["recall@100"] == round((2 / 3) / 2, 4)
    assert m["mrr@10"] == 0.25


def test_trec_run_file_format(tmp_path: Path) -> None:
    path = tmp_path / "run.trec"
    write_trec_run({"q2": [("d9", 1.5), ("d1", 0.25)], "q10": [("d3", 2.0)]}, path, tag="rag-hybrid")
    assert path.read_text(encoding="utf-8") == (
        "q10 Q0 d3 1 2.000000 rag-hybrid\n"
        "q2 Q0 d9 1 1.500000 rag-hybrid\n"
        "q2 Q0 d1 2 0.250000 rag-hybrid\n")


def test_qrels_skip_the_header_and_name_a_bad_row(tmp_path: Path) -> None:
    path = tmp_path / "test.tsv"
    path.write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t2\n", encoding="utf-8")
    assert load_qrels(path) == {"q1": {"d1": 1, "d2": 2}}
    path.write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\n", encoding="utf-8")
    with pytest.raises(ReadError, match=r"test\.tsv:3: expected 'query-id corpus-id score'"):
        load_qrels(path)


DOCS = [
    ("d0", "Volcanic ash over Iceland", "The eruption sent volcanic ash across Iceland and grounded flights."),
    ("d1", "Coral reef bleaching", "Warm seas bleach coral reefs; the Great Barrier Reef lost much coral."),
    ("d2", "Honeybee decline", "Pesticides called neonicotinoids harm honeybee colonies and pollination."),
    ("d3", "Sourdough baking", "A sourdough starter ferments flour and water with wild yeast."),
    ("d4", "Chess openings", "The Sicilian Defence is a sharp chess opening for Black."),
    ("d5", "Glacier retreat", "Alpine glaciers retreat as summers warm, exposing bare rock."),
    ("d6", "Bee navigation", "Honeybees navigate by the sun and dance to tell the colony where food is."),
    ("d7", "Honeybee decline", "Pesticides called neonicotinoids harm honeybee colonies and pollination."),
    ("d8", "Espresso", "Espresso forces hot water through finely ground coffee at high pressure."),
    ("d9", "Reef fish", "Parrotfish graze algae on coral reefs and help the reef recover."),
]
QUERIES = [("q1", "why are honeybee colonies dying from pesticides"),
           ("q2", "coral reef bleaching in warm seas"),
           ("q3", "volcanic ash eruption grounded flights")]
QRELS = [("q1", "d2", 2), ("q1", "d6", 1), ("q1", "d7", 1), ("q2", "d1", 2), ("q2", "d9", 1), ("q3", "d0", 1)]


def write_beir(root: Path, bad_line: int | None = None) -> Path:
    (root / "qrels").mkdir(parents=True)
    lines = [json.dumps({"_id": i, "title": t, "text": x}) for i, t, x in DOCS]
    if bad_line is not None:
        lines[bad_line - 1] = '{"_id": "broken", "text": "no closing brace"'
    (root / "corpus.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in QUERIES),
                                        encoding="utf-8")
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in QRELS), encoding="utf-8")
    return root


def test_eval_retrieval_end_to_end(tmp_path: Path, settings, capsys, monkeypatch) -> None:
    monkeypatch.setenv("RAG_CACHE_DIR", str(settings.cache_dir))
    root = write_beir(tmp_path / "tiny")
    run_file = tmp_path / "out" / "run.trec"
    code = main(["eval-retrieval", "--beir", str(root), "--index", str(tmp_path / "idx"), "--run-out",
                 str(run_file), "-k", "5", "--mode", "hybrid", "-q"])
    assert code == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in run_file.read_text(encoding="utf-8").splitlines()]
    assert {r[0] for r in rows} == {"q1", "q2", "q3"} and all(len(r) == 6 and r[1] == "Q0" for r in rows)
    for qid in ("q1", "q2", "q3"):
        mine = [r for r in rows if r[0] == qid]
        assert [int(r[3]) for r in mine] == list(range(1, len(mine) + 1)) and len(mine) == 5
        scores = [float(r[4]) for r in mine]
        assert scores == sorted(scores, reverse=True) and all(r[5] == "rag-hybrid" for r in mine)
        assert len({r[2] for r in mine}) == 5  # one line per document, chunks aggregated
    top = {r[0]: r[2] for r in rows if r[3] == "1"}
    assert top == {"q1": "d2", "q2": "d1", "q3": "d0"}
    # d7 is a byte-identical copy of d2 that ingest folds away: it still ranks, right after d2, same score
    q1 = [r for r in rows if r[0] == "q1"]
    assert q1[1][2] == "d7" and q1[1][4] == q1[0][4]
    # the printed metrics are the standard ones computed from the run file
    run = {q: [(r[2], float(r[4])) for r in rows if r[0] == q] for q in ("q1", "q2", "q3")}
    qrels: dict[str, dict[str, int]] = {}
    for q, d, s in QRELS:
        qrels.setdefault(q, {})[d] = s
    m = evaluate(run, qrels)
    assert m["mrr@10"] == 1.0 and m["recall@100"] == 1.0
    assert f"{m['ndcg@10']:.4f}" in out and "nDCG@10" in out
    # a second run reuses the index (incremental ingest) and gives the same run file
    before = run_file.read_text(encoding="utf-8")
    assert main(["eval-retrieval", "--beir", str(root), "--index", str(tmp_path / "idx"), "--run-out",
                 str(run_file), "-k", "5", "-q"]) == 0
    assert run_file.read_text(encoding="utf-8") == before


def test_a_malformed_corpus_line_is_named(tmp_path: Path, settings, capsys) -> None:
    root = write_beir(tmp_path / "bad", bad_line=4)
    code = main(["eval-retrieval", "--beir", str(root), "--index", str(tmp_path / "idx"), "-q"])
    err = capsys.readouterr().err
    assert code == 2
    assert "corpus.jsonl line 4: not valid JSON" in err
    assert not (tmp_path / "idx").exists()  # nothing was indexed
