"""dsiem-sql: a Dsiem correlation backend that keeps its state in SQLite."""

__version__ = "0.1.0"
