"""Alembic revisions, oldest first. Each file is frozen once released: a schema change is a new revision."""
