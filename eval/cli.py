"""`rag eval` (answer accuracy on an eval set) and `rag eval-retrieval` (BEIR retrieval metrics)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

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
    if args.url:
        target = HttpTarget(args.url, api_key=settings.api_key or None)
    else:
        from rag.assistant import Assistant

        target = InProcessTarget(Assistant.open(settings))
    run = run_eval(items, target, set_name=_display(args.set), k=args.k)
    failures = check_thresholds(run.summary(), thresholds)
    print_report(run)
    if args.report:
        for path in write_reports(run, args.report, failures):
            print(f"wrote {path}")
    for f in failures:
        print(f"eval failed: {f.message()} ({_display(args.thresholds)})", file=sys.stderr)
    return 1 if failures else 0


def register_eval(subparsers: argparse._SubParsersAction) -> None:
    from rag.cli import add_common

    p = subparsers.add_parser("eval", help="score answers on an eval set: figures, units, citations, abstention")
    p.add_argument("--set", type=Path, default=DEFAULT_SET, help="eval set JSONL (default: eval/seed.jsonl)")
    p.add_argument("--url", help="evaluate a running service at this URL instead of in-process")
    p.add_argument("--report", type=Path, help="write report.json, report.md and a chart to this folder")
    p.add_argument("--thresholds", type=Path, default=DEFAULT_THRESHOLDS,
                   help="TOML of metric minimums; exit 1 below any (default: eval/thresholds.toml)")
    p.add_argument("-k", type=int, default=3, help="documents counted for recall@k and MRR (default 3)")
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
