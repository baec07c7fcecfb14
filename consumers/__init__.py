"""carprice consumers."""
