"""MessageML normalization: text, mentions, hashtags, links."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.normalize.mapping.markup import NormalizedText, normalize_markup


@pytest.mark.parametrize(
    ("markup", "expected"),
    [
        (
            '<messageML>Hi <mention uid="123"/> see <a href="https://x">this</a> #deal</messageML>',
            NormalizedText("Hi @123 see this #deal", (("123", ""),), ("deal",), (("https://x", "this"),)),
        ),
        (
            '<messageML>Ping <mention uid="7" name="Jane Doe"/> <hash tag="fx"/> and #fx again</messageML>',
            NormalizedText("Ping @Jane Doe #fx and #fx again", (("7", "Jane Doe"),), ("fx",)),
        ),
        (
            "<messageML><p>Line <b>one</b> &amp; more</p><p>two<br/>three</p></messageML>",
            NormalizedText("Line one & more\ntwo\nthree"),
        ),
        (
            '<messageML>read https://example.com/a?b=1. Then <cash tag="AAPL"/></messageML>',
            NormalizedText(
                "read https://example.com/a?b=1. Then $AAPL",
                links=(("https://example.com/a?b=1", "https://example.com/a?b=1"),),
            ),
        ),
        (
            '<messageML><a href="https://y"/></messageML>',
            NormalizedText("https://y", links=(("https://y", ""),)),
        ),
        (
            '<messageML><mention uid="abc"/> <mention email="a@b.c"/></messageML>',
            NormalizedText("@abc @a@b.c"),
        ),
        (
            "plain text, no markup #Tag-1 x#notatag",
            NormalizedText("plain text, no markup #Tag-1 x#notatag", hashtags=("Tag-1",)),
        ),
        ("<messageML>unclosed <b>bold", NormalizedText("unclosed bold")),
        ("", NormalizedText("")),
        ('<messageML><mention uid="1"/><mention uid="1"/></messageML>', NormalizedText("@1@1", (("1", ""),))),
    ],
)
def test_examples(markup: str, expected: NormalizedText) -> None:
    assert normalize_markup(markup) == expected


@given(st.text(max_size=400))
def test_never_raises_and_text_has_no_tags_it_understood(markup: str) -> None:
    result = normalize_markup(markup)
    assert "<mention" not in result.text and "<messageML>" not in result.text
    assert all(uid.isdigit() for uid, _ in result.mentions)
