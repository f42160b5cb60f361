"""Well-formedness of the chat markup a webhook template produces (pure).

The platform's chat markup is messageML-like (see :mod:`app.normalize.mapping.markup`, which reads it
tolerantly). What a template writes is held to a strict subset before it becomes a message, so that a
template never sends markup the platform might read differently from how carryover reads it:

* one ``<messageML>`` root around everything;
* known tags only (:data:`ALLOWED_TAGS`), each closed in order; ``br``, ``hr``, ``mention``, ``hash``,
  ``cash`` and ``emoji`` self-closing (``<br/>``); at most :data:`MAX_DEPTH` levels;
* attributes double-quoted, known for their tag, their values free of ``<``; ``a`` needs an ``http``,
  ``https`` or ``mailto`` ``href``; ``mention`` a decimal ``uid`` or an ``email``; ``hash`` / ``cash`` a
  ``tag``;
* text free of ``<``; every ``&`` starts an entity (``&amp;``, ``&lt;``, ``&gt;``, ``&quot;``, ``&apos;``
  or a numeric one), which is what Jinja's autoescaping writes.

:func:`check_chat_markup` raises :class:`ChatMarkupError`, whose message gives the position and the tag
but never the text around it (it may be a third party's payload, and errors are shown in the hook's
delivery history).
"""

from __future__ import annotations

import re

MAX_DEPTH = 32
ROOT_TAG = "messageML"
VOID_TAGS = frozenset({"br", "hr", "mention", "hash", "cash", "emoji"})
"""Tags that hold nothing and are written self-closing."""
ALLOWED_TAGS: dict[str, frozenset[str]] = {
    ROOT_TAG: frozenset(),
    **{
        tag: frozenset({"class"})
        for tag in ("p", "div", "span", "b", "i", "u", "strong", "em", "code", "pre")
    },
    **{tag: frozenset({"class"}) for tag in ("h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li")},
    **{tag: frozenset({"class"}) for tag in ("table", "thead", "tbody", "tfoot", "tr", "header", "body")},
    "td": frozenset({"class", "colspan", "rowspan"}),
    "th": frozenset({"class", "colspan", "rowspan"}),
    "card": frozenset({"class", "accent", "iconSrc"}),
    "a": frozenset({"href", "class"}),
    "br": frozenset(),
    "hr": frozenset(),
    "mention": frozenset({"uid", "email"}),
    "hash": frozenset({"tag"}),
    "cash": frozenset({"tag"}),
    "emoji": frozenset({"shortcode"}),
}
"""Each allowed tag and the attributes it may have."""

_TOKEN = re.compile(
    r"(?P<text>[^<&]+)"
    r"|(?P<entity>&(?:amp|lt|gt|quot|apos|#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6});)"
    r"|<(?P<start>[a-zA-Z][a-zA-Z0-9]*)(?P<attrs>(?:\s+[a-zA-Z][a-zA-Z0-9_-]*=\"[^\"<]*\")*)\s*(?P<close>/?)>"
    r"|</(?P<end>[a-zA-Z][a-zA-Z0-9]*)\s*>"
)
_ATTRIBUTE = re.compile(r"\s+([a-zA-Z][a-zA-Z0-9_-]*)=\"([^\"<]*)\"")
_ENTITY_IN_VALUE = re.compile(r"&(?!(?:amp|lt|gt|quot|apos|#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6});)")
_LINK = re.compile(r"(?:https?://[^\s]+|mailto:[^\s]+)", re.IGNORECASE)
_DECIMAL = re.compile(r"[1-9][0-9]{0,18}")


class ChatMarkupError(ValueError):
    """Markup that is not well-formed chat markup: where, and what is wrong (no text from the markup)."""


def check_chat_markup(markup: str) -> None:
    """Raise :class:`ChatMarkupError` unless ``markup`` is well-formed chat markup (see the module doc)."""
    open_tags: list[str] = []
    seen_root = False
    pos, end = 0, len(markup)
    while pos < end:
        token = _TOKEN.match(markup, pos)
        if token is None:
            what = "a stray '<'" if markup[pos] == "<" else "a '&' that starts no entity"
            raise ChatMarkupError(f"at character {pos}: {what}")
        start, end_tag = token.group("start"), token.group("end")
        if start is not None:
            _check_start_tag(start, token.group("attrs"), pos, open_tags, seen_root)
            seen_root = True
            if not token.group("close"):
                if start in VOID_TAGS:
                    raise ChatMarkupError(f"at character {pos}: <{start}> must be self-closing (<{start}/>)")
                open_tags.append(start)
                if len(open_tags) > MAX_DEPTH:
                    raise ChatMarkupError(f"at character {pos}: tags nested deeper than {MAX_DEPTH}")
        elif end_tag is not None:
            if not open_tags or open_tags[-1] != end_tag:
                expected = f"</{open_tags[-1]}>" if open_tags else "nothing"
                raise ChatMarkupError(
                    f"at character {pos}: </{end_tag}> closes no open tag (expected {expected})"
                )
            open_tags.pop()
        elif not open_tags and (token.group("entity") or token.group("text").strip()):
            raise ChatMarkupError(f"at character {pos}: text outside <{ROOT_TAG}>")
        pos = token.end()
    if open_tags:
        raise ChatMarkupError(f"at the end: <{open_tags[-1]}> is not closed")
    if not seen_root:
        raise ChatMarkupError(f"no <{ROOT_TAG}> root")


def _check_start_tag(tag: str, attrs: str, pos: int, open_tags: list[str], seen_root: bool) -> None:
    allowed = ALLOWED_TAGS.get(tag)
    if allowed is None:
        raise ChatMarkupError(f"at character {pos}: <{tag}> is not a chat markup tag")
    if (tag == ROOT_TAG) != (not open_tags):
        raise ChatMarkupError(f"at character {pos}: <{ROOT_TAG}> must be the one root around everything")
    if tag == ROOT_TAG and seen_root:
        raise ChatMarkupError(f"at character {pos}: a second <{ROOT_TAG}> root")
    values: dict[str, str] = {}
    for name, value in _ATTRIBUTE.findall(attrs):
        if name not in allowed:
            raise ChatMarkupError(f"at character {pos}: <{tag}> has no attribute {name!r}")
        if name in values:
            raise ChatMarkupError(f"at character {pos}: <{tag}> repeats attribute {name!r}")
        if _ENTITY_IN_VALUE.search(value):
            raise ChatMarkupError(f"at character {pos}: <{tag} {name}> holds a '&' that starts no entity")
        values[name] = value
    if tag == "a" and not _LINK.fullmatch(values.get("href", "").replace("&amp;", "&")):
        raise ChatMarkupError(f"at character {pos}: <a> needs an http, https or mailto href")
    if tag == "mention" and not (_DECIMAL.fullmatch(values.get("uid", "")) or values.get("email")):
        raise ChatMarkupError(f"at character {pos}: <mention/> needs a decimal uid or an email")
    if tag in ("hash", "cash") and not values.get("tag"):
        raise ChatMarkupError(f"at character {pos}: <{tag}/> needs a tag")
