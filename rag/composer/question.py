"""Question analysis from the parse: wh-word, focus noun, expected answer types, asked unit, weighted
content lemmas and the constraints (names, numbers) an answer's context must meet."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from rag.annotate import Parsed, Token
from rag.composer.lexicon import answer_types, cjk_glossary, cjk_questions, kana
from rag.figures import currency_of, extract_figures

WH_TAGS = frozenset({"WDT", "WP", "WP$", "WRB"})
CONTENT_POS = frozenset({"NOUN", "PROPN", "VERB", "ADJ", "NUM", "ADV", "X"})
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_KATAKANA_RUN = re.compile(r"[\u30a0-\u30ff]{2,}")
_HOW_ADJ = frozenset({"much", "many", "long", "old", "far", "big", "large"})
_SUMMARY = re.compile(r"^\s*(?:please\s+)?(?:summari[sz]e|give\s+(?:me\s+)?a\s+summary\s+of|sum\s+up)\s+(.+?)\s*[.?!]*$",
                      re.I)


@dataclass(frozen=True, slots=True)
class Question:
    """What the composer needs to know about a question; every field is derived from its parse."""

    text: str  # as asked
    english: str  # what was parsed: the text itself, or a zh/ja question's English gloss
    lang: str
    wh: str  # who | what | which | when | where | why | how | how_much | how_many | ... | other
    focus: str | None  # lemma of the noun the question asks for ("Which company" -> "company")
    expected: tuple[str, ...]  # entity labels an answer may have, most likely first; () = any
    unit: str | None  # a currency code or "%" the question asks in
    terms: dict[str, float] = field(default_factory=dict)  # content lemma -> weight (IDF, set by evidence)
    names: tuple[str, ...] = ()  # lower-cased names the answer's context must mention
    numbers: tuple[str, ...] = ()  # numbers (years...) the answer's context must mention
    descriptive: bool = False  # answered by sentences, not a span
    summary_of: str | None = None  # "summarize X": the article X describes
    publication: bool = False  # asks when a source was published
    wh_head: str | None = None  # lemma of the word the wh-phrase depends on ("Who founded X" -> found)
    wh_dep: str | None = None  # dependency label of the wh-phrase ("Who founded" -> nsubj)
    wh_prep: str | None = None  # the preposition the wh-phrase is the object of ("In what year" -> in)
    label_prior: dict[str, float] = field(default_factory=dict)  # entity label -> share among right answers
    parsed: Parsed | None = None
    expected_by: str = ""  # where `expected` came from: unit | wh table | focus table | label centroids

    @property
    def numeric(self) -> bool:
        return bool(self.expected) and self.expected[0] in ("MONEY", "PERCENT", "CARDINAL", "QUANTITY")


def language(text: str) -> str:
    if not _CJK.search(text):
        return "en"
    return "ja" if re.search(r"[\u3040-\u30ff]", text) else "zh"


def latin_skeleton(word: str) -> str:
    """Consonants of a Latin word, doubles collapsed ("Matsuda" -> "mtsd"), to meet katakana names."""
    cons = re.sub(r"[^bcdfghjklmnpqrstvwxz]", "", word.lower().replace("ph", "f").replace("th", "t")
                  .replace("ck", "k").replace("c", "k"))
    return re.sub(r"(.)\1+", r"\1", cons)


def kana_skeleton(word: str) -> str:
    """Consonant skeleton of a katakana word's romanisation, to match a Latin name of the sources."""
    table = kana()
    roman = "".join(table.get(ch, "") for ch in word)
    return latin_skeleton(roman.replace("shi", "s").replace("chi", "c").replace("tsu", "t").replace("fu", "f"))


def gloss(text: str, names: dict[str, str] | None = None) -> str:
    """An English rendering of a zh/ja question for parsing and retrieval: question forms and glossary words
    translated longest first, katakana names matched to the sources' names by skeleton, Latin kept."""
    qtable, qrx = cjk_questions()
    gtable, grx = cjk_glossary()
    lead = [qtable[m.group()] for m in qrx.finditer(text)][:1]
    rest = qrx.sub(" ", text)
    if names:
        rest = _KATAKANA_RUN.sub(lambda m: f" {names.get(kana_skeleton(m.group()), m.group())} ", rest)
    rest = grx.sub(lambda m: f" {gtable[m.group()]} ", rest)
    words = re.findall(r"[A-Za-z0-9][A-Za-z0-9.&'-]*|\d[\d,.]*", rest)
    return " ".join([*lead, *words]).strip() + "?"


