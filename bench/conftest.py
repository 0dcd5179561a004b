"""Shared settings for the rsft benchmark suite.

Run from this directory (the Makefile's ``bench`` target does)::

    python -m pytest -q -p no:cacheprovider --benchmark-only --benchmark-json=../.bench.json .
    python report.py ../.bench.json

``RSFT_BENCH_N`` (default 1_000_000) sets the number of accepted samples per workload,
e.g. ``RSFT_BENCH_N=100000`` for a quick run.
"""
from __future__ import annotations

import os
import platform


def bench_n() -> int:
    raw = os.environ.get("RSFT_BENCH_N", "1000000")
    try:
        n = int(float(raw))
    except ValueError:
        raise ValueError(f"RSFT_BENCH_N must be a positive integer, got {raw!r}") from None
    if n < 1000:
        raise ValueError(f"RSFT_BENCH_N must be >= 1000 (W4 spreads it over 1000 targets), got {n}")
    return n


def pytest_report_header(config):
    return f"rsft bench: RSFT_BENCH_N={bench_n()}"


def pytest_benchmark_update_json(config, benchmarks, output_json):
    """Record what the run measured, so report.py can say it."""
    info = {"n": bench_n(), "python": platform.python_version(), "cpu_count": os.cpu_count()}
    try:
        import numpy as np

        info["numpy"] = np.__version__
    except ImportError:  # pragma: no cover
        pass
    try:
        import rsft

        info["rsft"] = getattr(rsft, "__version__", "?")
        info["rsft_file"] = getattr(rsft, "__file__", "?")
        info["rsft_backends"] = list(rsft.available_backends())
    except Exception as exc:  # pragma: no cover - report it, do not break the JSON
        info["rsft_error"] = repr(exc)
    for mod in ("scipy", "numba"):
        try:
            info[mod] = __import__(mod).__version__
        except ImportError:
            info[mod] = None
    output_json["rsft_bench"] = info
