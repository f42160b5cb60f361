"""MessageML -> plain text plus structured mentions, hashtags and links (pure, never raises on input).

``<messageML>Hi <mention uid="123"/> see <a href="https://x">this</a> #deal</messageML>`` becomes the text
``Hi @123 see this #deal`` with mention 123, link https://x ("this") and hashtag ``deal``.  ``<hash
tag="deal"/>`` renders as ``#deal``; ``<cash tag="AAPL"/>`` as ``$AAPL``; ``<br/>`` and block tags
(``p``, ``div``, ``li``...) as line breaks; a mention with ``name="Jane Doe"`` renders as ``@Jane Doe``;
bare http(s) URLs in the text are links too.  Entities are decoded; unknown tags keep their text.

The common chat markup (text, plain start / end / self-closing tags with quoted attributes free of ``&``,
``<`` and ``>``) is tokenized by one strict regular expression; anything else (comments, declarations,
``script`` / ``style``, unquoted or entity-bearing attributes, a stray ``<``) goes through
:class:`html.parser.HTMLParser`. Both drive the same handlers and give the same result
(``tests/unit/test_mapping_markup_fast.py`` holds them equal).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import unescape
from html.parser import HTMLParser

_HASHTAG = re.compile(r"(?<![\w&#])#([^\W_][\w-]{0,99})")
_BARE_URL = re.compile(r"\bhttps?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")
_DECIMAL = re.compile(r"^[1-9][0-9]{0,18}$")
_BLOCK = frozenset(
    {"p", "div", "li", "ul", "ol", "table", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "card"}
)


@dataclass(frozen=True)
class NormalizedText:
    """Plain text of a message and what it refers to."""

    text: str
    mentions: tuple[tuple[str, str], ...] = ()
    """(user id, display name or "") in order of first mention."""
    hashtags: tuple[str, ...] = ()
    """Without '#', in order of first appearance, each once."""
    links: tuple[tuple[str, str], ...] = ()
    """(url, link text) in order of appearance."""


class _Collector:
    """Collects text and structure from the tags and text of the markup (HTMLParser's handler methods)."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.mentions: list[tuple[str, str]] = []
        self.tags: list[str] = []
        self.links: list[tuple[str, str]] = []
        self._link: tuple[str, int] | None = None  # href, index in parts where its text starts

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: (v or "") for k, v in attrs}
        if tag == "br":
            self.parts.append("\n")
        elif tag in _BLOCK:
            self._break()
        elif tag == "mention":
            self._mention(found)
        elif tag == "hash":
            tag_text = found.get("tag", "").lstrip("#")
            if tag_text:
                self.parts.append("#" + tag_text)
                self.tags.append(tag_text)
        elif tag == "cash":
            if found.get("tag"):
                self.parts.append("$" + found["tag"].lstrip("$"))
        elif tag == "a":
            self._link = (found.get("href", ""), len(self.parts))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag == "a":
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _BLOCK:
            self._break()
        elif tag == "a" and self._link is not None:
            href, start = self._link
            self._link = None
            label = "".join(self.parts[start:]).strip()
            if href:
                self.links.append((href, label))
                if not label:
                    self.parts.append(href)

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def _break(self) -> None:
        if self.parts and not "".join(self.parts[-2:]).endswith("\n"):
            self.parts.append("\n")

    def _mention(self, attrs: dict[str, str]) -> None:
        uid, name = attrs.get("uid", "").strip(), attrs.get("name", "").strip()
        if _DECIMAL.match(uid):
            self.mentions.append((uid, name))
            self.parts.append("@" + (name or uid))
        elif name or uid or attrs.get("email"):
            self.parts.append("@" + (name or uid or attrs.get("email", "")))


class _MessageML(_Collector, HTMLParser):
    """The collector fed by :class:`HTMLParser` (entities in text decoded)."""

    def __init__(self) -> None:
        _Collector.__init__(self)
        HTMLParser.__init__(self, convert_charrefs=True)


_FAST_TOKEN = re.compile(
    r"([^<]+)"  # text up to the next tag
    r"|<([a-zA-Z][a-zA-Z0-9]*)((?: [a-zA-Z][a-zA-Z0-9_-]*=(?:\"[^\"<>&]*\"|'[^'<>&]*'))*) ?(/?)>"  # start tag
    r"|</([a-zA-Z][a-zA-Z0-9]*)>"  # end tag
)
"""One token of the common chat markup; HTMLParser reads these exactly so (tag and attribute names lower
case, quotes stripped, entities in text decoded; attribute values here hold no entity to decode)."""
_FAST_ATTRIBUTE = re.compile(r" ([a-zA-Z][a-zA-Z0-9_-]*)=(?:\"([^\"]*)\"|'([^']*)')")
_RAW_TEXT_TAGS = frozenset(HTMLParser.CDATA_CONTENT_ELEMENTS)
"""Tags whose content HTMLParser reads as raw text (``script``, ``style``): left to HTMLParser."""
_WHITESPACE_RUNS = re.compile(r"[ \t]*\n[ \t]*(\n[ \t]*)+")


def _parse_fast(markup: str) -> _Collector | None:
    """The handlers' state after the common chat markup, tokenized by :data:`_FAST_TOKEN`; None when the
    markup holds anything else (then :func:`_parse_html` reads it)."""
    parser = _Collector()
    match_at = _FAST_TOKEN.match
    pos, end = 0, len(markup)
    while pos < end:
        token = match_at(markup, pos)
        if token is None:
            return None
        text, start_tag, attributes, self_closing, end_tag = token.groups()
        if text is not None:
            parser.handle_data(unescape(text))
        elif start_tag is not None:
            tag = start_tag.lower()
            if tag in _RAW_TEXT_TAGS:
                return None
            attrs: list[tuple[str, str | None]] = []
            if attributes:
                for attribute in _FAST_ATTRIBUTE.finditer(attributes):
                    name, double_quoted, single_quoted = attribute.groups()
                    attrs.append((name.lower(), single_quoted if double_quoted is None else double_quoted))
            if self_closing:
                parser.handle_startendtag(tag, attrs)
            else:
                parser.handle_starttag(tag, attrs)
        else:
            parser.handle_endtag(end_tag.lower())
        pos = token.end()
    return parser


def _parse_html(markup: str) -> _MessageML:
    """The handlers' state after HTMLParser read the markup; raises what HTMLParser raises."""
    parser = _MessageML()
    parser.feed(markup)
    parser.close()
    return parser


def _unique(items: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def normalize_markup(markup: str) -> NormalizedText:
    """MessageML (or plain text) as plain text plus mentions, hashtags and links.

    The whole markup, however long: a compliance record is never cut. Size is bounded where records are
    written (a canonical record over the Kafka record limit is dead-lettered as ``too_large``).
    """
    try:
        parser = _parse_fast(markup) or _parse_html(markup)
    except Exception:  # noqa: BLE001 - HTMLParser is tolerant; if it ever gives up, keep the raw text
        return NormalizedText(markup.strip())
    text = _WHITESPACE_RUNS.sub("\n\n", "".join(parser.parts)).strip()
    linked = {url for url, _ in parser.links}
    bare = [(m.group(0), m.group(0)) for m in _BARE_URL.finditer(text) if m.group(0) not in linked]
    hashtags = _unique(parser.tags + [m.group(1) for m in _HASHTAG.finditer(text)])
    mentions = tuple(dict.fromkeys(parser.mentions))
    return NormalizedText(text, mentions, hashtags, tuple(parser.links + bare))
