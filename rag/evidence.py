"""Evidence scoring: which sentence of the retrieved chunks answers the question, and which figure in it.

A sentence scores by semantic similarity to the question (precomputed sentence vectors), by how many of
the question's key terms and entities it carries, weighted by rarity and by nearness to the candidate
figure, by answer-type match and by qualifier match (annual, previous, cumulative, years). A figure asked as
someone's must come from a sentence that casts them as its owner, and a figure of a named property (yield,
revenue, price...) from a sentence that names the property."""

from __future__ import annotations

import math
import re
import weakref
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from rag.figures import Quantity, extract_figures, figures_equal
from rag.lexical import WORD, tokenize
from rag.query import _ALIAS_OF, _GENERIC_PLACES, QueryAnalysis, canonical, latin_skeleton, whole_word
from rag.types import Hit

_MONTH_NAME = re.compile(r"\b(?:January|February|March|April|May|June|July|August|September|October|November|"
                         r"December)\b")
_PREVIOUS_CUE = re.compile(r"\b(?:previous(?:ly)?|prior|earlier|former(?:ly)?|initial(?:ly)?|original(?:ly)?|"
                           r"last year'?s?|the year before|up from|compared with|from)\s+(?:the\s+|a\s+|an\s+|its\s+)?"
                           r"(?:[\w'’]+\s+){0,2}$", re.I)
_ANNUAL_CUE = re.compile(r"\b(?:annual(?:ly)?|yearly|per year|a year|each year|every year|per annum)\b|每年|毎年|年間",
                         re.I)
_CUMULATIVE_CUE = re.compile(r"\b(?:already|so far|to date|thus far|in total|cumulative(?:ly)?|since|has been|"
                             r"have been|has received|have received|has allocated|have allocated|has invested|"
                             r"have invested|has directed|has put)\b|累计|迄今|これまで|累計", re.I)
_TOTAL_CUE = re.compile(r"\b(?:total|overall|combined|larger|entire|whole|aggregate|altogether)\b(?:\W+\w+){0,4}\W*$",
                        re.I)
_TOTAL_NOUN = re.compile(r"\b(?:total|overall|combined|entire|whole|aggregate)\s+((?:[\w-]+\s+)?[\w-]+)", re.I)
TOTAL_SUBJECT_BONUS = 0.08  # "the overall budget" for a total-budget question, over "combined support"
_COUNT_SYNONYMS = [frozenset(tokenize("company companies firm firms corporation corporations business businesses "
                                      "enterprise enterprises member members")),
                   frozenset(tokenize("employee employees worker workers staff people person persons")),
                   frozenset(tokenize("country countries nation nations state states"))]
_NAME = re.compile(r"(?<![\w'])(?:[A-Z][\w&'.-]*[A-Za-z]|[A-Z]{2,})(?:\s+(?:of|and|for|de|the|&)?\s*"
                   r"(?:[A-Z][\w&'.-]*[A-Za-z]|[A-Z]{2,}))*")
_COMMON_CAPS = frozenset(
    "The A An In On At Of For By To And Or But This That These Those It Its Their There Here With From As After "
    "Before When While If Since Although However Meanwhile Also Just Now Earlier Last Over Under According Both "
    "Some Most Many Such Other Key What Why How Who Which Where Monday Tuesday Wednesday Thursday Friday Saturday "
    "Sunday January February March April May June July August September October November December Chief Mayor "
    "Mr Mrs Ms Dr".split())

_PLACES = _GENERIC_PLACES | frozenset(("south korea", "north korea", "middle east", "asia", "africa",
                                       "latin america", "southeast asia"))

WARM_SENTENCES = 20_000
UNSEEN_WEIGHT = 0.5  # weight of a question word no source uses (often a paraphrase) relative to a shared one
SLOT_BONUS = 0.08  # a name question's answer sits in the slot the question asks after ("... send it to?")
CONTEXT_WEIGHT = 0.3  # weight of a preamble or modifier word relative to a word of the interrogative sentence

NUMERIC_KINDS = {
    "money": ("money",), "percent": ("percent",), "count": ("count",), "year": ("year", "date"),
    "date": ("date", "year", "month"), "measure": ("measure",), "duration": ("duration",),
}


@dataclass(slots=True)
class Sentence:
    """A sentence of a retrieved chunk with its offsets in the document and its similarity to the question."""

    doc_id: str
    start: int
    end: int
    text: str
    sim: float
    rank: int
    prev_text: str = ""
    next_text: str = ""


@dataclass(slots=True)
class Pick:
    """A candidate answer: a sentence, the figure in it (None for non-numeric answers) and its score."""

    sentence: Sentence
    figure: Quantity | None
    score: float
    fit: float
    signature: tuple[str, ...] = ()
    alt: Quantity | None = None  # the same amount in another currency, stated beside it
    names: list[str] = field(default_factory=list)


# --- corpus statistics (computed once per store) --------------------------------------------------------

@dataclass(slots=True)
class _Stats:
    n: int
    df: Counter[str]
    skeletons: dict[str, set[str]]
    doc_lower: dict[str, str]
    doc_terms: dict[str, frozenset[str]]
    casing: Casing
    doc_text: dict[str, str]
    doc_spans: dict[str, set[tuple[int, int]]]
    kind_terms: dict[tuple[str, tuple[str, ...]], frozenset[str]] = field(default_factory=dict)
    mentions: dict[tuple[str, str], bool] = field(default_factory=dict)  # (doc id, name form) -> named
    owned: dict[tuple[str, tuple[str, ...]], bool] = field(default_factory=dict)  # (doc id, entity) -> owns
    acronyms: dict[str, dict[str, frozenset[str]]] = field(default_factory=dict)  # doc id -> acronym -> stems


@dataclass(frozen=True, slots=True)
class Casing:
    """How the corpus writes its words: `names` maps a lower-case word to its capitalised form where the
    corpus capitalises it mid-sentence at least as often as not (a name, recoverable from lower-cased
    text); `common` holds words it writes in lower case and never capitalises mid-sentence."""

    names: dict[str, str]
    common: frozenset[str]


_CASED_WORD = re.compile(r"[A-Za-z][A-Za-z0-9&'’-]*")
_MID_SENTENCE = re.compile(r"(?:\b[a-z][\w'’-]*|[,;:)])\s$")  # after a lower-case word: not a sentence or name start


