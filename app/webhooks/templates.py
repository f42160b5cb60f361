"""Webhook deliveries rendered to chat markup by sandboxed Jinja2 templates (pure).

A hook names a shipped template (:data:`SHIPPED_TEMPLATES`, files ``app/webhooks/templates/<name>.html``)
or carries its own template text. :class:`TemplateRenderer` renders one with the delivery's context:

* ``payload``: the parsed body (a dict), ``event``: the event type (GitHub's ``X-GitHub-Event``, a
  Standard Webhooks payload's ``type``; ``""`` when unknown), ``headers``: the selected request headers
  the receiver kept (lower-case names), ``hook_id``.

Output is autoescaped: a payload's text can never add markup. The template writes the message's content;
the renderer wraps it in ``<messageML>`` ... ``</messageML>`` and checks the whole as well-formed chat
markup (:func:`app.webhooks.chat_markup.check_chat_markup`) with some visible text. Missing payload fields
render as nothing (``payload.a.b.c`` of a payload without ``a`` is empty), so one template serves payloads
that leave optional fields out.

What a template cannot do, each failure a :class:`TemplateRejected` with a :class:`RenderFailure` reason and
a message that names the limit but never payload text:

* reach Python internals: Jinja2's :class:`~jinja2.sandbox.ImmutableSandboxedEnvironment` (no ``_``
  attributes, no mutation of lists or dicts), and an unsafe attribute such as ``''.__class__`` raises at
  once instead of rendering as nothing; ``str.format`` and ``translate`` are refused (``unsafe``);
* use unbounded memory in one step, which no timer could interrupt: ``range`` gives at most
  :attr:`RenderLimits.max_items` items, and ``*``, ``+``, ``**``, ``%``, ``~``, the padding / joining /
  replacing string methods and the ``center``, ``indent``, ``format``, ``join``, ``replace``, ``wordwrap``,
  ``tojson``, ``batch``, ``slice`` and ``sum`` filters check the size of what they would make before making
  it (strings up to :attr:`RenderLimits.max_string_chars`, sequences up to ``max_items``; ``too_large``);
* run long: rendering runs under a line tracer (``sys.settrace``) restricted to the template's own compiled
  code, which raises ``timeout`` at the first line executed after :attr:`RenderLimits.max_render_seconds`
  (a ``{% for %}`` loop executes a line per iteration, so every loop is stopped); the tracer that was set
  before (a debugger, coverage) is restored afterwards;
* write a long message: output is streamed and stopped past :attr:`RenderLimits.max_output_chars`.

Rendering is synchronous and bounded by ``max_render_seconds`` (0.2 s by default): the fan-in agent can
call it on its event loop, or in a thread.
"""

from __future__ import annotations

import hashlib
import math
import re
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import Any

from jinja2 import ChainableUndefined, FileSystemLoader, Template, TemplateError, TemplateSyntaxError
from jinja2 import filters as jinja_filters
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.nodes import Concat, EvalContext
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import pass_environment, pass_eval_context
from markupsafe import Markup

from app.normalize.mapping.markup import normalize_markup
from app.webhooks.chat_markup import ChatMarkupError, check_chat_markup

TEMPLATE_DIR = Path(__file__).parent / "templates"
SHIPPED_TEMPLATES = frozenset(
    {"github", "github_push", "github_pull_request", "github_issues", "jira_issue", "generic_json"}
)
"""Names a hook may give as ``template_name``; ``github`` picks push / pull_request / issues by event."""


class RenderFailure(StrEnum):
    """Why a template could not make a message."""

    SYNTAX = "syntax"
    UNSAFE = "unsafe"
    TIMEOUT = "timeout"
    TOO_LARGE = "too_large"
    MARKUP = "markup"
    EMPTY = "empty"
    ERROR = "error"


class TemplateRejected(ValueError):
    """A template that cannot be compiled or rendered: the reason and a message without payload text."""

    def __init__(self, reason: RenderFailure, message: str) -> None:
        super().__init__(f"{reason.value}: {message}")
        self.reason = reason


@dataclass(frozen=True)
class RenderLimits:
    """Bounds of one render."""

    max_output_chars: int = 16_000
    max_render_seconds: float = 0.2
    max_string_chars: int = 1_048_576
    """Longest string a template may make along the way (a payload's own strings are bounded by the
    receiver's body limit)."""
    max_items: int = 10_000
    """Most items of a ``range`` and of a sequence a template makes with ``*``, ``+``, ``batch``..."""


@dataclass(frozen=True)
class RenderedMessage:
    """A delivery as a chat message: its markup and the plain text it reads as."""

    markup: str
    text: str


