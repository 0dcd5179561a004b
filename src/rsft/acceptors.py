"""Reward acceptors: which candidates of a candidate set to keep for fine-tuning.

Rewards come as a 2-D array ``r`` of shape ``(n_contexts, n_candidates)``: row ``i`` holds the
rewards of the candidates proposed for context ``i``. An acceptor's ``accept(r, rng=None,
round=0)`` returns an :class:`AcceptResult` with a boolean ``mask`` of the same shape (and
``weights`` where they mean something):

* :class:`Threshold` keeps ``r >= tau`` (``tau`` may change with the round);
* :class:`TopK` keeps the ``k`` best candidates of every context, ties broken at random
  (``k = 1`` is best-of-n);
* :class:`StatisticalRS` keeps a candidate with probability ``exp((r - r_max) / beta)``: exact
  rejection sampling from ``q(y) exp(r(y) / beta)`` when ``r_max`` bounds the reward.

Rewards are converted to C-contiguous float64 and must be finite (any scale: ``+-1e300`` is
fine) or ``-inf``, a failed candidate (a crash, a timeout, an invalid answer), which no
acceptor ever accepts; NaN and ``+inf`` are errors. ``backend`` (``"cython"`` or ``"numpy"``,
default: the process default at call time) picks the kernel; the same Generator state gives
the same mask, the same weights and the same final Generator state on both backends. Each
class documents the random numbers it draws.
"""

import math
import warnings
from dataclasses import dataclass
from typing import Optional

import numpy as np

from . import _backend, _validate

__all__ = ["Acceptor", "AcceptResult", "Threshold", "TopK", "StatisticalRS",
           "ApproximateTiltWarning"]


class ApproximateTiltWarning(UserWarning):
    """:class:`StatisticalRS` without ``r_max`` uses the per-context maximum reward, so the
    accepted candidates only approximately follow ``q(y) exp(r(y) / beta)``."""


@dataclass(frozen=True)
class AcceptResult:
    """What an acceptor kept.

    Attributes
    ----------
    mask : ndarray of bool, shape (n_contexts, n_candidates)
        True for accepted candidates.
    weights : ndarray of float64 or None
        Same shape as ``mask`` when the acceptor defines them (:class:`StatisticalRS`: the
        acceptance probabilities ``exp((r - r_max) / beta)``), else None.
    """

    mask: np.ndarray
    weights: Optional[np.ndarray] = None

    @property
    def counts(self):
        """Accepted candidates per context (int64 array of shape ``(n_contexts,)``)."""
        return self.mask.sum(axis=1, dtype=np.int64)

    @property
    def n_accepted(self):
        """Total number of accepted candidates."""
        return int(np.count_nonzero(self.mask))

    @property
    def acceptance_rate(self):
        """``n_accepted / mask.size`` (NaN for an empty candidate set)."""
        return self.n_accepted / self.mask.size if self.mask.size else math.nan


# ---------------------------------------------------------------------------------------------
# Validation helpers
# ---------------------------------------------------------------------------------------------

def _as_rewards(r):
    """``r`` as a C-contiguous float64 2-D array of finite or ``-inf`` rewards, or a clear
    error (NaN and ``+inf`` are refused)."""
    a = _validate.real_array(r, "rewards", bool_ok=False)
    if a.ndim != 2:
        hint = " (for one context use r[None, :])" if a.ndim == 1 else ""
        raise ValueError(
            f"rewards must be a 2-D array of shape (n_contexts, n_candidates), got "
            f"{a.ndim}-D shape {a.shape}{hint}")
    a = np.ascontiguousarray(a, dtype=np.float64)
    ok = np.isfinite(a) | (a == -np.inf)
    if not ok.all():
        i, j = np.unravel_index(int(np.argmin(ok)), a.shape)
        raise ValueError(f"rewards must be finite; r[{i}, {j}] = {a[i, j]} (only -inf, a "
                         "failed candidate, is allowed besides finite rewards)")
    return a


