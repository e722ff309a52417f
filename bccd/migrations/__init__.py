"""Alembic migration environment and history: the one way the schema changes (`bccd db upgrade`)."""
