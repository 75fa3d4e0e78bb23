"""queued: the daemon that replays hookclient's spool, and its admin CLI."""
