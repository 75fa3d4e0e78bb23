"""hookclient: durable, traced delivery of Claude Code hook events to a webhook.

The package root stays light on purpose: every ``hookclient send`` imports it, and
whatever it imports is paid on every hook event.
"""

__version__ = "0.1.0"
