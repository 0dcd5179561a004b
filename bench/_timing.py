"""What the benchmark modules share: a stable seed per benchmark and pedantic timing with a
fresh Generator per round."""
from __future__ import annotations

import zlib

import numpy as np


def seed_for(*parts) -> int:
    """A fixed seed per benchmark, stable across runs and processes (unlike hash())."""
    return zlib.crc32(repr(parts).encode())


def time_with_fresh_rng(benchmark, fn, seed, *, rounds, warmup_rounds):
    """Time ``fn(rng)``, each round with a fresh ``default_rng(seed)`` made outside the timed
    call (pytest-benchmark's pedantic mode); returns the last round's result."""
    return benchmark.pedantic(fn, setup=lambda: ((np.random.default_rng(seed),), {}),
                              rounds=rounds, iterations=1, warmup_rounds=warmup_rounds)
