from tests.store.conftest import any_db_url, sqlite_template  # noqa: F401 - the store suite's cheap fixtures
