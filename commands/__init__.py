"""carprice commands."""
