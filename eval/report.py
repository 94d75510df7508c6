"""Eval reports: a rich terminal table, report.json, report.md and a PNG chart of accuracy per kind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from eval.runner import EvalRun
from eval.scorer import CONFIDENT, ThresholdFailure

METRICS = ("accuracy", "answerable_accuracy", "abstention_accuracy", "answer_rate", "figure_accuracy",
           "citation_accuracy", "quote_holds", "quote_exactness", "faithfulness", "recall_at_k", "mrr",
           "confident_precision")


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def report_dict(run: EvalRun, failures: list[ThresholdFailure] | None = None) -> dict[str, Any]:
    """The whole report: `scores` is run-independent; `latency` holds what varies between runs."""
    return {"scores": run.score_section(),
            "thresholds": [f.message() for f in failures or []],
            "latency": run.latency_section()}


def print_report(run: EvalRun, console: Console | None = None, max_misses: int = 30) -> None:
    console = console or Console()
    scores = run.score_section()
    summary = scores["summary"]
    t = Table(title=f"eval {scores['set']} ({run.target}): {summary['right']}/{summary['items']} right")
    t.add_column("metric")
    t.add_column("value", justify="right")
    for m in METRICS:
        name = f"recall@{summary['k']}" if m == "recall_at_k" else m
        value = summary[m]
        t.add_row(name, f"{value:.3f}" if m == "mrr" and value is not None else _pct(value))
    console.print(t)
    for key, title in (("per_kind", "kind"), ("per_lang", "language")):
        bt = Table(title=f"accuracy per {title}")
        bt.add_column(title)
        bt.add_column("right", justify="right")
        bt.add_column("n", justify="right")
        bt.add_column("accuracy", justify="right")
        for name, row in scores[key].items():
            bt.add_row(name, str(row["right"]), str(row["n"]), _pct(row["accuracy"]))
        console.print(bt)
    errors = [s for s in scores["items"] if s["error"] is not None]
    if errors:
        et = Table(title=f"errors ({len(errors)}): raised instead of answering")
        for col in ("id", "question", "error"):
            et.add_column(col, overflow="fold")
        for s in errors:
            et.add_row(s["id"], s["question"], s["error"])
        console.print(et)
    misses = [s for s in scores["items"] if not s["right"]]
    if misses:
        mt = Table(title=f"misses ({len(misses)})", show_lines=False)
        for col in ("id", "kind", "question", "why"):
            mt.add_column(col, overflow="fold")
        for s in misses[:max_misses]:
            mt.add_row(s["id"], s["kind"], s["question"], "; ".join(s["reasons"]))
        console.print(mt)
        if len(misses) > max_misses:
            console.print(f"... {len(misses) - max_misses} more in report.md")
    lat = run.latency_section()
    console.print(f"latency over {lat['n']} questions: p50 {lat['p50_ms']} ms, p95 {lat['p95_ms']} ms")


def _md_escape(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def markdown(run: EvalRun, failures: list[ThresholdFailure] | None = None) -> str:
    scores = run.score_section()
    s = scores["summary"]
    lines = [f"# Eval report: {scores['set']}", "",
             f"{s['right']} of {s['items']} items right ({_pct(s['accuracy'])}); target: {run.target}.", "",
             "| metric | value |", "|---|---|"]
    for m in METRICS:
        name = f"recall@{s['k']}" if m == "recall_at_k" else m
        lines.append(f"| {name} | {s[m]:.3f} |" if m == "mrr" and s[m] is not None else f"| {name} | {_pct(s[m])} |")
    for key, title in (("per_kind", "kind"), ("per_lang", "language")):
        lines += ["", f"## Accuracy per {title}", "", f"| {title} | right | n | accuracy |", "|---|---|---|---|"]
        lines += [f"| {k} | {r['right']} | {r['n']} | {_pct(r['accuracy'])} |" for k, r in scores[key].items()]
    cal = scores["calibration"]
    if any(row["n"] for row in cal):
        lines += ["", "## Calibration (answered items with a confidence)", "",
                  "| confidence | n | right | accuracy |", "|---|---|---|---|"]
        lines += [f"| {r['from']:.1f}-{r['to']:.1f} | {r['n']} | {r['right']} | {_pct(r['accuracy'])} |" for r in cal]
        lines += ["", f"Confidence >= {CONFIDENT}: {s['confident_answers']} answers, "
                      f"{_pct(s['confident_precision'])} right."]
    if failures:
        lines += ["", "## Thresholds not met", ""] + [f"- {f.message()}" for f in failures]
    errors = [i for i in scores["items"] if i["error"] is not None]
    if errors:
        lines += ["", f"## Errors ({len(errors)}): raised instead of answering", "", "| id | question | error |",
                  "|---|---|---|"]
        lines += [f"| {i['id']} | {_md_escape(i['question'])} | {_md_escape(i['error'])[:300]} |" for i in errors]
    misses = [i for i in scores["items"] if not i["right"]]
    lines += ["", f"## Misses ({len(misses)})", ""]
    if misses:
        lines += ["| id | kind | lang | question | expected | claim | got | why |",
                  "|---|---|---|---|---|---|---|---|"]
        for i in misses:
            lines.append(f"| {i['id']} | {i['kind']} | {i['lang']} | {_md_escape(i['question'])} | "
                         f"{_md_escape(i['expected'])} | {_md_escape(i['claim'])[:200]} | "
                         f"{_md_escape(i['got'])[:300]} | {_md_escape('; '.join(i['reasons']))} |")
    else:
        lines.append("None.")
    lat = run.latency_section()
    lines += ["", "## Latency (varies between runs; not part of the scores)", "",
              f"p50 {lat['p50_ms']} ms, p95 {lat['p95_ms']} ms, max {lat['max_ms']} ms over {lat['n']} questions.",
              ""]
    return "\n".join(lines)


def write_chart(run: EvalRun, path: Path) -> None:
    """Bar chart of accuracy per kind (Agg backend: no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per_kind = run.score_section()["per_kind"]
    kinds = list(per_kind)
    values = [100 * (per_kind[k]["accuracy"] or 0) for k in kinds]
    fig, ax = plt.subplots(figsize=(max(6, 0.7 * len(kinds) + 2), 4), dpi=100)
    bars = ax.bar(kinds, values, color="#4c72b0")
    for bar, k in zip(bars, kinds, strict=True):
        ax.annotate(f"{per_kind[k]['right']}/{per_kind[k]['n']}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize=8)
    ax.set_ylim(0, 110)
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"Accuracy per kind: {run.score_section()['set']}")
    ax.tick_params(axis="x", labelrotation=45)
    fig.tight_layout()
    fig.savefig(path, format="png", metadata={"Software": None})
    plt.close(fig)


def write_reports(run: EvalRun, out_dir: Path, failures: list[ThresholdFailure] | None = None) -> list[Path]:
    """report.json, report.md and accuracy_by_kind.png in `out_dir` (created if missing)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "report.json", out_dir / "report.md", out_dir / "accuracy_by_kind.png"]
    paths[0].write_text(json.dumps(report_dict(run, failures), ensure_ascii=False, indent=2, sort_keys=True) + "\n",
                        encoding="utf-8")
    paths[1].write_text(markdown(run, failures), encoding="utf-8")
    write_chart(run, paths[2])
    return paths
