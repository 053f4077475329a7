"""Shared test helpers: a fake clock, plain-sqlite3 readers, handlers for worker processes."""
