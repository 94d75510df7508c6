"""The composer's data files (lexicons/ and the fitted model.json), read once."""

from __future__ import annotations

import json
import re
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
LEXICONS = HERE / "lexicons"
MODEL_FILE = HERE / "model.json"


def _pairs(name: str) -> dict[str, str]:
    """A `SOURCE = target` file: comments start with #, the target may be empty."""
    out: dict[str, str] = {}
    for line in (LEXICONS / name).read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, _, value = line.partition("=")
        out.setdefault(key.strip(), value.strip())
    return out


@lru_cache(maxsize=1)
def answer_types() -> dict[str, Any]:
    return tomllib.loads((LEXICONS / "answer_types.toml").read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def framing() -> dict[str, dict[str, str]]:
    return tomllib.loads((LEXICONS / "framing.toml").read_text(encoding="utf-8"))


def _longest_first(table: dict[str, str]) -> tuple[dict[str, str], re.Pattern[str]]:
    keys = sorted(table, key=len, reverse=True)
    return table, re.compile("|".join(map(re.escape, keys)))


@lru_cache(maxsize=1)
def cjk_glossary() -> tuple[dict[str, str], re.Pattern[str]]:
    return _longest_first(_pairs("cjk_glossary.txt"))


@lru_cache(maxsize=1)
def cjk_questions() -> tuple[dict[str, str], re.Pattern[str]]:
    return _longest_first(_pairs("cjk_questions.txt"))


@lru_cache(maxsize=1)
def kana() -> dict[str, str]:
    return _pairs("kana.txt")


@lru_cache(maxsize=1)
def fitted_model() -> dict[str, Any]:
    """Weights, thresholds and the focus-noun type table fitted by eval/fit_composer.py."""
    return json.loads(MODEL_FILE.read_text(encoding="utf-8"))
