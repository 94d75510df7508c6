"""Chunking: exact offsets, no boilerplate, every figure sentence kept, token budget and overlap, speed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rag import clean
from rag.chunking import Chunker, count_tokens
from rag.clean import content_spans, dropped_lines
from rag.config import Settings
from rag.readers import read_beir, read_paths
from rag.sentences import split_sentences
from rag.types import DocMeta, Document

ROOT = Path(__file__).resolve().parent.parent
SCIFACT = ROOT.parent / "shared" / "benchmarks" / "beir" / "scifact" / "corpus.jsonl"
if not SCIFACT.exists():
    SCIFACT = Path("/work/shared/benchmarks/beir/scifact/corpus.jsonl")


@pytest.fixture(scope="module")
def seed_docs() -> list[Document]:
    return read_paths([ROOT / "corpus"], strict=True).documents


@pytest.fixture(scope="module")
def seed_chunks(seed_docs: list[Document]) -> dict[str, list]:
    chunker = Chunker(Settings())
    return {d.doc_id: chunker.chunk(d) for d in seed_docs}


def test_offset_invariant_on_every_seed_chunk_and_sentence(seed_docs, seed_chunks) -> None:
    settings = Settings()
    for doc in seed_docs:
        chunks = seed_chunks[doc.doc_id]
        assert chunks, doc.doc_id
        regions = content_spans(doc.text)
        for i, c in enumerate(chunks):
            assert c.chunk_id == f"{doc.doc_id}#{i}" and c.doc_id == doc.doc_id
            assert doc.text[c.start:c.end] == c.text
            assert c.sentences[0].start == c.start and c.sentences[-1].end == c.end
            for s in c.sentences:
                assert c.start <= s.start < s.end <= c.end
                assert doc.text[s.start:s.end].strip() == doc.text[s.start:s.end]
            assert list(c.sentences) == sorted(c.sentences, key=lambda s: s.start)
            assert any(r.start <= c.start and c.end <= r.end for r in regions)  # inside one kept region
            assert c.n_tokens == count_tokens(c.text) <= settings.chunk_tokens


def test_no_chunk_contains_boilerplate(seed_docs, seed_chunks) -> None:
    for doc in seed_docs:
        for line in dropped_lines(doc.text):
            for c in seed_chunks[doc.doc_id]:
                assert line.end <= c.start or line.start >= c.end, (doc.doc_id, line.text)
    texts = "\n".join(c.text for cs in seed_chunks.values() for c in cs)
    for junk in ("Send us news", "Subscribe Email", "GET EMAIL ALERT", "Bronnen", "$263.21 BN", "$479.17 BN\n2029",
                 "More about", "Other stories you might like", "This article is more than 1 year old", "Listen Now",
                 "Powered by", "PODCASTS", "Semiconductor subsidies Autonomous driving"):
        assert junk not in texts, junk
    headline = seed_docs[0].text.splitlines()[0]
    assert sum(c.text.count(headline) for c in seed_chunks[seed_docs[0].doc_id]) == 1  # printed twice, kept once


def test_every_figure_sentence_is_in_a_chunk(seed_docs, seed_chunks) -> None:
    """Each sentence with a digit is covered by a chunk unless it sits in a dropped widget/footer line."""
    lost = []
    for doc in seed_docs:
        chunks = seed_chunks[doc.doc_id]
        dropped = dropped_lines(doc.text)
        for s in split_sentences(doc.text):
            sentence = doc.text[s.start:s.end]
            if not re.search(r"\d", sentence):
                continue
            if any(c.start <= s.start and s.end <= c.end for c in chunks):
                continue
            line = next(v for v in dropped if v.start <= s.start and s.end <= v.end)
            lost.append((sentence, line.reason))
    assert sorted(lost) == sorted([
        ("This article is more than 1 year old", clean.CTA),
        ("Sustainable Digital Transformation & Industry 4.0", clean.TAIL),
        ("Sustainable Digital Transformation & Industry 4.0", clean.REPEAT),
        ("Sanjay Kaul, President-Asia Pacific & Japan, Cisco, and host Aashish Mehra, Chief Research Officer, "
         "MarketsandMarkets, in conversation on unraveling 'Sustainable Digital Transformation and Industry 4.0'",
         clean.TAIL),  # a podcast promo in the page footer
        ("11 July 2023|S2E12|Listen Now", clean.WIDGET),
        ("7 Nov 2023|S2E13|Listen Now", clean.WIDGET),
        ("$263.21 BN", clean.WIDGET), ("2025", clean.WIDGET), ("$479.17 BN", clean.WIDGET), ("2029", clean.WIDGET),
    ])
    # Spot checks of facts spread over the five articles.
    texts = " ".join(c.text for cs in seed_chunks.values() for c in cs)
    for fact in ("jumping to 41 billion yen", "¥1.23 trillion ($7.9B)", "350 billion yen ($2.38 billion)",
                 "about 12% is direct equity", "approximately 5.7 trillion yen", "智通财经网·2025-11-06"):
        assert fact in texts, fact


MADE_UP = """Harbour traffic report

