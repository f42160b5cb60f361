"""The strict tokenizer of the common chat markup reads every markup it accepts exactly as HTMLParser does
(same handler calls, so the same text, mentions, hashtags and links), and leaves everything else to it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.normalize.mapping.markup import _Collector, _parse_fast, _parse_html

TAGS = ("a", "A", "br", "p", "div", "li", "b", "i", "mention", "Mention", "hash", "cash", "card", "h1", "x9")
ATTRIBUTES = ("href", "HREF", "uid", "name", "email", "tag", "class", "data-x", "a_b")
TEXT = st.text(alphabet=st.sampled_from("ab #$@&;:/.,-_1\n\t \u00a0é😀xyhttps"), max_size=12)
VALUES = st.text(alphabet=st.sampled_from("ab #$@:/.,-_1 \u00a0é9xhttps"), max_size=10)


def state(parser: _Collector) -> tuple[object, ...]:
    """Everything the handlers collected."""
    return parser.parts, parser.mentions, parser.tags, parser.links, parser._link


@st.composite
def attribute(draw: st.DrawFn) -> str:
    name, value = draw(st.sampled_from(ATTRIBUTES)), draw(VALUES)
    return f' {name}="{value}"' if draw(st.booleans()) else f" {name}='{value}'"


@st.composite
def tag(draw: st.DrawFn) -> str:
    """A tag of the common chat markup (the grammar the strict tokenizer accepts)."""
    name = draw(st.sampled_from(TAGS))
    kind = draw(st.sampled_from(("start", "end", "self-closing")))
    if kind == "end":
        return f"</{name}>"
    attributes = "".join(draw(st.lists(attribute(), max_size=3)))
    space = " " if draw(st.booleans()) else ""
    return f"<{name}{attributes}{space}{'/' if kind == 'self-closing' else ''}>"


ENTITIES = st.sampled_from(
    (
        "&amp;",
        "&lt;",
        "&gt;",
        "&quot;",
        "&#65;",
        "&#x263A;",
        "&#0;",
        "&#1;",
        "&#xD800;",
        "&eacute",
        "&nope;",
        "&",
    )
)
COMMON = st.lists(st.one_of(TEXT, tag(), ENTITIES), max_size=12).map("".join)
"""The common chat markup: text with entities, and well-formed tags."""
ODD = st.sampled_from(
    (
        "<",
        "</",
        "< b>",
        "<!-- c -->",
        "<![CDATA[x]]>",
        "<?pi?>",
        "<!DOCTYPE x>",
        "<script>a<b</script>",
        "<style>",
        "</a >",
        "<a href=x>",
        '<a href="a&amp;b">',
        "<a  href='y'>",
        "<b\t>",
        "<p/ >",
        "<a href>",
        '<a x="1"y="2">',
        "<>",
        "</>",
        "<a\u00a0b>",
        '<mention uid="1" / >',
    )
)
ANY = st.lists(st.one_of(TEXT, tag(), ENTITIES, ODD), max_size=12).map("".join)
"""Markup with everything the strict tokenizer leaves to HTMLParser, mixed in."""


@settings(max_examples=400, deadline=None)
@given(COMMON)
def test_the_common_chat_markup_takes_the_fast_path_and_reads_as_htmlparser_reads_it(markup: str) -> None:
    fast = _parse_fast(markup)
    if "<script" in markup.lower() or "<style" in markup.lower():
        return
    assert fast is not None, markup
    assert state(fast) == state(_parse_html(markup))


@settings(max_examples=800, deadline=None)
@given(ANY)
def test_any_markup_the_fast_path_accepts_reads_as_htmlparser_reads_it(markup: str) -> None:
    fast = _parse_fast(markup)
    if fast is not None:
        assert state(fast) == state(_parse_html(markup))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_arbitrary_text_the_fast_path_accepts_reads_as_htmlparser_reads_it(markup: str) -> None:
    fast = _parse_fast(markup)
    if fast is not None:
        assert state(fast) == state(_parse_html(markup))


@pytest.mark.parametrize(
    "markup",
    [
        '<messageML>Hi <mention uid="123"/> see <a href="https://x">this</a> #deal</messageML>',
        '<messageML><mention uid="4400012345678"/> ok sounds good <a href="https://docs.example/1">'
        'the deck</a> <hash tag="fx"/></messageML>',
        "<messageML>price looks firm &amp; tight #rates</messageML>",
        "<messageML><p>Line <b>one</b></p><p>two<br/>three</p><br /></messageML>",
        "plain text without markup",
        "",
    ],
)
def test_typical_chat_messages_take_the_fast_path(markup: str) -> None:
    fast = _parse_fast(markup)
    assert fast is not None
    assert state(fast) == state(_parse_html(markup))


@pytest.mark.parametrize(
    "markup",
    ["a < b", "<!-- c -->x", "<script>1</script>", "<a href=x>y</a>", '<a href="a&amp;b">y</a>', "</a >"],
)
def test_anything_else_is_left_to_htmlparser(markup: str) -> None:
    assert _parse_fast(markup) is None
