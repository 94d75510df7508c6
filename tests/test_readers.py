"""Readers: the seed corpus with sidecars, inferred metadata, BEIR jsonl, encodings, HTML, PDF, folders."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from rag.errors import ReadError
from rag.readers import (
    binary_reason,
    decode_bytes,
    detect_languages,
    infer_meta,
    load_document,
    parse_date,
    read_beir,
    read_paths,
    read_sidecar,
    safe_doc_id,
)

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"
SEED_FILES = sorted(CORPUS.glob("*.txt"))


def test_seed_corpus_reads_with_sidecars() -> None:
    result = read_paths([CORPUS], strict=True)
    assert [d.doc_id for d in result.documents] == [p.stem for p in SEED_FILES]
    assert not result.skipped and not result.failed
    for doc, path in zip(result.documents, SEED_FILES, strict=True):
        assert doc.text == path.read_text(encoding="utf-8")  # the original text, unchanged
        side = json.loads(path.with_name(path.stem + ".meta.json").read_text(encoding="utf-8"))
        assert doc.meta.title == side["title"]
        assert doc.meta.publisher == side["publisher"]
        assert doc.meta.published == side["published"]
        assert list(doc.meta.languages) == side["languages"]
        assert doc.meta.source_file == path.name


def test_inferred_metadata_without_sidecars(tmp_path: Path) -> None:
    """Copies of the seed texts without sidecars: metadata comes from the general rules alone."""
    for p in SEED_FILES:
        shutil.copy(p, tmp_path / p.name)
    docs = {d.doc_id[:3]: d.meta for d in read_paths([tmp_path], strict=True).documents}
    assert docs["000"].published == "2025-02-25"  # "2025-02-25 general" / "25 February 2025"
    assert docs["000"].title.startswith("japan doubles down")
    assert docs["001"].title == "计划每年砸1万亿日元! 频繁点错“科技树”的日本这次梭哈半导体和AI"  # headline, not "Workflow"
    assert docs["001"].publisher == "智通财经网"
    assert docs["001"].published == "2025-11-06"
    assert docs["001"].languages == ("en", "zh")
    assert docs["002"].title.startswith("US to Japan")  # not "This article is more than 1 year old"
    assert docs["002"].published is None and docs["002"].publisher is None
    assert docs["003"].publisher == "lumidawealth.com"
    assert docs["003"].title.startswith("Japan plans to nearly quadruple")  # not "Key Takeaways"
    assert docs["004"].published == "2025-07-29"
    assert docs["004"].publisher == "MarketsandMarkets"


@pytest.mark.parametrize(("text", "iso"), [
    ("2025-02-25 general", "2025-02-25"),
    ("Tokyo, Tuesday, 25 February 2025.", "2025-02-25"),
    ("July 29, 2025", "2025-07-29"),
    ("Jul. 4 2024", "2024-07-04"),
    ("3rd Sept 2023", "2023-09-03"),
    ("新华社·2025-11-06 04:16", "2025-11-06"),
    ("2024年3月5日", "2024-03-05"),
    ("2025/13/40 is not a date", None),
    ("no date here, only 2025", None),
])
def test_parse_date(text: str, iso: str | None) -> None:
    assert parse_date(text) == iso


def test_infer_meta_rules_on_made_up_text() -> None:
    text = ("Home\nMarkets Daily · 2024-03-05 09:00\n\nSteel output climbs for a third month\n\n"
            "Steel output rose 4% in February, the industry body said.\n\nMarkets Daily Business Desk\n")
    meta = infer_meta(text, "steel.txt")
    assert meta.title == "Steel output climbs for a third month"
    assert meta.published == "2024-03-05"
    assert meta.publisher == "Markets Daily"
    assert meta.languages == ("en",)
    assert infer_meta("Steel output rose 4% in February, the industry body said.").publisher is None


def test_detect_languages() -> None:
    assert detect_languages("日本政府は半導体に投資する。Rapidus plans mass production in 2027 with partners.") == ("en", "ja")
    assert detect_languages("日本执政党计划每年筹集约1万亿日元") == ("zh",)
    assert detect_languages("") == ()


def _write_beir(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_beir_documents_and_composed_text(tmp_path: Path) -> None:
    path = _write_beir(tmp_path / "corpus.jsonl", [
        json.dumps({"_id": "d1", "title": "Sleep and memory", "text": "Sleep helps memory.",
                    "metadata": {"url": "https://example.org/d1", "date": "2020-01-02"}}),
        "",
        json.dumps({"_id": 2, "title": "", "text": "No title here."}),
    ])
    docs = list(read_beir(path))
    assert [d.doc_id for d in docs] == ["d1", "2"]
    assert docs[0].text == "Sleep and memory\n\nSleep helps memory."
    assert docs[0].meta.title == "Sleep and memory"
    assert docs[0].meta.url == "https://example.org/d1" and docs[0].meta.published == "2020-01-02"
    assert docs[1].text == "No title here." and docs[1].meta.title == "2"


@pytest.mark.parametrize(("bad", "why"), [
    ('{"_id": "x", "text": "broken', "not valid JSON"),
    ('{"title": "t", "text": "no id"}', "needs '_id'"),
    ('{"_id": "y", "title": "no text"}', "needs '_id'"),
    ('["a", "list"]', "JSON object"),
    ('{"_id": "a", "text": "again"}', "duplicate _id"),
])
def test_beir_bad_line_names_file_and_line(tmp_path: Path, bad: str, why: str) -> None:
    path = _write_beir(tmp_path / "bad.jsonl", [json.dumps({"_id": "a", "text": "fine"}), "", bad])
    with pytest.raises(ReadError) as err:
        list(read_beir(path))
    assert "bad.jsonl line 3" in str(err.value) and why in str(err.value)
    # In a folder read only the bad line fails, reported by file and line; the rest of the file loads.
    (tmp_path / "ok.txt").write_text("A fine document with one sentence in it.", encoding="utf-8")
    result = read_paths([tmp_path])
    assert [d.doc_id for d in result.documents] == ["a", "ok"]
    assert len(result.failed) == 1 and "bad.jsonl line 3" in result.failed[0]
    assert result.failed_paths == {str(path.absolute())}
    assert "bad.jsonl line 3" in result.describe()
    with pytest.raises(ReadError, match="line 3"):
        read_paths([tmp_path], strict=True)


def test_non_utf8_input_is_read(tmp_path: Path) -> None:
    latin = "Le café coûte 3 € à Zürich, señor; naïve résumé de l'année."
    (tmp_path / "latin1.txt").write_bytes(latin.replace("€", "EUR").encode("latin-1"))
    cp = "The “subsidy” – worth €5 billion – was approved… said the minister’s office."
    (tmp_path / "cp1252.txt").write_bytes(cp.encode("cp1252"))
    (tmp_path / "bom.txt").write_bytes("\ufeffA UTF-8 file with a byte order mark.".encode())
    result = read_paths([tmp_path], strict=True)
    docs = {d.doc_id: d for d in result.documents}
    assert docs["latin1"].text == latin.replace("€", "EUR")
    assert docs["cp1252"].text == cp
    assert docs["bom"].text == "A UTF-8 file with a byte order mark."
    assert any("latin1.txt" in n and "not UTF-8" in n for n in result.notes)
    assert any("cp1252.txt" in n for n in result.notes)
    assert not any("bom.txt" in n for n in result.notes)


def test_decode_bytes_detects_cjk_encodings() -> None:
    zh = "日本执政党计划每年筹集约1万亿日元，以支持先进半导体制造和人工智能生态系统的发展。"
    text, enc = decode_bytes(zh.encode("gb18030"))
    assert text == zh and enc != "utf-8"
    ja = "日本政府は半導体と人工知能の支援に毎年1兆円を投じる計画だ。経済産業省が発表した。"
    assert decode_bytes(ja.encode("shift_jis"))[0] == ja


HTML = """<!doctype html><html><head><title>Chip Aid Grows | Example News</title>
<meta property="og:site_name" content="Example News">
<meta property="article:published_time" content="2024-03-05T10:00:00Z">
<link rel="canonical" href="https://news.example.com/chip-aid"></head>
<body><nav><a href="/">Home</a> <a href="/tech">Tech</a> <a href="/subscribe">Subscribe now</a></nav>
<article><h1>Chip aid grows</h1>
<p>The government of Examplia will spend 12 billion euros on chip plants over five years, officials said.</p>
<p>The programme is twice the size of the previous one. Analysts expect output to rise by 8% in 2026.</p>
</article>
<footer><p>Copyright 2024 Example News. All rights reserved.</p><a href="/privacy">Privacy policy</a></footer>
</body></html>"""


def test_html_reader_keeps_article_text_and_page_metadata(tmp_path: Path) -> None:
    (tmp_path / "page.html").write_text(HTML, encoding="utf-8")
    doc = load_document(tmp_path / "page.html")
    assert "12 billion euros" in doc.text and "rise by 8% in 2026" in doc.text
    for junk in ("Subscribe", "Privacy policy", "All rights reserved", "Home"):
        assert junk not in doc.text
    assert doc.meta.title == "Chip aid grows"
    assert doc.meta.published == "2024-03-05"
    assert doc.meta.publisher == "Example News"
    assert doc.meta.url == "https://news.example.com/chip-aid"


def _minimal_pdf(lines: list[str], title: str) -> bytes:
    """A one-page PDF with the given text lines (Helvetica) and an Info title."""
    ops = " ".join(f"({line}) Tj 0 -18 Td" for line in lines)
    stream = f"BT /F1 12 Tf 72 720 Td {ops} ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        f"<< /Title ({title}) >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for i, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n{obj}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info 6 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


def test_pdf_reader(tmp_path: Path) -> None:
    path = tmp_path / "report.pdf"
    path.write_bytes(_minimal_pdf(["Steel output rose 4% in February.", "Exports fell 2%."], "Steel Report"))
    doc = load_document(path)
    assert "Steel output rose 4% in February." in doc.text and "Exports fell 2%." in doc.text
    assert doc.meta.title == "Steel Report"
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 not really a pdf")
    result = read_paths([tmp_path])
    assert [d.doc_id for d in result.documents] == ["report"]
    assert len(result.failed) == 1 and "broken.pdf" in result.failed[0]


def test_folders_unknown_types_and_ids(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "inner.md").write_text("# Inner notes\n\nThe inner note says 5 things.", encoding="utf-8")
    (tmp_path / "a.txt").write_text("Plain text file with a sentence.", encoding="utf-8")
    (tmp_path / "a.md").write_text("Markdown twin of a with a sentence.", encoding="utf-8")
    (tmp_path / "sheet.xlsx").write_bytes(b"PK\x03\x04")
    (tmp_path / ".hidden.txt").write_text("hidden", encoding="utf-8")
    (tmp_path / "a.meta.json").write_text(json.dumps({"title": "A from sidecar", "published": "2024-01-02"}),
                                          encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        result = read_paths([tmp_path])
    ids = [d.doc_id for d in result.documents]
    assert ids == ["a", "a.txt", "b__inner"]  # sorted walk (a.md before a.txt); unique ids without "/"
    assert result.documents[2].meta.title == "Inner notes"
    assert result.documents[0].meta.title == "A from sidecar"  # sidecar of a.* applies; not a document
    assert result.skipped == [f"{(tmp_path / 'sheet.xlsx').as_posix()}: unsupported file type '.xlsx'"]
    assert "unsupported file type" in caplog.text and "sheet.xlsx" in caplog.text
    assert read_paths([tmp_path]).documents == result.documents  # deterministic


def test_bad_sidecar_and_missing_path(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("Some text in a file.", encoding="utf-8")
    (tmp_path / "x.meta.json").write_text(json.dumps({"title": "X", "published": "05/03/2024"}), encoding="utf-8")
    with pytest.raises(ReadError, match=r"x\.meta\.json.*ISO date"):
        read_paths([tmp_path], strict=True)
    (tmp_path / "x.meta.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ReadError, match="x.meta.json"):
        read_sidecar(tmp_path / "x.meta.json")
    with pytest.raises(ReadError, match="no such file or folder"):
        read_paths([tmp_path / "missing"])
    (tmp_path / "empty.txt").write_text("  \n", encoding="utf-8")
    with pytest.raises(ReadError, match="empty"):
        load_document(tmp_path / "empty.txt")


@pytest.mark.parametrize(("data", "verdict"), [
    (b"Plain text with a form feed\x0c and tabs\t.", None),
    ("Text with line separators\u2028and\u2029next lines\x85too.".encode(), None),
    ("\ufeffUTF-16 text".encode("utf-16"), None),  # NUL bytes, but a byte order mark says UTF-16
    (b"PNG\x00\x01\x02 header", "NUL bytes"),
    (bytes(range(1, 32)) * 3 + b"words", "control characters"),
])
def test_binary_reason(data: bytes, verdict: str | None) -> None:
    text = decode_bytes(data)[0]
    reason = binary_reason(data, text)
    assert (reason is None) if verdict is None else (verdict in reason)


@pytest.mark.parametrize(("raw", "safe"), [("b/inner", "b__inner"), ("a\\b", "a__b"), ("x\x01y", "x_y"),
                                          ("..", "_.."), ("plain-id_1.2", "plain-id_1.2"), ("日本/記事", "日本__記事")])
def test_safe_doc_id(raw: str, safe: str) -> None:
    assert safe_doc_id(raw) == safe and "/" not in safe_doc_id(raw)


def test_links_size_limit_and_undecodable_files(tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    (corpus / "real").mkdir(parents=True)
    (corpus / "real" / "note.txt").write_text("A note with 3 facts in it.", encoding="utf-8")
    (corpus / "alias.txt").symlink_to(corpus / "real" / "note.txt")  # inside the folder: read
    (corpus / "again").symlink_to(corpus / "real")  # a folder link inside: read where it lives
    (corpus / "gone.txt").symlink_to(tmp_path / "missing.txt")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "x.txt").write_text("Outside text.", encoding="utf-8")
    (corpus / "out").symlink_to(tmp_path / "outside")
    (corpus / "big.txt").write_text("Long. " * 100, encoding="utf-8")
    noise = np.random.default_rng(0).integers(1, 256, 400, dtype=np.uint8).tobytes()  # no NUL, no encoding fits
    (corpus / "c1.txt").write_bytes(noise)
    result = read_paths([corpus], max_bytes=500)
    assert sorted(d.doc_id for d in result.documents) == ["alias", "real__note"]
    assert result.skipped == [f"{(corpus / 'again').as_posix()}: link to a folder read where it is"]
    failed = "\n".join(result.failed)
    assert "gone.txt: broken symbolic link" in failed and "out: symbolic link to" in failed
    assert "big.txt: 600 bytes is over the per-document limit of 500 bytes" in failed
    assert "c1.txt: undecodable bytes" in failed
    assert result.failed_paths == {str(corpus / n) for n in ("gone.txt", "out", "big.txt", "c1.txt")}
    beir = tmp_path / "set.jsonl"
    beir.write_text(json.dumps({"_id": "a", "text": "Short."}) + "\n" + json.dumps({"_id": "b", "text": "x" * 600}))
    result = read_paths([beir], max_bytes=500)
    assert [d.doc_id for d in result.documents] == ["a"] and "set.jsonl line 2" in result.failed[0]
