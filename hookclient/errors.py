"""One exception tree for the whole product, translated to exit codes at one boundary.

The CLI catches :class:`HookclientError` once and prints its message as one line on
stderr; anything else escaping is a bug.  Only ``delivery.py`` ever sees httpx's own
exceptions: it turns them into :class:`Retryable` or :class:`Permanent` there.

    HookclientError
    ├── ConfigError       a key, file or environment variable is wrong
    ├── SpoolError        the spool cannot be written or read
    │   ├── SpoolFull     max_spool_bytes reached, or the disk is full
    │   └── CorruptFile   a spool file that cannot be parsed
    └── DeliveryError     one delivery attempt did not end in 2xx
        ├── Retryable     408, 425, 429, 5xx but 501, network trouble
        └── Permanent     3xx, 501, any other 4xx
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing itself costs the hook 3.7 ms a run; mypy reads this as True
if TYPE_CHECKING:
    from hookclient.delivery import Outcome


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


class DeliveryError(HookclientError):
    """One attempt did not deliver; carries the classified outcome."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.detail)
        self.outcome = outcome


class Retryable(DeliveryError):
    """Worth another attempt later: the endpoint may recover."""


class Permanent(DeliveryError):
    """Retrying cannot help: the event goes to failed/ at once."""
