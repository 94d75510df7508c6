"""Files and folders -> `Document`s: txt, md, html, pdf and BEIR jsonl, with metadata from sidecars or the text.

A document's text is the decoded original (for HTML and PDF: the extracted text); it is never edited, so
every later offset points into it. Metadata comes from a `X.meta.json` sidecar beside `X.ext` when there
is one, else from what the file states (HTML meta tags and JSON-LD, PDF info, bylines: rag/metadata.py), else
from general rules applied to the top of the text.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rag import metadata
from rag.clean import DATE_PATTERN, classify_lines, is_substantial, word_count
from rag.errors import ReadError
from rag.types import DocMeta, Document

log = logging.getLogger(__name__)

TEXT_SUFFIXES = (".txt", ".md", ".markdown")
HTML_SUFFIXES = (".html", ".htm")
SUPPORTED = (*TEXT_SUFFIXES, *HTML_SUFFIXES, ".pdf", ".jsonl")
SIDECAR_SUFFIX = ".meta.json"
SIDECAR_FIELDS = frozenset(("title", "author", "publisher", "published", "languages", "source_file", "url"))
BINARY_CONTROL_SHARE = 0.10  # text with more control characters than this is taken for binary data
FOLDER_SEPARATOR = "__"  # stands for "/" in the ids of documents in subfolders, so ids fit in one URL segment
GENERIC_HEADINGS = frozenset(
    "key takeaways|summary|highlights|overview|abstract|introduction|contents|table of contents|"
    "what happened|why it matters|what's next|background|conclusion|workflow|news|home".split("|")
)


@dataclass(slots=True)
class ReadResult:
    """What reading produced: documents, plus "path: why" for each file skipped (unsupported) or failed.

    `origins` maps each document id to (absolute file path, BEIR `_id` or None); `failed_paths` holds the
    absolute paths of files that failed in whole or in part, so no caller mistakes them for deleted files.
    """

    documents: list[Document] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    origins: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    failed_paths: set[str] = field(default_factory=set)

    def describe(self) -> str:
        """A short human summary naming every skipped and failed file."""
        lines = [f"read {len(self.documents)} documents, skipped {len(self.skipped)}, failed {len(self.failed)}"]
        lines += [f"  skipped {s}" for s in self.skipped]
        lines += [f"  failed {s}" for s in self.failed]
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


# ---------------------------------------------------------------- decoding


def decode_bytes(data: bytes) -> tuple[str, str]:
    """Decode bytes as UTF-8 (BOM allowed), else as detected; returns (text, encoding used). Never fails.

    Short Western text fools charset detectors (Latin-1 read as cp1250), so when the detected text is all
    Latin script, Windows-1252 (a superset of Latin-1's printable range) is preferred.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is not None:
        guess = str(best)
        non_ascii = [c for c in guess if ord(c) > 127 and c.isalpha()]
        if not all("LATIN" in unicodedata.name(c, "") for c in non_ascii):
            return guess, best.encoding
    for enc in ("cp1252", "latin-1"):
        try:
            return data.decode(enc), enc
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes any bytes")  # pragma: no cover


def binary_reason(data: bytes | None, text: str) -> str | None:
    """Why bytes (or their decoded text) are not a text document: NUL bytes, no encoding fits, or mostly
    control characters; None for text. Line and page breaks (\\t \\n \\r \\f \\v, U+0085) are text."""
    if data is not None and b"\x00" in data and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "binary data (NUL bytes), not text"
    if not text:
        return None
    controls = sum(1 for ch in text if (unicodedata.category(ch) == "Cc" and ch not in "\t\n\r\f\v\x85")
                   or ch == "\ufffd")
    if controls > BINARY_CONTROL_SHARE * len(text):
        return f"binary data ({controls / len(text):.0%} control characters), not text"
    return None


def _read_text_file(path: Path, notes: list[str]) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ReadError(f"{path}: cannot read file: {exc.strerror or exc}") from exc
    text, enc = decode_bytes(data)
    if enc == "latin-1":  # bytes no Windows code page defines: not text in any encoding tried
        raise ReadError(f"{path}: undecodable bytes (not UTF-8, no text encoding fits), not text")
    if reason := binary_reason(data, text):
        raise ReadError(f"{path}: {reason}")
    if enc != "utf-8":
        notes.append(f"{path}: not UTF-8, decoded as {enc}")
        log.warning("%s: not UTF-8, decoded as %s", path, enc)
    return text


# ---------------------------------------------------------------- metadata inference


_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_HANGUL = re.compile(r"[\uac00-\ud7af]")
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_MONTHS = {m: i for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], start=1)}
_POWERED = re.compile(r"^powered\s+by\s+(\S+)", re.I)
_COPYRIGHT = re.compile(r"^(?:copyright\s*)?(?:©|\(c\)|copyright)\s*(?:\d{4}(?:\s*[-–]\s*\d{4})?)?\s*([^.|]{2,60}?)\.?\s*(?:all rights reserved.*)?$", re.I)
_BYLINE_SITE = re.compile(r"^\s*([^\d\s·|•][^·|•]{1,40}?)\s*[·|•]\s*(?=.*\d)")
_SOURCE_LINE = re.compile(r"^(?:source|来源|出典)\s*[:：]\s*(.{2,60})$", re.I)
_DESK_SIG = re.compile(r"^(.{2,60}?)\s+(?:(?:industry|news|editorial|research|business|tech|technology|markets?)\s+)*desk$", re.I)
_BULLET = re.compile(r"^(?:[-–—•*▪●►]|#{1,6})\s+")


