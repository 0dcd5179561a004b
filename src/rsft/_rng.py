"""Normalisation of ``rng`` and count arguments shared by the public API."""

import numbers

import numpy as np


def as_generator(rng):
    """Return a ``numpy.random.Generator`` for ``rng``.

    Accepts what ``numpy.random.default_rng`` accepts: None (fresh OS entropy), a non-negative
    int seed, a ``SeedSequence``, a ``BitGenerator`` or a ``Generator`` (returned as is, so its
    state advances). Anything else raises TypeError.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (np.random.SeedSequence, np.random.BitGenerator)):
        return np.random.default_rng(rng)
    if isinstance(rng, (numbers.Integral, np.integer)) and not isinstance(rng, (bool, np.bool_)):
        if rng < 0:
            raise ValueError(f"rng seed must be non-negative, got {rng}")
        return np.random.default_rng(int(rng))
    raise TypeError(
        "rng must be None, an int seed, a numpy.random.SeedSequence, a BitGenerator or a "
        f"numpy.random.Generator; got {type(rng).__name__}")


def check_count(n, name="n"):
    """Validate a sample count: a non-negative integer (bool is refused)."""
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be a non-negative integer, got {type(n).__name__} {n!r}")
    n = int(n)
    if n < 0:
        raise ValueError(f"{name} must be >= 0, got {n}")
    return n
