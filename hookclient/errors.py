"""One exception tree for the whole product, translated to exit codes at one boundary.

The CLI catches :class:`HookclientError` once and prints its message as one line on
stderr; anything else escaping is a bug.  A delivery attempt that fails is not an
error here but a value (:class:`hookclient.outcome.Outcome`): only ``delivery.py`` ever
sees httpx's own exceptions, and it returns them as outcomes.

    HookclientError
    ├── ConfigError       a key, file or environment variable is wrong
    └── SpoolError        the spool cannot be written or read
        ├── SpoolFull     max_spool_bytes reached, or the disk is full
        └── CorruptFile   a spool file that cannot be parsed
"""

from __future__ import annotations


class HookclientError(Exception):
    """Base of every error hookclient raises on purpose; its message is for people."""


class ConfigError(HookclientError):
    """A configuration value is invalid; the message names the key and where it came from."""


class SpoolError(HookclientError):
    """The spool could not be written or read."""


class SpoolFull(SpoolError):
    """Writing would take the spool past max_spool_bytes, or the disk has no room."""


class CorruptFile(SpoolError):
    """A spool file could not be parsed; it should be quarantined, never retried."""
