"""`rag eval` (answer accuracy on an eval set), `rag eval-retrieval` (BEIR retrieval metrics) and `rag eval-qa`
(QA benchmarks: SQuAD, news quizzes)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eval.benchmarks.corpus import PARTS
from rag.errors import ReadError

if TYPE_CHECKING:
    from eval.dataset import EvalItem
    from rag.config import Settings

HERE = Path(__file__).resolve().parent
DEFAULT_SET = HERE / "seed.jsonl"
DEFAULT_THRESHOLDS = HERE / "thresholds.toml"


def _display(path: Path) -> str:
    """A path as shown in reports: relative to the working folder when inside it, so reports are portable."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _eval(args: argparse.Namespace) -> int:
    from eval.dataset import load_set
    from eval.report import print_report, write_reports
    from eval.runner import HttpTarget, InProcessTarget, run_eval
    from eval.scorer import check_thresholds, load_thresholds
    from rag.cli import settings_from

    items = load_set(args.set)
    thresholds = load_thresholds(args.thresholds) if args.thresholds else {}
    settings = settings_from(args)
    if args.part != "all":
        items = select_part(items, args.part, settings.bench_seed)
    set_name = _display(args.set) + ("" if args.part == "all" else f" ({args.part} part)")
    if args.url:
        if args.corpus_ids:
            raise ReadError("--corpus-ids builds a local corpus; it cannot be combined with --url")
        target = HttpTarget(args.url, api_key=settings.api_key or None)
    elif args.corpus_ids:
        target = InProcessTarget(corpus_assistant(args.corpus_ids, items, settings, args.articles))
    else:
        from rag.assistant import Assistant

        target = InProcessTarget(Assistant.open(settings))
    run = run_eval(items, target, set_name=set_name, k=args.k)
    failures = check_thresholds(run.summary(), thresholds)
    print_report(run)
    if args.report:
        for path in write_reports(run, args.report, failures):
            print(f"wrote {path}")
    for f in failures:
        print(f"eval failed: {f.message()} ({_display(args.thresholds)})", file=sys.stderr)
    errors = run.errors()
    for s in errors:
        print(f"eval error: {s.id}: {s.error}", file=sys.stderr)
    if errors:
        print(f"eval failed: {len(errors)} question(s) raised an error instead of answering", file=sys.stderr)
    return 1 if failures or errors else 0


def select_part(items: list[EvalItem], part: str, seed: int) -> list[EvalItem]:
    """The items of one part of a set, split by their `group` (the article they were written from; an item
    without one is its own group) with the benchmarks' seeded split."""
    from eval.benchmarks.corpus import select

    chosen, _ = select(items, lambda i: i.group or i.id, part, seed)
    if not chosen:
        raise ReadError(f"the {part} part of the set is empty")
    return chosen


def corpus_assistant(ids_file: Path, items: list[EvalItem], settings: Settings, articles: Path | None) -> Any:
    """An Assistant over the news articles listed in `ids_file`; every item's documents must be listed."""
    from eval.benchmarks.news import open_id_corpus, read_ids

    ids = read_ids(ids_file)
    known = set(ids)
    for item in items:
        missing = [d for d in item.doc_ids if d not in known]
        if missing:
            raise ReadError(f"item {item.id} expects document(s) not in {ids_file}: {', '.join(missing)}")
    return open_id_corpus(ids, settings, articles)


def register_eval(subparsers: argparse._SubParsersAction) -> None:
    from rag.cli import add_common

    p = subparsers.add_parser("eval", help="score answers on an eval set: figures, units, citations, abstention")
    p.add_argument("--set", type=Path, default=DEFAULT_SET, help="eval set JSONL (default: eval/seed.jsonl)")
    p.add_argument("--url", help="evaluate a running service at this URL instead of in-process")
    p.add_argument("--report", type=Path, help="write report.json, report.md and a chart to this folder")
    p.add_argument("--thresholds", type=Path, default=DEFAULT_THRESHOLDS,
                   help="TOML of metric minimums; exit 1 below any (default: eval/thresholds.toml)")
    p.add_argument("-k", type=int, default=3, help="documents counted for recall@k and MRR (default 3)")
    p.add_argument("--part", choices=PARTS, default="all",
                   help="items of the tuning or measuring half, split by their `group` (seeded by RAG_BENCH_SEED)")
    p.add_argument("--corpus-ids", type=Path,
                   help="build the corpus from these news article ids (one a line) into its own index")
    p.add_argument("--articles", type=Path,
                   help="articles.jsonl(.gz) the ids refer to (default: RAG_BENCH_DIR/news-2024/articles.jsonl.gz)")
    add_common(p)
    p.set_defaults(func=_eval)


