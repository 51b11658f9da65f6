"""SQLite persistence: schema (`schema`), migrations (`database`), the single writer and its
outbox (`store`), and read-only queries (`query`).

Submodules are imported where needed, so commands that use no database do not load
SQLAlchemy and alembic.
"""

from dsiem_sql.store.errors import StoreError

__all__ = ["StoreError"]
