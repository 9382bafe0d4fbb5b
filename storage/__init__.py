"""SQL storage for Journeyflow: SQLite (a file) embedded, PostgreSQL for scale.

`connect(url)` opens a database, `migrate(engine)` brings its schema to the newest revision,
and `storage.tables` holds every table as SQLAlchemy Core.
"""

from .database import connect, migrate, writer

__all__ = ["connect", "migrate", "writer"]
