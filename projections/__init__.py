"""carprice projections."""
