"""Alembic migrations of the clinie store (run by ``clinie.storage.db.migrate``; ``env.py`` is not for import).

A package so that setuptools ships ``env.py`` with the wheel; revisions live in ``versions/``.
"""
