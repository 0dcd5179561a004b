"""The exact policy metrics of reward RSFT, as functions of arrays.

For a finite action set (a softmax policy) everything is a sum over the actions, one row per
context: the KL divergence between two policies, the expected reward under a reward table, and
the statistical-RS target ``pi*(a|x) ∝ pi_ref(a|x) exp(r(x, a) / beta)``, the maximiser of
``E_pi[r] - beta KL(pi || pi_ref)``. For Gaussian policies with the same fixed ``sigma`` the KL
is closed form in the means. Each result is a mean over the contexts (rows).

Everything is computed by numpy (the reference backend's log-softmax included), so the same
inputs give the same bits whichever backend the caller uses. :class:`rsft.RSFTTrainer` reports
these numbers; this module has no state and checks nothing (the trainer validates ``beta``).
"""

import numpy as np

from . import _backend


def log_softmax(z):
    """Row-wise ``log softmax(z)`` of a 2-D array, float64, max-subtracted (never overflows)."""
    out = np.empty(z.shape)
    # the numpy kernel on both backends: numpy's exp/log, so the metrics are bit-identical
    _backend.kernels("numpy").log_softmax(np.ascontiguousarray(z, dtype=np.float64), out)
    return out


def softmax_kl(lp, lq):
    """Mean over the rows of ``KL(p || q) = sum_a p_a (log p_a - log q_a)``.

    ``lp`` and ``lq`` are row-wise log-probabilities (e.g. from :func:`log_softmax`).
    """
    p = np.exp(lp)
    return float(np.mean(np.sum(p * (lp - lq), axis=1)))


def expected_reward(p, table):
    """Mean over the rows of ``sum_a p_a r_a``: probabilities ``p`` and rewards ``table``."""
    return float(np.mean(np.sum(p * table, axis=1)))


def tilted_log_probs(lq, table, beta):
    """``log pi*`` with ``pi* ∝ exp(lq) exp(table / beta)`` per row (``beta > 0``).

    The normalisation is the max-subtracted log-sum-exp of :func:`log_softmax`, so any reward
    scale and any ``beta > 0`` give finite log-probabilities.
    """
    return log_softmax(lq + table / beta)


def gaussian_kl(mu, mu_ref, sigma):
    """Mean over the rows of ``KL(N(mu, diag sigma^2) || N(mu_ref, diag sigma^2))``.

    With the same ``sigma`` the KL is ``sum_j (mu_j - mu_ref_j)^2 / (2 sigma_j^2)``; means of
    shape ``(n, m)`` (any float dtype, computed in float64), ``sigma`` of shape ``(m,)``.
    """
    d = (mu.astype(np.float64) - mu_ref.astype(np.float64)) / sigma
    return float(np.mean(0.5 * np.sum(d * d, axis=1)))