def corpus_casing(texts: list[str]) -> Casing:
    """Count each word's capitalised mid-sentence and lower-case uses over the corpus."""
    capital: Counter[str] = Counter()
    lower: Counter[str] = Counter()
    forms: dict[str, Counter[str]] = {}
    for text in texts:
        for m in _CASED_WORD.finditer(text):
            word = m.group().rstrip("'’-")
            low = word.lower()
            if word[0].islower():
                lower[low] += 1
            elif _MID_SENTENCE.search(text[max(0, m.start() - 30):m.start()]):
                capital[low] += 1
                forms.setdefault(low, Counter())[word] += 1
    stop = {w.lower() for w in _COMMON_CAPS}
    names = {low: forms[low].most_common(1)[0][0] for low, n in capital.items()
             if n >= lower[low] and low not in stop and len(low) > 1}
    return Casing(names, frozenset(low for low in lower if low not in capital))


_STATS: weakref.WeakKeyDictionary[Any, _Stats] = weakref.WeakKeyDictionary()


def corpus_stats(store: Any) -> _Stats:
    """Document frequency of every term over the store's chunks, for rarity weights; cached per store."""
    stats = _STATS.get(store)
    if stats is None:
        df: Counter[str] = Counter()
        skeletons: dict[str, set[str]] = {}
        spans: dict[str, set[tuple[int, int]]] = {}
        for chunk in store.chunks:
            terms = set(tokenize(chunk.text))
            df.update(terms)
            spans.setdefault(chunk.doc_id, set()).update((sp.start, sp.end) for sp in chunk.sentences)
        for doc in store.documents.values():
            for w in set(re.findall(r"[A-Za-z]{4,}", doc.text)):
                skeletons.setdefault(latin_skeleton(w), set()).add(w.lower())
        stats = _Stats(max(1, len(store.chunks)), df, skeletons,
                       {d: doc.text.lower() for d, doc in store.documents.items()},
                       {d: frozenset(canonical(t) for t in tokenize(doc.text)) for d, doc in store.documents.items()},
                       corpus_casing([doc.text for doc in store.documents.values()]),
                       {d: doc.text for d, doc in store.documents.items()}, spans)
        _STATS[store] = stats
        if sum(len(c.sentences) for c in store.chunks) <= WARM_SENTENCES:
            for doc_id in store.documents:
                doc_acronyms(stats, doc_id)
            for chunk in store.chunks:  # small corpora: precompute per-sentence features once, off the ask path
                doc = store.documents.get(chunk.doc_id)
                for span in chunk.sentences if doc is not None else ():
                    text = doc.text[span.start:span.end]
                    word_positions(text)
                    sentence_figures(text)
                    clause_bounds(text)
    return stats


def terms_near_figures(stats: _Stats, doc_id: str, kinds: tuple[str, ...]) -> frozenset[str]:
    """Terms of a document's sentences that state a figure of one of the kinds; cached per document."""
    key = (doc_id, kinds)
    terms = stats.kind_terms.get(key)
    if terms is None:
        text = stats.doc_text.get(doc_id, "")
        found: set[str] = set()
        for start, end in stats.doc_spans.get(doc_id, ()):
            sentence = text[start:end]
            if any(q.kind in kinds for q in sentence_figures(sentence)):
                found |= sentence_terms(sentence)
        terms = stats.kind_terms[key] = frozenset(found)
    return terms


def idf(stats: _Stats, term: str) -> float:
    return math.log(1.0 + (stats.n + 1) / (stats.df.get(term, 0) + 0.5))


@lru_cache(maxsize=65_536)
def word_positions(text: str) -> tuple[tuple[str, int], ...]:
    """(stemmed term, character offset) for each word of a sentence."""
    out: list[tuple[str, int]] = []
    for m in WORD.finditer(text):
        for t in tokenize(m.group()):
            out.append((canonical(t), m.start()))
    return tuple(out)


@lru_cache(maxsize=65_536)
def sentence_terms(text: str) -> frozenset[str]:
    return frozenset(t for t, _ in word_positions(text))


@lru_cache(maxsize=65_536)
def sentence_figures(text: str) -> tuple[Quantity, ...]:
    """Figures of a sentence plus bare month names ("by June") as month-only dates."""
    figs = list(extract_figures(text))
    taken = [(q.start, q.end) for q in figs]
    for m in _MONTH_NAME.finditer(text):
        if all(m.end() <= s or m.start() >= e for s, e in taken):
            figs.append(Quantity(m.group(), m.start(), m.end(), 0.0, "month", "month"))
    return tuple(sorted(figs, key=lambda q: q.start))


def doc_mentions(stats: _Stats, doc_id: str, form: str) -> bool:
    """Whether a document mentions a name (case-insensitive, whole words); cached in the store's statistics."""
    key = (doc_id, form)
    hit = stats.mentions.get(key)
    if hit is None:
        text = stats.doc_lower.get(doc_id, "")
        if re.search(r"[\u3040-\u30ff\u3400-\u9fff]", form):
            hit = form in text
        else:
            hit = whole_word(form).search(text) is not None
        stats.mentions[key] = hit
    return hit


# --- acronyms a document defines ---------------------------------------------------------------------------

_ACRONYM_DEF = re.compile(r"\(([A-Za-z]{2,8})\)")
ACRONYM_SKIPS = 2  # words inside a long form that the acronym leaves out ("soc technology research" -> "sr")


def long_form(before: str, acronym: str) -> list[str] | None:
    """The words just before "(acronym)" whose initials spell it, last word on the last letter, at most
    ACRONYM_SKIPS words left out in between ("automotive soc technology research association (asra)")."""
    words = re.findall(r"[\w'-]+", before)[-(len(acronym) + ACRONYM_SKIPS):]
    letters = acronym.lower()
    i, j, skipped = len(letters) - 1, len(words) - 1, 0
    while i >= 0 and j >= 0:
        if words[j][0].lower() == letters[i]:
            i -= 1
        elif i == len(letters) - 1 or skipped == ACRONYM_SKIPS:
            return None
        else:
            skipped += 1
        j -= 1
    return words[j + 1:] if i < 0 else None


def doc_acronyms(stats: _Stats, doc_id: str) -> dict[str, frozenset[str]]:
    """Acronyms the document defines, each with the stems of its long form, so that a later sentence using
    only the acronym ("ASRA, comprising 14 companies") matches the question's words for the long form."""
    found = stats.acronyms.get(doc_id)
    if found is None:
        text = stats.doc_text.get(doc_id, "")
        found = {}
        for m in _ACRONYM_DEF.finditer(text):
            words = long_form(text[max(0, m.start() - 200):m.start()], m.group(1))
            keys = [canonical(t) for t in tokenize(m.group(1))]
            if words and len(keys) == 1:
                found[keys[0]] = frozenset(canonical(t) for w in words for t in tokenize(w))
        stats.acronyms[doc_id] = found
    return found


