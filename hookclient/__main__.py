"""Entry point of the ``hookclient`` script, and of ``python -m hookclient``.

``send`` runs on every Claude Code hook event, so it skips argparse (a large part of the
hook's whole cost: BENCHMARKS.md "Hook fast path") and goes straight to the hook with
its three flags. Every other command, and ``send --help``, goes through the full CLI in
``cli.py``. The script's entry is :func:`run`, which also ends ``send`` without the
interpreter's teardown; :func:`main` returns, for callers in the same process (tests,
probes)."""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["send"] and "-h" not in argv and "--help" not in argv:
        from hookclient.hook import main as send_main

        return send_main(argv[1:])
    from hookclient.cli import main as cli_main

    return cli_main(argv)


def run() -> None:
    """The ``hookclient`` script: :func:`main`, and after ``send`` an exit that skips
    the interpreter's teardown.  Finalizing modules and objects is a measurable part
    of a hook's time (BENCHMARKS.md "Hook fast path"), for a process whose event is already
    fsync'd and renamed into place, whose log lines went out with ``os.write`` and
    whose files are closed: nothing is left to flush but stdout and stderr."""
    argv = sys.argv[1:]
    code = main(argv)
    if argv[:1] == ["send"]:
        for stream in (sys.stdout, sys.stderr):
            try:  # noqa: SIM105 - the hook's path imports no contextlib
                stream.flush()
            except (OSError, ValueError):  # closed or gone: nothing more to say there
                pass
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