def detect_languages(text: str) -> tuple[str, ...]:
    """Languages by script, most frequent first: kana -> ja, Han -> zh (ja when kana), Hangul -> ko, Latin -> en."""
    counts = {
        "ja": len(_KANA.findall(text)),
        "zh": len(_CJK.findall(text)),
        "ko": len(_HANGUL.findall(text)),
        "ru": len(_CYRILLIC.findall(text)),
        "en": len(_LATIN.findall(text)),
    }
    if counts["ja"] >= 3:  # Japanese text mixes kanji with kana: count its kanji as Japanese
        counts["ja"] += counts["zh"]
        counts["zh"] = 0
    floor = {"en": 20}
    langs = [lang for lang, n in counts.items() if n >= floor.get(lang, 5)]
    return tuple(sorted(langs, key=lambda lang: -counts[lang]))


def parse_date(s: str) -> str | None:
    """The first date stated in s as ISO yyyy-mm-dd (ISO, "25 February 2025", "July 29, 2025", "2025年11月6日")."""
    for m in DATE_PATTERN.finditer(s):
        g = m.groupdict()
        for y, mo, d in (("y1", "m1", "d1"), ("y2", "m2", "d2"), ("y3", "m3", "d3"), ("y4", "m4", "d4")):
            if g[y] is None:
                continue
            month = g[mo]
            month_n = int(month) if month.isdigit() else _MONTHS.get(month.lower().rstrip(".")[:3])
            try:
                return dt.date(int(g[y]), int(month_n or 0), int(g[d])).isoformat()
            except ValueError:
                break
    return None


def _clean_title(line: str) -> str:
    return _BULLET.sub("", line).strip()[:300]


def infer_meta(text: str, source_file: str | None = None) -> DocMeta:
    """Metadata by general rules on the text: title, dateline, publisher where stated, languages."""
    verdicts = classify_lines(text)
    top = verdicts[:15]
    title = None
    h1 = re.search(r"^\s*#\s+(\S.*)$", text[:2000], re.M)  # a Markdown title wins
    if h1 and not text[:h1.start()].strip():
        title = h1.group(1).strip()[:300]
    for v in top if title is None else ():
        candidate = _clean_title(v.text)
        if v.kind in ("content", "heading") and is_substantial(candidate) and \
                candidate.lower().rstrip("?:") not in GENERIC_HEADINGS:
            title = candidate
            break
    if title is None:
        first = next((v.text for v in verdicts), "")
        title = _clean_title(first) or (Path(source_file).stem if source_file else "untitled")
    published = None
    for v in top:
        if word_count(v.text) <= 12 and (published := parse_date(v.text)):
            break
    meta = DocMeta(title=title, publisher=infer_publisher(text), published=published,
                   languages=detect_languages(text), source_file=source_file)
    return metadata.apply(meta, metadata.from_byline(text, title))


