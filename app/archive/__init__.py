"""The pure core of the streaming compliance archive (issue 12): policies, windows, renderers, manifests.

* :mod:`app.archive.policy`: :class:`ArchivePolicy` per (tenant, business unit) — schedule (cron with a time
  zone, or a fixed window length), formats, destination, retention, grace — its JSON with validation, and
  the windows a schedule cuts event time into (:func:`window_of`, :func:`windows_between`).
* :mod:`app.archive.window`: :func:`conversation_window`, what one (tenant, business unit, window,
  conversation) archive holds, from the conversation's state, the directory and its canonical events.
* :mod:`app.archive.render_actiance`, :mod:`app.archive.render_eml`, :mod:`app.archive.render_jsonl`: one
  renderer per format (deterministic bytes; message text decrypted only there, through
  :mod:`app.archive.records`). :data:`RENDERERS` maps each :class:`ArchiveFormat` to its renderer.
* :mod:`app.archive.manifest`: deterministic object keys, the manifest per (tenant, business unit, window)
  chained by hash, and :func:`verify_chain`.

No Faust, Kafka, HTTP or cloud imports: the standard library, protobuf, the generated canonical classes,
:mod:`app.state`, :mod:`app.crypto`, ``cronsim`` and ``tzdata``.
"""

from collections.abc import Callable

from app.archive.manifest import (
    ChainBreak,
    Manifest,
    ManifestFile,
    OffsetRange,
    RenderedFile,
    build_manifest,
    manifest_key,
    object_key,
    verify_chain,
)
from app.archive.policy import (
    ArchiveFormat,
    ArchivePolicy,
    CronSchedule,
    FixedSchedule,
    PolicyError,
    Window,
    window_of,
    windows_between,
)
from app.archive.records import DecryptionKeys
from app.archive.render_actiance import render_actiance
from app.archive.render_eml import render_eml
from app.archive.render_jsonl import render_jsonl
from app.archive.window import (
    ArchiveEvent,
    ConversationWindow,
    archive_event,
    business_units_during,
    conversation_window,
)

Renderer = Callable[..., bytes]
"""``renderer(window, keys, *, redact_suppressed=False) -> bytes``."""

RENDERERS: dict[ArchiveFormat, Renderer] = {
    ArchiveFormat.ACTIANCE_XML: render_actiance,
    ArchiveFormat.EML: render_eml,
    ArchiveFormat.JSONL: render_jsonl,
}
"""The renderer of each format."""


def render(
    fmt: ArchiveFormat, window: ConversationWindow, keys: DecryptionKeys, *, redact_suppressed: bool = False
) -> RenderedFile:
    """The file of ``window`` in format ``fmt``."""
    data = RENDERERS[ArchiveFormat(fmt)](window, keys, redact_suppressed=redact_suppressed)
    return RenderedFile(ArchiveFormat(fmt), window.conversation_id, data)


__all__ = [
    "RENDERERS",
    "ArchiveEvent",
    "ArchiveFormat",
    "ArchivePolicy",
    "ChainBreak",
    "ConversationWindow",
    "CronSchedule",
    "DecryptionKeys",
    "FixedSchedule",
    "Manifest",
    "ManifestFile",
    "OffsetRange",
    "PolicyError",
    "RenderedFile",
    "Window",
    "archive_event",
    "build_manifest",
    "business_units_during",
    "conversation_window",
    "manifest_key",
    "object_key",
    "render",
    "render_actiance",
    "render_eml",
    "render_jsonl",
    "verify_chain",
    "window_of",
    "windows_between",
]
