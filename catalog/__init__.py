"""The event catalog — the contract: ``topics.yaml``, ``events.yaml``, ``buf.yaml`` and ``proto/<context>/v1``.

A package only so that it ships inside the installed product (read with :mod:`importlib.resources`, see
:mod:`app.catalog.paths`); it holds no code.
"""
