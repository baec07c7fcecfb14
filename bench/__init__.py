"""Benchmarks and the fault soak (`carprice bench ...`): figures, never pass/fail; not part of the product."""
