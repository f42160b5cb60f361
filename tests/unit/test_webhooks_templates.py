"""Webhook templates: the shipped ones on realistic payloads, the sandbox's limits, chat markup checks."""

from __future__ import annotations

import sys
import time
from typing import Any

import pytest

from app.webhooks.chat_markup import ChatMarkupError, check_chat_markup
from app.webhooks.templates import (
    SHIPPED_TEMPLATES,
    TEMPLATE_DIR,
    RenderFailure,
    RenderLimits,
    TemplateRejected,
    TemplateRenderer,
)

RENDERER = TemplateRenderer()
DOUBLING = "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s OP ns.s %}{% endfor %}x"

REPO = {"full_name": "acme/widgets", "html_url": "https://github.com/acme/widgets", "name": "widgets"}
GITHUB_PUSH: dict[str, Any] = {
    "ref": "refs/heads/main",
    "before": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
    "after": "59b20b8d5c6ff8d09518454d4dd8b7b30f095ab5",
    "created": False,
    "deleted": False,
    "compare": "https://github.com/acme/widgets/compare/6113728f27ae...59b20b8d5c6f",
    "commits": [
        {
            "id": "59b20b8d5c6ff8d09518454d4dd8b7b30f095ab5",
            "message": "Fix <script> escaping & quotes\n\nLonger body that is not shown.",
            "url": "https://github.com/acme/widgets/commit/59b20b8d5c6ff8d09518454d4dd8b7b30f095ab5",
            "author": {"name": "Octo Cat", "email": "octocat@github.com", "username": "octocat"},
        },
        {
            "id": "a10867b14bb761a232cd80139fbd4c0d33264240",
            "message": "Add widget sizes",
            "url": "https://github.com/acme/widgets/commit/a10867b14bb761a232cd80139fbd4c0d33264240",
            "author": {"name": "Mona Lisa", "username": "monalisa"},
        },
    ],
    "head_commit": {"id": "59b20b8d5c6ff8d09518454d4dd8b7b30f095ab5"},
    "repository": REPO,
    "pusher": {"name": "octocat", "email": "octocat@github.com"},
    "sender": {"login": "octocat", "id": 1},
}
GITHUB_PULL_REQUEST: dict[str, Any] = {
    "action": "opened",
    "number": 1347,
    "pull_request": {
        "html_url": "https://github.com/acme/widgets/pull/1347",
        "number": 1347,
        "state": "open",
        "title": "Amazing new feature",
        "user": {"login": "octocat"},
        "body": "Please pull these awesome changes in!",
        "draft": False,
        "merged": False,
        "head": {"ref": "new-topic", "sha": "6dcb09b5b57875f334f61aebed695e2e4193db5e"},
        "base": {"ref": "main", "sha": "6dcb09b5b57875f334f61aebed695e2e4193db5e"},
        "commits": 3,
        "additions": 100,
        "deletions": 3,
    },
    "repository": REPO,
    "sender": {"login": "octocat"},
}
GITHUB_ISSUE: dict[str, Any] = {
    "action": "opened",
    "issue": {
        "html_url": "https://github.com/acme/widgets/issues/1347",
        "number": 1347,
        "title": "Found a bug",
        "user": {"login": "octocat"},
        "labels": [{"name": "bug"}, {"name": "good first issue"}],
        "state": "open",
        "body": "I'm having a problem with this.",
    },
    "repository": REPO,
    "sender": {"login": "octocat"},
}
JIRA_ISSUE_UPDATED: dict[str, Any] = {
    "timestamp": 1700000000000,
    "webhookEvent": "jira:issue_updated",
    "issue_event_type_name": "issue_generic",
    "user": {"accountId": "5b10a2844c20165700ede21g", "displayName": "Jane Doe"},
    "issue": {
        "id": "10002",
        "self": "https://acme.atlassian.net/rest/api/2/issue/10002",
        "key": "OPS-42",
        "fields": {
            "summary": "Checkout fails for EU customers",
            "issuetype": {"name": "Bug"},
            "status": {"name": "In Progress"},
            "priority": {"name": "High"},
            "assignee": {"displayName": "John Smith"},
        },
    },
    "changelog": {
        "id": "10101",
        "items": [{"field": "status", "fromString": "To Do", "toString": "In Progress"}],
    },
}
MONITORING_ALERT: dict[str, Any] = {
    "title": "Disk almost full on db-1",
    "severity": "critical",
    "host": "db-1",
    "value": 97.5,
    "tags": ["prod", "db"],
    "links": {"runbook": "https://runbooks.example/disk"},
}

