"""``hookclient-receiver``: run the reference receiver on a port, with a token, until stopped.

Why it binds its own socket: with ``--port 0`` the kernel picks a free port, and tests, the
demo and benchmarks need to know which one before they send anything. The socket is bound
and listening before the port file is written, so a client that reads the file can connect
at once (the kernel queues it until uvicorn accepts).

Why Starlette and uvicorn are imported late: they are the ``receiver`` extra, so this
script may be installed without them; :func:`main` then says which module is missing and
how to install it, in one line, instead of a ModuleNotFoundError traceback.

Why it refuses to start without a token: a receiver that silently accepts anyone is the
wrong default for a tool that collects sessions; ``--no-auth`` says so explicitly.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from hookclient.term import quiet_on_closed_pipe

if TYPE_CHECKING:
    import uvicorn

    from receiver.alerts import Rules
    from receiver.store import Store

__all__ = ["build_parser", "main"]

PROG = "hookclient-receiver"
#: What ``pip install <checkout>`` leaves out unless asked: Starlette and uvicorn.
EXTRA_HINT = (
    "the receiver needs the receiver extra: pip install 'hookclient[receiver]'"
    " (from a checkout: pip install '<checkout>[receiver]')"
)
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")

DESCRIPTION = """\
The hookclient store: receives hookclient envelopes and keeps them in SQLite or PostgreSQL.

POST /hooks takes hookclient envelopes: Bearer token checked, each requestId applied once
per sender (a repeat answers {"status": "duplicate"}), every request audited. GET
/healthz, /events, /audit and /stats show what arrived (token required for all but
/healthz). The database is --database URL: sqlite:///PATH (the default, receiver.db; WAL
mode, safe to read while the receiver runs) or postgresql://user:pass@host:port/db, which
several receiver processes may share. Its schema is migrated forward at start.

Tokens: the --token-env token is the admin's; `token add NAME` makes one per user, and
each user sees only the rows their token sent."""

EPILOG = """\
examples:
  export HOOKCLIENT_TOKEN="$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')"
  hookclient-receiver --port 8787 --database sqlite:///$HOME/hookclient/store.db
  # point hookclient at http://127.0.0.1:8787/hooks with the same HOOKCLIENT_TOKEN, then:
  curl -H "Authorization: Bearer $HOOKCLIENT_TOKEN" http://127.0.0.1:8787/stats

  hookclient-receiver token add alice --database postgresql://hk@db.internal/hookclient
  hookclient-receiver migrate --database postgresql://hk@db.internal/hookclient

