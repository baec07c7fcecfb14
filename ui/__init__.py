"""carprice ui."""
