"""carprice api."""
