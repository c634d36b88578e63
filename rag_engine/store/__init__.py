"""Postgres + pgvector storage: connection, embedded server, schema, migrations."""
