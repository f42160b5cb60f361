"""app.archive.manifest: deterministic object keys (layout, escaping, no collisions), manifests (counts,
SHA-256 of each file, offsets, JSON round trip) and the hash chain with every kind of break; plus every
renderer through ``app.archive.render`` (examples + hypothesis)."""

from __future__ import annotations

import email
import email.policy
import hashlib
import json
import xml.etree.ElementTree as ET
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.archive import RENDERERS, render
from app.archive.manifest import (
    ChainBreak,
    Manifest,
    OffsetRange,
    RenderedFile,
    build_manifest,
    key_segment,
    manifest_key,
    object_key,
    verify_chain,
)
from app.archive.policy import ArchiveFormat, Window
from app.archive.window import ARCHIVED_KINDS, conversation_window
from tests.unit.test_archive_builders import (
    DAY,
    HOUR,
    T0,
    Keys,
    desk_window,
    directory,
    directory_with_a_lone_surrogate,
    every_kind_events,
    joined,
    sent,
    state_of,
)
from tests.unit.test_archive_render_actiance import schema  # noqa: E402

XML, EML, JSONL = ArchiveFormat.ACTIANCE_XML, ArchiveFormat.EML, ArchiveFormat.JSONL


@pytest.mark.parametrize(
    ("tenant", "unit", "fmt", "conversation", "key"),
    [
        (
            "acme-bank",
            "trading",
            EML,
            "q83vEjRWeJCrze8SNFZ4kA",
            "tenant=acme-bank/bu=trading/eml/20240301T000000Z_20240302T000000Z/q83vEjRWeJCrze8SNFZ4kA.eml",
        ),
        (
            "acme-bank",
            "FX/Rates",
            XML,
            "c1",
            "tenant=acme-bank/bu=FX%2FRates/actiance_xml/20240301T000000Z_20240302T000000Z/c1.xml",
        ),
        (
            "Zürich Bank",
            "sales",
            JSONL,
            "..",
            "tenant=Z%C3%BCrich%20Bank/bu=sales/jsonl/20240301T000000Z_20240302T000000Z/%2E%2E.jsonl",
        ),
        ("a", "b", JSONL, "x%2Fy", "tenant=a/bu=b/jsonl/20240301T000000Z_20240302T000000Z/x%252Fy.jsonl"),
    ],
)
def test_object_keys(tenant: str, unit: str, fmt: ArchiveFormat, conversation: str, key: str) -> None:
    assert object_key(tenant, unit, fmt, DAY, conversation) == key


def test_manifest_key() -> None:
    assert manifest_key("acme-bank", "trading", DAY) == (
        "tenant=acme-bank/bu=trading/manifests/20240301T000000Z_20240302T000000Z.json"
    )


def test_an_empty_segment_is_refused() -> None:
    with pytest.raises(ValueError):
        object_key("acme", "", EML, DAY, "c1")


_ID = st.text(min_size=1, max_size=12)


@settings(max_examples=200)
@given(a=st.tuples(_ID, _ID, _ID), b=st.tuples(_ID, _ID, _ID))
def test_different_inputs_never_share_a_key(a: tuple[str, str, str], b: tuple[str, str, str]) -> None:
    key_a, key_b = object_key(a[0], a[1], EML, DAY, a[2]), object_key(b[0], b[1], EML, DAY, b[2])
    assert (key_a == key_b) == (a == b)
    assert key_a.count("/") == 4
    assert all(segment not in ("", ".", "..") for segment in key_a.split("/"))
    assert key_segment(a[2]).isascii()


# -- manifests -----------------------------------------------------------------------------------------


def _window_files() -> tuple[list, list[RenderedFile]]:  # type: ignore[type-arg]
    windows = [desk_window()]
    files = [render(fmt, windows[0], Keys()) for fmt in (XML, EML, JSONL)]
    return windows, files


