"""A tiny Faust app (``counting``) and its worker launcher (``worker``) for failover and web tests.

The app module is kept apart from this package's ``__init__`` so that importing the launcher does not
build a Faust app in the test process.
"""
