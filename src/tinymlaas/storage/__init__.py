"""Persistence: SQLAlchemy tables and repositories, the content-addressed blob store, migrations."""
