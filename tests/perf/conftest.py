"""tests/perf: any_db_url and sqlite_template come from tests/conftest.py (a template per session)."""
