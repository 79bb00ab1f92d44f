"""Latency summaries: nearest-rank percentiles in milliseconds."""

from __future__ import annotations

import math


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def latency_summary(seconds: list[float]) -> dict:
    """{n, p50, p95, p99, max, mean} in ms (None when there is nothing to summarise)."""
    if not seconds:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "max": None, "mean": None}
    values = sorted(seconds)

    def ms(x: float) -> float:
        return round(x * 1000, 2)

    return {"n": len(values), "p50": ms(percentile(values, 50)), "p95": ms(percentile(values, 95)),
            "p99": ms(percentile(values, 99)), "max": ms(values[-1]), "mean": ms(sum(values) / len(values))}
