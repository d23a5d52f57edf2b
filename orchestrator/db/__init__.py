"""Postgres access: the connection pool and the versioned migrations."""
