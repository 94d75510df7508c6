"""Named features of a sentence and of an answer candidate, each a small function of hand-checkable inputs.
Their weights are fitted (eval/fit_composer.py) and live in model.json, never here."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from rag.composer.candidates import Candidate
from rag.composer.evidence import Sentence
from rag.composer.question import Question

SENTENCE_FEATURES = ("dense", "coverage", "coverage_context", "bigrams", "rank", "names_met", "numbers_met",
                     "type_available", "repeats_question", "is_question")
CANDIDATE_FEATURES = ("sentence", "type_expected", "type_first", "type_prior", "type_unexpected", "in_question", "surface_near",
                      "syntax_near", "head_asked", "wh_head_match", "window_coverage", "focus_near", "length",
                      "mentions", "subject", "object", "prep_object", "modifier", "adjective", "same_role",
                      "same_prep", "dep_coverage", "role_head", "nearest", "nearest_expected",
                      "is_entity", "is_chunk", "is_figure", "is_phrase", "has_figure")
# Dependency labels of a candidate's root, grouped into the roles the candidate features name.
ROLES = {"subject": ("nsubj", "nsubjpass", "csubj"), "object": ("dobj", "attr", "oprd"), "prep_object": ("pobj",),
         "modifier": ("compound", "amod", "nmod", "poss", "nummod", "npadvmod")}


# --- sentence features ------------------------------------------------------------------------------------

def coverage(q: Question, words: frozenset[str]) -> float:
    """IDF-weighted share of the question's content lemmas found among `words`."""
    total = sum(q.terms.values())
    return sum(w for t, w in q.terms.items() if t in words) / total if total else 0.0


def bigrams(q: Question, s: Sentence) -> float:
    """Share of the question's adjacent content-lemma pairs that stand within two tokens in the sentence."""
    toks = [t.lemma for t in (q.parsed.tokens if q.parsed else ()) if t.lemma in q.terms]
    pairs = list(zip(toks, toks[1:], strict=False))
    if not pairs:
        return 0.0
    pos = _positions(s)
    hit = sum(1 for a, b in pairs if any(abs(i - j) <= 2 for i in pos.get(a, ()) for j in pos.get(b, ())))
    return hit / len(pairs)


def _positions(s: Sentence) -> dict[str, list[int]]:
    """Token positions of each lemma of the sentence (kept with the sentence)."""
    pos = s.derived.get("positions")
    if pos is None:
        pos = s.derived["positions"] = {}
        for t in s.parse.tokens:
            pos.setdefault(t.lemma, []).append(t.i)
    return pos


def names_met(q: Question, s: Sentence) -> float:
    """Share of the question's names mentioned in the sentence or beside it (neighbours, title)."""
    if not q.names:
        return 1.0
    low = s.text.lower()
    return sum(1 for n in q.names if n in low or set(n.split()) <= s.context) / len(q.names)


def article_names_met(q: Question, text: str, title: str | None) -> bool:
    """Whether the article (its text or title) mentions any of the question's names."""
    low = f"{title or ''}\n{text}".lower()
    return any(n in low for n in q.names)


def numbers_met(q: Question, s: Sentence) -> float:
    if not q.numbers:
        return 1.0
    return sum(1 for n in q.numbers if n in s.text or n in s.context) / len(q.numbers)


def repeats_question(q: Question, s: Sentence) -> float:
    """1 when the sentence is (nearly) the question itself: it cannot answer it."""
    words = {t.lemma for t in s.parse.tokens if not t.is_stop and t.pos != "PUNCT"}
    return 1.0 if words and words <= set(q.terms) else 0.0


def sentence_features(q: Question, s: Sentence, type_available: float) -> dict[str, float]:
    return {
        "dense": s.sim,
        "coverage": coverage(q, s.lemmas),
        "coverage_context": coverage(q, s.lemmas | s.context),
        "bigrams": bigrams(q, s),
        "rank": 1.0 / s.rank,
        "names_met": names_met(q, s),
        "numbers_met": numbers_met(q, s),
        "type_available": type_available,
        "repeats_question": repeats_question(q, s),
        "is_question": float(s.text.rstrip().endswith("?")),
    }


