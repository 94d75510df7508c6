"""Block Kit rendering of a cited `Answer` for Slack, kept within Slack's size limits.

Pure functions (no I/O) so the layout can be tested and reused by the HTTP bot and Socket Mode alike.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from rag.types import Answer, Citation

Block = dict[str, Any]

SECTION_TEXT_LIMIT = 3000  # characters in a section's text object
CONTEXT_TEXT_LIMIT = 3000  # characters in one context element
HEADER_TEXT_LIMIT = 150  # characters in a header block
BUTTON_VALUE_LIMIT = 2000  # characters in a button's value
MAX_BLOCKS = 50  # blocks in one message
FALLBACK_TEXT_LIMIT = 3000  # the notification/fallback `text` of a message

SHARE_ACTION_ID = "rag_share"
HEADER_CONFLICT = ":warning: Sources disagree"
HEADER_UNANSWERED = ":grey_question: Not in the sources"


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn reserves for links and mentions."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def split_text(text: str, limit: int = SECTION_TEXT_LIMIT) -> list[str]:
    """Cut text into pieces of at most `limit` characters, preferring line, then word, boundaries."""
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = rest.rfind("\n", 0, limit + 1)
        if cut < limit // 2:
            cut = rest.rfind(" ", 0, limit + 1)
        if cut < limit // 2:
            cut = limit
        # An escape like "&amp;" must not be cut in half.
        amp = rest.rfind("&", max(0, cut - 4), cut)
        if amp != -1 and ";" not in rest[amp:cut]:
            cut = amp
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest.strip():
        pieces.append(rest)
    return pieces


def truncate(text: str, limit: int) -> str:
    """At most `limit` characters, ending with an ellipsis when shortened."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def source_link(public_url: str, citation: Citation) -> str:
    """The web page's view of a cited span: `{public_url}/?doc=…&start=…&end=…`."""
    return f"{public_url.rstrip('/')}/?doc={quote(citation.doc_id, safe='')}&start={citation.start}&end={citation.end}"


def _link_label(text: str) -> str:
    """A label usable inside `<url|label>`: escaped, without the separator character."""
    return escape(text.replace("|", "/"))


def citation_context(citation: Citation, public_url: str | None, source_url: str | None = None) -> str:
    """One line naming the source: `[n] title · publisher · date · View in sources`."""
    title = _link_label(citation.title or citation.doc_id)
    if source_url:
        title = f"<{source_url}|{title}>"
    parts = [f"[{citation.n}] *{title}*"]
    parts += [escape(p) for p in (citation.publisher, citation.published) if p]
    if public_url:
        parts.append(f"<{source_link(public_url, citation)}|View in sources>")
    return truncate(" · ".join(parts), CONTEXT_TEXT_LIMIT)


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def _header(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": truncate(text, HEADER_TEXT_LIMIT), "emoji": True}}


def _quote(text: str) -> str:
    return "\n".join("> " + line for line in escape(" ".join(text.split())).splitlines() or [""])


def answer_body(answer: Answer) -> str:
    """The answer without the "[n] quote (source)" paragraphs a composer may append: the blocks show
    those as quotes with context lines instead."""
    markers = tuple(f"[{c.n}] " for c in answer.citations)
    paragraphs = [p for p in answer.answer.split("\n\n") if not (markers and p.lstrip().startswith(markers))]
    return "\n\n".join(paragraphs).strip() or answer.answer


def answer_blocks(
    answer: Answer,
    public_url: str | None = None,
    source_urls: Mapping[str, str] | None = None,
) -> list[Block]:
    """The answer, the verbatim evidence and a context line per citation; conflicts and abstentions get a header."""
    blocks: list[Block] = []
    if answer.conflicts:
        blocks.append(_header(HEADER_CONFLICT))
    elif not answer.answerable:
        blocks.append(_header(HEADER_UNANSWERED))
    blocks += [_section(part) for part in split_text(escape(answer_body(answer)))]
    if answer.conflicts:
        lines = []
        for conflict in answer.conflicts:
            values = " vs ".join(f"{escape(v.text)} [{v.citation}]" for v in conflict.values)
            lines.append(f"• *{escape(conflict.quantity)}*: {values}")
        blocks += [_section(part) for part in split_text("\n".join(lines))]
    for citation in answer.citations:
        blocks += [_section(part) for part in split_text(_quote(citation.quote))]
        url = (source_urls or {}).get(citation.doc_id)
        blocks.append(_context(citation_context(citation, public_url, url)))
    if not answer.answerable and not answer.citations and answer.related:
        related = [f"*{_link_label(r.title)}*: {escape(truncate(' '.join(r.quote.split()), 200))}" for r in answer.related[:3]]
        blocks.append(_context(truncate("Closest passages: " + " · ".join(related), CONTEXT_TEXT_LIMIT)))
    return blocks


def share_button(value: str) -> Block:
    """An actions block with the "Share in channel" button carrying `value` (at most 2,000 characters)."""
    if len(value) > BUTTON_VALUE_LIMIT:
        raise ValueError(f"button value is {len(value)} characters; Slack allows {BUTTON_VALUE_LIMIT}")
    button = {
        "type": "button",
        "action_id": SHARE_ACTION_ID,
        "text": {"type": "plain_text", "text": "Share in channel", "emoji": True},
        "value": value,
    }
    return {"type": "actions", "elements": [button]}


def share_value(key: str, question: str) -> str:
    """The button value: the cached answer's key, and the question when it fits (to re-ask after a restart)."""
    value = json.dumps({"id": key, "q": question}, ensure_ascii=False)
    return value if len(value) <= BUTTON_VALUE_LIMIT else json.dumps({"id": key})


def paginate(blocks: Sequence[Block], max_blocks: int = MAX_BLOCKS) -> list[list[Block]]:
    """Split blocks into messages of at most `max_blocks` blocks each (at least one message)."""
    if not blocks:
        return [[]]
    return [list(blocks[i : i + max_blocks]) for i in range(0, len(blocks), max_blocks)]


def fallback_text(answer: Answer) -> str:
    """Plain text shown in notifications and by clients that cannot render blocks."""
    prefix = "Sources disagree: " if answer.conflicts else ("Not in the sources: " if not answer.answerable else "")
    return truncate(escape(prefix + answer.answer), FALLBACK_TEXT_LIMIT)


def notice_blocks(text: str) -> list[Block]:
    """A short message (usage hint, error) as a single section."""
    return [_section(part) for part in split_text(escape(text))]
