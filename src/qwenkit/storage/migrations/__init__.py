"""Alembic migrations of the SQL stores (run by ``qwenkit.storage.upgrade`` and ``qwenkit db
upgrade``; the version is kept in ``qk_alembic_version``)."""
