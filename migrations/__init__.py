"""The alembic migrations, installed as the package `dsiem_sql.migrations`."""
