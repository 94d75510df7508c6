"""Eval sets: JSONL question files read and checked line by line, so a bad item names its line."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.errors import ReadError

KINDS = ("money", "percent", "count", "date", "year", "person", "organization", "place", "list",
         "explanation", "conflict", "trap", "unanswerable")
FIELDS = {"id", "question", "kind", "lang", "answerable", "figures", "text", "doc_ids", "history", "note", "group"}


def format_number(value: float) -> str:
    """41000000000 -> "41,000,000,000"; 17.2 -> "17.2": readable and exact in reports."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.6f}".rstrip("0").rstrip(".")


@dataclass(frozen=True, slots=True)
class ExpectedFigure:
    """A figure the answer must state: absolute value and unit ("JPY", "%", "count", "year", "date", "nm"...)."""

    value: float
    unit: str

    def describe(self) -> str:
        return f"{format_number(self.value)} {self.unit}"


@dataclass(frozen=True, slots=True)
class EvalItem:
    """One question of an eval set with what a right answer must contain."""

    id: str
    question: str
    kind: str
    lang: str
    answerable: bool
    figures: tuple[ExpectedFigure, ...] = ()
    text: tuple[str, ...] = ()
    doc_ids: tuple[str, ...] = ()
    history: tuple[str, ...] = ()
    note: str | None = None
    group: str | None = None  # the article the item was written from: sets are split into parts by it

    def describe_expected(self) -> str:
        """The expectation in one line, for reports."""
        if not self.answerable:
            return "abstain"
        parts = [f.describe() for f in self.figures] + [repr(t) for t in self.text]
        return "; ".join(parts) + f" from {', '.join(self.doc_ids)}"


def _str_list(raw: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ReadError(f"{where}: '{key}' must be a list of non-empty strings")
    return tuple(value)


def _figures(raw: dict[str, Any], where: str) -> tuple[ExpectedFigure, ...]:
    value = raw.get("figures", [])
    if not isinstance(value, list):
        raise ReadError(f"{where}: 'figures' must be a list of {{\"value\": number, \"unit\": string}}")
    out = []
    for i, fig in enumerate(value):
        if (not isinstance(fig, dict) or isinstance(fig.get("value"), bool)
                or not isinstance(fig.get("value"), int | float)
                or not isinstance(fig.get("unit"), str) or not fig["unit"].strip()):
            raise ReadError(f"{where}: figures[{i}] must be {{\"value\": number, \"unit\": string}}, got {fig!r}")
        out.append(ExpectedFigure(float(fig["value"]), fig["unit"].strip()))
    return tuple(out)


def parse_item(raw: object, where: str) -> EvalItem:
    """One decoded JSON line -> EvalItem; `where` ("file:line") prefixes every error."""
    if not isinstance(raw, dict):
        raise ReadError(f"{where}: each line must be a JSON object")
    unknown = sorted(set(raw) - FIELDS)
    if unknown:
        raise ReadError(f"{where}: unknown field(s) {', '.join(unknown)} (allowed: {', '.join(sorted(FIELDS))})")
    for key in ("id", "question"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise ReadError(f"{where}: '{key}' must be a non-empty string")
    if not isinstance(raw.get("answerable"), bool):
        raise ReadError(f"{where}: 'answerable' must be true or false")
    kind = raw.get("kind", "unanswerable" if not raw["answerable"] else None)
    if kind not in KINDS:
        raise ReadError(f"{where}: 'kind' must be one of {', '.join(KINDS)}, got {kind!r}")
    group = raw.get("group")
    if group is not None and (not isinstance(group, str) or not group.strip()):
        raise ReadError(f"{where}: 'group' must be a non-empty string (the article the item was written from)")
    lang = raw.get("lang", "en")
    if not isinstance(lang, str) or not lang.strip():
        raise ReadError(f"{where}: 'lang' must be a language code such as en, zh, ja")
    item = EvalItem(id=raw["id"].strip(), question=raw["question"], kind=kind, lang=lang.strip(),
                    answerable=raw["answerable"], figures=_figures(raw, where),
                    text=_str_list(raw, "text", where), doc_ids=_str_list(raw, "doc_ids", where),
                    history=_str_list(raw, "history", where), note=raw.get("note"),
                    group=group.strip() if group else None)
    if item.answerable and not (item.figures or item.text or item.doc_ids):
        raise ReadError(f"{where}: an answerable item needs figures, text or doc_ids to check")
    if item.answerable and not item.doc_ids:
        raise ReadError(f"{where}: an answerable item needs doc_ids (the documents a citation must come from)")
    if not item.answerable and (item.figures or item.text):
        raise ReadError(f"{where}: an unanswerable item must not expect figures or text")
    if kind == "conflict" and len(item.doc_ids) < 2:
        raise ReadError(f"{where}: a conflict item needs at least two doc_ids (one per conflicting source)")
    return item


def load_set(path: Path) -> list[EvalItem]:
    """Read and check an eval set; items are returned sorted by id (ids must be unique)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise ReadError(f"eval set not found: {path}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ReadError(f"cannot read eval set {path}: {exc}") from exc
    items: dict[str, EvalItem] = {}
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ReadError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from exc
        item = parse_item(raw, where)
        if item.id in items:
            raise ReadError(f"{where}: duplicate id {item.id!r}")
        items[item.id] = item
    if not items:
        raise ReadError(f"eval set {path} has no items")
    return [items[k] for k in sorted(items)]
