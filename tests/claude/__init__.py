"""Support code for running the real Claude Code CLI offline: a fake model, the pinned CLI."""