def infer_publisher(text: str) -> str | None:
    """The publisher where the text names it: "Powered by x.com", "Site·2025-11-06", "Source: X", "X News Desk"."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for line in lines[:12]:
        if m := _POWERED.match(line):
            return m.group(1).rstrip(".,")
        if (m := _BYLINE_SITE.match(line)) and parse_date(line[m.end():]) and word_count(m.group(1)) <= 6:
            return m.group(1).strip()
        if m := _SOURCE_LINE.match(line):
            return m.group(1).strip()
    for line in reversed(lines[-40:]):
        if word_count(line) > 8:
            continue
        if m := _DESK_SIG.match(line):
            return m.group(1).strip()
        if (m := _COPYRIGHT.match(line)) and re.search(r"©|\(c\)|copyright", line, re.I):
            return m.group(1).strip()
    return None


# ---------------------------------------------------------------- sidecars


def sidecar_path(path: Path) -> Path:
    """Where the metadata sidecar of a file lives: `X.meta.json` beside `X.ext`."""
    return path.with_name(path.name[: -len(path.suffix)] + SIDECAR_SUFFIX if path.suffix else path.name + SIDECAR_SUFFIX)


def read_sidecar(path: Path) -> dict[str, Any]:
    """The validated fields of a metadata sidecar; unknown fields are ignored with a warning."""
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReadError(f"{path}: not a readable JSON metadata sidecar: {exc}") from exc
    if not isinstance(data, dict):
        raise ReadError(f"{path}: a metadata sidecar must be a JSON object")
    unknown = set(data) - SIDECAR_FIELDS
    if unknown:
        log.warning("%s: ignoring unknown sidecar fields %s", path, sorted(unknown))
    fields = {k: v for k, v in data.items() if k in SIDECAR_FIELDS}
    for key in ("title", "author", "publisher", "published", "source_file", "url"):
        if fields.get(key) is not None and not isinstance(fields[key], str):
            raise ReadError(f"{path}: field {key!r} must be a string or null")
    if fields.get("title") is not None and not fields["title"].strip():
        raise ReadError(f"{path}: field 'title' must not be empty")
    if fields.get("published") is not None:
        try:
            dt.date.fromisoformat(fields["published"])
        except ValueError as exc:
            raise ReadError(f"{path}: field 'published' must be an ISO date (YYYY-MM-DD)") from exc
    if "languages" in fields:
        langs = fields["languages"]
        if not isinstance(langs, list) or not all(isinstance(x, str) for x in langs):
            raise ReadError(f"{path}: field 'languages' must be a list of strings")
        fields["languages"] = tuple(langs)
    return fields


def _apply_sidecar(meta: DocMeta, path: Path) -> DocMeta:
    side = sidecar_path(path)
    if not side.is_file():
        return meta
    fields = read_sidecar(side)
    if fields.get("title") is None:
        fields.pop("title", None)
    return replace(meta, **fields)


# ---------------------------------------------------------------- formats


def read_html(path: Path, notes: list[str]) -> tuple[str, DocMeta]:
    """Main text of an HTML page (trafilatura), with title, date, site and URL from the page metadata."""
    import trafilatura

    html = _read_text_file(path, notes)
    text = trafilatura.extract(html, output_format="txt", include_comments=False, include_tables=True,
                               favor_recall=True)
    if not text or not text.strip():
        text = trafilatura.html2txt(html) or ""
        notes.append(f"{path}: no main content found, used the page's full text")
    if not text.strip():
        raise ReadError(f"{path}: no text found in the HTML")
    return text, metadata.apply(infer_meta(text, path.name), metadata.from_html(html))


def read_pdf(path: Path) -> tuple[str, DocMeta]:
    """Text of every page (pypdf), pages separated by a blank line; title and date from the PDF info."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(path)
        pages = [page.extract_text() or "" for page in reader.pages]
        info = reader.metadata
    except (PdfReadError, OSError, ValueError, KeyError) as exc:
        raise ReadError(f"{path}: not a readable PDF: {exc}") from exc
    text = "\n\n".join(p.strip("\n") for p in pages)
    if not text.strip():
        raise ReadError(f"{path}: the PDF has no extractable text (scanned images need OCR)")
    meta = infer_meta(text, path.name)
    if info is not None:
        title = (info.title or "").strip()
        created = getattr(info, "creation_date", None)
        meta = replace(meta, title=title or meta.title,
                       published=meta.published or (created.date().isoformat() if created else None))
    return text, meta


def read_beir(path: Path, notes: list[str] | None = None, errors: list[str] | None = None,
              max_bytes: int | None = None) -> Iterator[Document]:
    """Documents of a BEIR corpus file (`_id`, `title`, `text`, optional `metadata`), one per line.

    The text is `title + "\\n\\n" + text` when there is a title, so offsets are into that composed text.
    A bad line (invalid JSON, missing fields, a repeated `_id`, binary text, over `max_bytes`) raises
    ReadError naming the file and line; with an `errors` list it is recorded there and skipped instead.
    The document id is the `_id` with "/" replaced (see `safe_doc_id`).
    """
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise ReadError(f"{path}: cannot read file: {exc.strerror or exc}") from exc
    ids: set[str] = set()
    with handle:
        for n, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                doc = _beir_line(path, n, raw, ids, notes, max_bytes)
            except ReadError as exc:
                if errors is None:
                    raise
                errors.append(str(exc))
                continue
            yield doc