SHIPPED_CASES = [
    (
        "github",
        "push",
        GITHUB_PUSH,
        [
            "octocat pushed 2 commits to acme/widgets:main",
            "59b20b8 Fix <script> escaping & quotes (Octo Cat)",
            "a10867b Add widget sizes (Mona Lisa)",
        ],
        ['<a href="https://github.com/acme/widgets/tree/main">', "Fix &lt;script&gt; escaping &amp; quotes"],
    ),
    ("github_push", "", {**GITHUB_PUSH, "deleted": True, "commits": []}, ["octocat deleted main"], []),
    (
        "github",
        "pull_request",
        GITHUB_PULL_REQUEST,
        [
            "octocat opened pull request #1347 Amazing new feature in acme/widgets",
            "new-topic → main, 3 commits, +100 −3",
            "Please pull these awesome changes in!",
        ],
        ['<a href="https://github.com/acme/widgets/pull/1347">'],
    ),
    (
        "github_pull_request",
        "",
        {
            **GITHUB_PULL_REQUEST,
            "action": "closed",
            "pull_request": {**GITHUB_PULL_REQUEST["pull_request"], "merged": True},
        },
        ["octocat merged pull request #1347"],
        [],
    ),
    (
        "github",
        "issues",
        GITHUB_ISSUE,
        [
            "octocat opened issue #1347 Found a bug in acme/widgets",
            "I'm having a problem with this.",
            "#bug #good-first-issue",
        ],
        ['<hash tag="bug"/>', '<hash tag="good-first-issue"/>'],
    ),
    (
        "github",
        "ping",
        {"zen": "Design for failure.", "repository": REPO},
        ["GitHub webhook connected for acme/widgets"],
        [],
    ),
    (
        "github",
        "release",
        {"action": "published", "repository": REPO},
        ["release", "action", "published"],
        [],
    ),
    (
        "jira_issue",
        "",
        JIRA_ISSUE_UPDATED,
        [
            "Jane Doe updated OPS-42: Checkout fails for EU customers",
            "status: In Progress",
            "assignee: John Smith",
            "status: To Do → In Progress",
        ],
        ['<a href="https://acme.atlassian.net/browse/OPS-42">OPS-42</a>'],
    ),
    (
        "jira_issue",
        "",
        {"webhookEvent": "jira:issue_created", "issue": {"key": "OPS-1", "fields": {"summary": "New"}}},
        ["Jira created OPS-1: New", "assignee: unassigned"],
        [],
    ),
    (
        "generic_json",
        "",
        MONITORING_ALERT,
        ["Disk almost full on db-1", "severity: critical", "value: 97.5", 'tags: ["prod", "db"]'],
        [],
    ),
    ("generic_json", "alert.fired", {"a": 1}, ["alert.fired", "a: 1"], []),
]


@pytest.mark.parametrize(("name", "event", "payload", "text_has", "markup_has"), SHIPPED_CASES)
def test_shipped_templates_render_realistic_payloads(
    name: str, event: str, payload: dict[str, Any], text_has: list[str], markup_has: list[str]
) -> None:
    message = RENDERER.render(payload, template_name=name, event=event)
    check_chat_markup(message.markup)
    for words in text_has:
        assert words in message.text, (words, message.text)
    for fragment in markup_has:
        assert fragment in message.markup, (fragment, message.markup)


def test_every_shipped_template_has_a_file_and_renders_an_empty_payload() -> None:
    for name in SHIPPED_TEMPLATES:
        assert (TEMPLATE_DIR / f"{name}.html").is_file()
        for event in ("", "push", "pull_request", "issues", "ping"):
            RENDERER.render({}, template_name=name, event=event)


def test_payload_text_is_escaped_never_markup() -> None:
    hostile = {"title": '<mention uid="1"/></messageML><messageML>x', "message": "a & b"}
    message = RENDERER.render(hostile, template_name="generic_json")
    assert "<mention" not in message.markup
    assert message.text.startswith('<mention uid="1"/></messageML><messageML>x')


def test_links_only_for_http_urls() -> None:
    payload = {**GITHUB_ISSUE, "issue": {**GITHUB_ISSUE["issue"], "html_url": "javascript:alert(1)"}}
    message = RENDERER.render(payload, template_name="github_issues")
    assert "<a " not in message.markup and "#1347 Found a bug" in message.text