def proper_runs(tokens: tuple[Token, ...]) -> list[list[Token]]:
    """Runs of adjacent proper nouns: a question's names ("Von Miller", "San Francisco Bay Area")."""
    runs: list[list[Token]] = []
    for t in tokens:
        if t.pos != "PROPN":
            continue
        if runs and runs[-1][-1].i == t.i - 1:
            runs[-1].append(t)
        else:
            runs.append([t])
    return runs


def _wh(tokens: tuple[Token, ...]) -> tuple[str, int | None]:
    for t in tokens:
        low = t.text.lower()
        if t.tag in WH_TAGS or low in ("how", "what", "which", "who", "whom", "whose", "when", "where", "why"):
            if low == "how" and t.i + 1 < len(tokens) and tokens[t.i + 1].text.lower() in _HOW_ADJ:
                return f"how_{tokens[t.i + 1].text.lower()}", t.i
            return low, t.i
    return "other", None


def _focus(tokens: tuple[Token, ...], wh: str, wi: int | None) -> str | None:
    """The noun the wh-word asks for: its head ("which company"), the noun after "how many", or the subject
    or attribute beside "what is" ("what is the capital of X" -> capital; "the name of X" -> X)."""
    if wi is None:
        return None
    w = tokens[wi]
    nouns = ("NOUN",)  # a proper noun is what the question is about, not the kind of thing it asks for
    if wh.startswith("how_"):
        nxt = tokens[wi + 1]
        head = tokens[nxt.head]
        if head.pos in nouns and head.i > nxt.i:
            return head.lemma
        after = next((t for t in tokens[wi + 2:wi + 4] if t.pos in nouns), None)
        return after.lemma if after else None
    if w.dep == "det" and tokens[w.head].pos in nouns:
        return _through_name(tokens, tokens[w.head])
    nxt = tokens[wi + 1] if wi + 1 < len(tokens) else None
    if nxt is not None and nxt.pos in nouns and nxt.head != wi:
        head = tokens[nxt.head] if tokens[nxt.head].pos in nouns else nxt
        return _through_name(tokens, head)
    if wh in ("what", "which") and tokens[w.head].lemma == "be":
        root = tokens[w.head]
        for t in tokens:
            if t.head == root.i and t.i != wi and t.dep in ("nsubj", "attr", "nsubjpass", "dobj") and t.pos in nouns:
                return _through_name(tokens, t)
    return None


def _through_name(tokens: tuple[Token, ...], noun: Token) -> str:
    """"the name of the team" asks for a team: a generic head passes the focus to its "of" object."""
    if noun.lemma in ("name", "kind", "type", "sort", "title"):
        for p in tokens:
            if p.head == noun.i and p.dep == "prep" and p.lemma == "of":
                obj = next((o for o in tokens if o.head == p.i and o.dep == "pobj"), None)
                if obj is not None:
                    return obj.lemma
    return noun.lemma


def _wh_head(tokens: tuple[Token, ...], wi: int | None, focus: str | None) -> str | None:
    """The content word the wh-phrase hangs on, climbing past the phrase itself ("what year", "how many X")."""
    if wi is None:
        return None
    t = tokens[wi]
    for _ in range(5):
        if t.head == t.i:
            break
        t = tokens[t.head]
        in_phrase = t.lemma == focus or t.text.lower() in _HOW_ADJ
        if t.pos in ("VERB", "NOUN", "ADJ") and t.lemma not in ("be", "have", "do") and not in_phrase:
            return t.lemma
    return None


def _modifiers(tokens: tuple[Token, ...], focus: str | None) -> list[str]:
    """Compound nouns before the focus ("price" in "price tag"): a fallback when the focus itself is unknown."""
    head = next((t for t in tokens if focus and t.lemma == focus and t.pos == "NOUN"), None)
    return [t.lemma for t in tokens if head is not None and t.head == head.i and t.dep == "compound"]


def _wh_role(tokens: tuple[Token, ...], wi: int | None, wh: str) -> tuple[str | None, str | None]:
    """The wh-phrase's dependency label and the preposition governing it, read at the phrase's head word."""
    if wi is None:
        return None, None
    t = tokens[wi]
    if wh.startswith("how_") and wi + 1 < len(tokens):  # "how many people": the phrase is headed by its noun
        t = tokens[tokens[wi + 1].head] if tokens[tokens[wi + 1].head].pos == "NOUN" else tokens[wi + 1]
    elif t.dep in ("det", "amod", "nummod", "poss") and t.head != t.i:  # "which company", "whose plan"
        t = tokens[t.head]
    head = tokens[t.head]
    return t.dep, head.lemma if head.pos == "ADP" and head.i != t.i else None


