"""Medians with distribution-free confidence intervals, for benchmarks that interleave ways.

A benchmark that alternates "with" and "without" in short blocks gets one ratio per round of
blocks; the machine's drift falls on both ways of a round alike. The median of those ratios and
an interval from order statistics (no normality assumed) say how sure the figure is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["median_interval", "median_summary"]


def _binom_cdf(k: int, n: int) -> float:
    """P(X <= k) for X ~ Binomial(n, 1/2)."""
    return sum(math.comb(n, i) for i in range(k + 1)) / 2**n


def median_interval(
    values: Sequence[float], level: float = 0.95
) -> tuple[float, float, float, float]:
    """The median of ``values`` and an order-statistic confidence interval for it.

    The interval is ``[x_(k), x_(n-k+1)]`` with the largest k whose coverage
    ``1 - 2 P(Binomial(n, 1/2) <= k - 1)`` is at least ``level``; with too few values for that,
    it is ``[min, max]`` and the coverage returned is lower than ``level``.

    Args:
        values: at least one finite number.
        level: wanted coverage, in (0, 1). Defaults to 0.95.

    Returns:
        (median, low, high, coverage).

    Raises:
        ValueError: no values, a non-finite value, or a level outside (0, 1).
    """
    xs = sorted(float(v) for v in values)
    if not xs:
        raise ValueError("median_interval needs at least one value")
    if not all(math.isfinite(x) for x in xs):
        raise ValueError(f"median_interval needs finite values, got {xs}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    n = len(xs)
    mid = n // 2
    median = xs[mid] if n % 2 else 0.5 * (xs[mid - 1] + xs[mid])
    k, coverage = 1, 1.0 - 2.0 * _binom_cdf(0, n)
    while k + 1 <= (n + 1) // 2:
        wider = 1.0 - 2.0 * _binom_cdf(k, n)  # coverage of [x_(k+1), x_(n-k)]
        if wider < level:
            break
        k, coverage = k + 1, wider
    return median, xs[k - 1], xs[n - k], coverage


def median_summary(values: Sequence[float]) -> dict[str, float]:
    """``median_interval`` as the benchmarks report it: median, low, high and coverage."""
    med, lo, hi, coverage = median_interval(values)
    return {"median": med, "low": lo, "high": hi, "coverage": coverage}
