"""Boilerplate detection: seed-article footers and widgets are dropped, real prose never is."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag import clean
from rag.clean import classify_lines, content_spans, dropped_lines, is_prose

ROOT = Path(__file__).resolve().parent.parent
SEED = {p.stem[:3]: p.read_text(encoding="utf-8") for p in sorted((ROOT / "corpus").glob("*.txt"))}


def _dropped(text: str) -> dict[str, str]:
    return {v.text: v.reason or "" for v in dropped_lines(text)}


@pytest.mark.parametrize(("key", "lines"), [
    ("000", ["Bronnen", "Semiconductor subsidies Autonomous driving"]),
    ("001", ["Workflow"]),
    ("002", ["This article is more than 1 year old", "More about", "Send us news", "Other stories you might like"]),
    ("003", ["Powered by lumidawealth.com"]),
    ("004", ["GET AHEAD", "PODCASTS", "STAY TUNED", "GET EMAIL ALERT", "Subscribe Email", "DMCA.com Protection Status",
             "$263.21 BN", "2025", "$479.17 BN", "2029", "Smart Manufacturing Market", "11 July 2023|S2E12|Listen Now",
             "7 Nov 2023|S2E13|Listen Now", "MarketsandMarkets Industry News Desk"]),
])
def test_seed_boilerplate_lines_are_dropped(key: str, lines: list[str]) -> None:
    dropped = _dropped(SEED[key])
    for line in lines:
        assert line in dropped, f"{key}: {line!r} kept"


def test_repeated_headline_is_kept_once_next_to_its_article() -> None:
    text = SEED["000"]
    headline = text.splitlines()[0]
    verdicts = [v for v in classify_lines(text) if v.text == headline]
    assert len(verdicts) == 2
    assert not verdicts[0].kept and verdicts[0].reason == clean.REPEAT and verdicts[1].kept
    first_region = content_spans(text)[0]
    assert text[first_region.start:].startswith(headline + "\n\n2025-02-25")  # headline, dateline, lead together


def test_repeats_far_apart_drop_the_later_copy() -> None:
    text = ("Quarterly results beat forecasts\n\nRevenue rose 12% to 3.4 billion dollars in the quarter, it said.\n\n"
            "Quarterly results beat forecasts\n")
    dropped = dropped_lines(text)
    assert len(dropped) == 1 and dropped[0].start > 10 and dropped[0].reason == clean.REPEAT


def test_podcast_promos_and_story_teasers_are_dropped_as_footer() -> None:
    dropped = _dropped(SEED["004"])
    promos = [t for t in dropped if t.startswith(("Sanjay Kaul", "Prasad Joshi", "The U.S.-Japan semiconductor"))]
    assert len(promos) == 3
    repeats = [v.text for v in dropped_lines(SEED["004"]) if v.reason == clean.REPEAT]
    assert repeats == ["Sustainable Digital Transformation & Industry 4.0"]  # the doubled podcast title


def test_real_prose_is_never_dropped_in_the_seed() -> None:
    """The only prose lines dropped anywhere in the seed are the podcast/teaser footer of one page."""
    dropped_prose = [(k, v.text) for k, t in SEED.items() for v in dropped_lines(t) if is_prose(v.text)]
    assert {k for k, _ in dropped_prose} == {"004"}
    assert all(v.reason == clean.TAIL for k, t in SEED.items() for v in dropped_lines(t) if is_prose(v.text))
    article_end = SEED["004"].index("MarketsandMarkets Industry News Desk")
    for v in classify_lines(SEED["004"]):
        if v.start < article_end and is_prose(v.text):
            assert v.kept, v.text


MADE_UP = """Home
Widget makers expand output

Widget makers in Examplia raised output by 7% in March, the trade ministry said on Friday.
Sign up for our newsletter
The ministry expects a further rise of 2.5% in April as new plants open, officials said.

Widget makers in Examplia raised output by 7% in March, the trade ministry said on Friday.

The company launched a newsletter for investors in May, it said.

Widget Market
$12.5 BN
2024
$20.1 BN
2030

Sources

READ MORE
https://example.com/widgets/more-news
Share this article
© 2024 Example Media Ltd. All rights reserved.
"""


def test_general_rules_on_a_made_up_page() -> None:
    dropped = _dropped(MADE_UP)
    assert dropped["Home"] == clean.NAV
    assert dropped["Sign up for our newsletter"] == clean.CTA
    assert dropped["Widget makers in Examplia raised output by 7% in March, the trade ministry said on Friday."] \
        == clean.REPEAT
    assert dropped["Widget Market"] == clean.WIDGET_LABEL
    for line in ("$12.5 BN", "2024", "$20.1 BN", "2030"):
        assert dropped[line] == clean.WIDGET
    assert dropped["Sources"] == clean.SOURCES
    assert dropped["READ MORE"] == clean.CTA
    assert dropped["https://example.com/widgets/more-news"] == clean.LINK
    assert "Share this article" in dropped
    assert dropped["© 2024 Example Media Ltd. All rights reserved."] == clean.CTA
    kept = [MADE_UP[s.start:s.end] for s in content_spans(MADE_UP)]
    joined = "\n".join(kept)
    assert "raised output by 7% in March" in joined
    assert "further rise of 2.5% in April" in joined
    assert "The company launched a newsletter for investors in May, it said." in joined  # prose, not a prompt
    assert "Widget makers expand output" in joined  # the headline


def test_spans_point_into_the_original_and_exclude_dropped_lines() -> None:
    for text in [*SEED.values(), MADE_UP]:
        spans = content_spans(text)
        assert spans == sorted(spans, key=lambda s: s.start)
        for a, b in zip(spans, spans[1:], strict=False):
            assert a.end < b.start and text[a.end:b.start].strip()  # separated by something dropped
        for s in spans:
            assert text[s.start:s.end] == text[s.start:s.end].strip()
            for v in dropped_lines(text):
                assert v.end <= s.start or v.start >= s.end


def test_meta_lines_alone_do_not_make_a_region() -> None:
    text = "By Jane Doe\nMarch 3, 2024\n\nREAD MORE\n\nThe factory opened in 2023 and employs 400 people today."
    dropped = _dropped(text)
    assert dropped["By Jane Doe"] == clean.ORPHAN and dropped["March 3, 2024"] == clean.ORPHAN
    assert [text[s.start:s.end] for s in content_spans(text)] == [
        "The factory opened in 2023 and employs 400 people today."]


def test_plain_abstract_is_kept_whole() -> None:
    text = "Sleep apnea\n\nObstructive sleep apnea affects 9% of adults. Treatment reduced events by 50% (p < 0.01)."
    assert [(s.start, s.end) for s in content_spans(text)] == [(0, len(text))]
    assert dropped_lines(text) == []


def test_inline_related_links_captions_and_tags_are_dropped() -> None:
    text = ("Steel demand rises\n\n"
            "Steel demand rose 4% in May, the association said on Friday, citing car makers.\n"
            "Related: Car sales hit a record in April\n"
            "Photo: Example Agency\n"
            "It expects growth of 3% this year as construction recovers across the region.\n"
            "Tags: steel, industry, demand\n")
    assert set(_dropped(text)) == {"Related: Car sales hit a record in April", "Photo: Example Agency",
                                   "Tags: steel, industry, demand"}
