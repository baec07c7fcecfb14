"""carprice domain."""
