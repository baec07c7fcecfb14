"""Drift: do the cars being priced still look like the cars a model was trained on?

For each feature, the population stability index (PSI) between the training data and the
latest priced cars: sum over bins of (actual - expected) * ln(actual / expected), the shares of
the two samples in each bin. Numeric features are cut at the training data's deciles; each
category is a bin, and categories the training data never had share one more bin (their
share is reported on its own: a model prices them as an unseen category). Empty bins count
as a share of 1e-4, so one empty bin does not make the index infinite.

Read it as the common rule of thumb does: under 0.1 stable, 0.1 to 0.25 a shift worth a
look, above 0.25 a population the model was not trained on.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

FLOOR = 1e-4  # the share an empty bin counts as
BINS = 10


@dataclass(frozen=True)
class Reference:
    """The training data's distribution of one feature: cut points (numeric) or categories."""

    feature: str
    edges: tuple[float, ...] = ()  # numeric: the inner cut points
    expected: tuple[float, ...] = ()  # the training data's share in each bin (categories: in order)
    categories: tuple[str, ...] = ()  # categorical: the training data's categories


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's drift."""

    feature: str
    psi: float
    unseen_share: float  # of the recent cars, those with a category training never had


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    """The population stability index of two distributions over the same bins."""
    total = 0.0
    for e, a in zip(expected, actual, strict=True):
        e, a = max(e, FLOOR), max(a, FLOOR)
        total += (a - e) * math.log(a / e)
    return total


def _numbers(values: Sequence[object]) -> list[float]:
    return [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)
            and math.isfinite(v)]


def _shares(counts: Sequence[int]) -> tuple[float, ...]:
    n = sum(counts)
    return tuple(c / n if n else 0.0 for c in counts)


def numeric_reference(feature: str, values: Sequence[object], bins: int = BINS) -> Reference:
    """Deciles of the training values as cut points (ties merged), and the share in each bin."""
    xs = sorted(_numbers(values))
    if not xs:
        return Reference(feature)
    cuts = sorted({xs[min(len(xs) - 1, (len(xs) * i) // bins)] for i in range(1, bins)})
    return Reference(feature, edges=tuple(cuts), expected=_bin(xs, tuple(cuts)))


def _bin(xs: Sequence[float], edges: tuple[float, ...]) -> tuple[float, ...]:
    counts = [0] * (len(edges) + 1)
    for x in xs:
        counts[bisect_right(edges, x)] += 1
    return _shares(counts)


def categorical_reference(feature: str, values: Sequence[object]) -> Reference:
    """Each training category's share."""
    counts = Counter(str(v) for v in values if v is not None)
    categories = tuple(sorted(counts))
    return Reference(feature, expected=_shares([counts[c] for c in categories]), categories=categories)


def drift(reference: Reference, values: Sequence[object]) -> FeatureDrift | None:
    """How far the recent values of a feature moved from its training distribution (None:
    nothing to compare)."""
    if reference.categories:
        seen = [str(v) for v in values if v is not None]
        if not seen:
            return None
        counts = Counter(seen)
        known = set(reference.categories)
        unseen = sum(n for c, n in counts.items() if c not in known)
        actual = [counts[c] / len(seen) for c in reference.categories] + [unseen / len(seen)]
        return FeatureDrift(reference.feature, psi([*reference.expected, 0.0], actual),
                            unseen / len(seen))
    xs = _numbers(values)
    if not xs or not reference.expected:
        return None
    return FeatureDrift(reference.feature, psi(reference.expected, _bin(xs, reference.edges)), 0.0)


def references(training: Sequence[Mapping[str, object]], numeric: Sequence[str],
               categorical: Sequence[str]) -> list[Reference]:
    """The reference of every feature of the training rows."""
    return ([numeric_reference(f, [r.get(f) for r in training]) for f in numeric]
            + [categorical_reference(f, [r.get(f) for r in training]) for f in categorical])
