"""Follow-ups: a question that leans on the conversation ("And in dollars?", "What is the rest made of?")
takes the previous question's subject (its names and content words) and, when it asks nothing itself,
its answer type."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from rag.composer.question import Question
from rag.types import Turn

_LEANING = frozenset({"it", "its", "they", "them", "their", "this", "that", "these", "those", "he", "she",
                      "his", "her", "rest", "remainder", "other", "others"})


def previous_questions(history: Sequence[Turn]) -> list[str]:
    return [t.content for t in history if getattr(t, "role", "user") == "user" and str(t.content).strip()]


def leans_on_context(q: Question) -> bool:
    """Starts with "and"/"what about", refers back with a pronoun, or names too little to stand alone."""
    toks = q.parsed.tokens if q.parsed else ()
    if not toks:
        return False
    first = toks[0].text.lower()
    if first in ("and", "also", "so", "but") or q.english.lower().startswith(("what about", "how about")):
        return True
    if any(t.text.lower() in _LEANING or t.lemma in _LEANING for t in toks):
        return True
    return len(q.terms) + len(q.names) < 2


def merge(q: Question, prev: Question) -> Question:
    """The follow-up with the previous question's subject carried over (at half weight for its words)."""
    terms = {**{t: w * 0.5 for t, w in prev.terms.items()}, **q.terms}
    asks_nothing = q.wh == "other" or (not q.expected and not q.focus and not q.descriptive)
    return replace(q, terms=terms, names=tuple(dict.fromkeys([*q.names, *prev.names])),
                   numbers=q.numbers or prev.numbers,
                   wh=prev.wh if asks_nothing else q.wh, focus=q.focus or (prev.focus if asks_nothing else None),
                   expected=q.expected or (prev.expected if asks_nothing else ()),
                   descriptive=q.descriptive or (asks_nothing and prev.descriptive),
                   english=f"{prev.english} {q.english}")
