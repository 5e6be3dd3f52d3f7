"""Persistence: sqlmodel tables and the repository that is the only code writing SQL."""
