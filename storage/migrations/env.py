"""Alembic's environment for Journeyflow: run by `storage.database.migrate`, never from an
alembic.ini. The caller hands over an open connection in `config.attributes["connection"]`.

To write the next revision, migrate a scratch database to head and let Alembic compare it with
`storage.tables`, then edit the result by hand:

    from alembic import command
    from storage.database import alembic_config, connect, migrate
    engine = connect("sqlite:///scratch.db")
    migrate(engine)
    with engine.begin() as connection:
        config = alembic_config(connection)
        command.revision(config, "what changed", autogenerate=True, rev_id="0002")
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from storage.tables import metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("run migrations through storage.database.migrate(), which passes a connection")

context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot ALTER most things; batch operations copy the table instead.
    render_as_batch=True,
)
with context.begin_transaction():
    context.run_migrations()
