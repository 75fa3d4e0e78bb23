"""Entry point of the ``hookclient`` script, and of ``python -m hookclient``.

``send`` runs on every Claude Code hook event, so it skips argparse (8 ms here, a
third of the hook's whole budget) and goes straight to the hook with its three flags.
Every other command, and ``send --help``, goes through the full CLI in ``cli.py``.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["send"] and "-h" not in argv and "--help" not in argv:
        from hookclient.hook import main as send_main

        return send_main(argv[1:])
    from hookclient.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