class Acceptor:
    """Base class of the reward acceptors: ``accept(r, rng=None, round=0) -> AcceptResult``.

    Calling the acceptor (``acceptor(r, rng, round)``) is the same as :meth:`accept`. The
    built-in acceptors' ``accept`` also takes ``backend=`` (the kernels of that one call);
    :class:`rsft.RSFTTrainer` passes it only to an acceptor whose ``backend`` is None, and
    only when the trainer has a backend, so a subclass without it works elsewhere.
    """

    def __init__(self, backend=None):
        self.backend = _validate.backend(backend)

    def accept(self, r, rng=None, round=0, *, backend=None):  # pragma: no cover - abstract
        """Decide which candidates to keep (see the subclasses).

        Parameters
        ----------
        r : array_like, shape (n_contexts, n_candidates)
            Finite rewards, or ``-inf`` for a failed candidate (never accepted).
        rng : None, int, SeedSequence, BitGenerator or Generator, optional
            Randomness, normalised like ``numpy.random.default_rng`` (a Generator advances).
        round : int, default 0
            Index of the training round (a ``Threshold`` schedule uses it).
        backend : {"cython", "numpy"}, optional
            Kernel backend of this call only; None: the acceptor's own (``self.backend``,
            else the process default).

        Returns
        -------
        AcceptResult
        """
        raise NotImplementedError

    def __call__(self, r, rng=None, round=0):
        return self.accept(r, rng, round)


# ---------------------------------------------------------------------------------------------
# Threshold
# ---------------------------------------------------------------------------------------------

class Threshold(Acceptor):
    """Accept the candidates whose reward reaches a threshold: ``r >= tau``.

    Parameters
    ----------
    tau : float or callable
        The threshold, or a schedule: any callable ``tau(round) -> float`` (e.g. a rising bar
        ``lambda t: 0.5 + 0.1 * t``), called once per :meth:`accept` with its ``round``.
        ``-inf`` accepts every candidate that did not fail (every reward but ``-inf``) and
        ``+inf`` nothing; NaN is an error.
    strict : bool, default False
        False: accept ``r >= tau`` (a reward equal to the threshold passes, e.g. a pass/fail
        reward of 1 with ``tau = 1``). True: accept ``r > tau``.
    backend : {"cython", "numpy"}, optional
        Kernel backend; default: the process default (:func:`rsft.get_backend`).

    Notes
    -----
    Deterministic: draws no random numbers (``rng`` is accepted for a uniform interface,
    validated and left untouched). ``weights`` is None. A failed candidate (reward ``-inf``)
    never passes, whatever ``tau``.

    Examples
    --------
    >>> import numpy as np
    >>> r = np.array([[0.2, 0.5, 0.9, -np.inf]])        # -inf: a failed candidate
    >>> Threshold(0.5).accept(r).mask
    array([[False,  True,  True, False]])
    >>> Threshold(0.5, strict=True).accept(r).n_accepted
    1
    >>> rising = Threshold(lambda t: 0.5 + 0.1 * t)     # a schedule: the bar rises per round
    >>> rising.tau_at(3), rising.accept(r, round=3).mask
    (0.8, array([[False, False,  True, False]]))
    """

    def __init__(self, tau, *, strict=False, backend=None):
        super().__init__(backend)
        if not callable(tau):
            tau = _validate.real(tau, "tau", finite=False, scalar_arrays=True)
        self.tau = tau
        self.strict = bool(strict)

    def __repr__(self):
        return f"Threshold(tau={self.tau!r}, strict={self.strict})"

    def tau_at(self, round=0):
        """The threshold used in round ``round`` (the schedule's value, or the constant)."""
        round = _validate.count(round, "round")
        if callable(self.tau):
            return _validate.real(self.tau(round), f"tau({round}) (the schedule's value)",
                                  finite=False, scalar_arrays=True)
        return self.tau

    def accept(self, r, rng=None, round=0, *, backend=None):
        """Accept ``r >= tau(round)`` (``r > tau(round)`` when ``strict``).

        Parameters
        ----------
        r : array_like, shape (n_contexts, n_candidates)
            Finite rewards, or ``-inf`` for a failed candidate (never accepted).
        rng : None, int, SeedSequence, BitGenerator or Generator, optional
            Unused (no random numbers are drawn); validated for a uniform interface.
        round : int, default 0
            Round index passed to a ``tau`` schedule.
        backend : {"cython", "numpy"}, optional
            See :meth:`Acceptor.accept`.

        Returns
        -------
        AcceptResult
            ``mask`` of shape ``r.shape``; ``weights`` None.
        """
        r = _as_rewards(r)
        if rng is not None:  # validated only: nothing is drawn, so no Generator is made
            _validate.generator(rng)
        tau = self.tau_at(round)
        # a failed candidate (-inf) never passes: for tau = -inf, r >= tau becomes r > -inf
        strict = self.strict or tau == -math.inf
        mask = np.empty(r.shape, dtype=np.bool_)
        _backend.kernels(backend, self.backend).threshold_accept(r, tau, strict, mask)
        return AcceptResult(mask)