Port of Examplia, 3 March 2024.
Container traffic at the port rose 6.5% in February to 412,000 boxes, the port authority said on Monday.
Bulk cargo fell 2% as coal imports slowed. Officials expect a recovery in the second quarter.
The authority plans to spend 1.2 billion euros on new cranes by 2027. Two berths will be deepened first.
Shipping lines welcomed the plan. Analysts said costs could rise by 15% if steel prices keep climbing.
A public consultation opens in April and runs for six weeks. Results are due in the autumn.

Subscribe to our newsletter
"""


def test_small_budget_gives_several_overlapping_chunks() -> None:
    doc = Document("made-up", MADE_UP, DocMeta(title="Harbour traffic report"))
    chunker = Chunker(Settings(chunk_tokens=40, chunk_overlap_tokens=15))
    chunks = chunker.chunk(doc)
    assert len(chunks) >= 4
    for c in chunks:
        assert doc.text[c.start:c.end] == c.text and c.n_tokens <= 40
        assert "Subscribe" not in c.text
    covered = {s for c in chunks for s in c.sentences}
    assert covered == set(split_sentences(MADE_UP, 0, MADE_UP.index("Subscribe")))  # every sentence kept
    overlaps = [a for a, b in zip(chunks, chunks[1:], strict=False) if b.start < a.end]
    assert overlaps, "no chunk carried sentences over"
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert b.start > a.start and b.end > a.end  # always moves forward
        if b.start < a.end:
            assert b.sentences[0] in a.sentences  # overlap is whole sentences
            carried = [s for s in b.sentences if s in a.sentences]
            assert sum(count_tokens(MADE_UP[s.start:s.end]) for s in carried) <= 15 * 1.5
    no_overlap = Chunker(Settings(chunk_tokens=40, chunk_overlap_tokens=0)).chunk(doc)
    assert all(b.start >= a.end for a, b in zip(no_overlap, no_overlap[1:], strict=False))


def test_heading_starts_the_next_chunk_rather_than_ending_one(seed_chunks) -> None:
    for chunks in seed_chunks.values():
        for c in chunks[:-1]:
            last = c.text[c.sentences[-1].start - c.start:]
            assert re.search(r"[.!?。！？\]\"”’)]$", last) or len(last.split()) > 8, last


def test_sentence_longer_than_the_budget_is_cut_at_clauses() -> None:
    clause = "the committee reviewed the proposal, "
    text = "Intro sentence here. " + "Then " + clause * 30 + "and approved it. Final words."
    doc = Document("long", text, DocMeta(title="t"))
    chunks = Chunker(Settings(chunk_tokens=40, chunk_overlap_tokens=0)).chunk(doc)
    assert len(chunks) >= 6
    for c in chunks:
        assert text[c.start:c.end] == c.text and c.n_tokens <= 40
    assert chunks[0].text.startswith("Intro sentence here.")
    assert all(c.text.endswith((",", ".")) for c in chunks)  # cut after a comma, never mid-word
    pieces = [text[s.start:s.end] for c in chunks for s in c.sentences]
    assert "".join(pieces).replace(" ", "") == text.replace(" ", "")


def test_unbreakable_token_run_still_chunks() -> None:
    text = "x" * 3000
    chunks = Chunker(Settings(chunk_tokens=64, chunk_overlap_tokens=8)).chunk(Document("blob", text, DocMeta("t")))
    assert "".join(c.text for c in chunks) == text and all(c.n_tokens <= 64 for c in chunks)


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="chunk_overlap_tokens"):
        Chunker(Settings(chunk_tokens=50, chunk_overlap_tokens=50))
    with pytest.raises(ValueError, match="unknown tiktoken encoding"):
        Chunker(Settings(encoding="no-such-encoding"))


@pytest.mark.skipif(not SCIFACT.exists(), reason="BEIR SciFact corpus not available")
def test_scifact_chunks_are_verbatim_spans() -> None:
    """Real abstracts chunk into verbatim spans (the chunking rate is a bench figure: bench/ingest.py)."""
    docs = list(read_beir(SCIFACT))[:1500]
    chunker = Chunker(Settings())
    chunks = [c for d in docs for c in chunker.chunk(d)]
    assert len(chunks) >= len(docs)
    by_id = {d.doc_id: d for d in docs}
    assert all(by_id[c.doc_id].text[c.start:c.end] == c.text for c in chunks)