@pytest.mark.parametrize(
    ("source", "reason", "words"),
    [
        ("{{ ''.__class__.__mro__ }}", RenderFailure.UNSAFE, "'__class__' of a 'str' object is unsafe"),
        ("{{ payload.__class__ }}", RenderFailure.UNSAFE, "unsafe"),
        ("{{ cycler.__init__.__globals__ }}", RenderFailure.UNSAFE, "unsafe"),
        ("{{ range.__self__ }}", RenderFailure.UNSAFE, "unsafe"),
        ("{{ '{0.__class__}'.format(1) }}", RenderFailure.UNSAFE, "str.format"),
        ("{{ 'x'.translate({}) }}", RenderFailure.UNSAFE, "str.translate"),
        ("{{ payload.tags.append(1) }}", RenderFailure.UNSAFE, "unsafe"),
        ("{{ payload.tags.pop() }}", RenderFailure.UNSAFE, "unsafe"),
        ("{% for i in range(10**9) %}x{% endfor %}", RenderFailure.TOO_LARGE, "range() items"),
        (
            "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}x",
            RenderFailure.TIMEOUT,
            "longer than",
        ),
        (
            "{% for t in payload.tags recursive %}{{ loop(payload.tags) }}{% endfor %}x",
            RenderFailure.ERROR,
            "recursion",
        ),
        ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", RenderFailure.ERROR, "recursion"),
        ("{{ 'x' * 10**9 }}", RenderFailure.TOO_LARGE, "repeated sequence"),
        ("{{ [1] * 10**9 }}", RenderFailure.TOO_LARGE, "repeated sequence"),
        ("{{ 10 ** 100000 }}", RenderFailure.TOO_LARGE, "integer power"),
        ("{{ '%1000000000d' % 1 }}", RenderFailure.TOO_LARGE, "% format width"),
        ("{{ '%1000000000d' | format(1) }}", RenderFailure.TOO_LARGE, "% format width"),
        ("{{ 'x'.center(10**9) }}", RenderFailure.TOO_LARGE, "str.center"),
        ("{{ 'x' | center(10**9) }}", RenderFailure.TOO_LARGE, "center width"),
        ("{{ ('x' * 1000000).replace('', 'yy') }}", RenderFailure.TOO_LARGE, "replaced string"),
        ("{{ ('x' * 1000000) | replace('x', 'yy') }}", RenderFailure.TOO_LARGE, "replaced string"),
        ("{{ (['a' * 1000000] * 100) | join }}", RenderFailure.TOO_LARGE, "joined string"),
        ("{{ ('-' * 1000000).join(['a'] * 100) }}", RenderFailure.TOO_LARGE, "joined string"),
        ("{{ 'x' | indent(10**9) }}", RenderFailure.TOO_LARGE, "indent width"),
        ("{{ payload | tojson(10**9) }}", RenderFailure.TOO_LARGE, "tojson indent"),
        ("{{ [1] | batch(10**9, 'x') | list }}", RenderFailure.TOO_LARGE, "batch size"),
        ("{{ [] | slice(10**9) | list }}", RenderFailure.TOO_LARGE, "slice count"),
        ("{{ ([[1]] * 10000) | sum(start=[]) }}", RenderFailure.UNSAFE, "numbers only"),
        (
            DOUBLING.replace("OP", "~"),
            RenderFailure.TOO_LARGE,
            "string length",
        ),
        (
            DOUBLING.replace("OP", "+"),
            RenderFailure.TOO_LARGE,
            "string length",
        ),
        ("{% for i in range(10000) %}0123456789{% endfor %}", RenderFailure.TOO_LARGE, "output characters"),
        ("{{ lipsum(10**6) }}", RenderFailure.ERROR, "UndefinedError"),
        ("<script>alert(1)</script>", RenderFailure.MARKUP, "<script> is not a chat markup tag"),
        ("<b>unclosed", RenderFailure.MARKUP, "closes no open tag (expected </b>)"),
        ('<a href="javascript:x">x</a>', RenderFailure.MARKUP, "http, https or mailto"),
        ("{# nothing #}   ", RenderFailure.EMPTY, "no text"),
        ("<p>{{ payload.missing.field }}</p>", RenderFailure.EMPTY, "no text"),
        ("{{ payload.nope() }}", RenderFailure.ERROR, "UndefinedError"),
        ("{% include 'missing.html' %}", RenderFailure.ERROR, "TemplateNotFound"),
        ("{% include '../hooks.py' %}", RenderFailure.ERROR, "TemplateNotFound"),
        ("{% if %}", RenderFailure.SYNTAX, "line 1"),
    ],
)
def test_sandbox_refuses(source: str, reason: RenderFailure, words: str) -> None:
    started = time.monotonic()
    with pytest.raises(TemplateRejected) as caught:
        RENDERER.render({"title": "t", "tags": ["a"]}, template_source=source)
    if words == "recursion" and caught.value.reason is RenderFailure.TIMEOUT:
        # on a busy machine the traced recursion can reach the render deadline before Python's recursion
        # limit: stopped either way, which is what matters
        assert "longer than" in str(caught.value)
    else:
        assert caught.value.reason is reason, str(caught.value)
        assert words in str(caught.value)
    assert time.monotonic() - started < 2.0