# --- candidate features -----------------------------------------------------------------------------------

def matched_tokens(q: Question, s: Sentence) -> list[int]:
    """Tokens of the sentence whose lemma is a content lemma of the question."""
    return [t.i for t in s.parse.tokens if t.lemma in q.terms]


@dataclass(slots=True)
class Alignment:
    """What each candidate of one sentence is measured against, computed once per question and sentence: the
    question's words in it, every token's dependency distance to the nearest of them, the words asked."""

    matched: list[int]
    distance: list[int]  # -1 where no question word is reachable
    asked: frozenset[str]
    each: dict[int, list[int]]  # per question word: every token's distance to it (-1: unreachable)


def asked_words(q: Question) -> frozenset[str]:
    return frozenset(q.terms) | {n for name in q.names for n in name.split()}


def align(q: Question, s: Sentence) -> Alignment:
    matched = matched_tokens(q, s)
    g = _graph(s)
    return Alignment(matched, _distances(g, matched, len(s.parse.tokens)), asked_words(q),
                     {i: _distances(g, [i], len(s.parse.tokens)) for i in matched})


def _distances(g: dict[int, list[int]], sources: list[int], n: int) -> list[int]:
    """Breadth-first dependency distance of every token to the nearest of `sources`."""
    distance = [-1] * n
    frontier = deque(sources)
    for i in sources:
        distance[i] = 0
    while frontier:
        node = frontier.popleft()
        for nb in g.get(node, ()):
            if distance[nb] < 0:
                distance[nb] = distance[node] + 1
                frontier.append(nb)
    return distance


def type_scores(q: Question, c: Candidate) -> tuple[float, float]:
    """(a label the question expects, a label it does not); (0, 0) when it expects nothing in particular."""
    if not q.expected:
        return 0.0, 0.0
    expected = float(c.label in q.expected)
    return expected, 1.0 - expected


def unit_ok(q: Question, c: Candidate) -> bool:
    """A question asked in a unit ("in dollars", "what percentage") is answered only by a figure in it."""
    return q.unit is None or (c.figure is not None and c.figure.unit == q.unit)


def in_question(q: Question, s: Sentence, c: Candidate, asked: frozenset[str] | None = None) -> float:
    """Share of the candidate's content tokens that the question already says."""
    toks = [t for t in s.parse.tokens[c.tok_start:c.tok_end] if not t.is_stop and t.pos != "PUNCT"]
    if not toks:
        return 1.0
    asked = asked_words(q) if asked is None else asked
    return sum(1 for t in toks if t.lemma in asked or t.text.lower() in asked) / len(toks)


def surface_near(c: Candidate, matched: list[int]) -> float:
    """1 / (1 + token gap) to the closest question word outside the candidate; 0 with none."""
    gaps = [c.tok_start - i if i < c.tok_start else i - c.tok_end + 1 for i in matched
            if not c.tok_start <= i < c.tok_end]
    return 1.0 / (1 + min(gaps)) if gaps else 0.0


def _graph(s: Sentence) -> dict[int, list[int]]:
    """The sentence's dependency tree as an undirected adjacency list (kept with the sentence)."""
    g = s.derived.get("graph")
    if g is None:
        g = s.derived["graph"] = {t.i: [] for t in s.parse.tokens}
        for t in s.parse.tokens:
            if t.head != t.i:
                g[t.i].append(t.head)
                g[t.head].append(t.i)
    return g


def syntax_near(s: Sentence, c: Candidate, matched: list[int], distance: list[int] | None = None) -> float:
    """1 / (1 + dependency path length) from the candidate to the closest question word outside it;
    `distance` (see `align`) answers at once for a candidate holding no question word."""
    targets = {i for i in matched if not c.tok_start <= i < c.tok_end}
    if not targets:
        return 0.0
    if distance is not None and len(targets) == len(matched):
        reach = [d for d in distance[c.tok_start:c.tok_end] if d >= 0]
        return 1.0 / (1 + min(reach)) if reach else 0.0
    g = _graph(s)
    seen = set(range(c.tok_start, c.tok_end))
    frontier = deque((i, 0) for i in seen)
    while frontier:
        node, d = frontier.popleft()
        if node in targets:
            return 1.0 / (1 + d)
        for nb in g.get(node, ()):
            if nb not in seen:
                seen.add(nb)
                frontier.append((nb, d + 1))
    return 0.0