OFFSETS = [
    OffsetRange("carryover.state.conversation-events.v1", 3, 120, 131),
    OffsetRange("carryover.state.conversation-events.v1", 1, 7, 7),
]


def _manifest(window: Window = DAY, previous: Manifest | None = None) -> Manifest:
    windows, files = _window_files()
    if window != DAY:
        return build_manifest("acme-bank", "trading", window, [], [], [], previous)
    return build_manifest("acme-bank", "trading", DAY, windows, files, OFFSETS, previous)


def test_manifest_lists_files_counts_and_offsets() -> None:
    windows, files = _window_files()
    manifest = _manifest()
    assert [f.format for f in manifest.files] == ["actiance_xml", "eml", "jsonl"]
    for listed, rendered in zip(manifest.files, files, strict=True):
        assert listed.sha256 == hashlib.sha256(rendered.data).hexdigest()
        assert listed.size == len(rendered.data)
        assert listed.key == object_key(
            "acme-bank", "trading", rendered.format, DAY, rendered.conversation_id
        )
    assert manifest.counts == {windows[0].conversation_id: windows[0].event_counts()}
    assert manifest.totals()["message_sent"] == 4
    assert [o.partition for o in manifest.offsets] == [1, 3]
    assert manifest.previous_sha256 == ""
    assert manifest.key.endswith("/manifests/20240301T000000Z_20240302T000000Z.json")


def test_manifest_json_round_trip_and_hash() -> None:
    manifest = _manifest()
    data = manifest.to_json()
    again = Manifest.from_json(data)
    assert again == manifest and again.to_json() == data
    assert manifest.sha256 == hashlib.sha256(data).hexdigest()
    assert json.loads(data)["window"]["label"] == DAY.label


@pytest.mark.parametrize("data", [b"{}", b"[]", b"not json", b'{"version": 2}'])
def test_not_a_manifest(data: bytes) -> None:
    with pytest.raises(ValueError):
        Manifest.from_json(data)


def test_same_window_same_manifest_bytes() -> None:
    assert _manifest().to_json() == _manifest().to_json()


def test_build_manifest_refuses_mismatches() -> None:
    windows, files = _window_files()
    with pytest.raises(ValueError, match="given for"):
        build_manifest("acme-bank", "sales", DAY, windows, files, [], None)
    with pytest.raises(ValueError, match="not in the window"):
        build_manifest("acme-bank", "trading", DAY, [], files, [], None)
    with pytest.raises(ValueError, match="two eml files"):
        build_manifest("acme-bank", "trading", DAY, windows, files + files[1:2], [], None)
    with pytest.raises(ValueError, match="given twice"):
        build_manifest("acme-bank", "trading", DAY, windows * 2, [], [], None)
    with pytest.raises(ValueError):
        OffsetRange("t", 0, 5, 4)


# -- the chain -----------------------------------------------------------------------------------------


def _chain(n: int = 4) -> list[Manifest]:
    chain = [_manifest()]
    for i in range(1, n):
        window = Window(DAY.start_ms + i * 24 * HOUR, DAY.end_ms + i * 24 * HOUR)
        chain.append(_manifest(window, chain[-1]))
    return chain


def test_a_whole_chain_has_no_break() -> None:
    chain = _chain()
    assert verify_chain(chain, first_previous_sha256="") == []
    assert verify_chain(chain[2:]) == []  # a range from mid-chain
    assert verify_chain(chain[2:], first_previous_sha256=chain[1].sha256) == []
    assert verify_chain([]) == []


def _kinds(breaks: list[ChainBreak]) -> list[tuple[int, str]]:
    return [(b.position, b.kind) for b in breaks]


def test_an_altered_manifest_breaks_the_link_after_it() -> None:
    chain = _chain()
    files = list(chain[1].files)
    chain[1] = replace(chain[1], offsets=(OffsetRange("x", 0, 0, 1),))
    assert _kinds(verify_chain(chain)) == [(2, "previous_hash")]
    altered = replace(chain[0], files=tuple(files))
    assert _kinds(verify_chain([altered, *chain[1:]])) == [(1, "previous_hash"), (2, "previous_hash")]


