"""Webhook fan-in, pure core: hook definitions, delivery verification, rate limits and templates.

:mod:`app.webhooks.hooks` (definitions), :mod:`app.webhooks.verify` (what the receiver answers, replays),
:mod:`app.webhooks.ratelimit` (per-hook token buckets), :mod:`app.webhooks.templates` (sandboxed rendering
to chat markup) and :mod:`app.webhooks.chat_markup` (its well-formedness). No Faust, Kafka, HTTP server or
cloud imports.
"""
