"""One exception tree for the whole product, translated to exit codes at one boundary.

The CLIs catch :class:`HookclientError` once and print its message as one line on
stderr; anything else escaping is a bug.  A delivery attempt that fails is not an
error here but a value (:class:`hookclient.outcome.Outcome`): only ``delivery.py`` ever
sees httpx's own exceptions, and it returns them as outcomes.

    HookclientError
    ├── ConfigError       a key, file or environment variable is wrong
    ├── SpoolError        the spool cannot be written or read
    │   ├── SpoolFull     max_spool_bytes reached, or the disk is full
    │   └── CorruptFile   a spool file that cannot be parsed
    ├── UsageError        bad command-line words (exit 1, never argparse's 2)
    ├── InstallError      a Claude Code settings file cannot be changed safely
    ├── TraceError        `hookclient trace`: nothing, or too much, matches
    ├── AdminError        a queue command cannot do what was asked
    ├── LockHeld          another daemon runs on this spool
    ├── SpoolGone         the spool was removed while the daemon ran
    └── StopFailed        a daemon could not be stopped

    BudgetExceeded        (a BaseException) the hook's alarm, inside a request that
                          outlived its budget; never escapes the hook

The receiver's HTTP refusals (``receiver.app.Problem``) are answers, not errors of
this tree: they become a status code and an audit row.
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


class UsageError(HookclientError):
    """Bad command-line words.  Exit 1, never argparse's 2: Claude Code reads exit 2 from a
    hook as "block the prompt or the tool call"."""


class InstallError(HookclientError):
    """The settings file cannot be changed safely; the message says why and what to do."""


class TraceError(HookclientError):
    """Nothing (or too much) matches; the message says what to try."""


class AdminError(HookclientError):
    """A command that cannot do what was asked; the message says what to do instead."""


class LockHeld(HookclientError):
    """Another daemon runs on this spool."""


class SpoolGone(HookclientError):
    """The spool directory was removed (or replaced) while the daemon ran."""


class StopFailed(HookclientError):
    """The daemon could not be stopped; the message says what to do."""


class BudgetExceeded(BaseException):
    """Raised by the hook's alarm inside a request that outlived the hook's budget.

    A BaseException so that no library's ``except Exception`` swallows it.
    """
