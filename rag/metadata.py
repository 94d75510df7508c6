"""Who published a document, who wrote it and when, from what the document itself states: an HTML page's
meta tags and JSON-LD (read by trafilatura), and bylines at the top of a text ("By NAME", "NAME | PUBLISHER").

Readers apply these over the general inference of rag/readers.py; a sidecar still wins over both.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, fields, replace

from rag.types import DocMeta

BYLINE_LINES = 15  # bylines are looked for in the first non-empty lines of a text

# A person's name: 2-5 capitalised words or initials, with the usual lower-case particles between them.
_NAME_WORD = r"(?:[A-Z][a-z'’-]*\.?|[A-Z][a-zA-Z'’-]+)"
_PARTICLE = r"(?:de|da|del|der|den|di|du|van|von|bin|al|la|le|y)"
_NAME = rf"{_NAME_WORD}(?:[ \t]+(?:{_PARTICLE}[ \t]+)?{_NAME_WORD}){{1,4}}"
# "A and B", "A, B and C": a comma joins names only in a list that ends with "and".
_NAMES = rf"{_NAME}(?:(?:,[ \t]*{_NAME})*,?[ \t]+(?:and|&)[ \t]+{_NAME})?"
_SEP = r"[ \t]*[|·•][ \t]*|[ \t]+[-–—][ \t]+|,[ \t]*"
_PUBLISHER = r"[^\s|·•,][^|·•\n]{0,60}?"
_BY = re.compile(rf"^(?i:by|written by|words by|reporting by|author:)[ \t]+(?P<author>{_NAMES})"
                 rf"(?:(?:{_SEP})(?P<rest>{_PUBLISHER}))?[ \t]*$")
_AUTHOR_PIPE = re.compile(rf"^(?P<author>{_NAME})[ \t]*[|·•][ \t]*(?P<rest>{_PUBLISHER})[ \t]*$")
_CJK_AUTHOR = re.compile(r"^(?:作者|记者|撰文|文)[:：]\s*(?P<author>\S.{0,30}?)\s*$")
_NOT_PUBLISHER = re.compile(r"\d|\b(?:min(?:ute)?s?|read|updated|published|staff|photos?)\b", re.I)
# Words that start a name-shaped line that is no byline ("Home | News", "Breaking News | Live").
_NOT_NAME = frozenset("home news live breaking latest menu search sign subscribe share top world business "
                      "tech technology markets opinion sport sports video more the".split())


@dataclass(frozen=True, slots=True)
class Found:
    """Metadata a document states about itself; None where it states nothing."""

    title: str | None = None
    author: str | None = None
    publisher: str | None = None
    published: str | None = None  # ISO date
    url: str | None = None


def _iso_date(value: object) -> str | None:
    try:
        return dt.date.fromisoformat(str(value)[:10]).isoformat() if value else None
    except ValueError:
        return None


def _clean(value: object) -> str | None:
    text = " ".join(str(value).split()) if value else ""
    return text or None


def from_html(html: str) -> Found:
    """Title, author, publisher (site name), date and URL from a page's meta tags, JSON-LD and Dublin Core."""
    import trafilatura

    page = trafilatura.extract_metadata(html)
    if page is None:
        return Found()
    # trafilatura joins several authors with "; "
    author = "; ".join(a.strip() for a in page.author.split(";")) if page.author else None
    return Found(title=_clean(page.title), author=_clean(author), publisher=_clean(page.sitename),
                 published=_iso_date(page.date), url=_clean(page.url))


def _publisher(rest: str | None) -> str | None:
    """The part after a byline's name when it names a publisher, not a date or "5 min read"."""
    rest = _clean(rest)
    if rest is None or _NOT_PUBLISHER.search(rest) or len(rest.split()) > 6:
        return None
    return rest.rstrip(".")


def _looks_like_name(name: str) -> bool:
    return name.split()[0].lower() not in _NOT_NAME


def from_byline(text: str, title: str | None = None) -> Found:
    """Author (and publisher, where the byline names one) from a byline near the top of a text.

    Recognised: "By NAME", "By NAME and NAME", "By NAME | PUBLISHER" (or "·", " - ", ", "), "NAME | PUBLISHER",
    "Author: NAME", "作者：NAME". The title line itself is never read as a byline.
    """
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()][:BYLINE_LINES]
    for line in lines:
        if title and line.strip("# ").strip() == title.strip():
            continue
        if m := _BY.match(line):
            return Found(author=_clean(m.group("author")), publisher=_publisher(m.group("rest")))
        if (m := _AUTHOR_PIPE.match(line)) and _looks_like_name(m.group("author")):
            if (publisher := _publisher(m.group("rest"))) is not None:
                return Found(author=_clean(m.group("author")), publisher=publisher)
        if m := _CJK_AUTHOR.match(line):
            return Found(author=_clean(m.group("author")))
    return Found()


def apply(meta: DocMeta, found: Found) -> DocMeta:
    """`meta` with every field the document states replacing what general rules inferred."""
    stated = {f.name: getattr(found, f.name) for f in fields(found) if getattr(found, f.name) is not None}
    return replace(meta, **stated)


def fill(meta: DocMeta, found: Found) -> DocMeta:
    """`meta` with the fields it lacks taken from `found`."""
    missing = {f.name: getattr(found, f.name) for f in fields(found)
               if getattr(meta, f.name) is None and getattr(found, f.name) is not None}
    return replace(meta, **missing)
