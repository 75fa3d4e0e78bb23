"""Chaos and crash test support: a misbehaving server and the invariant checker."""
