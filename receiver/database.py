"""Opening the store's database: the URL, the engine, and the schema migrated to this version.

``sqlite:///PATH`` (the default; a bare path means the same) or ``postgresql://user:pass@
host:port/db`` (PostgreSQL 13+, through psycopg 3: the ``postgres`` extra).  Both run the
same queries (SQLAlchemy Core) and the same migrations (Alembic), so they behave alike.

SQLite: the file is created 0600 before SQLite opens it (it holds prompts and commands),
in WAL mode with ``synchronous=NORMAL``; every transaction starts with ``BEGIN IMMEDIATE``
so that writers queue on SQLite's lock (busy timeout 10 s) instead of failing halfway.

Migrations run at start, under a lock (SQLite's write lock; a PostgreSQL advisory lock),
so receivers starting together on one database migrate it once.  A database whose version
this code does not know (written by a newer hookclient) is refused with one line.
"""

from __future__ import annotations

import os
import stat
from contextlib import suppress
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Insert, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError

__all__ = ["DatabaseError", "connect", "current_version", "head_version", "migrate", "url_of"]

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: pg_advisory_xact_lock key held while migrating (any constant: "hkcl" in ASCII).
_MIGRATION_LOCK = 0x686B636C


class DatabaseError(Exception):
    """The database cannot be used: a bad URL, a missing driver, a newer schema."""


def url_of(database: str | os.PathLike[str]) -> str:
    """The SQLAlchemy URL of ``--database``/``--db``: a path means a SQLite file."""
    text = os.fspath(database)
    if "://" not in text:
        return f"sqlite:///{text}"
    if text.startswith(("postgres://", "postgresql://")):  # the psycopg 3 driver
        return "postgresql+psycopg://" + text.split("://", 1)[1]
    return text


def connect(database: str | os.PathLike[str], *, reads: bool = False) -> Engine:
    """An engine for ``database`` (not yet migrated: see :func:`migrate`).

    ``reads``: for queries that write nothing.  On SQLite its transactions begin
    DEFERRED, so a reader (the API, a dashboard page) never holds the write lock that
    the writers' ``BEGIN IMMEDIATE`` takes; WAL lets it read while they write."""
    url = url_of(database)
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseError(
            f"not a database URL: {safe(url)} (sqlite:///PATH or postgresql://...)"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        return _sqlite(parsed.database or "", reads=reads)
    if parsed.get_backend_name() == "postgresql":
        try:
            import psycopg  # noqa: F401
        except ModuleNotFoundError:
            raise DatabaseError(
                "PostgreSQL needs psycopg: pip install 'hookclient[receiver,postgres]'"
            ) from None
        return create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=10)
    raise DatabaseError(
        f"unsupported database {parsed.get_backend_name()!r}: use sqlite:///PATH or postgresql://..."
    )


def dialect_insert(conn: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    """The dialect's INSERT, which has ``on_conflict_do_nothing`` and ``_do_update`` on
    both databases (the generic one has neither)."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def insert_rows(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert rows that cannot be there yet (the caller read what was), in the caller's
    transaction.

    On PostgreSQL they go through ``COPY ... FROM STDIN``, which spares psycopg adapting
    one 10,000-parameter statement (BENCHMARKS.md, "The store").  A row that is there
    after all (another receiver process inserted it first) fails the COPY as it would
    the INSERT, on the same unique constraint."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(table.insert(), rows)
        return
    from psycopg import sql

    names = [column.name for column in table.columns if column.name in rows[0]]
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, names))
    )
    driver = conn.connection.driver_connection  # psycopg's, in this very transaction
    assert driver is not None
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row([row[name] for name in names])


def execute_many(
    conn: Connection,
    statement: Insert,
    rows: list[dict[str, Any]],
    *,
    returning: bool = False,
) -> list[tuple[Any, ...]]:
    """Execute an INSERT once per row, in the caller's transaction; with ``returning``,
    the rows its RETURNING clause gave.

    On PostgreSQL the rows go through psycopg's pipeline, one prepared statement a row,
    sent together (``executemany(returning=True)``): 500 records took about 10 ms where
    SQLAlchemy's one 500-row ``INSERT ... VALUES`` took 25-43 ms (BENCHMARKS.md, "The
    store")."""
    if not rows:
        return []
    if conn.dialect.name != "postgresql":
        result = conn.execute(statement, rows)
        return [tuple(row) for row in result] if returning else []
    sql = str(statement.compile(dialect=conn.dialect, column_keys=list(rows[0])))
    driver = conn.connection.driver_connection  # psycopg's, in this very transaction
    assert driver is not None
    out: list[tuple[Any, ...]] = []
    with driver.cursor() as cursor:
        cursor.executemany(sql, rows, returning=returning)
        while returning:
            out.extend(cursor.fetchall())
            if not cursor.nextset():
                break
    return out


def safe(url: str) -> str:
    """The URL with its password hidden, for messages and logs."""
    with suppress(ArgumentError):
        return make_url(url).render_as_string(hide_password=True)
    return url.split("@", 1)[-1] if "@" in url else url


def _sqlite(path: str, *, reads: bool = False) -> Engine:
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        _make_private(Path(path))
    engine = create_engine(
        f"sqlite:///{path}", connect_args={"timeout": 10.0, "check_same_thread": False}
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy's BEGIN below, not pysqlite's
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN" if reads else "BEGIN IMMEDIATE")

    return engine


def _make_private(path: Path) -> None:
    """Create the database file 0600 before SQLite opens it, or narrow an existing one.

    SQLite creates the file with 0666 minus the umask and gives the -wal and -shm files
    the database file's mode, so a private database file makes all three private.
    Existing -wal/-shm files (left by a crash) are narrowed too; modes are only narrowed.
    """
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for name in (str(path), f"{path}-wal", f"{path}-shm"):
        with suppress(FileNotFoundError, PermissionError):  # not ours to chmod: leave it
            mode = stat.S_IMODE(os.stat(name).st_mode)
            if mode & ~0o600:
                os.chmod(name, mode & 0o600)


def _alembic_config(connection: Connection) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_version() -> str:
    """The newest schema version this code knows."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert head is not None, "receiver/migrations has no versions"
    return head


def current_version(connection: Connection) -> str | None:
    """The database's schema version; None for a new database (or one from before versions)."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def migrate(engine: Engine) -> tuple[str | None, str]:
    """Bring the schema up to this code's version: (version before, version now).

    Raises :class:`DatabaseError` when the database is at a version this code does not
    know: a newer hookclient wrote it, and this one could only misread it.
    """
    from alembic import command
    from alembic.script import ScriptDirectory

    known = {rev.revision for rev in ScriptDirectory(str(MIGRATIONS)).walk_revisions()}
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
        before = current_version(connection)
        if before is not None and before not in known:
            raise DatabaseError(
                f"the database {safe(str(engine.url))} has schema version {before}, newer than "
                f"this hookclient-receiver knows (up to {head_version()}): upgrade hookclient"
            )
        if before != head_version():
            command.upgrade(_alembic_config(connection), "head")
    return before, head_version()
