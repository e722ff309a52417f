"""Persistence: schema, migrations and every query (SQLite and PostgreSQL)."""
