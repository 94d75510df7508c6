"""Reports of a QA benchmark run: a terminal table, report.json and report.md (with the split's seed and
articles, so a run can be reproduced and its measuring part checked)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from eval.benchmarks.metrics import QUOTES_COUNTED, QARecord, summarize

HEADLINE = (("exact_match", "exact match"), ("f1", "F1"), ("claim_holds", "claim holds (strict)"),
            (f"quote_holds_at_{QUOTES_COUNTED}", "quote holds @2"),
            ("answer_rate", "answer rate"), ("cited_gold_doc", "cites a gold article"),
            ("exact_match_when_answered", "exact match when answered"))


def report_dict(meta: dict[str, Any], records: Sequence[QARecord]) -> dict[str, Any]:
    """Run description (bench, part, seed, split, sizes), summary figures, and each item's outcome."""
    items = [{"id": r.item.id, "question": r.item.question, "gold": list(r.item.answers), "group": r.item.group,
              "claim": r.score.claim, "answered": r.score.answered, "em": r.score.em, "f1": r.score.f1,
              "claim_holds": r.score.claim_holds, "quote_holds": r.score.quote_holds,
              "confidence": r.score.confidence, "error": r.error}
             for r in sorted(records, key=lambda r: r.item.id)]
    return {"run": meta, "summary": summarize(records), "items": items}


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} ms"


def answer_kinds(s: dict[str, Any]) -> str:
    """Short answers (spans, scored by exact match) and passage answers (sentences, scored by whether they hold
    the answer) apart, with the short answers' own calibration."""
    cal = s["calibration_short_answers"]
    return (f"short answers: {s['short_answers']}, exact match {_pct(s['exact_match_of_short_answers'])} "
            f"(confidence >= {cal['confident_at']}: {cal['confident_n']}, exact match {_pct(cal['confident_em'])}); "
            f"passage answers: {s['passage_answers']}, holding the answer {_pct(s['passage_holds'])}")


def print_report(report: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    run, s = report["run"], report["summary"]
    t = Table(title=f"{run['bench']} ({run['part']} part, seed {run['seed']}): {s['items']} questions over "
                    f"{run['documents']} articles")
    t.add_column("metric")
    t.add_column("value", justify="right")
    for key, name in HEADLINE:
        t.add_row(name, _pct(s[key]))
    lat = s["latency_ms"]
    t.add_row("compose p50 / p99", f"{_ms(lat['compose_p50'])} / {_ms(lat['compose_p99'])}")
    t.add_row("total p50 / p99", f"{_ms(lat['total_p50'])} / {_ms(lat['total_p99'])}")
    t.add_row("errors", str(s["errors"]))
    console.print(t)
    cal = s["calibration"]
    if cal["without_confidence"] == cal["answered"]:
        console.print("calibration: n/a (the answers carry no confidence)")
    else:
        ct = Table(title=f"calibration ({cal['answered'] - cal['without_confidence']} answers with a confidence)")
        for col in ("confidence", "n", "exact match", "claim holds", "quote holds"):
            ct.add_column(col, justify="right")
        for b in cal["bins"]:
            ct.add_row(f"{b['from']:.1f}-{b['to']:.1f}", str(b["n"]), _pct(b["em"]), _pct(b["claim_holds"]),
                       _pct(b["quote_holds"]))
        console.print(ct)
        console.print(f"confidence >= {cal['confident_at']}: {cal['confident_n']} answers, exact match "
                      f"{_pct(cal['confident_em'])}, claim holds {_pct(cal['confident_claim_holds'])}, quote holds "
                      f"{_pct(cal['confident_quote_holds'])}")
    console.print(answer_kinds(s))
    for e in [i for i in report["items"] if i["error"]]:
        console.print(f"[red]error[/red] {e['id']}: {e['error']}")


def _md(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def markdown(report: dict[str, Any], max_misses: int = 40) -> str:
    run, s = report["run"], report["summary"]
    lines = [f"# {run['bench']}: {run['part']} part", "",
             f"{s['items']} questions (limit {run['limit']}) over {run['documents']} articles, asked with no "
             f"paragraph given; split by article with seed {run['seed']} ({len(run['split']['tune'])} tuning, "
             f"{len(run['split']['measure'])} measuring articles).", "",
             "| metric | value |", "|---|---|"]
    lines += [f"| {name} | {_pct(s[key])} |" for key, name in HEADLINE]
    lat = s["latency_ms"]
    lines += [f"| compose p50 / p99 | {_ms(lat['compose_p50'])} / {_ms(lat['compose_p99'])} |",
              f"| total p50 / p99 | {_ms(lat['total_p50'])} / {_ms(lat['total_p99'])} |",
              f"| errors | {s['errors']} |", "", "## Calibration", ""]
    cal = s["calibration"]
    if cal["without_confidence"] == cal["answered"]:
        lines.append("n/a: the answers carry no confidence.")
    else:
        lines += ["| confidence | n | exact match | claim holds | quote holds |", "|---|---|---|---|---|"]
        lines += [f"| {b['from']:.1f}-{b['to']:.1f} | {b['n']} | {_pct(b['em'])} | {_pct(b['claim_holds'])} | "
                  f"{_pct(b['quote_holds'])} |" for b in cal["bins"]]
        lines += ["", f"Confidence >= {cal['confident_at']}: {cal['confident_n']} answers, exact match "
                      f"{_pct(cal['confident_em'])}, claim holds {_pct(cal['confident_claim_holds'])}, quote holds "
                      f"{_pct(cal['confident_quote_holds'])}."]
    lines += ["", answer_kinds(s) + "."]
    errors = [i for i in report["items"] if i["error"]]
    if errors:
        lines += ["", f"## Errors ({len(errors)})", "", "| id | question | error |", "|---|---|---|"]
        lines += [f"| {i['id']} | {_md(i['question'])} | {_md(i['error'])[:300]} |" for i in errors]
    misses = [i for i in report["items"] if not i["em"]]
    lines += ["", f"## Not exact ({len(misses)}; the first {min(max_misses, len(misses))} by id)", "",
              "| id | question | gold | claim | quote holds |", "|---|---|---|---|---|"]
    lines += [f"| {i['id']} | {_md(i['question'])} | {_md(' / '.join(i['gold']))[:120]} | "
              f"{_md(i['claim'] if i['answered'] else '(abstained)')[:160]} | {'yes' if i['quote_holds'] else 'no'} |"
              for i in misses[:max_misses]]
    return "\n".join(lines) + "\n"


def write_reports(report: dict[str, Any], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "report.json", out_dir / "report.md"]
    paths[0].write_text(json.dumps(report, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    paths[1].write_text(markdown(report), encoding="utf-8")
    return paths


def write_records(path: Path, meta: dict[str, Any], records: Sequence[QARecord]) -> Path:
    """Every record in full (item, answer JSON with its trace, scores), for fitting."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"run": meta, "records": [r.to_dict() for r in records]}
    path.write_text(json.dumps(body, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
