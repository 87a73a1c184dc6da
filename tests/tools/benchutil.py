"""Shared by the PyTorch benchmark scripts: the median wall time of a function."""

import statistics
import time


def median_ms(fn, runs):
    """Median of `runs` timed calls after one warm-up, in milliseconds."""
    fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)