# ---------------------------------------------------------------------------------------------
# Top-k / best-of-n
# ---------------------------------------------------------------------------------------------

class TopK(Acceptor):
    """Accept the ``k`` best candidates of every context; ``k = 1`` is best-of-n.

    Parameters
    ----------
    k : int
        Candidates kept per context, ``1 <= k <= n_candidates``. A ``k`` larger than the
        number of candidates raises ``ValueError`` at :meth:`accept` (it is not clamped: "keep
        the best 4 of 3" is almost always a configuration mistake, and clamping would silently
        turn top-k into "accept everything").
    backend : {"cython", "numpy"}, optional
        Kernel backend; default: the process default (:func:`rsft.get_backend`).

    Notes
    -----
    Ties are broken at random, never by position: every candidate gets a uniform key ``u``
    and candidates are ranked by ``(reward descending, u ascending)``. Among candidates with
    equal rewards the order is therefore a uniformly random permutation, so each of ``m``
    tied candidates competing for the last ``s`` places is kept with probability ``s / m``.
    (Only two exactly equal 53-bit uniforms, probability about ``n**2 / 2**54`` per context,
    fall back on the index.) Best-of-n of ``n`` i.i.d. rewards with CDF ``F`` on a discrete
    set ``v_1 < v_2 < ...`` keeps a reward equal to ``v_k`` with probability
    ``F(v_k)**n - F(v_{k-1})**n``.

    A failed candidate (reward ``-inf``) is never kept: the ``k`` best are chosen as usual
    (``-inf`` ranks last) and any ``-inf`` among them is dropped, so a context with fewer
    than ``k`` finite rewards keeps only its finite ones.

    Draw order (identical on both backends): ``u = rng.random(r.shape)``, i.e.
    ``n_contexts * n_candidates`` ``Generator.random`` doubles in C (row-major) order, drawn
    for every call, including ``k = n_candidates`` (which keeps every finite reward).
    ``weights`` is None. The compiled kernel selects with a heap, ``O(n log k)`` per context,
    without the GIL.

    Examples
    --------
    >>> import numpy as np
    >>> TopK(1).accept(np.array([[0.1, 0.7, 0.3]]), rng=0).mask     # best-of-3
    array([[False,  True, False]])
    >>> r = np.array([[0.1, 0.7, 0.3, 0.7], [1.0, -np.inf, -np.inf, -np.inf]])
    >>> res = TopK(2).accept(r, rng=0)      # the second context has one finite reward
    >>> res.mask
    array([[False,  True, False,  True],
           [ True, False, False, False]])
    >>> res.counts
    array([2, 1])
    """

    def __init__(self, k, *, backend=None):
        super().__init__(backend)
        self.k = _validate.count(k, "k", minimum=1)

    def __repr__(self):
        return f"TopK(k={self.k})"

    def accept(self, r, rng=None, round=0, *, backend=None):
        """Keep the ``k`` best candidates of every context (ties at random).

        Parameters
        ----------
        r : array_like, shape (n_contexts, n_candidates)
            Finite rewards, or ``-inf`` for a failed candidate (never accepted);
            ``n_candidates >= k``.
        rng : None, int, SeedSequence, BitGenerator or Generator, optional
            Randomness for the tie-break keys, normalised like ``numpy.random.default_rng``;
            a Generator advances by ``r.size`` doubles.
        round, backend
            See :meth:`Acceptor.accept` (``round`` is unused here).

        Returns
        -------
        AcceptResult
            ``mask`` with ``k`` True per row (fewer in a row with fewer than ``k`` finite
            rewards: only its finite ones); ``weights`` None.
        """
        r = _as_rewards(r)
        _validate.count(round, "round")
        if self.k > r.shape[1]:
            raise ValueError(
                f"TopK(k={self.k}) needs at least {self.k} candidates per context, got "
                f"n_candidates = {r.shape[1]}; use a smaller k or propose more candidates")
        rng = _validate.generator(rng)
        mask = np.empty(r.shape, dtype=np.bool_)
        _backend.kernels(backend, self.backend).topk_accept(rng, r, self.k, mask)
        return AcceptResult(mask)


