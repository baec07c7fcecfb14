"""The migrations, oldest first (alembic finds them here)."""
