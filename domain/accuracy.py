"""Live accuracy: a model version's errors against real sale prices, with 95 % intervals.

The mean errors get a normal interval (mean +- 1.96 sd / sqrt(n)): with a few dozen reports
their means are near normal whatever the errors' own shape. Coverage is a proportion; its
interval is Wilson's, which stays inside [0, 1] and is honest for small counts and for
proportions near 0 or 1, where the normal one is not.
"""

from __future__ import annotations

import math

Z95 = 1.959963984540054


def mean_interval(mean: float | None, sd: float | None, n: int) -> tuple[float, float] | None:
    """The 95 % interval of a mean of n values (None below 2 values)."""
    if mean is None or sd is None or n < 2:
        return None
    half = Z95 * sd / math.sqrt(n)
    return max(0.0, mean - half), mean + half


def wilson(hits: int, n: int) -> tuple[float, float] | None:
    """Wilson's 95 % interval of the proportion hits / n (None when n is 0)."""
    if n <= 0:
        return None
    p, z2 = hits / n, Z95 * Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)
