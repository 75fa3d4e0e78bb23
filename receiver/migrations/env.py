"""Alembic's entry point: run the migrations on the connection :mod:`receiver.database` hands over.

There is no alembic.ini: the receiver migrates its own database (at start, or with
``hookclient-receiver migrate``), passing an open connection in ``config.attributes``.
"""

from __future__ import annotations

from alembic import context

from receiver.schema import metadata

connection = context.config.attributes["connection"]
# render_as_batch: SQLite changes tables by copying them, which batch operations do.
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