# ---------------------------------------------------------------------------------------------
# Statistical rejection sampling
# ---------------------------------------------------------------------------------------------

class StatisticalRS(Acceptor):
    """Statistical rejection sampling: accept with probability ``exp((r - r_max) / beta)``.

    If the candidates of a context are drawn from a proposal ``q`` and ``r_max >= r(y)`` for
    every ``y``, the accepted candidates are exact samples of the tilted policy
    ``pi*(y) = q(y) exp(r(y) / beta) / Z`` (the optimum of ``E[r] - beta KL(pi || q)``), and
    a candidate is accepted with probability ``E_q[exp((r - r_max) / beta)] = Z exp(-r_max /
    beta)`` (Liu et al. 2023, Theorem 1). Small ``beta`` approaches best-of-n, large ``beta``
    approaches ``q`` itself.

    Parameters
    ----------
    beta : float
        Temperature, finite and ``> 0``.
    r_max : float or array_like of shape (n_contexts,), optional
        An upper bound of the reward (one for all contexts, or one per context). The exponent
        ``(r - r_max) / beta`` is then ``<= 0``, so nothing overflows at any reward scale. A
        reward above ``r_max`` raises ``ValueError``: the acceptance probability would exceed
        1 and the samples would not follow ``pi*``. None (the default): the maximum finite
        reward of each context's candidates, as in the RSO paper's algorithm (``-inf``
        rewards are ignored; a context whose candidates all failed accepts nothing); that
        candidate is always accepted and the tilt is only approximate (exact as the number of
        candidates grows), which an :class:`ApproximateTiltWarning` says once per acceptor.
    backend : {"cython", "numpy"}, optional
        Kernel backend; default: the process default (:func:`rsft.get_backend`).

    Notes
    -----
    Draw order (identical on both backends): ``u = rng.random(r.shape)``, i.e.
    ``n_contexts * n_candidates`` ``Generator.random`` doubles in C (row-major) order.
    Candidate ``(i, j)`` is accepted iff ``1 - u[i, j] <= exp(g)`` with
    ``g = (r[i, j] - r_max[i]) / beta``, evaluated by the sampler's exact acceptance test
    (two polynomial squeezes of ``exp``, then ``log(1 - u) <= g`` for the undecided few); a
    gap so large that ``r - r_max`` overflows gives ``g = -inf``, probability 0, which is
    what ``exp(g)`` is in double anyway. ``1 - u`` lies in ``(0, 1]``, so ``g = 0`` (the
    maximum with ``r_max=None``) is always accepted and ``g = -inf`` never: a failed
    candidate (``r = -inf``, so ``g = -inf`` and weight 0) is never accepted.

    ``weights`` holds the acceptance probabilities ``exp(g)`` (computed by numpy on both
    backends, so identical), e.g. for importance weighting or for an expected count.

    References
    ----------
    T. Liu, Y. Zhao, R. Joshi, M. Khalman, M. Saleh, P. J. Liu, J. Liu, "Statistical
    Rejection Sampling Improves Preference Optimization", ICLR 2024, arXiv:2309.06657.

    Examples
    --------
    >>> import numpy as np
    >>> acc = StatisticalRS(beta=0.5, r_max=1.0)
    >>> res = acc.accept(np.array([[1.0, 0.0, -10.0, -np.inf]]), rng=0)
    >>> res.weights.round(4)                # exp((r - 1) / 0.5)
    array([[1.    , 0.1353, 0.    , 0.    ]])
    >>> res.mask                            # r = r_max is always kept, -inf never
    array([[ True, False, False, False]])
    >>> res = acc.accept(np.zeros((1000, 100)), rng=1)   # all rewards 0: p = exp(-2) = 0.135
    >>> round(res.acceptance_rate, 2)
    0.14
    """

    def __init__(self, beta, r_max=None, *, backend=None):
        super().__init__(backend)
        self.beta = _validate.real(beta, "beta", lo=0.0, lo_open=True, scalar_arrays=True)
        if r_max is not None:
            if np.ndim(r_max) == 0:
                r_max = _validate.real(r_max, "r_max", scalar_arrays=True)
            else:
                a = np.asarray(r_max)
                if a.dtype.kind not in "iuf" or a.ndim != 1:
                    raise ValueError(
                        "r_max must be a real number or a 1-D array with one bound per "
                        f"context; got dtype {a.dtype}, shape {a.shape}")
                r_max = np.ascontiguousarray(a, dtype=np.float64)
            if not np.isfinite(r_max).all():
                raise ValueError(f"r_max must be finite, got {r_max}")
        self.r_max = r_max
        self._warned = False

    def __repr__(self):
        return f"StatisticalRS(beta={self.beta!r}, r_max={self.r_max!r})"

    def _bounds(self, r):
        """Per-context bounds (shape (n_contexts,)), checked against ``r``."""
        m = r.shape[0]
        if self.r_max is None:
            if not self._warned:
                self._warned = True
                warnings.warn(ApproximateTiltWarning(
                    "StatisticalRS(r_max=None) uses each context's maximum reward as r_max: "
                    "that candidate is always accepted and the accepted candidates only "
                    "approximately follow q*exp(r/beta); give an upper bound r_max for exact "
                    "sampling"), stacklevel=3)
            if r.shape[1] == 0:
                return np.zeros(m)
            # the row maximum skips -inf unless all failed; then any finite bound (0) gives
            # g = -inf for every candidate, i.e. nothing accepted
            bound = np.ascontiguousarray(r.max(axis=1))
            bound[bound == -np.inf] = 0.0
            return bound
        if isinstance(self.r_max, float):
            bound = np.full(m, self.r_max)
        else:
            if self.r_max.shape[0] != m:
                raise ValueError(
                    f"r_max has {self.r_max.shape[0]} entries but the rewards have {m} "
                    "contexts (rows)")
            bound = self.r_max
        over = r > bound[:, None]
        if over.any():
            i, j = np.unravel_index(int(np.argmax(over)), r.shape)
            raise ValueError(
                f"reward r[{i}, {j}] = {float(r[i, j])!r} exceeds r_max = {float(bound[i])!r}: "
                "the acceptance probability exp((r - r_max)/beta) would exceed 1 and the accepted "
                "candidates would not follow q*exp(r/beta); give an r_max that bounds every "
                "reward (or r_max=None for the approximate per-context maximum)")
        return bound

    def accept(self, r, rng=None, round=0, *, backend=None):
        """Accept each candidate with probability ``exp((r - r_max) / beta)``.

        Parameters
        ----------
        r : array_like, shape (n_contexts, n_candidates)
            Finite rewards, each ``<= r_max`` of its context, or ``-inf`` for a failed
            candidate (never accepted).
        rng : None, int, SeedSequence, BitGenerator or Generator, optional
            Randomness, normalised like ``numpy.random.default_rng``; a Generator advances
            by ``r.size`` doubles.
        round, backend
            See :meth:`Acceptor.accept` (``round`` is unused here).

        Returns
        -------
        AcceptResult
            ``mask`` of shape ``r.shape`` and ``weights``, the acceptance probabilities.
        """
        r = _as_rewards(r)
        _validate.count(round, "round")
        bound = self._bounds(r)
        rng = _validate.generator(rng)
        mask = np.empty(r.shape, dtype=np.bool_)
        log_prob = np.empty(r.shape)
        _backend.kernels(backend, self.backend).statistical_rs_accept(rng, r, bound, self.beta,
                                                                     mask, log_prob)
        return AcceptResult(mask, np.exp(log_prob))
