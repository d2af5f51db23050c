"""Alembic migrations for Rapport's database (run by ``rapport db upgrade`` or at start)."""