class _Stop(Exception):
    """Raised inside a render to stop it; carries the failure out through Jinja's exception handling."""

    def __init__(self, reason: RenderFailure, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _too_large(what: str, limit: int) -> _Stop:
    return _Stop(RenderFailure.TOO_LARGE, f"{what} would exceed {limit}")


_PRINTF_WIDTH = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_REFUSED_STR_METHODS = frozenset({"format", "format_map", "translate", "maketrans", "expandtabs"})
_PADDING_STR_METHODS = frozenset({"center", "ljust", "rjust", "zfill"})


class _BoundedCodeGenerator(CodeGenerator):
    """Jinja's code generator, with ``~`` (string concatenation) checked for size."""

    def visit_Concat(self, node: Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile:
            join = "(markup_join if context.eval_ctx.volatile else str_join)"
        elif frame.eval_ctx.autoescape:
            join = "markup_join"
        else:
            join = "str_join"
        self.write(f"environment.bounded_concat({join}, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class _WebhookSandbox(ImmutableSandboxedEnvironment):
    """The sandbox webhook templates run in (see the module doc for what it refuses)."""

    intercepted_binops = frozenset({"*", "+", "**", "%"})
    code_generator_class = _BoundedCodeGenerator

    def __init__(self, limits: RenderLimits) -> None:
        super().__init__(
            loader=FileSystemLoader(TEMPLATE_DIR),
            autoescape=True,
            undefined=ChainableUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )
        self.limits = limits
        self.globals["range"] = self._range
        del self.globals["lipsum"]
        self.filters.update(
            {
                "center": _bounded_center,
                "indent": _bounded_indent,
                "format": _bounded_format,
                "join": _bounded_join,
                "replace": _bounded_replace,
                "wordwrap": _bounded_wordwrap,
                "tojson": _bounded_tojson,
                "batch": _bounded_batch,
                "slice": _bounded_slice,
                "sum": _numeric_sum,
                "first_line": _first_line,
            }
        )

    # -- Python internals ------------------------------------------------------------------------------

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        raise SecurityError(f"access to attribute {attribute!r} of a {type(obj).__name__!r} object is unsafe")

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        if isinstance(getattr(value, "__self__", None), str) and getattr(value, "__name__", "") in (
            "format",
            "format_map",
        ):
            raise SecurityError(
                "str.format is not available in webhook templates: use ~ or the format filter"
            )
        return None

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str):
            __self._check_str_method(owner, getattr(__obj, "__name__", ""), args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    def _check_str_method(self, text: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        limit = self.limits.max_string_chars
        if name in _REFUSED_STR_METHODS:
            raise SecurityError(f"str.{name} is not available in webhook templates")
        if name in _PADDING_STR_METHODS and args and isinstance(args[0], int) and args[0] > limit:
            raise _too_large(f"str.{name} width", limit)
        if name == "replace" and len(args) >= 2:
            _check_replace(text, args[0], args[1], limit)
        if name == "join" and args:
            _joined_length(text, args[0], self.limits)

    # -- sizes -----------------------------------------------------------------------------------------

    def _range(self, *args: int) -> range:
        items = range(*args)
        if len(items) > self.limits.max_items:
            raise _too_large("range() items", self.limits.max_items)
        return items

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        limits = self.limits
        if operator == "*":
            for sequence, count in ((left, right), (right, left)):
                if isinstance(sequence, str | list | tuple) and isinstance(count, int):
                    limit = limits.max_string_chars if isinstance(sequence, str) else limits.max_items
                    if len(sequence) * count > limit:
                        raise _too_large("repeated sequence length", limit)
        elif operator == "+":
            if isinstance(left, str) and isinstance(right, str):
                if len(left) + len(right) > limits.max_string_chars:
                    raise _too_large("string length", limits.max_string_chars)
            elif isinstance(left, list | tuple) and isinstance(right, list | tuple):
                if len(left) + len(right) > limits.max_items:
                    raise _too_large("sequence length", limits.max_items)
        elif operator == "**":
            if isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 0:
                if right * math.log2(abs(left)) > 4096:
                    raise _too_large("integer power bits", 4096)
        elif operator == "%" and isinstance(left, str):
            _check_printf(left)
        result = self.binop_table[operator](left, right)
        if isinstance(result, str) and len(result) > limits.max_string_chars:
            raise _too_large("string length", limits.max_string_chars)
        return result

    def bounded_concat(self, join: Callable[[Iterable[Any]], str], parts: tuple[Any, ...]) -> str:
        """``~``: the parts joined, refused when longer than ``max_string_chars``."""
        if sum(len(part) for part in parts if isinstance(part, str)) > self.limits.max_string_chars:
            raise _too_large("string length", self.limits.max_string_chars)
        result = join(parts)
        if len(result) > self.limits.max_string_chars:
            raise _too_large("string length", self.limits.max_string_chars)
        return result


# -- bounded filters ------------------------------------------------------------------------------------


def _limits(environment: Any) -> RenderLimits:
    limits: RenderLimits = environment.limits
    return limits


def _check_printf(fmt: str) -> None:
    for match in _PRINTF_WIDTH.finditer(fmt):
        for number in match.groups():
            if number == "*" or (number is not None and int(number) > 1000):
                raise _Stop(RenderFailure.TOO_LARGE, "a % format width or precision above 1000")


def _check_replace(text: str, old: Any, new: Any, limit: int) -> None:
    if isinstance(old, str) and isinstance(new, str):
        count = len(text) + 1 if not old else text.count(old)
        if len(text) + count * (len(new) - len(old)) > limit:
            raise _too_large("replaced string length", limit)


def _joined_length(separator: str, items: Any, limits: RenderLimits) -> list[Any]:
    listed = list(items)
    if len(listed) > limits.max_items:
        raise _too_large("joined items", limits.max_items)
    total = len(separator) * max(0, len(listed) - 1)
    total += sum(len(item) if isinstance(item, str) else 32 for item in listed)
    if total > limits.max_string_chars:
        raise _too_large("joined string length", limits.max_string_chars)
    return listed


@pass_environment
def _bounded_center(environment: Any, value: str, width: int = 80) -> str:
    if width > _limits(environment).max_string_chars:
        raise _too_large("center width", _limits(environment).max_string_chars)
    return jinja_filters.do_center(value, width)


@pass_environment
def _bounded_indent(
    environment: Any, value: str, width: int | str = 4, first: bool = False, blank: bool = False
) -> str:
    if (len(width) if isinstance(width, str) else width) > 64:
        raise _too_large("indent width", 64)
    return jinja_filters.do_indent(value, width, first, blank)


def _bounded_format(value: str, *args: Any, **kwargs: Any) -> str:
    _check_printf(str(value))
    return jinja_filters.do_format(value, *args, **kwargs)


@pass_eval_context
def _bounded_join(
    eval_ctx: EvalContext, value: Iterable[Any], d: str = "", attribute: str | int | None = None
) -> str:
    environment = eval_ctx.environment
    if attribute is not None:
        value = map(jinja_filters.make_attrgetter(environment, attribute), value)
    listed = _joined_length(str(d), value, _limits(environment))
    return jinja_filters.sync_do_join(eval_ctx, listed, d)


@pass_eval_context
def _bounded_replace(eval_ctx: EvalContext, s: str, old: str, new: str, count: int | None = None) -> str:
    _check_replace(str(s), str(old), str(new), _limits(eval_ctx.environment).max_string_chars)
    return jinja_filters.do_replace(eval_ctx, s, old, new, count)


@pass_environment
def _bounded_wordwrap(
    environment: Any,
    s: str,
    width: int = 79,
    break_long_words: bool = True,
    wrapstring: str | None = None,
    break_on_hyphens: bool = True,
) -> str:
    if wrapstring is not None and len(wrapstring) > 16:
        raise _too_large("wordwrap wrapstring length", 16)
    if width < 1:
        raise _Stop(RenderFailure.ERROR, "wordwrap width must be at least 1")
    return jinja_filters.do_wordwrap(environment, s, width, break_long_words, wrapstring, break_on_hyphens)


@pass_eval_context
def _bounded_tojson(eval_ctx: EvalContext, value: Any, indent: int | None = None) -> Markup:
    if indent is not None and indent > 8:
        raise _too_large("tojson indent", 8)
    return jinja_filters.do_tojson(eval_ctx, value, indent)


@pass_environment
def _bounded_batch(
    environment: Any, value: Iterable[Any], linecount: int, fill_with: Any = None
) -> Iterator[list[Any]]:
    if linecount > _limits(environment).max_items:
        raise _too_large("batch size", _limits(environment).max_items)
    return jinja_filters.do_batch(value, linecount, fill_with)


@pass_environment
def _bounded_slice(
    environment: Any, value: Collection[Any], slices: int, fill_with: Any = None
) -> Iterator[list[Any]]:
    if slices > _limits(environment).max_items:
        raise _too_large("slice count", _limits(environment).max_items)
    return jinja_filters.sync_do_slice(value, slices, fill_with)


@pass_environment
def _numeric_sum(
    environment: Any, iterable: Iterable[Any], attribute: str | int | None = None, start: Any = 0
) -> Any:
    if not isinstance(start, int | float) or isinstance(start, bool):
        raise SecurityError("sum() adds numbers only in webhook templates")
    return jinja_filters.sync_do_sum(environment, iterable, attribute, start)


def _first_line(value: Any) -> str:
    """The first line of a text (a commit message's subject)."""
    text = "" if value is None else str(value)
    return text.split("\n", 1)[0].strip()


# -- the deadline ---------------------------------------------------------------------------------------


@contextmanager
def _deadline(environment: _WebhookSandbox, seconds: float) -> Iterator[None]:
    """Trace the lines of ``environment``'s compiled templates and stop the render past ``seconds``."""
    stop_at = time.monotonic() + seconds

    def trace_line(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line" and time.monotonic() > stop_at:
            raise _Stop(RenderFailure.TIMEOUT, f"rendering took longer than {seconds} s")
        return trace_line

    def trace_call(frame: FrameType, event: str, arg: Any) -> Any:
        return trace_line if frame.f_globals.get("environment") is environment else None

    previous = sys.gettrace()
    sys.settrace(trace_call)
    try:
        yield
    finally:
        sys.settrace(previous)


# -- rendering ------------------------------------------------------------------------------------------


class TemplateRenderer:
    """Compiles (and caches) webhook templates and renders deliveries with them, within ``limits``."""

    def __init__(self, limits: RenderLimits | None = None, cache_size: int = 256) -> None:
        self.limits = limits or RenderLimits()
        self._environment = _WebhookSandbox(self.limits)
        self._cache: OrderedDict[str, Template] = OrderedDict()
        self._cache_size = cache_size

    def template(self, template_name: str = "", template_source: str = "") -> Template:
        """The compiled shipped template ``template_name``, or ``template_source`` compiled (cached by its
        SHA-256); :class:`TemplateRejected` (``syntax``) when it does not compile."""
        if template_name:
            if template_name not in SHIPPED_TEMPLATES:
                raise TemplateRejected(RenderFailure.ERROR, f"no shipped template {template_name[:80]!r}")
            key = "name:" + template_name
        else:
            key = "source:" + hashlib.sha256(template_source.encode()).hexdigest()
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        try:
            if template_name:
                compiled = self._environment.get_template(template_name + ".html")
            else:
                compiled = self._environment.from_string(template_source)
        except TemplateSyntaxError as exc:
            raise TemplateRejected(RenderFailure.SYNTAX, f"line {exc.lineno}: {exc.message}") from None
        except TemplateError as exc:
            raise TemplateRejected(RenderFailure.SYNTAX, str(exc)[:300]) from None
        self._cache[key] = compiled
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return compiled

    def render(
        self,
        payload: Mapping[str, Any],
        *,
        template_name: str = "",
        template_source: str = "",
        event: str = "",
        headers: Mapping[str, str] | None = None,
        hook_id: str = "",
    ) -> RenderedMessage:
        """The delivery as a checked chat message; :class:`TemplateRejected` when the template fails, is
        stopped, or its output is not well-formed chat markup with some text."""
        template = self.template(template_name, template_source)
        context = {"payload": payload, "event": event, "headers": dict(headers or {}), "hook_id": hook_id}
        limit = self.limits.max_output_chars
        parts: list[str] = []
        size = 0
        try:
            with _deadline(self._environment, self.limits.max_render_seconds):
                for part in template.generate(context):
                    size += len(part)
                    if size > limit:
                        raise _too_large("output characters", limit)
                    parts.append(part)
        except _Stop as exc:
            raise TemplateRejected(exc.reason, str(exc)) from None
        except SecurityError as exc:
            raise TemplateRejected(RenderFailure.UNSAFE, str(exc)[:300]) from None
        except RecursionError:
            raise TemplateRejected(RenderFailure.ERROR, "recursion too deep") from None
        except Exception as exc:  # noqa: BLE001 - any failure of a third party's template is its failure
            raise TemplateRejected(RenderFailure.ERROR, f"{type(exc).__name__} while rendering") from None
        markup = f"<messageML>{''.join(parts).strip()}</messageML>"
        try:
            check_chat_markup(markup)
        except ChatMarkupError as exc:
            raise TemplateRejected(RenderFailure.MARKUP, str(exc)) from None
        text = normalize_markup(markup).text
        if not text:
            raise TemplateRejected(RenderFailure.EMPTY, "the template rendered no text")
        return RenderedMessage(markup, text)


_checker: TemplateRenderer | None = None


def check_template_source(template_source: str) -> None:
    """Raise :class:`TemplateRejected` (``syntax``) unless ``template_source`` compiles as a webhook
    template (what a hook definition checks; unsafe code is found when it runs)."""
    global _checker
    if _checker is None:
        _checker = TemplateRenderer(cache_size=1)
    _checker.template(template_source=template_source)