def _eval_retrieval(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from eval.beir import default_index_dir, run_beir
    from rag.cli import settings_from

    if args.k < 1:
        print("error: -k must be at least 1", file=sys.stderr)
        return 2
    settings = settings_from(args)
    index_dir = args.index_dir or default_index_dir(args.beir)
    result = run_beir(args.beir, settings, mode=args.mode, index_dir=index_dir, k=args.k,
                      run_out=args.run_out, progress=not args.quiet)
    table = Table(title=f"BEIR {result.dataset} (test split, {result.queries} queries), mode {result.mode}")
    for col in ("nDCG@10", "Recall@100", "MRR@10", "seconds"):
        table.add_column(col, justify="right")
    m = result.metrics
    table.add_row(f"{m['ndcg@10']:.4f}", f"{m['recall@100']:.4f}", f"{m['mrr@10']:.4f}", f"{result.seconds}")
    Console().print(table)
    if args.run_out:
        print(f"wrote {args.run_out}")
    return 0


def register_eval_retrieval(subparsers: argparse._SubParsersAction) -> None:
    from rag.cli import add_common

    p = subparsers.add_parser("eval-retrieval", help="retrieval metrics on a BEIR-format dataset")
    p.add_argument("--beir", type=Path, required=True, help="folder with corpus.jsonl, queries.jsonl, qrels/test.tsv")
    p.add_argument("--mode", choices=["bm25", "dense", "hybrid"], default="hybrid")
    p.add_argument("--run-out", type=Path, help="write a TREC run file (qid Q0 docid rank score tag)")
    p.add_argument("-k", type=int, default=100, help="documents retrieved per query (default 100)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar while indexing")
    add_common(p)  # its --index is the BEIR index folder (default index/beir-<dirname>)
    p.set_defaults(func=_eval_retrieval)


def _eval_qa(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from eval.benchmarks import load_bench, run
    from eval.benchmarks.report import print_report, report_dict, write_records, write_reports
    from rag.cli import settings_from

    settings = settings_from(args)
    loaded = load_bench(args.bench, args.part, args.limit, settings, progress=not args.quiet)
    meta = {"bench": args.bench, "part": args.part, "limit": args.limit, "seed": settings.bench_seed,
            "documents": loaded.documents, "top_k": settings.top_k, "explain": args.explain,
            "split": loaded.split.describe()}
    with Progress(disable=args.quiet, transient=True) as bar:
        task = bar.add_task(f"asking {len(loaded.items)} questions", total=len(loaded.items))
        records = run(loaded.assistant, loaded.items, explain=args.explain, progress=lambda: bar.advance(task))
    report = report_dict(meta, records)
    print_report(report)
    if args.report:
        for path in write_reports(report, args.report):
            print(f"wrote {path}")
    if args.json_out:
        print(f"wrote {write_records(args.json_out, meta, records)}")
    errors = report["summary"]["errors"]
    if errors:
        print(f"eval-qa failed: {errors} question(s) raised an error instead of answering", file=sys.stderr)
    return 1 if errors else 0


def register_eval_qa(subparsers: argparse._SubParsersAction) -> None:
    from eval.benchmarks import BENCHES

    p = subparsers.add_parser("eval-qa", help="QA benchmark (SQuAD, news quizzes): exact match, F1, quote holds")
    p.add_argument("--bench", choices=BENCHES, required=True)
    p.add_argument("--part", choices=PARTS, default="measure",
                   help="tuning or measuring half (split by article, seeded by RAG_BENCH_SEED; default measure)")
    p.add_argument("--limit", type=int, help="at most this many questions (a seeded sample of the part)")
    p.add_argument("--report", type=Path, help="write report.json and report.md to this folder")
    p.add_argument("--json-out", type=Path, help="write every record (item, answer with trace, scores) as JSON")
    p.add_argument("--explain", action="store_true", help="ask for the composer's trace (kept in --json-out)")
    p.add_argument("-k", dest="top_k", type=int, help="passages retrieved per question (default RAG_TOP_K)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    # no --index/--corpus: each benchmark has its own under RAG_BENCH_CACHE_DIR
    p.add_argument("--model", help="embedding model: a name, a local path, or the bundled default")
    p.add_argument("--backend", choices=["auto", "onnx", "torch"], help="embedding backend")
    p.set_defaults(func=_eval_qa)