def _beir_line(path: Path, n: int, raw: bytes, ids: set[str], notes: list[str] | None,
               max_bytes: int | None) -> Document:
    if max_bytes is not None and len(raw) > max_bytes:
        raise ReadError(f"{path} line {n}: {_size_text(len(raw))} is over the per-document limit of "
                        f"{_size_text(max_bytes)} (RAG_MAX_DOCUMENT_BYTES)")
    line, enc = decode_bytes(raw)
    if enc != "utf-8" and notes is not None:
        notes.append(f"{path} line {n}: not UTF-8, decoded as {enc}")
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ReadError(f"{path} line {n}: not valid JSON ({exc.msg})") from exc
    if not isinstance(obj, dict):
        raise ReadError(f"{path} line {n}: expected a JSON object")
    doc_id, body = obj.get("_id"), obj.get("text")
    if doc_id is None or str(doc_id) == "" or not isinstance(body, str):
        raise ReadError(f"{path} line {n}: a BEIR document needs '_id' and a string 'text'")
    if str(doc_id) in ids:
        raise ReadError(f"{path} line {n}: duplicate _id {doc_id!r} (the first one is kept)")
    title = obj.get("title") or ""
    if not isinstance(title, str):
        raise ReadError(f"{path} line {n}: 'title' must be a string")
    text = f"{title}\n\n{body}" if title.strip() else body
    if not text.strip():
        raise ReadError(f"{path} line {n}: the document is empty")
    if reason := binary_reason(None, text):
        raise ReadError(f"{path} line {n}: {reason}")
    ids.add(str(doc_id))
    extra = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    published = parse_date(str(extra.get("published") or extra.get("date") or ""))
    meta = DocMeta(
        title=title.strip() or str(doc_id),
        publisher=_opt_str(extra.get("publisher") or extra.get("source")),
        published=published,
        languages=detect_languages(text[:2000]),
        source_file=path.name,
        url=_opt_str(extra.get("url")),
    )
    return Document(doc_id=safe_doc_id(str(doc_id)), text=text, meta=meta)


def _size_text(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n:,} bytes"


def _opt_str(value: object) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def load_document(path: Path, doc_id: str | None = None, notes: list[str] | None = None) -> Document:
    """One txt, md, html or pdf file as a Document (sidecar metadata applied); doc_id defaults to the stem."""
    path = Path(path)
    notes = notes if notes is not None else []
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        text = _read_text_file(path, notes)
        meta = infer_meta(text, path.name)
    elif suffix in HTML_SUFFIXES:
        text, meta = read_html(path, notes)
    elif suffix == ".pdf":
        text, meta = read_pdf(path)
    else:
        raise ReadError(f"{path}: unsupported file type {suffix or '(none)'!r}; supported: {', '.join(SUPPORTED)}")
    if not text.strip():
        raise ReadError(f"{path}: the file is empty")
    if reason := binary_reason(None, text):
        raise ReadError(f"{path}: {reason}")
    meta = _apply_sidecar(meta, path)
    return Document(doc_id=doc_id or path.stem, text=text, meta=meta)


# ---------------------------------------------------------------- folders


def safe_doc_id(raw: str) -> str:
    """An id that fits in one URL path segment: "/" and "\\" become FOLDER_SEPARATOR, control characters
    "_", and "." or ".." (which URL handling would resolve away) get a leading "_"."""
    out = raw.replace("/", FOLDER_SEPARATOR).replace("\\", FOLDER_SEPARATOR)
    out = "".join("_" if unicodedata.category(ch) == "Cc" else ch for ch in out)
    return f"_{out}" if out in ("", ".", "..") else out


@dataclass(frozen=True, slots=True)
class Found:
    """A file met while walking the given paths; `skip` or `refuse` says why it is not read."""

    path: Path
    root: Path
    skip: str | None = None  # nothing wrong (a link to a folder that is read where it lives)
    refuse: str | None = None  # a fault the user should see (a link out of the folder, a broken link)