# --- owners: whose figure a sentence states ----------------------------------------------------------------

# Words before a name that make it a point of comparison or a list item, not the owner of the figure.
_NOT_OWNER_BEFORE = re.compile(r"\b(?:compar\w*|similar|equal|equivalent|close|closer|relative|akin|next|second|"
                               r"according|thanks|due|up|rivals?|rivall?ing|than|like|unlike|versus|vs|behind|"
                               r"such as|including|includes?|alongside|against|over)\s+(?:to\s+|with\s+)?"
                               r"(?:the\s+)?$", re.I)
_PASSING_NEAR = re.compile(r"\b(?:compar\w*|similar|than|like|unlike|versus|such as|including|alongside|rivals?)\b",
                           re.I)
_SUBJECT_START = re.compile(r"(?:^|[.;:!?]\s+)(?:the\s+)?[\"'“‘(\[]*$", re.I)
_GIVEN_BEFORE = re.compile(r"\b(?:grants?|granted|gives?|gave|given|awards?|awarded|offers?|offered|pays?|paid|hands?|"
                           r"handed|lets?|allows?|allowed)\s+(?:the\s+)?$", re.I)
_RECIPIENT_BEFORE = re.compile(r"\b(?:by|for|to)\s+(?:the\s+)?(?:(?!(?:and|or)\b)[\w-]+\s+){0,3}$", re.I)
_NAME_TAIL = re.compile(r"(?:\s+(?:[A-Z][\w&'.-]*|[A-Z]{2,}))*")  # "Rapidus Corp." continues the name
# After a recipient or agent the name ends its phrase ("to Broadcom by June"); it does not qualify a noun
# ("tied to US investment").
_PHRASE_END = re.compile(r"\)?(?:\s*\[\d+\])*(?:\s*(?:[,.;:!?)\]—–]|$)|\s+(?:by|in|on|at|for|from|with|to|and|or|as|"
                         r"over|under|this|next|last|after|before|until|within|through|during|since|which|who|that|"
                         r"of|if|when|while|because|per|each|every|a|an|the|its|their)\b)", re.I)
_FINITE = (r"(?:has|have|had|will|would|is|are|was|were|could|can|may|might|must|should|[a-z]+ed|"
           r"[a-z]{2,}[^s\W]s)\b")
# After an owner: a possessive, "-led", an apposition or relative clause, or (after up to three words of its
# noun phrase: "the Japanese government has") a finite verb.
_OWNER_AFTER = re.compile(r"['’]s\b|-(?:led|backed|owned|funded|run)\b|,\s+(?:a|an|which|who|whose|comprising|"
                          r"consisting|with)\b|\)?(?:\s+(?!(?:and|or|in|of|to|with|than|as|at|on|for|by|the|a|an|"
                          rf"from|like)\b)[\w-]+){{0,3}}?(?:\s*\[\d+\])*,?\s+(?:\w+ly\s+)?{_FINITE}", re.I)


def _owns_at(text: str, low: str, start: int, end: int) -> bool:
    """Whether the name at text[start:end] owns what the sentence states: its subject, possessor, agent or
    recipient, and not a point of comparison or a list item."""
    before = low[:start]
    if _NOT_OWNER_BEFORE.search(before):
        return False
    if before.endswith("("):  # "the Ministry of Economy (METI)": an alias of the phrase before it
        return not _PASSING_NEAR.search(before[-60:])
    if _SUBJECT_START.search(before) or _GIVEN_BEFORE.search(before) or _OWNER_AFTER.match(low, end):
        return True
    tail = _NAME_TAIL.match(text, end).end() if len(low) == len(text) else end
    return _RECIPIENT_BEFORE.search(before) is not None and _PHRASE_END.match(low, tail) is not None


def owner_mention(text: str, group: tuple[str, ...]) -> bool | None:
    """How a sentence mentions an entity: True when some mention makes it the owner, agent or recipient of
    what the sentence states, False when every mention is in passing ("comparable to the US and China", a
    list item), None when the sentence does not name it."""
    low = text.lower()
    spans = [(m.start(), m.end()) for form in group
             for m in whole_word(form).finditer(low)]
    if not spans:
        return None
    return any(_owns_at(text, low, a, b) for a, b in spans)


def doc_owns(stats: _Stats, doc_id: str, group: tuple[str, ...]) -> bool:
    """Whether some sentence of the document makes the entity an owner, agent or recipient; cached per store."""
    key = (doc_id, group)
    owns = stats.owned.get(key)
    if owns is None:
        text = stats.doc_text.get(doc_id, "")
        owns = any(owner_mention(text[a:b], group) for a, b in stats.doc_spans.get(doc_id, ()))
        stats.owned[key] = owns
    return owns


# --- gathering sentences ---------------------------------------------------------------------------------

def gather(hits: list[Hit], store: Any, query_vector: np.ndarray | None) -> list[Sentence]:
    """Every distinct sentence of the retrieved chunks with its cosine similarity to the question."""
    seen: dict[tuple[str, int], Sentence] = {}
    for hit in hits:
        chunk = hit.chunk
        doc = store.documents.get(chunk.doc_id)
        if doc is None:
            continue
        vecs = store.sentence_vectors(chunk) if query_vector is not None else None
        sims: list[float]
        if vecs is not None and len(vecs) == len(chunk.sentences):
            sims = (vecs @ query_vector.astype(np.float32)).tolist()
        else:
            sims = [float(hit.dense_score or 0.0)] * len(chunk.sentences)
        texts = [doc.text[sp.start:sp.end] for sp in chunk.sentences]
        for i, (span, sim) in enumerate(zip(chunk.sentences, sims, strict=False)):
            key = (chunk.doc_id, span.start)
            if key not in seen or seen[key].sim < sim:
                seen[key] = Sentence(chunk.doc_id, span.start, span.end, texts[i], float(sim), hit.rank,
                                     texts[i - 1] if i else "", texts[i + 1] if i + 1 < len(texts) else "")
    return list(seen.values())


# --- scoring ---------------------------------------------------------------------------------------------

