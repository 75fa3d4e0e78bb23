"""The inspection commands of ``hookclient`` (everything but ``send``)."""

from __future__ import annotations

import argparse
import json
import os

from hookclient.config import default_paths, describe, load_config


def config(args: argparse.Namespace) -> int:
    """``config show`` and ``config path``."""
    paths = default_paths(os.environ, args.config)
    if args.config_command == "path":
        for path in paths:
            print(f"{path}\t{'exists' if path.exists() else 'absent'}")
        return 0
    if args.config_command != "show":
        print("hookclient config: choose 'show' or 'path' (see hookclient config --help)")
        return 1
    cfg = load_config(paths, os.environ)
    rows = describe(cfg)
    if args.json:
        print(
            json.dumps(
                [dict(zip(("key", "value", "source", "env"), r, strict=True)) for r in rows],
                indent=2,
            )
        )
        return 0
    width = max(len(r[0]) for r in rows)
    vwidth = min(max(len(r[1]) for r in rows), 60)
    for key, value, source, env in rows:
        print(f"{key:<{width}}  {value:<{vwidth}}  {source}  ({env})")
    return 0