def test_failures_never_show_payload_text() -> None:
    secret_text = "customer-card-4111111111111111"
    for source in (
        "{{ payload.v | int(base=2) + 'x' }}",
        "{{ payload.v.__class__ }}",
        "<x>{{ payload.v }}</x>",
    ):
        with pytest.raises(TemplateRejected) as caught:
            RENDERER.render({"v": secret_text}, template_source=source)
        assert secret_text not in str(caught.value)


def test_timeout_restores_the_previous_tracer() -> None:
    previous = sys.gettrace()
    renderer = TemplateRenderer(RenderLimits(max_render_seconds=0.05))
    with pytest.raises(TemplateRejected):
        renderer.render(
            {},
            template_source="{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
        )
    assert sys.gettrace() is previous


def test_templates_may_include_shipped_ones_and_use_the_first_line_filter() -> None:
    source = '{% include "github_push.html" %}<p>{{ payload.head_commit.message | first_line }}</p>'
    payload = {**GITHUB_PUSH, "head_commit": {"message": "Subject line\n\nbody"}}
    message = RENDERER.render(payload, template_source=source)
    assert message.text.endswith("Subject line")


def test_compiled_templates_are_cached_and_bounded() -> None:
    renderer = TemplateRenderer(cache_size=2)
    first = renderer.template(template_source="a{{ 1 }}")
    assert renderer.template(template_source="a{{ 1 }}") is first
    renderer.template(template_source="b")
    renderer.template(template_source="c")
    assert renderer.template(template_source="a{{ 1 }}") is not first


def test_rendering_is_fast() -> None:
    started = time.perf_counter()
    for _ in range(200):
        RENDERER.render(GITHUB_PUSH, template_name="github", event="push")
    assert (time.perf_counter() - started) / 200 < 0.01


@pytest.mark.parametrize(
    "markup",
    [
        "<messageML>plain</messageML>",
        '<messageML><p>Hi <mention uid="123"/> see <a href="https://x.example/?a=1&amp;b=2">this</a></p></messageML>',
        '<messageML><hash tag="deal"/> <cash tag="AAPL"/><br/><hr/> &lt;&gt;&amp;&quot;</messageML>',
        "<messageML>&apos;&#39;&#x27;</messageML>",
        '<messageML><table><tr><td colspan="2">x</td></tr></table><ul><li>a</li></ul></messageML>',
        '<messageML><mention email="a@b.example"/><a href="mailto:a@b.example">mail</a></messageML>',
        "  <messageML>x</messageML>\n",
    ],
)
def test_well_formed_chat_markup(markup: str) -> None:
    check_chat_markup(markup)


@pytest.mark.parametrize(
    ("markup", "words"),
    [
        ("plain", "text outside"),
        ("<messageML>", "<messageML> is not closed"),
        ("", "no <messageML> root"),
        ("<messageML>a</messageML>b", "text outside"),
        ("<messageML>a</messageML><messageML>b</messageML>", "second <messageML>"),
        ("<p><messageML>a</messageML></p>", "one root"),
        ("<messageML><messageML>a</messageML></messageML>", "one root"),
        ("<messageML><b>a</i></messageML>", "</i> closes no open tag (expected </b>)"),
        ("<messageML><b>a</messageML>", "</messageML> closes no open tag"),
        ("<messageML><br></messageML>", "must be self-closing"),
        ('<messageML><img src="x"/></messageML>', "<img> is not a chat markup tag"),
        ('<messageML><p onclick="x">a</p></messageML>', "no attribute 'onclick'"),
        ("<messageML><p class='x'>a</p></messageML>", "stray '<'"),
        ('<messageML><p class="a" class="b">a</p></messageML>', "repeats attribute"),
        ("<messageML>a < b</messageML>", "stray '<'"),
        ("<messageML>a & b</messageML>", "'&' that starts no entity"),
        ("<messageML>&nbsp;</messageML>", "'&' that starts no entity"),
        ('<messageML><a href="https://x?a=1&b=2">x</a></messageML>', "'&' that starts no entity"),
        ("<messageML><a>x</a></messageML>", "needs an http"),
        ('<messageML><mention uid="abc"/></messageML>', "decimal uid"),
        ("<messageML><hash/></messageML>", "needs a tag"),
        ("<messageML>" + "<b>" * 40 + "x" + "</b>" * 40 + "</messageML>", "deeper than 32"),
        ("<messageML><!-- c --></messageML>", "stray '<'"),
    ],
)
def test_malformed_chat_markup(markup: str, words: str) -> None:
    with pytest.raises(ChatMarkupError) as caught:
        check_chat_markup(markup)
    assert words in str(caught.value)
