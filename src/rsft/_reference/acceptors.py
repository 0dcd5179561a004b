"""Reference (numpy) reward-acceptor kernels; twin of ``_kernels/acceptors.pxi``.

Conventions shared by both backends (kernels do arithmetic only; :mod:`rsft.acceptors`
validates):

* ``r`` is a C-contiguous float64 array of shape ``(n_contexts, n_candidates)`` whose
  entries are finite or ``-inf`` (a failed candidate); ``out`` is a C-contiguous bool array of
  the same shape (the compiled kernels write it through a uint8 view); ``r_max`` is a float64
  array of shape ``(n_contexts,)``, finite.
* Uniforms are ``Generator.random`` doubles in C order, one per candidate:
  ``u = rng.random(r.shape)``, drawn before anything is decided. A kernel that draws, always
  draws exactly ``r.size`` of them (none for an empty ``r``).

Decisions (identical on both backends, comparisons and IEEE arithmetic only, except the rare
``log`` of the shared acceptance test); a candidate with ``r = -inf`` is never accepted:

* threshold: ``accept = r >= tau`` (``r > tau`` when ``strict``; the caller passes
  ``strict`` for ``tau = -inf``, so ``-inf`` fails).
* top-k: candidates of one context are ranked by the key ``(r descending, u ascending,
  index ascending)``, a strict total order; the first ``k`` are accepted unless their reward
  is ``-inf`` (so a row with fewer than ``k`` finite rewards accepts only those). Among equal
  rewards the order is the order of independent uniforms, i.e. a uniformly random
  permutation; the index only separates equal uniforms (probability about ``n**2 / 2**54``).
* statistical rejection sampling: ``g = (r - r_max[i]) / beta`` (``<= 0`` when ``r_max``
  bounds the row; ``r = -inf`` and overflow of ``r - r_max`` give ``-inf``, i.e. probability
  0, which is what ``exp`` of that gap is in double anyway), written to ``log_prob``; accept
  iff ``1 - u <= exp(g)``, evaluated by the sampler's acceptance test
  (:func:`rsft._reference.sampler.accept_test`: two exact polynomial squeezes, then ``log``).
"""

import numpy as np

from .sampler import accept_test

__all__ = ["threshold_accept", "topk_accept", "statistical_rs_accept"]


def threshold_accept(r, tau, strict, out):
    """``out = r > tau`` if ``strict`` else ``r >= tau``; draws nothing."""
    if strict:
        np.greater(r, tau, out=out)
    else:
        np.greater_equal(r, tau, out=out)


def topk_accept(rng, r, k, out):
    """Accept the ``k`` best candidates of every row (``1 <= k <= n_candidates``).

    Draws ``u = rng.random(r.shape)``; ranks by ``(-r, u, index)`` (``np.lexsort`` is stable,
    so the index is the last key) and accepts the first ``k`` of each row, except ``-inf``.
    """
    u = rng.random(r.shape)
    out[...] = False
    if r.size == 0:
        return
    order = np.lexsort((u, -r), axis=-1)[:, :k]
    rows = np.arange(r.shape[0])[:, None]
    out[rows, order] = True
    out &= r > -np.inf


def statistical_rs_accept(rng, r, r_max, beta, out, log_prob):
    """Accept with probability ``exp((r - r_max[i]) / beta)``; ``log_prob`` receives the
    exponent. Draws ``u = rng.random(r.shape)``."""

    u = rng.random(r.shape)
    with np.errstate(all="ignore"):  # overflow to -inf is intended (see the module docstring)
        g = (r - r_max[:, None]) / beta
        log_prob[...] = g
        if r.size == 0:
            out[...] = False
            return
        out[...] = accept_test(g.ravel(), u.ravel()).reshape(r.shape)