def dep_coverage(q: Question, s: Sentence, c: Candidate, hops: int = 2, al: Alignment | None = None) -> float:
    """IDF-weighted share of the question's words within `hops` dependency links of the candidate."""
    al = align(q, s) if al is None else al
    toks = s.parse.tokens
    return coverage(q, frozenset(toks[m].lemma for m, d in al.each.items() if not c.tok_start <= m < c.tok_end
                                 and any(0 <= x <= hops for x in d[c.tok_start:c.tok_end])))


def _root(s: Sentence, c: Candidate) -> int:
    toks = s.parse.tokens
    for i in range(c.tok_start, c.tok_end):
        if not c.tok_start <= toks[i].head < c.tok_end or toks[i].head == i:
            return i
    return c.tok_start


def head_asked(q: Question, s: Sentence, c: Candidate) -> float:
    """The word the candidate hangs on (through a preposition) is a word of the question: "founded in 1922"."""
    head = s.parse.tokens[_hang(s, c)]
    return float(head.lemma in q.terms and not c.tok_start <= head.i < c.tok_end)


def _hang(s: Sentence, c: Candidate) -> int:
    toks = s.parse.tokens
    head = toks[toks[_root(s, c)].head]
    if head.pos == "ADP" and head.head != head.i:
        head = toks[head.head]
    return head.i


def wh_head_match(q: Question, s: Sentence, c: Candidate) -> float:
    """The candidate hangs on the same word the question's wh-phrase hangs on ("Who founded" ~ "founded by X")."""
    if not q.wh_head:
        return 0.0
    h = s.parse.tokens[_hang(s, c)]
    return float(h.lemma == q.wh_head and not c.tok_start <= h.i < c.tok_end)


def window_coverage(q: Question, s: Sentence, c: Candidate, width: int = 6, matched: list[int] | None = None
                    ) -> float:
    """IDF-weighted share of the question's words within `width` tokens either side of the candidate
    (`matched`: the question's words in the sentence, when already known)."""
    toks = s.parse.tokens
    matched = matched_tokens(q, s) if matched is None else matched
    return coverage(q, frozenset(toks[i].lemma for i in matched if c.tok_start - width <= i < c.tok_start
                                 or c.tok_end <= i < c.tok_end + width))


def focus_near(q: Question, s: Sentence, c: Candidate) -> float:
    """The question's focus noun is in the candidate or one dependency link from it ("the team, X")."""
    if not q.focus:
        return 0.0
    toks = s.parse.tokens
    inside = any(t.lemma == q.focus for t in toks[c.tok_start:c.tok_end])
    linked = any(toks[j].lemma == q.focus for j in _graph(s)[_root(s, c)])  # its head or a dependent
    return float(inside or linked)


def roles(s: Sentence, c: Candidate) -> dict[str, float]:
    """One-hot grammatical role of the candidate's root (subject, object, object of a preposition, modifier)."""
    dep = s.parse.tokens[_root(s, c)].dep
    return {name: float(dep in labels) for name, labels in ROLES.items()}


def same_role(q: Question, s: Sentence, c: Candidate) -> float:
    """The candidate plays the wh-phrase's grammatical role ("Who founded" ~ the subject of the sentence)."""
    return float(q.wh_dep is not None and s.parse.tokens[_root(s, c)].dep == q.wh_dep)


def same_prep(q: Question, s: Sentence, c: Candidate) -> float:
    """The candidate is the object of the preposition the wh-phrase is ("In what year" ~ "in 1922")."""
    if q.wh_prep is None:
        return 0.0
    toks = s.parse.tokens
    head = toks[toks[_root(s, c)].head]
    return float(head.pos == "ADP" and head.lemma == q.wh_prep)


def adjective(s: Sentence, c: Candidate) -> float:
    """A one-word adjective or adverb ("annual", "daily"): an entity tag rarely worth answering with."""
    return float(c.tok_end - c.tok_start == 1 and s.parse.tokens[c.tok_start].pos in ("ADJ", "ADV"))


