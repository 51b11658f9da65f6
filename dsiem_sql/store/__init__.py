"""SQLite persistence: schema, migrations, the single writer and read-only queries."""

from dsiem_sql.store.database import StoreError, upgrade
from dsiem_sql.store.store import Resumed, Store

__all__ = ["Resumed", "Store", "StoreError", "upgrade"]