commands (without one, it serves):
  migrate              bring the database's schema up to this version, then exit
  token add NAME       make user NAME and print its token once (--admin: sees everyone's)
  token list           users: name, admin, created, last used, revoked (never a token)
  token revoke NAME    refuse NAME's token from now on

SIGTERM or Ctrl-C stops the server cleanly (exit 0)."""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keep the description's line breaks; show defaults that say something."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default not in (None, False, argparse.SUPPRESS) and "%(default)" not in text:
            text += " (default: %(default)s)"
        return text


class _Fatal(Exception):
    """A reason not to run: printed as one line on stderr, then exit with ``code``."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("port must be from 0 to 65535")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _database_options(default: str | None) -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    where = options.add_mutually_exclusive_group()
    where.add_argument(
        "--database",
        metavar="URL",
        default=default,
        help="sqlite:///PATH or postgresql://user:pass@host:port/db "
        "(default: sqlite:///receiver.db)",
    )
    where.add_argument(
        "--db",
        type=Path,
        metavar="PATH",
        default=default,
        help="a SQLite file: the same as --database sqlite:///PATH",
    )
    return options


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface (needs the receiver extra: see :func:`main`)."""
    from receiver.app import MAX_BODY_BYTES

    parser = argparse.ArgumentParser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=_Formatter,
        parents=[_database_options(None)],
    )
    # after a command too (`token add NAME --database URL`); SUPPRESS keeps a value given
    # before the command from being overwritten by the command's own default
    database = _database_options(argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser(
        "migrate",
        parents=[database],
        help="migrate the database's schema, then exit",
        description="Bring the database's schema up to this version of hookclient-receiver "
        "and exit. Serving does it too, at start; this is for deploys that migrate first.",
    )
    token = commands.add_parser(
        "token", help="users and their tokens", description="Users and their tokens."
    )
    tokens = token.add_subparsers(dest="action", metavar="ACTION", required=True)
    added = tokens.add_parser("add", parents=[database], help="make a user; print its token once")
    added.add_argument("name", help="the user's name (a person, a laptop, a team)")
    added.add_argument("--admin", action="store_true", help="the user sees every user's rows")
    tokens.add_parser("list", parents=[database], help="every user; never a token")
    revoked = tokens.add_parser(
        "revoke", parents=[database], help="refuse a user's token from now on"
    )
    revoked.add_argument("name")
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to listen on")
    add("--port", type=_port, default=8787, help="port to listen on; 0 picks a free one")
    add(
        "--token-env",
        default="HOOKCLIENT_TOKEN",
        metavar="NAME",
        help="env var with the admin's token",
    )
    add("--no-auth", action="store_true", help="accept requests without a token (local only)")
    add(
        "--signing-secret-env",
        metavar="NAME",
        help="env var with a Standard Webhooks secret; when given, signatures are required",
    )
    add(
        "--max-body-bytes",
        type=_positive,
        default=MAX_BODY_BYTES,
        metavar="N",
        help="larger bodies get 413",
    )
    add("--port-file", type=Path, metavar="PATH", help="write the bound port here once listening")
    add(
        "--alerts",
        type=Path,
        metavar="FILE",
        help="alert rules (TOML; see config/alerts.toml): checked while serving, shown on "
        "the dashboard, POSTed to its notify_url",
    )
    add("--log-level", choices=LOG_LEVELS, default="warning", help="uvicorn and receiver logs")
    add("--access-log", action="store_true", help="log every request (off by default)")
    return parser


def _token(args: argparse.Namespace) -> str | None:
    if args.no_auth:
        print(
            f"{PROG}: warning: --no-auth: anyone who can reach this port can post and read events",
            file=sys.stderr,
        )
        return None
    token = os.environ.get(args.token_env, "")
    if not token:
        raise _Fatal(
            f"no token: set {args.token_env} (or choose another variable with --token-env NAME),"
            " or pass --no-auth for a local experiment",
            2,
        )
    return token


def _signing_secret(args: argparse.Namespace) -> str | None:
    if args.signing_secret_env is None:
        return None
    secret = os.environ.get(args.signing_secret_env, "")
    if not secret:
        name = args.signing_secret_env
        raise _Fatal(f"no signing secret: {name} (named by --signing-secret-env) is unset", 2)
    return secret


def _bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket (SO_REUSEADDR), IPv4 or IPv6 as ``host`` resolves."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        raise _Fatal(f"cannot listen on {host}:{port}: {exc}", 1) from None
    # asyncio sets TCP_NODELAY only on sockets whose proto is IPPROTO_TCP, and
    # create_server() makes them with proto 0: without this, every response waited for
    # the client's delayed ACK (44 ms a request, measured). Accepted sockets inherit it.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _write_port_file(path: Path, port: int) -> None:
    """Write the port atomically: a reader sees no file or the whole number, never half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(f"{port}\n")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _Fatal(f"cannot write port file {path}: {exc}", 1) from None


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@contextmanager
def _stop_on_signals(server: uvicorn.Server) -> Iterator[None]:
    """SIGTERM/SIGINT stop the server, whenever they arrive, and never kill the process.

    uvicorn handles them while it serves, then re-raises them on the way out; this handler
    receives that re-raise (and any signal before uvicorn took over) and just asks the
    server to stop, so the process exits 0 through its normal cleanup.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        server.should_exit = True

    signals = (signal.SIGTERM, signal.SIGINT)
    previous = {sig: signal.signal(sig, stop) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _configure_logging(level_name: str) -> None:
    """Send the receiver's own log lines (unexpected errors, mostly) to stderr."""
    log = logging.getLogger("receiver")
    log.setLevel(getattr(logging, level_name.upper(), logging.DEBUG))  # "trace" is debug
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        log.addHandler(handler)


def _require_extra() -> None:
    """Import the receiver extra now, so that a missing module is one line, not a traceback.

    Only a module outside this project counts as the extra: a broken import of our own
    stays a traceback, since no ``pip install`` would fix it.
    """
    try:
        import uvicorn  # noqa: F401

        import receiver.app  # noqa: F401
    except ModuleNotFoundError as exc:
        package = (exc.name or "").partition(".")[0]
        if package in ("", "receiver", "hookclient"):
            raise
        raise _Fatal(f"cannot import {package}: {EXTRA_HINT}", 1) from None


def _database(args: argparse.Namespace) -> str:
    return args.database or str(args.db or "receiver.db")


@contextmanager
def _opening(database: str) -> Iterator[None]:
    """Any failure to open or migrate the database as one line naming it."""
    from sqlalchemy.exc import SQLAlchemyError

    from receiver.database import DatabaseError, safe, url_of

    try:
        yield
    except DatabaseError as exc:
        raise _Fatal(str(exc), 1) from None
    except (SQLAlchemyError, OSError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise _Fatal(f"cannot open database {safe(url_of(database))}: {reason}", 1) from None


def _open_store(args: argparse.Namespace) -> Store:
    from receiver.store import Store

    with _opening(_database(args)):
        return Store(_database(args))


def _migrate(args: argparse.Namespace) -> int:
    from receiver.database import connect, migrate, safe, url_of

    database = _database(args)
    with _opening(database):
        engine = connect(database)
        try:
            before, now = migrate(engine)
        finally:
            engine.dispose()
    where = safe(url_of(database))
    if before == now:
        print(f"{where}: schema at version {now}, nothing to do")
    else:
        print(f"{where}: schema migrated from version {before or '(none)'} to {now}")
    return 0


def _tokens(args: argparse.Namespace) -> int:
    from receiver.store import UserError

    _existing_store(_database(args))
    store = _open_store(args)
    try:
        if args.action == "add":
            token = store.add_user(args.name, admin=args.admin)
            print(token)
            print(
                f"user {args.name}{' (admin)' if args.admin else ''}: the token above is shown "
                "only now; hookclient sends it from HOOKCLIENT_TOKEN",
                file=sys.stderr,
            )
        elif args.action == "list":
            for row in store.list_users():
                state = f"revoked {row['revoked_at']}" if row["revoked_at"] else "live"
                print(
                    f"{row['name']}\t{'admin' if row['admin'] else 'user'}\t"
                    f"created {row['created_at']}\tlast used {row['last_used_at'] or 'never'}"
                    f"\t{state}"
                )
        else:
            store.revoke(args.name)
            print(f"user {args.name}: token revoked; its requests get 401 from now on")
    except UserError as exc:
        raise _Fatal(str(exc), 1) from None
    finally:
        store.close()
    return 0


def _rules(path: Path | None) -> Rules | None:
    """The alert rules, checked before the server starts: a bad file is one line, exit 2."""
    if path is None:
        return None
    from receiver.alerts import RulesError, load

    try:
        return load(path)
    except RulesError as exc:
        raise _Fatal(str(exc), 2) from None


def _existing_store(database: str) -> None:
    """A token command on a SQLite file that is not there would make a new, empty store
    there and put the token in it, where the running store never looks: refused."""
    from sqlalchemy.engine import make_url

    from receiver.database import url_of

    try:
        url = make_url(url_of(database))
    except ValueError:
        return  # the store's own open says what is wrong with it
    path = url.database if url.get_backend_name() == "sqlite" else None
    if path and path != ":memory:" and not Path(path).exists():
        raise _Fatal(
            f"no store database at {path}: pass the running store's --database URL "
            "(or --db PATH); `hookclient-receiver migrate` makes a new one",
            2,
        )


def freeze_heap() -> None:
    """Move everything alive now (modules, the app, the store's engine) out of the cyclic
    garbage collector's sight, for good.

    A request that projects a session allocates tens of thousands of dicts and lists,
    enough to set off full collections, and each of those walked the whole start-up heap
    as well: in bench/store.py a 500-record Transcript envelope's p95 fell by a third
    with this (BENCHMARKS.md, "The store").  Objects made later are collected as
    usual."""
    gc.collect()
    gc.freeze()


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from receiver.alerts import Checker
    from receiver.app import create_app
    from receiver.database import safe, url_of

    token = _token(args)
    secret = _signing_secret(args)
    database = _database(args)
    rules = _rules(args.alerts)
    try:
        with _opening(database):
            app = create_app(
                database, token, max_body_bytes=args.max_body_bytes, signing_secret=secret
            )
    except ValueError as exc:
        raise _Fatal(str(exc), 2) from None
    store = app.state.store
    config = uvicorn.Config(
        app,
        log_level=args.log_level,
        access_log=args.access_log,
        lifespan="off",
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=10,
    )
    server = uvicorn.Server(config)
    _configure_logging(args.log_level)
    wrote_port_file = False
    try:
        with _stop_on_signals(server), _bind(args.host, args.port) as sock:
            port = sock.getsockname()[1]
            if args.port_file is not None:
                _write_port_file(args.port_file, port)
                wrote_port_file = True
            where = safe(url_of(database))
            print(
                f"{PROG} listening on {_url(args.host, port)} (database {where})", file=sys.stderr
            )
            checker = None if rules is None else Checker(store.engine, rules)
            if checker is not None:
                checker.start()
            freeze_heap()
            try:
                server.run(sockets=[sock])
            finally:
                if checker is not None:
                    checker.stop()
    finally:
        store.close()
        if wrote_port_file:
            with suppress(OSError):
                args.port_file.unlink()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``hookclient-receiver``; returns the exit code.

    A closed stdout pipe ends it quietly (:func:`hookclient.term.quiet_on_closed_pipe`).
    """

    def body() -> int:
        try:
            _require_extra()
            args = build_parser().parse_args(argv)
            if args.command == "migrate":
                return _migrate(args)
            if args.command == "token":
                return _tokens(args)
            return _serve(args)
        except _Fatal as fatal:
            print(f"{PROG}: {fatal}", file=sys.stderr)
            return fatal.code

    return quiet_on_closed_pipe(body)


if __name__ == "__main__":
    sys.exit(main())