def test_a_missing_manifest_is_a_gap() -> None:
    chain = _chain()
    breaks = verify_chain([chain[0], chain[2], chain[3]])
    assert _kinds(breaks) == [(1, "previous_hash"), (1, "gap")]
    assert "no manifest between" in breaks[1].detail


def test_out_of_order_overlap_scope_and_first_link() -> None:
    chain = _chain()
    assert _kinds(verify_chain([chain[1], chain[0]])) == [(1, "previous_hash"), (1, "overlap")]
    other = replace(chain[1], business_unit="sales")
    assert (1, "scope") in _kinds(verify_chain([chain[0], other]))
    assert _kinds(verify_chain(chain[1:], first_previous_sha256="")) == [(0, "previous_hash")]


def test_a_file_listed_under_a_wrong_key_is_a_contents_break() -> None:
    manifest = _manifest()
    moved = replace(manifest.files[0], key=manifest.files[0].key.replace("trading", "sales"))
    stray = replace(manifest.files[1], conversation_id="someone-else")
    tampered = replace(manifest, files=(moved, stray, manifest.files[2]))
    kinds = _kinds(verify_chain([tampered]))
    assert kinds == [(0, "contents"), (0, "contents"), (0, "contents")]


# -- every renderer ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", list(ArchiveFormat))
def test_every_format_has_a_deterministic_renderer(fmt: ArchiveFormat) -> None:
    assert set(RENDERERS) == set(ArchiveFormat)
    first, second = render(fmt, desk_window(), Keys()), render(fmt, desk_window(), Keys())
    assert first == second and first.format is fmt and first.data
    assert b"inside info" not in render(fmt, desk_window(), Keys(), redact_suppressed=True).data


def test_every_event_kind_in_every_format() -> None:
    events = every_kind_events()
    window = conversation_window(
        state_of(events), directory({"u1": [(0, "t")], "u9": [(0, "c")]}), "t", DAY, events
    )
    assert window is not None and len(window.events) == 13
    assert {str(e.fact.kind) for e in window.events} == {str(k) for k in ARCHIVED_KINDS}
    xml = render(ArchiveFormat.ACTIANCE_XML, window, Keys()).data
    schema().validate(xml.decode())
    types = [u.get("Type") for u in ET.fromstring(xml).iterfind("Conversation/Update")]
    assert types == [
        "ConversationCreated", "ConversationRenamed", "ReactionAdded", "ReactionRemoved", "RoleChanged",
        "ConversationDeactivated", "ConversationReactivated", "Edited", "Suppressed",
    ]  # fmt: skip
    assert ET.fromstring(xml).findtext("Conversation/Message[MessageID='m2']/ParentMessageID") == "m1"
    eml = render(ArchiveFormat.EML, window, Keys()).data
    body = email.message_from_bytes(eml, policy=email.policy.strict).get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "conversation renamed by User u1 (u1) to 'Renamed'" in text
    assert "User u1 (u1) removed reaction 🎉 from message m1" in text
    assert any(line.endswith("] message m2 suppressed by User u9 (u9)") for line in text.splitlines())
    lines = render(ArchiveFormat.JSONL, window, Keys()).data.decode().splitlines()
    assert [json.loads(line)["event_type"] for line in lines[1:-1]] == [
        str(e.fact.kind) for e in window.events
    ]


@pytest.mark.parametrize("fmt", list(ArchiveFormat))
def test_every_renderer_takes_a_name_that_utf8_cannot_carry(fmt: ArchiveFormat) -> None:
    events = [joined("j", T0 - HOUR, "u1"), sent("s", T0 + 1, "u1", "hi")]
    window = conversation_window(state_of(events), directory_with_a_lone_surrogate(), "t", DAY, events)
    assert window is not None
    assert render(fmt, window, Keys()).data