def _expected(wh: str, focus: str | None, unit: str | None, focus_types: dict[str, list[str]],
              modifiers: list[str] | None = None, focus_labels: Callable[[str], tuple[str, ...]] | None = None
              ) -> tuple[tuple[str, ...], str]:
    """Answer labels and where they came from: the asked unit, the wh-table's "what X" forms, the fitted focus
    table, the wh-word, and last the labels nearest a focus noun none of them knows (`focus_labels`)."""
    table = answer_types()["wh"]
    if unit is not None:
        return (("PERCENT",) if unit == "%" else ("MONEY",)), "unit"
    for noun in [focus, *(modifiers or [])] if focus else []:
        if f"what_{noun}" in table and wh in ("what", "which"):
            return tuple(table[f"what_{noun}"]), "wh table"
        if noun in focus_types:
            return tuple(focus_types[noun]), "focus table"
    by_wh = tuple(table.get(wh, ()))
    if by_wh or focus is None or focus_labels is None:
        return by_wh, "wh table" if by_wh else ""
    typed = focus_labels(focus)
    return typed, "label centroids" if typed else ""


def _unit(text: str, parsed: Parsed) -> str | None:
    """The currency or percent the question asks in: "in dollars", "how many yen", "what percentage"."""
    figures = extract_figures(text)
    for t in parsed.tokens:
        if any(q.start <= t.start < q.end for q in figures):  # "5 percent" in a question is not what it asks
            continue
        if t.lemma in ("percent", "percentage", "%"):
            return "%"
        code = currency_of(t.text)
        if code:
            return code
    return None


def analyse(text: str, parse: Callable[[str], Parsed], focus_types: dict[str, list[str]] | None = None,
            names: dict[str, str] | None = None, focus_labels: Callable[[str], tuple[str, ...]] | None = None
            ) -> Question:
    """The analysed question; `parse` is the spaCy parse of English text (zh/ja is glossed first);
    `focus_labels` types a focus noun the fitted table does not know."""
    lang = language(text)
    english = text if lang == "en" else gloss(text, names)
    summary = _SUMMARY.match(english)
    parsed = parse(english)
    tokens = parsed.tokens
    wh, wi = _wh(tokens)
    focus = _focus(tokens, wh, wi)
    unit = _unit(english, parsed)
    expected, expected_by = _expected(wh, focus, unit, focus_types or {}, _modifiers(tokens, focus), focus_labels)
    role = _wh_role(tokens, wi, wh)
    lead = tokens[0].lemma if tokens else ""
    table = answer_types()
    desc = table["descriptive"]
    purpose = wi is not None and any(t.lemma in desc["purpose_preps"] and not any(
        o.head == t.i and o.dep == "pobj" for o in tokens) for t in tokens)  # "what is X for?": stranded "for"
    descriptive = (summary is not None or purpose or (wh in desc["wh"] and not expected)
                   or (wi is None and lead in desc["lead_verbs"]))
    lemmas = {t.lemma for t in tokens}
    publication = bool(lemmas & set(table["publication"]["verbs"]) and lemmas & set(table["publication"]["nouns"])
                       and (wh in ("when", "what", "which") or "DATE" in expected))
    terms = {t.lemma: 1.0 for t in tokens if t.pos in CONTENT_POS and not t.is_stop and t.i != wi
             and t.tag not in WH_TAGS and len(t.lemma) > 1}
    names_found = [english[run[0].start:run[-1].end].lower() for run in proper_runs(tokens)]
    numbers = tuple(t.text for t in tokens if t.pos == "NUM" and re.fullmatch(r"(1[89]|20)\d\d", t.text))
    return Question(text=text, english=english, lang=lang, wh=wh, focus=focus, expected=expected,
                    expected_by=expected_by, unit=unit,
                    terms=terms, names=tuple(dict.fromkeys(names_found)), numbers=numbers,
                    descriptive=descriptive and not publication, summary_of=summary.group(1) if summary else None,
                    publication=publication, wh_head=_wh_head(tokens, wi, focus),
                    wh_dep=role[0], wh_prep=role[1], parsed=parsed)
