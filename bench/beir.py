"""BEIR benchmark: bm25, dense and hybrid retrieval on SciFact and NFCorpus beside the published numbers.

Uses the same harness as `rag eval-retrieval` (eval.beir). The first run embeds both corpora (SciFact's
5,183 documents take ~5-8 minutes on two cores); later runs reuse the indexes under index/beir-<name>/.

    python bench/beir.py [--root ../shared/benchmarks/beir] [--sets scifact nfcorpus] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from eval.beir import MODES, default_index_dir, evaluate, load_dataset, open_index, retrieve
from rag.config import Settings

from common import BEIR

# Published nDCG@10 on the test splits (see /work/shared/benchmarks/beir/README.md).
PUBLISHED = {
    "scifact": {"BM25 (BEIR paper)": 0.665, "BM25 (Anserini flat)": 0.679, "BM25 (bm25s)": 0.687,
                "all-MiniLM-L6-v2 (MTEB)": 0.645},
    "nfcorpus": {"BM25 (BEIR paper)": 0.325, "BM25 (Anserini flat)": 0.322, "BM25 (bm25s)": 0.321,
                 "all-MiniLM-L6-v2 (MTEB)": 0.316},
}
TARGETS = {"scifact": 0.70, "nfcorpus": 0.34}  # hybrid nDCG@10 goals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=BEIR)
    parser.add_argument("--sets", nargs="+", default=["scifact", "nfcorpus"])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--json", type=Path, help="also write the measured numbers as JSON")
    args = parser.parse_args(argv)

    settings = Settings()
    console = Console()
    results: dict[str, dict[str, dict[str, float]]] = {}
    for name in args.sets:
        root = args.root / name
        data = load_dataset(root)
        t0 = time.perf_counter()
        assistant = open_index(data, settings, default_index_dir(root), progress=True)
        console.print(f"{name}: index ready in {time.perf_counter() - t0:.0f} s "
                      f"({len(assistant.documents)} documents, {len(data.qrels)} judged queries)")
        for mode in args.modes:
            t1 = time.perf_counter()
            metrics = evaluate(retrieve(assistant, data, mode, k=100), data.qrels)
            metrics["seconds"] = round(time.perf_counter() - t1, 1)
            results.setdefault(name, {})[mode] = metrics
            console.print(f"  {mode:<6} nDCG@10 {metrics['ndcg@10']:.4f}  Recall@100 {metrics['recall@100']:.4f}  "
                          f"MRR@10 {metrics['mrr@10']:.4f}  ({metrics['seconds']} s)")

    table = Table(title="BEIR test split: nDCG@10 (Recall@100 / MRR@10 in brackets), measured vs published")
    table.add_column("system")
    for name in args.sets:
        table.add_column(name, justify="right")
    for mode in args.modes:
        cells = []
        for name in args.sets:
            m = results[name][mode]
            cells.append(f"{m['ndcg@10']:.3f} ({m['recall@100']:.3f} / {m['mrr@10']:.3f})")
        table.add_row(f"ours: {mode}", *cells)
    for system in PUBLISHED["scifact"]:
        table.add_row(system, *[f"{PUBLISHED.get(n, {}).get(system, float('nan')):.3f}" for n in args.sets])
    table.add_row("target: hybrid", *[f">= {TARGETS.get(n, float('nan')):.2f}" for n in args.sets])
    console.print(table)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