def mention_key(text: str) -> str:
    return " ".join(text.lower().split())


def candidate_features(q: Question, s: Sentence, c: Candidate, al: Alignment, sentence_score: float,
                       mentions: dict[str, int] | None = None) -> dict[str, float]:
    """`al`: the question aligned with the sentence; `mentions`: how many of the best sentences mention each
    candidate text."""
    expected, unexpected = type_scores(q, c)
    seen = (mentions or {}).get(mention_key(c.text), 1)
    matched = al.matched
    return {
        "sentence": sentence_score,
        "type_expected": expected,
        "type_first": float(bool(q.expected) and c.label == q.expected[0]),
        "type_prior": q.label_prior.get(c.label, 0.0),
        "type_unexpected": unexpected,
        "in_question": in_question(q, s, c, al.asked),
        "surface_near": surface_near(c, matched),
        "syntax_near": syntax_near(s, c, matched, al.distance),
        "head_asked": head_asked(q, s, c),
        "wh_head_match": wh_head_match(q, s, c),
        "window_coverage": window_coverage(q, s, c, matched=matched),
        "focus_near": focus_near(q, s, c),
        "length": min(c.tok_end - c.tok_start, 10) / 10,
        "mentions": min(seen - 1, 3) / 3,
        **roles(s, c),
        "adjective": adjective(s, c),
        "same_role": same_role(q, s, c),
        "same_prep": same_prep(q, s, c),
        "dep_coverage": dep_coverage(q, s, c, al=al),
        "role_head": same_role(q, s, c) * wh_head_match(q, s, c),
        "nearest": 0.0,  # set by nearest() over the sentence's candidates
        "nearest_expected": 0.0,
        "is_entity": float(c.kind == "entity"),
        "is_chunk": float(c.kind == "chunk"),
        "is_figure": float(c.kind == "figure"),
        "is_phrase": float(c.kind == "phrase"),
        "has_figure": float(c.figure is not None),
    }


def nearest(rows: list[dict[str, float]]) -> None:
    """Mark, among one sentence's candidates that the question does not already say, the ones closest in the
    dependency tree to the question's words, and the closest of the expected type."""
    fresh = [f for f in rows if f["in_question"] < 1.0]
    best = max((f["syntax_near"] for f in fresh), default=0.0)
    typed = max((f["syntax_near"] for f in fresh if f["type_expected"]), default=0.0)
    for f in fresh:
        if f["syntax_near"] > 0:
            f["nearest"] = float(f["syntax_near"] == best)
            f["nearest_expected"] = float(bool(f["type_expected"]) and f["syntax_near"] == typed)


# --- answer features (is the best candidate right?) ----------------------------------------------------------

ANSWER_FEATURES = ("share", "margin", "sentence_prob", "coverage", "names_met", "numbers_met", "focus_met",
                   "type_expected", "type_first", "expects_type", "mentions", "dense", "in_question", "has_figure",
                   "is_entity")


def focus_met(q: Question, s: Sentence) -> float:
    """The question's focus noun (the measured property: "how much revenue") is in the sentence or beside it."""
    return float(q.focus is None or q.focus in s.lemmas or q.focus in s.context)


def answer_features(q: Question, best: dict[str, float], sentence: dict[str, float], share: float, margin: float,
                    sentence_prob: float, focus: float = 1.0) -> dict[str, float]:
    """What the decision to answer weighs: how clearly the best candidate beats the rest (`share` of the
    softmax, `margin` in score over the best other text) and how well its sentence meets the question."""
    return {
        "share": share,
        "margin": min(margin, 5.0) / 5.0,
        "sentence_prob": sentence_prob,
        "coverage": sentence["coverage"],
        "names_met": sentence["names_met"],
        "numbers_met": sentence["numbers_met"],
        "focus_met": focus,
        "type_expected": best["type_expected"],
        "type_first": best["type_first"],
        "expects_type": float(bool(q.expected)),
        "mentions": best["mentions"],
        "dense": sentence["dense"],
        "in_question": best["in_question"],
        "has_figure": best["has_figure"],
        "is_entity": best["is_entity"],
    }