def iter_files(paths: Sequence[Path]) -> Iterator[Found]:
    """Every file under the given files and folders, sorted, sidecars and hidden files excluded.

    Symbolic links inside a folder are followed only to files within that folder; a link out of it is
    reported as a problem (a corpus must not publish /etc/passwd), and links to folders are not walked.
    """
    for given in paths:
        given = Path(given)
        if given.is_dir():
            root = given.resolve()
            found = []
            for folder, dirs, files in os.walk(given, followlinks=False):
                here = Path(folder)
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                for d in [d for d in dirs if (here / d).is_symlink()]:
                    dirs.remove(d)
                    refuse = _link_problem(here / d, root)
                    found.append(Found(here / d, given, None if refuse else "link to a folder read where it is",
                                       refuse))
                for f in files:
                    if not f.startswith(".") and not f.endswith(SIDECAR_SUFFIX):
                        path = here / f
                        found.append(Found(path, given, refuse=_link_problem(path, root) if path.is_symlink() else None))
            yield from sorted(found, key=lambda x: x.path.relative_to(given).as_posix())
        elif given.is_file():
            yield Found(given, given.parent)
        else:
            raise ReadError(f"{given}: no such file or folder")


def _link_problem(link: Path, root: Path) -> str | None:
    """Why a symbolic link in a folder must not be followed: broken, or pointing out of the folder."""
    target = link.resolve()
    if not target.exists():
        return f"broken symbolic link to {os.readlink(link)}"
    if not target.is_relative_to(root):
        return f"symbolic link to {target}, outside the folder {root}; refused"
    return None


def _doc_id(path: Path, root: Path) -> str:
    rel = path.relative_to(root).as_posix()
    return safe_doc_id(rel[: -len(path.suffix)] if path.suffix else rel)


def read_paths(paths: Sequence[Path], *, strict: bool = False, max_bytes: int | None = None) -> ReadResult:
    """Read files and folders (recursively, in sorted order) into Documents with unique, stable ids.

    Unsupported files and links to folders are skipped; a file that cannot be read, is binary, is over
    `max_bytes`, or links out of its folder is recorded in `failed` with the reason (strict=True raises
    its ReadError instead); a bad line of a BEIR file fails that line only. A missing path always raises.
    """
    result = ReadResult()
    seen: set[str] = set()

    def add(doc: Document, path: Path, record: str | None = None) -> None:
        doc_id = doc.doc_id
        if doc_id in seen:  # e.g. a.txt beside a.md: keep the extension, then number
            base = doc_id + path.suffix if path.suffix.lower() != ".jsonl" else doc_id
            doc_id, k = base, 2
            while doc_id in seen:
                doc_id, k = f"{base}~{k}", k + 1
            log.warning("%s: document id %r already used, using %r", path, doc.doc_id, doc_id)
            doc = replace(doc, doc_id=doc_id)
        seen.add(doc_id)
        result.documents.append(doc)
        result.origins[doc_id] = (str(path.absolute()), record)

    def fail(err: ReadError, path: Path) -> None:
        if strict:
            raise err
        log.warning("%s", err)
        result.failed.append(str(err))
        result.failed_paths.add(str(path.absolute()))

    for item in iter_files(paths):
        path, name, suffix = item.path, item.path.as_posix(), item.path.suffix.lower()
        if item.refuse is not None:
            fail(ReadError(f"{name}: {item.refuse}"), path)
            continue
        if item.skip is not None:
            result.skipped.append(f"{name}: {item.skip}")
            continue
        if suffix not in SUPPORTED:
            log.warning("skipping %s: unsupported file type %r", name, suffix or "(none)")
            result.skipped.append(f"{name}: unsupported file type {suffix or '(none)'!r}")
            continue
        try:
            if suffix == ".jsonl":
                errors: list[str] = []
                for doc in read_beir(path, result.notes, None if strict else errors, max_bytes):
                    add(doc, path, doc.doc_id)
                for err in errors:
                    fail(ReadError(err), path)
                continue
            size = path.stat().st_size
            if max_bytes is not None and size > max_bytes:
                raise ReadError(f"{name}: {_size_text(size)} is over the per-document limit of "
                                f"{_size_text(max_bytes)} (RAG_MAX_DOCUMENT_BYTES)")
            add(load_document(path, _doc_id(path, item.root), result.notes), path)
        except Exception as exc:  # one bad file must not stop the rest; it is reported by name
            err = exc if isinstance(exc, ReadError) else ReadError(f"{name}: {type(exc).__name__}: {exc}")
            fail(err, path)
    return result