@dataclass(slots=True)
class Scorer:
    """Scores sentences and figures against one analysed question."""

    a: QueryAnalysis
    stats: _Stats
    weights: dict[str, float] = field(default_factory=dict)
    entity_terms: set[str] = field(default_factory=set)
    alias_of: dict[str, tuple[str, ...]] = field(default_factory=dict)
    _entities_ok: dict[str, bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        top = math.log(1.0 + (self.stats.n + 1) / 0.5)
        entity_terms = {t for g in self.a.entities for f in g for t in tokenize(f)}
        for t in self.a.terms:
            # A word no source uses is often a paraphrase: it counts, but less than a word the sources share.
            self.weights[t] = idf(self.stats, t) * (1.0 if self.stats.df.get(t, 0) or t in entity_terms else UNSEEN_WEIGHT)
        for t in self.a.context:
            if t not in self.weights and self.stats.df.get(t, 0):
                self.weights[t] = CONTEXT_WEIGHT * idf(self.stats, t)
        self.entity_terms = entity_terms
        for g in self.a.entities:
            for f in g:
                for t in tokenize(f):
                    self.alias_of[t] = g
        for u in self.a.unknown:
            self.weights["cjk:" + u] = top * len(u)  # an unglossed CJK word is most likely a name
        for k in self.a.kana:
            self.weights["kana:" + k] = top * 0.7

    @property
    def total(self) -> float:
        return sum(self.weights.values()) or 1.0

    def entities_ok(self, doc_id: str) -> bool:
        """Every name the question uses occurs in the document (any alias)."""
        ok = self._entities_ok.get(doc_id)
        if ok is None:
            ok = all(any(doc_mentions(self.stats, doc_id, f) for f in group) for group in self.a.entities)
            self._entities_ok[doc_id] = ok
        return ok

    def _kana_hits(self, text: str) -> set[str]:
        words = {latin_skeleton(w) for w in re.findall(r"[A-Za-z]{4,}", text)}
        return {k for k in self.a.kana if k in words}

    def coverage(self, s: Sentence, figure: Quantity | None = None,
                 others: tuple[Quantity, ...] = ()) -> float:
        """Share of the question's term weight the sentence carries. With a figure, a term counts fully when
        it is nearer to this figure than to any other figure of the sentence, and less the farther it is."""
        positions = word_positions(s.text)
        bounds = clause_bounds(s.text)
        acronyms = doc_acronyms(self.stats, s.doc_id)
        prev_terms = (sentence_terms(s.prev_text) if s.prev_text else frozenset()) | (
            sentence_terms(s.next_text) if s.next_text else frozenset())
        got = 0.0
        for key, w in self.weights.items():
            if key.startswith("cjk:"):
                got += w if key[4:] in s.text else (0.3 * w if doc_mentions(self.stats, s.doc_id, key[4:]) else 0)
                continue
            if key.startswith("kana:"):
                got += w if key[5:] in self._kana_hits(s.text) else 0.0
                continue
            offs = ([p for t, p in positions if t == key] or self._alias_offsets(s.text, key)
                    or [p for t, p in positions if key in acronyms.get(t, ())])
            if offs:
                got += w if figure is None else w * max(_nearness(p, figure, others, bounds, s.text) for p in offs)
            elif key in prev_terms:
                got += 0.5 * w
            elif key in self.entity_terms and doc_mentions(self.stats, s.doc_id, key):
                got += 0.3 * w
        return got / self.total

    def names_nearby(self, s: Sentence) -> bool:
        """A figure about a named company or person comes from a passage naming it: the sentence itself, or one
        beside it unless the sentence opens with another name as its subject ("Greenfield Solar has received
        ..."). Places and owners ("METI's budget") are exempt: an article about them often leaves them implied."""
        question = self.a.question.lower()
        groups = [g for g in self.a.entities if not set(g) & _PLACES and not any(f"{f}'s" in question for f in g)
                  and g not in self.a.descriptors and not framed(question, g)]
        if not groups:
            return True
        here = s.text.lower()
        if all(mentions(here, g) for g in groups):
            return True
        opening = _NAME.match(s.text)
        if opening and opening.group().split()[0] not in _COMMON_CAPS and not mentions(opening.group().lower(),
                                                                                       tuple(f for g in groups for f in g)):
            return False
        window = " ".join((s.prev_text, s.text, s.next_text)).lower()
        return all(mentions(window, g) for g in groups)

    def owner_ok(self, s: Sentence) -> bool:
        """A figure asked as someone's ("X's budget", "how much did X spend") comes from a sentence that makes X
        its owner, agent or recipient, not one naming X in passing ("comparable to X"); a sentence that leaves
        X implied must come from an article that casts X in that role somewhere, and not cast another
        country in it."""
        for group in self.a.owners:
            role = owner_mention(s.text, group)
            if role is False:
                return False
            if role is None and (not doc_owns(self.stats, s.doc_id, group) or self._other_place_owns(s, group)
                                 or other_possessor(s.text, self.a)):
                return False
        return True

    def _other_place_owns(self, s: Sentence, group: tuple[str, ...]) -> bool:
        """For a country asked about, a sentence leaving it implied whose own subject is another country
        ("Japan is aiming to allocate ...") states that country's figure."""
        if not set(group) & _PLACES:
            return False
        for m in _NAME.finditer(s.text):
            other = _ALIAS_OF.get(m.group().lower())
            if other and other != group and owner_mention(s.text, other):
                return True
        return False

    def property_ok(self, s: Sentence, q: Quantity | None = None) -> bool:
        """A question for a measured property (yield, revenue, price, ...) is answered only by a sentence
        naming that property, next to the figure when there is one."""
        if not self.a.properties:
            return True
        positions = word_positions(s.text)
        if q is None:
            return all(any(t in said for t, _ in positions) for said in self.a.properties)
        bounds = clause_bounds(s.text)
        here = _clause(bounds, q.start)
        return all(any(t in said and (_clause(bounds, p) == here or min(abs(p - q.start), abs(p - q.end)) <= 60)
                       for t, p in positions) for said in self.a.properties)

    def shared_with_others(self, s: Sentence) -> bool:
        """A name the question asks about appears in the sentence only as one item of a list of other names
        ("companies such as TSMC, Kioxia, and Micron"): the sentence's figure is theirs jointly, not its own."""
        lists = [(m.start(), m.end(), m.group().lower()) for m in _ENUMERATION.finditer(s.text)]
        if not lists:
            return False
        low = s.text.lower()
        asked = {f for g in self.a.entities for f in g}
        for group in self.a.entities:
            if set(group) & _PLACES or group in self.a.descriptors:
                continue
            offs = [m.start() for f in group for m in whole_word(f).finditer(low)]
            listed = [(a, b, t) for a, b, t in lists if any(a <= o < b for o in offs)]
            if offs and len(listed) == len(offs) and any(
                    any(not any(f in item for f in asked) for item in _LIST_SPLIT.split(t)) for _, _, t in listed):
                return True
        return False

    def states_predicate(self, s: Sentence, title: str | None) -> bool:
        """An explanation must come from a sentence that itself uses a word of what the question says about
        its subject ("focusing on" ~ "the focus on"), not one that only names the subject, and that is not
        the article's headline."""
        if title and " ".join(s.text.split()).casefold() == " ".join(title.split()).casefold():
            return False
        predicate = [t for t in self.a.terms if t not in self.entity_terms]
        return not predicate or bool(set(predicate) & sentence_terms(s.text))

    def purpose_ok(self, s: Sentence) -> bool:
        """What the money is for ("spend on X", "funding for X") must be named in the sentence or beside it."""
        if not self.a.purpose:
            return True
        here = sentence_terms(s.text) | sentence_terms(s.prev_text) | sentence_terms(s.next_text)
        return any(t in here or self._alias_offsets(s.text, t) for t in self.a.purpose)

    def _alias_offsets(self, text: str, key: str) -> list[int]:
        group = self.alias_of.get(key)
        if not group:
            return []
        low = text.lower()
        return [m.start() for f in group for m in whole_word(f).finditer(low)]

    def orphan_coverage(self, s: Sentence) -> float:
        """Term weight the sentence carries in clauses that state no figure of the asked kind: the sources
        then discuss the subject without giving the figure."""
        kinds = NUMERIC_KINDS.get(self.a.answer_type, ())
        bounds = clause_bounds(s.text)
        figs = [q for q in sentence_figures(s.text) if q.kind in kinds]
        with_fig = {_clause(bounds, q.start) for q in figs}
        if len(with_fig) < 2:
            return 0.0  # only an enumeration that gives figures for the other items tells anything
        positions = word_positions(s.text)
        got = 0.0
        for key, w in self.weights.items():
            offs = [p for t, p in positions if t == key]
            if offs and all(_clause(bounds, p) not in with_fig and not _is_main_clause(s.text, bounds, _clause(bounds, p))
                            for p in offs):
                got += w
        return got / self.total

    def displaced(self, s: Sentence) -> float:
        """Share of term weight that rare words carry which the document states elsewhere but this sentence
        lacks: the question is then likely about another passage of the same article. For a numeric question
        only passages stating a figure of the asked kind count: another passage could not answer it."""
        here = sentence_terms(s.text) | (sentence_terms(s.prev_text) if s.prev_text else frozenset())
        acronyms = doc_acronyms(self.stats, s.doc_id)
        here = here.union(*(acronyms[t] for t in here if t in acronyms))
        kinds = NUMERIC_KINDS.get(self.a.answer_type)
        elsewhere = (terms_near_figures(self.stats, s.doc_id, kinds) if kinds
                     else self.stats.doc_terms.get(s.doc_id, frozenset()))
        lost = 0.0
        rare = max(2, self.stats.n // 8)
        for key, w in self.weights.items():
            if (":" in key or key in here or key in self.entity_terms or key in self.a.context
                    or self.stats.df.get(key, 0) > rare):
                continue
            if key in elsewhere:  # the same stem, not a prefix ("bill" < "billion")
                lost += w
        return lost / self.total

    def figure_ok(self, s: Sentence, q: Quantity) -> bool:
        """The figure is of the kind and unit asked for, and is not a figure the question itself names."""
        a = self.a
        change = "change" in a.qualifiers and q.kind == "percent" and a.unit is None
        if q.kind not in NUMERIC_KINDS.get(a.answer_type, ()) and not change:
            return False
        if a.answer_type in ("money", "measure") and a.unit and q.unit != a.unit:
            return False
        if any(figures_equal(q.value, q.unit, f.value, f.unit) for f in a.figures):
            return False
        if a.answer_type == "count":
            return self._counts_asked(s.text, q)
        if a.rate_subject and not (set(a.rate_subject) & sentence_terms(s.text)):
            return False  # "what interest rate": a percentage of something else does not answer it
        return True

    def change_bonus(self, text: str, q: Quantity) -> float:
        """A growth question ("the growth in X") wants the change ("a 50% expansion", "up by 6%"), not the
        level reached ("... to ¥3 trillion")."""
        if "change" not in self.a.qualifiers:
            return 0.0
        if _CHANGE_AFTER.match(text, q.end) or _CHANGE_BEFORE.search(text[max(0, q.start - 30):q.start]):
            return CHANGE_BONUS
        return -CHANGE_BONUS if _LEVEL_BEFORE.search(text[max(0, q.start - 30):q.start]) else 0.0

    def agent_ok(self, s: Sentence, q: Quantity) -> bool:
        """For "how much did X invest / pay ...", X must be the figure's agent in the sentence: the subject of
        a spending verb just before it ("X will invest 12 million"), its possessor ("X's 5 million
        investment") or named after "by" ("a 5 million investment by X"). A sentence without X states
        someone else's spending."""
        low = s.text.lower()
        return all(any(_agent_of(low, m.start(), m.end(), q) for f in g for m in whole_word(f).finditer(low))
                   for g in self.a.agents)

    def _counts_asked(self, text: str, q: Quantity) -> bool:
        nouns = self.a.count_nouns
        if not nouns:
            return True
        after = {t for t, _ in word_positions(text[q.end:q.end + 40])[:3]}
        head = nouns[-1]
        wanted = {head} | next((g for g in _COUNT_SYNONYMS if head in g), frozenset())
        wanted |= set(nouns) if len(nouns) > 1 and head in after else set()
        return bool(after & wanted)

    def signature(self, s: Sentence, q: Quantity) -> tuple[str, ...]:
        """Qualifiers stated with a figure (previous / annual / cumulative / total): cues count within the
        figure's own clause and a figure-less clause just before it."""
        bounds = clause_bounds(s.text)
        i = _clause(bounds, q.start)
        end = bounds[i + 1] if i + 1 < len(bounds) else len(s.text)
        start = bounds[i]
        if i > 0 and not any(bounds[i - 1] <= f.start < bounds[i] for f in sentence_figures(s.text)
                             if f.kind == q.kind):
            start = bounds[i - 1]
        before = s.text[max(start, q.start - 45):q.start]
        around = s.text[start:end]
        sig = []
        if _PREVIOUS_CUE.search(before):
            sig.append("previous")
        if _ANNUAL_CUE.search(around):
            sig.append("annual")
        if _CUMULATIVE_CUE.search(around):
            sig.append("cumulative")
        if _TOTAL_CUE.search(s.text[max(start, q.start - 45):q.start]):
            sig.append("total")
        return tuple(sig)

    def qualifier_bonus(self, s: Sentence, sig: tuple[str, ...], published: str | None) -> float:
        a, bonus = self.a, 0.0
        asked = a.qualifiers
        if "previous" in asked:
            bonus += 0.2 if "previous" in sig else -0.1
        elif "previous" in sig:
            bonus -= 0.12
        if "annual" in asked:
            bonus += 0.06 if "annual" in sig else -0.03
        if "cumulative" in asked:
            bonus += 0.08 if "cumulative" in sig else -0.06
        if "total" in asked and "total" in sig:
            bonus += 0.06 + (TOTAL_SUBJECT_BONUS if self._total_of_subject(s.text) else 0.0)
        years_here = {int(q.value) if q.kind == "year" else int(q.value) // 10000
                      for q in sentence_figures(s.text) if q.kind in ("year", "date")}
        for rel, year in a.years:
            if year in years_here:
                bonus += 0.06
            elif rel in ("since", "by") or not (published and published.startswith(str(year))):
                bonus -= 0.08
        return bonus

    def _total_of_subject(self, text: str) -> bool:
        """The sentence calls the asked thing itself total ("the overall budget"), not some other part of it
        ("combined support"): a total question wants that figure over a sub-allocation."""
        return any(canonical(t) in self.weights for m in _TOTAL_NOUN.finditer(text) for t in tokenize(m.group(1)))

    def anchor_bonus(self, s: Sentence) -> float:
        """The sentence restates a figure the question names ("of the $550 billion package")."""
        if not self.a.figures:
            return 0.0
        figs = sentence_figures(s.text)
        named = [f for f in self.a.figures if f.kind != "year"]
        hits = sum(any(figures_equal(f.value, f.unit, q.value, q.unit) for q in figs) for f in named)
        return 0.08 * hits

    def source_bonus(self, s: Sentence, meta: Any) -> float:
        a = self.a
        bonus = 0.0
        if a.source_terms:
            text = " ".join(str(x or "") for x in (meta.title, meta.publisher)).lower() + " " + s.text.lower()
            hay = set(tokenize(text))
            bonus += 0.1 * sum(t in hay for t in a.source_terms) / len(a.source_terms)
        if a.source_months and meta.published:
            bonus += 0.1 if int(meta.published[5:7]) in a.source_months else -0.1
        return bonus


_FRAME_NOUNS = ("budget|budgets|effort|efforts|project|projects|initiative|initiatives|plan|plans|programme|"
                "program|scheme|package|fund|deal|programs|programmes")


def framed(low_question: str, group: tuple[str, ...]) -> bool:
    """The question names the entity only as the frame of what it asks about ("the METI budget", "the ASRA
    effort"): like an owner, an article about that frame often leaves the name implied in the answering line."""
    return any(re.search(rf"(?<![a-z0-9]){re.escape(f)}\s+(?:{_FRAME_NOUNS})\b", low_question) for f in group)


_POSSESSOR = re.compile(r"\b([a-z][\w-]*)['’]s\s+((?:[\w-]+\s+){0,2}[\w-]+)", re.I)
_TIME_OWNERS = frozenset(tokenize("year years month week day quarter today yesterday season decade"))


def other_possessor(text: str, a: QueryAnalysis) -> bool:
    """The sentence gives what the question asks about to a possessor the question does not name
    ("Europe's art market" for a question about Harbourton's market)."""
    asked = set(a.terms) | {t for g in a.entities for f in g for t in tokenize(f)}
    for m in _POSSESSOR.finditer(text):
        owner = {canonical(t) for t in tokenize(m.group(1))}
        owned = {canonical(t) for t in tokenize(m.group(2))}
        if owner and owned & asked and not owner & (asked | _TIME_OWNERS):
            return True
    return False


def mentions(low_text: str, group: tuple[str, ...]) -> bool:
    """Whether lower-cased text names an entity in any of its alias forms (whole words)."""
    return any(whole_word(f).search(low_text) for f in group)


_CLAUSE = re.compile(r"[,;:]\s|\s(?:and|while|whereas|but|as well as)\s|\s?[—–]\s?")


@lru_cache(maxsize=65_536)
def clause_bounds(text: str) -> tuple[int, ...]:
    """Offsets where clauses of a sentence start, for telling which figure a word belongs to."""
    return (0, *(m.end() for m in _CLAUSE.finditer(text)))


def _clause(bounds: tuple[int, ...], pos: int) -> int:
    i = 0
    while i + 1 < len(bounds) and bounds[i + 1] <= pos:
        i += 1
    return i


_FINITE_VERB = re.compile(r"\b(?:is|are|was|were|has|have|had|will|would|can|could|should|may|might|must|"
                          r"said|says|plans?|aims?)\b", re.I)


def _is_main_clause(text: str, bounds: tuple[int, ...], i: int) -> bool:
    end = bounds[i + 1] if i + 1 < len(bounds) else len(text)
    return _FINITE_VERB.search(text[bounds[i]:end]) is not None


def _nearness(p: int, figure: Quantity, others: tuple[Quantity, ...], bounds: tuple[int, ...],
              text: str = "") -> float:
    """How strongly a word at offset p describes the figure: in an enumeration of like figures a word
    belongs to the figure of its own clause; otherwise nearness decays with distance."""
    def gap(q: Quantity) -> int:
        return q.start - p if p < q.start else max(0, p - q.end)

    d = gap(figure)
    rivals = [o for o in others if o is not figure and o.kind == figure.kind and o.unit == figure.unit]
    if not rivals:
        return 1.0 if d <= 40 else max(0.45, 1.0 - (d - 40) / 220)
    word_clause = _clause(bounds, p)
    if _clause(bounds, figure.start) == word_clause:
        return 1.0
    if any(_clause(bounds, o.start) == word_clause for o in rivals):
        return 0.2  # the word describes another figure of the sentence ("¥150 billion for A, ¥387 billion for B")
    by_distance = 1.0 if d <= 40 else max(0.2, 1.0 - (d - 40) / 60)
    if _is_main_clause(text, bounds, word_clause):
        return max(0.5, by_distance)  # "..., the government is funding X": about all the sentence's figures
    return by_distance


CHANGE_BONUS = 0.12
_CHANGE_AFTER = re.compile(r"\s*(?:[\w-]+\s+){0,2}?(?:growth|increase|rise|expansion|jump|surge|hike|gain|higher|"
                           r"more|larger|bigger)\b", re.I)
_CHANGE_BEFORE = re.compile(r"\b(?:by|up|increase of|rise of|growth of|expansion of|jump of)\s+(?:about|"
                            r"approximately|around|roughly|some|nearly|almost)?\s*$", re.I)
_LEVEL_BEFORE = re.compile(r"\b(?:to|reach(?:ed|ing|es)?|at)\s+(?:about|approximately|around|roughly|some|nearly|"
                           r"almost|over)?\s*$", re.I)
_AGENT_VERB = re.compile(r"(?:\s+[\w-]+){0,3}?\s+(?:\w+ly\s+)?(?:invest|spend|spent|pay|paid|contribut|lend|lent|"
                         r"give|gave|provid|pledg|commit|put|pour)\w*\b", re.I)
_BY_BEFORE = re.compile(r"\bby\s+(?:the\s+)?$")
AGENT_REACH = 60  # characters between the agent's verb (or possessive) and its figure


def _agent_of(low: str, start: int, end: int, q: Quantity) -> bool:
    """Whether the name at low[start:end] is the agent of figure q: the subject of a spending verb with q
    shortly after, q's possessor ("x's ... q"), or named after "by" shortly after q."""
    verb = _AGENT_VERB.match(low, end)
    if verb and 0 <= q.start - verb.end() <= AGENT_REACH:
        return True
    if low.startswith(("'s", "’s"), end) and 0 <= q.start - end <= AGENT_REACH:
        return True
    return _BY_BEFORE.search(low[max(0, start - 12):start]) is not None and 0 <= start - q.end <= AGENT_REACH


def numeric_picks(scorer: Scorer, sentences: list[Sentence], store: Any, min_fit: float = 0.0) -> list[Pick]:
    """Every (sentence, figure) pair of the asked kind, scored."""
    picks: list[Pick] = []
    for s in sentences:
        if not scorer.entities_ok(s.doc_id):
            continue
        meta = store.documents[s.doc_id].meta
        extra = scorer.anchor_bonus(s) + scorer.source_bonus(s, meta)
        displaced = scorer.displaced(s)
        figs = sentence_figures(s.text)
        if not scorer.purpose_ok(s) or not scorer.names_nearby(s) or not scorer.owner_ok(s) or (
                "total" not in scorer.a.qualifiers and scorer.shared_with_others(s)):
            continue
        for i, q in enumerate(figs):
            if not scorer.figure_ok(s, q) or not scorer.property_ok(s, q) or not scorer.agent_ok(s, q):
                continue
            fit = scorer.coverage(s, q, figs)
            if fit < min_fit:
                continue
            sig = scorer.signature(s, q)
            score = (0.4 * s.sim + 0.6 * fit + extra + scorer.qualifier_bonus(s, sig, meta.published)
                     + scorer.change_bonus(s.text, q) - 0.5 * displaced)
            alt = _alternate(s.text, figs, i)
            if scorer.a.unit is None and _is_parenthetical(s.text, figs, i):
                score -= 0.03  # the converted amount in brackets is secondary when no unit is asked
            if q.kind == "month" and scorer.a.answer_type == "date":
                score -= 0.01
            picks.append(Pick(s, q, score, fit, sig, alt))
    _inherit_restated(picks)
    picks.sort(key=lambda p: -p.score)
    return picks


def _inherit_restated(picks: list[Pick]) -> None:
    """An amount stated twice in one article ("¥1.23 trillion ($7.9B)" in a summary, "¥1.23 trillion" in the
    body) is one quantity: each statement, and its converted twin, takes the better-fitting context's score."""
    best: dict[tuple[str, str, float], float] = {}
    for p in picks:
        if p.figure is None or p.figure.kind != "money":
            continue
        key = (p.sentence.doc_id, p.figure.unit, round(p.figure.value, 2))
        best[key] = max(best.get(key, -1.0), p.score)
    for p in picks:
        if p.figure is None or p.alt is None:
            continue
        key = (p.sentence.doc_id, p.alt.unit, round(p.alt.value, 2))
        if key in best and best[key] - 0.02 > p.score:
            p.score = best[key] - 0.02


def _alternate(text: str, figs: tuple[Quantity, ...], i: int) -> Quantity | None:
    """A money figure stated in another currency right beside this one: "¥1.23 trillion ($7.9B)"."""
    q = figs[i]
    if q.kind != "money":
        return None
    for j in (i + 1, i - 1):
        if 0 <= j < len(figs) and figs[j].kind == "money" and figs[j].unit != q.unit:
            a, b = (q, figs[j]) if j > i else (figs[j], q)
            gap = text[a.end:b.start]
            if len(gap) <= 12 and re.fullmatch(r"\s*[(（]\s*(?:about|approximately|around|roughly|or|some|约|約)?\s*",
                                                gap, re.I):
                return figs[j]
    return None


def _is_parenthetical(text: str, figs: tuple[Quantity, ...], i: int) -> bool:
    q = figs[i]
    return i > 0 and _alternate(text, figs, i) is not None and figs[i - 1].end <= q.start and "(" in text[
        figs[i - 1].end:q.start]


_ITEM = r"[A-Z][\w&.-]*(?:\s+[A-Z][\w&.-]*){0,3}"
_ENUMERATION = re.compile(rf"{_ITEM}(?:,\s+{_ITEM})+,?\s+(?:and|or)\s+{_ITEM}")
_LIST_SPLIT = re.compile(r",\s+(?:and\s+|or\s+)?|\s+(?:and|or)\s+")

_ORG_WORDS = re.compile(r"\b(?:Corp|Inc|Ltd|Co|Group|Bank|Ministry|University|Institute|Association|Agency|"
                        r"Times|Asia|Partnership|Council|Committee|Department|Technology|Technologies|Electronics|"
                        r"Holdings|News|Post|Journal|Insurance|Fund|Party|Industry|Market|Reports?)\b")


_SENTENCE_START = re.compile(r"(?:^|[.!?]\s+|\n)[\"'“‘(\[]*$")
_LOWER_RUN = re.compile(r"[a-z][a-z0-9&-]*(?:\s+[a-z][a-z0-9&-]*)*")


def _candidates(text: str, casing: Casing) -> list[tuple[int, list[str]]]:
    """(offset, words) of each capitalised name and, in a sentence written all in lower case (a scraped lead),
    each run of words the corpus writes as names elsewhere ("spearheaded by toyota" -> "Toyota")."""
    out: list[tuple[int, list[str]]] = []
    for m in _NAME.finditer(text):
        words, start = m.group().split(), m.start()
        if (_SENTENCE_START.search(text[:start]) and len(words[0]) > 1 and not words[0].isupper()
                and words[0].lower() in casing.common):
            words = words[1:]  # "Major government financing entities ...": a common word opening the sentence
        while words and words[0] in _COMMON_CAPS:
            words = words[1:]
        out.append((start, words))
    for m in _LOWER_RUN.finditer(text) if not re.search(r"\b[A-Z]", text) else ():
        run: list[str] = []
        for w in re.finditer(r"\S+", m.group()):
            cased = casing.names.get(w.group())
            if cased:
                run.append(cased)
                continue
            if run:
                out.append((m.start(), run))
            run = []
        if run:
            out.append((m.start(), run))
    return sorted(out, key=lambda c: c[0])


def _acronyms_defined(text: str, question: QueryAnalysis) -> set[str]:
    """Lower-cased acronyms that a sentence defines from the question's own words ("... research association
    (asra)"): they name the subject the question asks about, not its answer."""
    out: set[str] = set()
    for m in _ACRONYM_DEF.finditer(text):
        words = long_form(text[:m.start()], m.group(1)) or []
        if len({canonical(t) for w in words for t in tokenize(w)} & set(question.terms)) >= 2:
            out.add(m.group(1).lower())
    return out


def names_in(text: str, question: QueryAnalysis, kind: str = "organization",
             casing: Casing | None = None) -> list[tuple[int, str]]:
    """(offset, name) of each name in a sentence that the question does not already use, of the kind asked
    for; names the corpus writes capitalised are recovered from lower-cased text in their capitalised form."""
    casing = casing or Casing({}, frozenset())
    asked = {f for g in question.entities for f in g} | set(question.terms) | set(question.context) | _acronyms_defined(
        text, question)
    out: dict[str, int] = {}
    for start, words in _candidates(text, casing):
        name = " ".join(words).strip(" .,'")
        if not name or len(name) < 2:
            continue
        low = re.sub(r"'s$|’s$", "", name.lower())
        if low in asked or set(tokenize(low)) <= asked or any(low.startswith(f + " ") for g in question.entities
                                                              for f in g):
            continue  # the question's own name, or it with a suffix ("Rapidus Corp")
        is_place = any(f in _PLACES for f in (low, low + ".")) or all(
            w in _PLACES for w in re.split(r"\s+and\s+", low))
        if kind == "place" and not is_place:
            continue
        generic = all(w in _GENERIC_ACRONYMS for w in re.split(r"\s+(?:and|&)\s+", low))  # "AI and IT"
        if kind in ("person", "organization", "list") and (is_place or generic):
            continue
        if kind == "person" and (len(words) < 2 or _ORG_WORDS.search(name) or any(w.isupper() for w in words)
                                 or " and " in name):
            continue
        out.setdefault(name, start)
    return [(start, name) for name, start in out.items()]


_AGENT = re.compile(r"\b(\w+)\s+by\s+$", re.I)
_CUSTOMERS_SUCH_AS = r"|\b(?:customers?|clients?|buyers?)\s+(?:such\s+as|including|like)\s+(?:the\s+)?$"
# Acronyms of common terms, written in capitals but naming no organization or person.
_GENERIC_ACRONYMS = frozenset("ai it ev evs gdp ceo cfo cto coo ipo r&d hr pr tv pc pcs iot vat esg ar vr "
                              "ui api gpu gpus cpu cpus ram os ok faq pdf usb ip".split())


@lru_cache(maxsize=16)
def _slot_pattern(slot: str) -> re.Pattern[str]:
    """Text ending where a name in the slot starts: "... to (the)", and for "to" also "customers such as"."""
    return re.compile(rf"\b{slot}\s+(?:the\s+|its\s+|their\s+)?$" + (_CUSTOMERS_SUCH_AS if slot == "to" else ""),
                      re.I)


def fills_slot(text: str, start: int, slot: str | None) -> bool:
    """The name at `start` follows the preposition the question asks after ("supply prototypes to <ORG>")."""
    return slot is not None and _slot_pattern(slot).search(text[max(0, start - 30):start]) is not None


def rank_names(text: str, found: list[tuple[int, str]], scorer: Scorer) -> list[str]:
    """The names of a sentence, the likeliest answer first: the name in the slot the question asks for
    ("send prototypes to?" -> the name after "to"), then the agent of a relation the question asks about
    ("spearheaded by X" for "who spearheads"), then by nearness to the words the question shares with the
    sentence."""
    terms = [p for t, p in word_positions(text) if t in scorer.weights]

    def key(item: tuple[int, str]) -> tuple[int, int, int]:
        start, name = item
        in_slot = fills_slot(text, start, scorer.a.slot)
        agent = _AGENT.search(text[max(0, start - 30):start])
        is_agent = agent is not None and any(canonical(t) in scorer.weights for t in tokenize(agent.group(1)))
        return (0 if in_slot else 1, 0 if is_agent else 1, min((abs(p - start) for p in terms), default=0))

    return [name for _, name in sorted(found, key=key)]


def text_picks(scorer: Scorer, sentences: list[Sentence], store: Any, min_fit: float = 0.0) -> list[Pick]:
    """Sentences for non-numeric answers (names, places, lists, explanations), scored."""
    a = scorer.a
    picks: list[Pick] = []
    named = a.answer_type in ("person", "organization", "place", "list")
    for s in sentences:
        if not scorer.entities_ok(s.doc_id):
            continue
        if not named and len(s.text.split()) < 12 and not re.search(r"[.!?。]\W*$", s.text):
            continue  # a heading or caption explains nothing
        meta = store.documents[s.doc_id].meta
        if not named and not scorer.states_predicate(s, meta.title) or not scorer.property_ok(s):
            continue
        cov = scorer.coverage(s)
        if cov < min_fit:
            continue
        found = names_in(s.text, a, a.answer_type, scorer.stats.casing) if named else []
        names = ([n for _, n in found] if a.answer_type == "list" else rank_names(s.text, found, scorer))
        slot_filled = a.slot is not None and any(fills_slot(s.text, start, a.slot) for start, _ in found)
        if named and not names:
            continue
        score = (0.45 * s.sim + 0.55 * cov + scorer.anchor_bonus(s) + scorer.source_bonus(s, meta)
                 + scorer.qualifier_bonus(s, (), meta.published) - 0.5 * scorer.displaced(s))
        if a.answer_type == "list":
            score += 0.06 if len(names) >= 2 else -0.06
        elif slot_filled:
            score += SLOT_BONUS  # "supply prototypes to <ORG>": the sentence states the very relation asked
        picks.append(Pick(s, None, score, cov, (), None, names))
    picks.sort(key=lambda p: -p.score)
    return picks
