"""Reward acceptors: which candidates of a candidate set to keep for fine-tuning.

Rewards come in one of two layouts:

* rectangular: a 2-D array ``r`` of shape ``(n_contexts, n_candidates)``, row ``i`` holding
  the rewards of the candidates proposed for context ``i`` (one group per row);
* grouped (ragged): 1-D rewards with ``groups=``, one integer label per candidate (a prompt
  id), in any order; each distinct label is a group. Labels already sorted take a fast path
  (detected in one pass); others are grouped by a stable counting or radix sort.

An acceptor's ``accept(r, rng=None, round=0, *, groups=None, keys=None)`` returns an
:class:`AcceptResult`: a boolean ``mask`` of the input's shape, ``index`` (flat indices of
the accepted candidates) and ``group_stats`` (per-group statistics, :class:`GroupStats`):

* :class:`Threshold` keeps ``r >= tau`` (``tau`` may change with the round);
* :class:`Quantile` keeps the candidates at or above their group's ``q``-quantile;
* :class:`TopK` keeps the ``k`` best candidates of every group, ties broken at random
  (``k = 1`` is best-of-n);
* :class:`StatisticalRS` keeps a candidate with probability ``exp((r - r_max) / beta)``: exact
  rejection sampling from ``q(y) exp(r(y) / beta)`` when ``r_max`` bounds the reward;
* :class:`RSO` is RSO's Algorithm 1 (Liu et al. 2023): passes over the group's remaining
  candidates until ``k`` are accepted;
* :func:`matched_random` picks, per group, as many candidates as a result kept, uniformly at
  random: the baseline at an equal budget.

Rewards are converted to C-contiguous float64 (anything ``numpy.asarray`` converts, e.g. a
CPU torch tensor) and must be finite (any scale: ``+-1e300`` is fine) or ``-inf``, a failed
candidate (a crash, a timeout, an invalid answer), which no acceptor ever accepts and every
maximum and quantile ignores; NaN and ``+inf`` are errors (found by the kernel's own pass, so
the Generator may have advanced when they are reported). ``keys=`` (integers of the rewards'
shape, e.g. a hash of each completion's text) drops duplicates: within a group, of the valid
candidates with equal keys only the first counts, the others are never accepted.
``min_per_group=m`` (every acceptor) tops a group that kept fewer than ``m`` up with its best
remaining valid candidates (ties at random). ``backend`` (``"cython"`` or ``"numpy"``, default:
the process default at call time) picks the kernel; the same Generator state gives the same
mask, the same statistics and the same final Generator state on both backends. Each class
documents the random numbers it draws. Uniforms are always drawn in *group order*: groups by
ascending label, candidates of a group in input order (for rectangular rewards: C order).
"""

import copy
import math
import numbers
import warnings
from typing import Optional

import numpy as np

from . import _backend, _blocks, _validate

__all__ = ["Acceptor", "AcceptResult", "GroupStats", "Threshold", "Quantile", "TopK",
           "StatisticalRS", "RSO", "matched_random", "ApproximateTiltWarning"]


#: the largest k and min_per_group: the kernels hold counts in 64-bit signed integers
_MAX_COUNT = 2 ** 63 - 1


class ApproximateTiltWarning(UserWarning):
    """:class:`StatisticalRS` without ``r_max`` uses the per-group maximum reward, so the
    accepted candidates only approximately follow ``q(y) exp(r(y) / beta)``."""


# ---------------------------------------------------------------------------------------------
# Candidates in group order
# ---------------------------------------------------------------------------------------------

class _Candidates:
    """The validated input of one ``accept`` call, in group order.

    ``r``: float64 rewards in group order (duplicates already ``-inf``); ``order``: input
    positions in group order (None: the identity); ``starts``: group offsets; ``labels``: one
    label per group (ascending); ``n_duplicates``: per group; ``shape``: the input's shape;
    ``rectangular``: 2-D input (one group per row).
    """

    def __init__(self, r, order, starts, labels, n_duplicates, shape, rectangular):
        self.r, self.order, self.starts, self.labels = r, order, starts, labels
        self.n_duplicates, self.shape, self.rectangular = n_duplicates, shape, rectangular

    @property
    def n_groups(self):
        return self.starts.size - 1

    def to_input_order(self, values):
        """A per-candidate array in group order, back in the input's order and shape."""
        if self.order is None:
            return values.reshape(self.shape)
        back = np.empty_like(values)
        back[self.order] = values
        return back.reshape(self.shape)

    def group_ids(self):
        """The group index of every candidate, in group order."""
        return np.repeat(np.arange(self.n_groups), np.diff(self.starts))


def _prepare(r, groups, keys, kernels):
    """Validate ``r``, ``groups`` and ``keys`` and put the candidates in group order."""
    a = _validate.real_array(r, "rewards", bool_ok=False)
    if groups is None:
        if a.ndim != 2:
            hint = (" (for one context use r[None, :]); for candidates of several groups "
                    "pass groups=, one label per candidate") if a.ndim == 1 else ""
            raise ValueError(
                f"rewards must be a 2-D array of shape (n_contexts, n_candidates), or 1-D "
                f"with groups=; got {a.ndim}-D shape {a.shape}{hint}")
        n_rows, n_cols = a.shape
        starts = np.arange(n_rows + 1, dtype=np.int64) * n_cols
        labels = np.arange(n_rows, dtype=np.int64)
        order = None
    else:
        if a.ndim != 1:
            raise ValueError(f"with groups=, rewards must be 1-D (one reward per candidate), "
                             f"got {a.ndim}-D shape {a.shape}")
        label_of = _validate.labels(groups, a.shape[0], "groups")
        order, starts, labels = kernels.group_order(label_of)
    flat = np.ascontiguousarray(a, dtype=np.float64).reshape(-1)
    if order is not None:
        flat = flat[order]
    n_duplicates = np.zeros(starts.size - 1, dtype=np.int64)
    if keys is not None:
        key_of = _validate.labels(keys, a.shape, "keys").reshape(-1)
        if order is not None:
            key_of = key_of[order]
        else:
            flat = flat.copy()      # duplicates become -inf in our copy, never in the input
        kernels.mark_duplicates(flat, key_of, starts, n_duplicates)
    return _Candidates(flat, order, starts, labels, n_duplicates, a.shape, groups is None)


def _position(shape, flat_index):
    """``"[i, j]"`` / ``"[i]"``: a flat index in the input's shape, for the messages."""
    return "[" + ", ".join(str(int(i)) for i in np.unravel_index(flat_index, shape)) + "]"


def _raise_bad_rewards(r_input):
    """The message for a NaN or ``+inf`` reward (the kernel counted at least one)."""
    a = np.asarray(r_input, dtype=np.float64).reshape(-1)
    ok = np.isfinite(a) | (a == -np.inf)
    if ok.all():
        return
    i = int(np.argmin(ok))
    raise ValueError(f"rewards must be finite; r{_position(np.shape(r_input), i)} = {a[i]} "
                     "(only -inf, a failed candidate, is allowed besides finite rewards)")


# ---------------------------------------------------------------------------------------------
# Results and statistics
# ---------------------------------------------------------------------------------------------

class GroupStats:
    """Per-group statistics of an :class:`AcceptResult`: one array per field (a struct of
    arrays, not an object per group), groups in the order of their sorted labels (rows for
    rectangular rewards).

    Fields: ``label``, ``n_candidates``, ``n_valid`` (finite and not a duplicate),
    ``n_duplicates``, ``n_accepted``, ``acceptance_rate`` (``n_accepted / n_valid``, NaN for
    no valid candidate), ``mean_reward`` (over the valid candidates), ``mean_reward_accepted``
    (NaN when none), ``expected_acceptance`` (``mean(exp((r - r_max) / beta))`` over the
    valid candidates, with the ``r_max`` the acceptor used: the bound, or the group's maximum)
    and ``ess`` (Kish's effective sample size ``(sum w)**2 / sum w**2`` of those tilt weights
    ``w``; both None except for :class:`StatisticalRS` and :class:`RSO`), and the flags
    ``degenerate`` (at least one valid reward and all valid rewards equal: the group ranks
    nothing), ``short`` (fewer valid candidates than ``k`` or ``min_per_group``) and
    ``topped_up`` (``min_per_group`` added a candidate). Means are plain sums in group order
    divided by the count, the same on both backends.
    """

    FIELDS = ("label", "n_candidates", "n_valid", "n_duplicates", "n_accepted",
              "acceptance_rate", "mean_reward", "mean_reward_accepted", "expected_acceptance",
              "ess", "degenerate", "short", "topped_up")

    def __init__(self, **fields):
        for name in self.FIELDS:
            setattr(self, name, fields[name])
        self._sums = fields["_sums"]

    def __len__(self):
        return self.label.shape[0]

    def __repr__(self):
        return f"GroupStats({len(self)} groups: {', '.join(self.FIELDS)})"

    def as_dict(self):
        """The fields as a dict of arrays (e.g. for ``pandas.DataFrame``)."""
        return {name: getattr(self, name) for name in self.FIELDS}

    def summary(self):
        """The same statistics over all groups, as one dict of Python numbers.

        Counts are totals (``n_groups`` added); ``acceptance_rate``, the means and
        ``expected_acceptance`` pool every valid candidate; ``ess`` is Kish's of all tilt
        weights together; ``degenerate``, ``short`` and ``topped_up`` count flagged groups.
        """
        s = self._sums
        n_valid = int(self.n_valid.sum())
        n_accepted = int(self.n_accepted.sum())
        out = {"n_groups": len(self), "n_candidates": int(self.n_candidates.sum()),
               "n_valid": n_valid, "n_duplicates": int(self.n_duplicates.sum()),
               "n_accepted": n_accepted,
               "acceptance_rate": n_accepted / n_valid if n_valid else math.nan,
               "mean_reward": s["reward"] / n_valid if n_valid else math.nan,
               "mean_reward_accepted": (s["reward_accepted"] / n_accepted if n_accepted
                                        else math.nan),
               "expected_acceptance": None, "ess": None}
        if self.ess is not None:
            out["expected_acceptance"] = s["weight"] / n_valid if n_valid else math.nan
            out["ess"] = s["weight"] ** 2 / s["weight2"] if s["weight2"] > 0 else math.nan
        for flag in ("degenerate", "short", "topped_up"):
            out[flag] = int(np.count_nonzero(getattr(self, flag)))
        return out


def _ratio(num, den):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.maximum(den, 1), math.nan)


def _group_stats(cand, accepted, n_valid, n_accepted, is_short, is_topped_up, tilt):
    """:class:`GroupStats` from a call's candidates and kernel outputs (numpy only, so both
    backends give the same numbers); ``tilt`` is ``(beta, r_max per group)`` or None."""
    n_groups, r = cand.n_groups, cand.r
    gid = cand.group_ids()
    valid = np.isfinite(r)
    valid_r = np.where(valid, r, 0.0)
    # bincount adds in candidate order: a plain sequential sum per group
    sum_reward = np.bincount(gid, weights=valid_r, minlength=n_groups)
    sum_accepted = np.bincount(gid, weights=np.where(accepted, valid_r, 0.0),
                               minlength=n_groups)
    highest, lowest = np.full(n_groups, -np.inf), np.full(n_groups, np.inf)
    if r.size:
        nonempty = np.diff(cand.starts) > 0
        first = cand.starts[:-1][nonempty]
        highest[nonempty] = np.maximum.reduceat(np.where(valid, r, -np.inf), first)
        lowest[nonempty] = np.minimum.reduceat(np.where(valid, r, np.inf), first)
    sums = {"reward": float(valid_r.sum()),
            "reward_accepted": float(np.where(accepted, valid_r, 0.0).sum())}
    expected = ess = None
    if tilt is not None:
        beta, r_max = tilt
        if r_max is None:                       # RSO: the group's maximum valid reward
            r_max = np.where(highest > -np.inf, highest, 0.0)
        with np.errstate(over="ignore", invalid="ignore"):
            w = np.where(valid, np.exp((valid_r - r_max[gid]) / beta), 0.0)
        sum_w = np.bincount(gid, weights=w, minlength=n_groups)
        sum_w2 = np.bincount(gid, weights=w * w, minlength=n_groups)
        expected = _ratio(sum_w, n_valid)
        with np.errstate(divide="ignore", invalid="ignore"):
            ess = np.where(sum_w2 > 0, sum_w * sum_w / np.where(sum_w2 > 0, sum_w2, 1.0),
                           math.nan)
        sums["weight"], sums["weight2"] = float(w.sum()), float((w * w).sum())
    return GroupStats(
        label=cand.labels, n_candidates=np.diff(cand.starts), n_valid=n_valid,
        n_duplicates=cand.n_duplicates, n_accepted=n_accepted,
        acceptance_rate=_ratio(n_accepted, n_valid), mean_reward=_ratio(sum_reward, n_valid),
        mean_reward_accepted=_ratio(sum_accepted, n_accepted),
        expected_acceptance=expected, ess=ess,
        degenerate=(n_valid > 0) & (highest == lowest), short=is_short,
        topped_up=is_topped_up, _sums=sums)


class AcceptResult:
    """What an acceptor kept.

    Attributes
    ----------
    mask : ndarray of bool, the input's shape
        True for accepted candidates.
    index : ndarray of int64
        Flat indices of the accepted candidates, ascending (``np.flatnonzero(mask)``).
    weights : ndarray of float64 or None
        The input's shape when the acceptor defines them (:class:`StatisticalRS`: the
        acceptance probabilities ``exp((r - r_max) / beta)``, 0 for failed and duplicate
        candidates), else None.
    group_stats : GroupStats or None
        Per-group statistics (None for a result built by hand from a mask).

    ``index``, ``weights`` and ``group_stats`` are computed on first use (with numpy, the
    same on both backends), so a training loop that needs only the mask does not pay for
    them.
    """

    def __init__(self, mask, weights=None, *, _call=None):
        self.mask = mask
        self._weights = weights
        self._call = _call          # (candidates, kernel outputs, tilt) of an accept call
        self._index = self._stats = None

    def __repr__(self):
        return f"AcceptResult({self.n_accepted} of {self.mask.size} accepted)"

    @property
    def weights(self):
        if self._weights is None and self._call is not None and self._call["weights"]:
            cand = self._call["candidates"]
            beta, r_max = self._call["tilt"]
            with np.errstate(over="ignore", invalid="ignore"):
                w = np.exp((cand.r - r_max[cand.group_ids()]) / beta)
            self._weights = cand.to_input_order(w)
        return self._weights

    @property
    def index(self):
        if self._index is None:
            self._index = np.flatnonzero(self.mask)
        return self._index

    @property
    def group_stats(self):
        if self._stats is None and self._call is not None:
            c = self._call
            self._stats = _group_stats(c["candidates"], c["accepted"], c["n_valid"],
                                       c["n_accepted"], c["is_short"], c["is_topped_up"],
                                       c["tilt"])
        return self._stats

    def summary(self):
        """:meth:`GroupStats.summary` of this result's groups."""
        if self.group_stats is None:
            raise ValueError("this AcceptResult was built from a mask alone: it has no "
                             "group statistics (use the result of an acceptor's accept)")
        return self.group_stats.summary()

    @property
    def counts(self):
        """Accepted candidates per context (rectangular rewards: per row) or per group
        (grouped rewards, in the order of the sorted labels); int64."""
        if self._call is not None and not self._call["candidates"].rectangular:
            return self._call["n_accepted"]
        return self.mask.sum(axis=1, dtype=np.int64)

    @property
    def n_accepted(self):
        """Total number of accepted candidates."""
        return int(np.count_nonzero(self.mask))

    @property
    def acceptance_rate(self):
        """``n_accepted / mask.size`` (NaN for an empty candidate set)."""
        return self.n_accepted / self.mask.size if self.mask.size else math.nan


def _call_kernel(kernel, rng, cand, params, min_per_group, *, tilt, weights, blocks=None):
    """Allocate the outputs, run one acceptor kernel on the candidates and wrap the result;
    returns ``(the kernel's bad-input count, AcceptResult)``.

    ``blocks`` (the blocked stream): None for one call on all groups with ``rng``, else
    ``(bounds, children, n_threads)``: the kernel runs once per block of groups ``(g0, g1)``
    with that block's child Generator, on views of the candidates, the per-group parameters
    and the outputs (blocks never share a group, so they write disjoint slices), on up to
    ``n_threads`` Python threads (each call releases the GIL for its work)."""
    n_groups = cand.n_groups
    accepted = np.empty(cand.r.size, dtype=np.bool_)
    call = {"candidates": cand, "accepted": accepted,
            "n_valid": np.empty(n_groups, dtype=np.int64),
            "n_accepted": np.empty(n_groups, dtype=np.int64),
            "is_short": np.empty(n_groups, dtype=np.bool_),
            "is_topped_up": np.empty(n_groups, dtype=np.bool_),
            "tilt": tilt, "weights": weights}
    per_group = ("n_valid", "n_accepted", "is_short", "is_topped_up")
    if blocks is None:
        n_bad = kernel(rng, cand.r, cand.starts, *params, min_per_group, accepted,
                       *(call[name] for name in per_group))
    else:
        bounds, children, n_threads = blocks

        def run_block(b):
            g0, g1 = bounds[b]
            lo, hi = int(cand.starts[g0]), int(cand.starts[g1])
            # a parameter with one entry per group (TopK's k, StatisticalRS's r_max) is sliced
            block_params = [p[g0:g1] if isinstance(p, np.ndarray) and p.shape == (n_groups,)
                            else p for p in params]
            return kernel(children[b], cand.r[lo:hi], cand.starts[g0:g1 + 1] - lo,
                          *block_params, min_per_group, accepted[lo:hi],
                          *(call[name][g0:g1] for name in per_group))

        n_bad = sum(_blocks.run_in_threads(run_block, len(bounds), n_threads))
    return n_bad, AcceptResult(cand.to_input_order(accepted), _call=call)


# ---------------------------------------------------------------------------------------------
# The acceptor base class: one kernel call per accept
# ---------------------------------------------------------------------------------------------

class Acceptor:
    """Base class of the reward acceptors: ``accept(r, rng=None, round=0, *, groups=None,
    keys=None) -> AcceptResult``.

    Calling the acceptor (``acceptor(r, rng, round)``) is the same as :meth:`accept`. The
    built-in acceptors' ``accept`` also takes ``backend=`` (the kernels of that one call);
    :class:`rsft.RSFTTrainer` passes it only to an acceptor whose ``backend`` is None, and
    only when the trainer has a backend, so a subclass without it works elsewhere.
    ``min_per_group`` (every built-in acceptor): see the module docstring.
    """

    #: the tilt weights and their statistics make sense (StatisticalRS, RSO)
    _tilted = False

    def __init__(self, backend=None, min_per_group=0):
        self.backend = _validate.backend(backend)
        self.min_per_group = _validate.count(min_per_group, "min_per_group",
                                             maximum=_MAX_COUNT)

    def accept(self, r, rng=None, round=0, *, groups=None, keys=None, backend=None,
               n_threads=None, block_size=None):
        """Decide which candidates to keep (see the subclasses).

        Parameters
        ----------
        r : array_like, shape (n_contexts, n_candidates), or (n,) with ``groups``
            Finite rewards, or ``-inf`` for a failed candidate (never accepted).
        rng : None, int, SeedSequence, BitGenerator or Generator, optional
            Randomness, normalised like ``numpy.random.default_rng`` (a Generator advances).
        round : int, default 0
            Index of the training round (a ``Threshold`` or ``Quantile`` schedule uses it).
        groups : array_like of int, shape (n,), optional
            One group label per candidate (any order), for 1-D rewards.
        keys : array_like of int, the shape of ``r``, optional
            Deduplication keys: within a group, valid candidates with equal keys count once
            (the first; the others are never accepted).
        backend : {"cython", "numpy"}, optional
            Kernel backend of this call only; None: the acceptor's own (``self.backend``,
            else the process default).
        n_threads : int, optional
            Giving it (1 included) selects the blocked stream; its blocks then run on up to
            ``n_threads`` threads (an integer in ``[1, 256]``). The result never depends on
            it.
        block_size : int, optional
            Giving it selects the blocked stream with blocks of ``block_size`` groups (rows
            of rectangular rewards; ``>= 1``); default 65536.

        Returns
        -------
        AcceptResult

        Notes
        -----
        The **blocked stream** (with ``n_threads`` or ``block_size``): the groups, in group
        order (rows; or ascending labels), are cut into blocks of ``block_size`` groups (the
        last one shorter), and block ``b`` is decided as if it were the whole input, drawing
        from its own child ``rng.spawn(n_blocks)[b]`` (derived as for
        :meth:`rsft.RejectionSampler.sample`; an acceptor that draws nothing ignores them).
        Masks and statistics depend on the seed and ``block_size`` only, the same on both
        backends and for every ``n_threads``; ``rsft.dask.accept`` follows the same rule.
        """
        round = _validate.count(round, "round")
        blocked = n_threads is not None or block_size is not None
        if n_threads is not None:
            n_threads = _validate.n_threads(n_threads)
        if block_size is not None:
            block_size = _validate.count(block_size, "block_size", minimum=1)
        kernels = _backend.kernels(backend, self.backend)
        cand = _prepare(r, groups, keys, kernels)
        self._check(cand)
        params = self._parameters(cand, round)
        rng = _validate.generator(rng) if (rng is not None or self._draws()) else None
        blocks = None
        if blocked:
            bounds = _blocks.block_bounds(cand.n_groups, block_size or _blocks.DEFAULT_BLOCK_SIZE)
            children = ([None] * len(bounds) if rng is None
                        else _blocks.child_generators(rng, len(bounds)))
            blocks = (bounds, children, n_threads or 1)
        n_bad, result = _call_kernel(self._kernel(kernels), rng, cand, params,
                                     self.min_per_group, tilt=self._tilt(params),
                                     weights=isinstance(self, StatisticalRS), blocks=blocks)
        if n_bad:
            _raise_bad_rewards(r)
            self._raise_above_bound(r, cand, params)
        return result

    def __call__(self, r, rng=None, round=0, **kwargs):
        return self.accept(r, rng, round, **kwargs)

    # -- what each acceptor defines --------------------------------------------------------
    def _draws(self):
        """Whether the kernel draws (then ``rng=None`` means fresh entropy)."""
        return self.min_per_group > 0

    def _check(self, cand):
        """Checks of the candidates that belong to this acceptor alone."""

    def _parameters(self, cand, round):  # pragma: no cover - abstract
        """The kernel's arguments between ``starts`` and ``min_per_group``."""
        raise NotImplementedError

    def _kernel(self, kernels):  # pragma: no cover - abstract
        raise NotImplementedError

    def _tilt(self, params):
        return None

    def _for_groups(self, g0, g1, n_groups, rectangular=True):
        """This acceptor for the groups ``g0:g1`` of ``n_groups`` alone (``rsft.dask.accept``
        sends each block its own): per-group parameters are sliced."""
        return self

    def _raise_above_bound(self, r, cand, params):
        raise AssertionError("the kernel reported bad rewards that were not found")


def _at_round(value, round, name, **limits):
    """A constant parameter, or a schedule's value at ``round``, checked like the constant."""
    round = _validate.count(round, "round")
    if callable(value):
        return _validate.real(value(round), f"{name}({round}) (the schedule's value)",
                              scalar_arrays=True, **limits)
    return value


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
    min_per_group : int, default 0
        Top every group that kept fewer up to this many with its best remaining candidates.
    backend : {"cython", "numpy"}, optional
        Kernel backend; default: the process default (:func:`rsft.get_backend`).

    Notes
    -----
    Deterministic: draws no random numbers (``rng`` is accepted for a uniform interface,
    validated and left untouched), except with ``min_per_group > 0``: then
    ``rng.random(n_candidates)`` in group order, the top-up's tie keys. ``weights`` is None.
    A failed candidate (reward ``-inf``) never passes, whatever ``tau``.

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

    def __init__(self, tau, *, strict=False, min_per_group=0, backend=None):
        super().__init__(backend, min_per_group)
        if not callable(tau):
            tau = _validate.real(tau, "tau", finite=False, scalar_arrays=True)
        self.tau = tau
        self.strict = bool(strict)

    def __repr__(self):
        return f"Threshold(tau={self.tau!r}, strict={self.strict})"

    def tau_at(self, round=0):
        """The threshold used in round ``round`` (the schedule's value, or the constant)."""
        return _at_round(self.tau, round, "tau", finite=False)

    def _parameters(self, cand, round):
        tau = self.tau_at(round)
        # a failed candidate (-inf) never passes: for tau = -inf, r >= tau becomes r > -inf
        return tau, self.strict or tau == -math.inf

    def _kernel(self, kernels):
        return kernels.threshold_accept


class Quantile(Acceptor):
    """Accept the candidates at or above their group's ``q``-quantile reward.

    Parameters
    ----------
    q : float in [0, 1] or callable
        The quantile level, or a schedule ``q(round) -> float`` (e.g. trlx's rising
        percentile, ``lambda t: min(0.7 + 0.05 * t, 0.95)``).
    min_per_group : int, default 0
        Top every group that kept fewer up to this many with its best remaining candidates.
    backend : {"cython", "numpy"}, optional
        Kernel backend; default: the process default (:func:`rsft.get_backend`).

    Notes
    -----
    The quantile is ``numpy.quantile``'s default ("linear", Hyndman-Fan type 7) over the
    group's valid rewards ``x[0] <= ... <= x[m-1]``: ``h = (m - 1) q``, interpolating
    between ``x[floor(h)]`` and the next value; it is computed bit for bit as numpy does, so
    ``r >= numpy.quantile(valid, q)`` is exactly the rule (except where the difference of the
    two values overflows, rewards near both ends of the double range: numpy then gives NaN
    or ``-inf``, rsft the weighted mean ``x[i] (1 - t) + x[i+1] t``). Every candidate tied at
    or above the quantile is kept, so a group can keep more than ``(1 - q) m`` (all of them
    when all rewards are equal); ``q = 0`` keeps every valid candidate, ``q = 1`` the maximum and its
    ties. Failed (``-inf``) and duplicate candidates are ignored and never kept; a group
    without a valid candidate keeps nothing. Draws nothing unless ``min_per_group > 0``
    (then ``rng.random(n_candidates)`` in group order, the top-up's tie keys).

    Examples
    --------
    >>> import numpy as np
    >>> r = np.array([[1.0, 2.0, 3.0, 4.0, -np.inf]])
    >>> Quantile(0.5).accept(r).mask               # the median of 1..4 is 2.5
    array([[False, False,  True,  True, False]])
    """

    def __init__(self, q, *, min_per_group=0, backend=None):
        super().__init__(backend, min_per_group)
        if not callable(q):
            q = _validate.real(q, "q", lo=0.0, hi=1.0, scalar_arrays=True)
        self.q = q

    def __repr__(self):
        return f"Quantile(q={self.q!r})"

    def q_at(self, round=0):
        """The quantile level used in round ``round`` (the schedule's value, or the constant)."""
        return _at_round(self.q, round, "q", lo=0.0, hi=1.0)

    def _parameters(self, cand, round):
        return (self.q_at(round),)

    def _kernel(self, kernels):
        return kernels.quantile_accept


class TopK(Acceptor):
    """Accept the ``k`` best candidates of every group; ``k = 1`` is best-of-n.

    Parameters
    ----------
    k : int
        Candidates kept per group, ``>= 1``. For rectangular rewards ``k <= n_candidates``:
        a larger ``k`` raises ``ValueError`` at :meth:`accept` (it is not clamped: "keep the
        best 4 of 3" is almost always a configuration mistake). A group of grouped rewards
        with fewer than ``k`` valid candidates keeps them all and is flagged ``short``.
    min_per_group : int, default 0
        Top every group that kept fewer up to this many (beyond ``k``: the same as a larger
        ``k``, flagged ``topped_up``).
    backend : {"cython", "numpy"}, optional
        Kernel backend; default: the process default (:func:`rsft.get_backend`).

    Notes
    -----
    Ties are broken at random, never by position: every candidate gets a uniform key ``u``
    and candidates are ranked by ``(reward descending, u ascending)``. Among candidates with
    equal rewards the order is therefore a uniformly random permutation, so each of ``m``
    tied candidates competing for the last ``s`` places is kept with probability ``s / m``.
    (Only two exactly equal 53-bit uniforms, probability about ``n**2 / 2**54`` per group,
    fall back on the position.) Best-of-n of ``n`` i.i.d. rewards with CDF ``F`` on a
    discrete set ``v_1 < v_2 < ...`` keeps a reward equal to ``v_k`` with probability
    ``F(v_k)**n - F(v_{k-1})**n``.

    A failed or duplicate candidate is never kept: the ``k`` best are chosen as usual
    (``-inf`` ranks last) and any ``-inf`` among them is dropped, so a group with fewer than
    ``k`` valid rewards keeps only those.

    Draw order (identical on both backends): ``u = rng.random(n_candidates)`` in group order
    (rectangular rewards: ``rng.random(r.shape)``, C order), drawn for every call, including
    ``k >= n_candidates``. ``weights`` is None. The compiled kernel selects with a heap,
    ``O(n log k)`` per group, without the GIL.

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

    def __init__(self, k, *, min_per_group=0, backend=None):
        super().__init__(backend, min_per_group)
        self.k = _validate.count(k, "k", minimum=1, maximum=_MAX_COUNT)

    def __repr__(self):
        return f"TopK(k={self.k})"

    def _draws(self):
        return True

    def _check(self, cand):
        if cand.rectangular and self.k > cand.shape[1]:
            raise ValueError(
                f"TopK(k={self.k}) needs at least {self.k} candidates per context, got "
                f"n_candidates = {cand.shape[1]}; use a smaller k or propose more candidates")

    def _parameters(self, cand, round):
        return (np.full(cand.n_groups, self.k, dtype=np.int64),)

    def _kernel(self, kernels):
        return kernels.topk_accept


class StatisticalRS(Acceptor):
    """Statistical rejection sampling: accept with probability ``exp((r - r_max) / beta)``.

    If the candidates of a group are drawn from a proposal ``q`` and ``r_max >= r(y)`` for
    every ``y``, the accepted candidates are exact samples of the tilted policy
    ``pi*(y) = q(y) exp(r(y) / beta) / Z`` (the optimum of ``E[r] - beta KL(pi || q)``), and
    a candidate is accepted with probability ``E_q[exp((r - r_max) / beta)] = Z exp(-r_max /
    beta)`` (Liu et al. 2023, Theorem 1). Small ``beta`` approaches best-of-n, large ``beta``
    approaches ``q`` itself. Each candidate is decided independently; :class:`RSO` is the
    paper's sequential algorithm with a target count.

    Parameters
    ----------
    beta : float
        Temperature, finite and ``> 0``.
    r_max : float or array_like of shape (n_groups,), optional
        An upper bound of the reward (one for all groups, or one per group: per row of
        rectangular rewards, per sorted label of grouped ones). The exponent is then
        ``<= 0``, so nothing overflows at any reward scale. A valid reward above ``r_max``
        raises ``ValueError``: the acceptance probability would exceed 1 and the samples would
        not follow ``pi*``. None (the default): the maximum valid reward of each group, as in
        the RSO paper's algorithm (``-inf`` rewards and duplicates are ignored; a group whose
        candidates all failed accepts nothing); that candidate is always accepted and the
        tilt is only approximate (exact as the number of candidates grows), which an
        :class:`ApproximateTiltWarning` says once per acceptor.
    min_per_group : int, default 0
        Top every group that kept fewer up to this many with its best remaining candidates.
    backend : {"cython", "numpy"}, optional
        Kernel backend; default: the process default (:func:`rsft.get_backend`).

    Notes
    -----
    Draw order (identical on both backends): ``u = rng.random(n_candidates)`` in group order
    (rectangular rewards: ``rng.random(r.shape)``, C order). Candidate ``i`` of group ``g``
    is accepted iff ``1 - u[i] <= exp(x)`` with ``x = (r[i] - r_max[g]) / beta``, evaluated by
    the sampler's exact acceptance test (two polynomial squeezes of ``exp``, then ``log(1 -
    u) <= x`` for the undecided few); a gap so large that ``r - r_max`` overflows gives ``x =
    -inf``, probability 0, which is what ``exp(x)`` is in double anyway. ``1 - u`` lies in
    ``(0, 1]``, so ``x = 0`` (the maximum with ``r_max=None``) is always accepted and ``x =
    -inf`` never. The top-up (``min_per_group``) reuses ``u`` as tie keys.

    ``weights`` holds the acceptance probabilities ``exp(x)`` (computed by numpy on first
    use, so identical on both backends), e.g. for importance weighting or an expected count;
    ``group_stats`` adds ``expected_acceptance`` and ``ess``.

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

    _tilted = True

    def __init__(self, beta, r_max=None, *, min_per_group=0, backend=None):
        super().__init__(backend, min_per_group)
        self.beta = _validate.real(beta, "beta", lo=0.0, lo_open=True, scalar_arrays=True)
        if r_max is not None:
            if np.ndim(r_max) == 0:
                r_max = _validate.real(r_max, "r_max", scalar_arrays=True)
            else:
                a = np.asarray(r_max)
                if a.dtype.kind not in "iuf" or a.ndim != 1:
                    raise ValueError(
                        "r_max must be a real number or a 1-D array with one bound per context "
                        f"(group); got dtype {a.dtype}, shape {a.shape}")
                r_max = np.ascontiguousarray(a, dtype=np.float64)
            if not np.isfinite(r_max).all():
                raise ValueError(f"r_max must be finite, got {r_max}")
        self.r_max = r_max
        self._warned = False

    def __repr__(self):
        return f"StatisticalRS(beta={self.beta!r}, r_max={self.r_max!r})"

    def _draws(self):
        return True

    def _parameters(self, cand, round):
        n_groups = cand.n_groups
        if self.r_max is None:
            if not self._warned:
                self._warned = True
                warnings.warn(ApproximateTiltWarning(
                    "StatisticalRS(r_max=None) uses each group's maximum reward as r_max: "
                    "that candidate is always accepted and the accepted candidates only "
                    "approximately follow q*exp(r/beta); give an upper bound r_max for exact "
                    "sampling"), stacklevel=3)
            return np.zeros(n_groups), True, self.beta      # the kernel writes the maxima
        if isinstance(self.r_max, float):
            return np.full(n_groups, self.r_max), False, self.beta
        self._check_bounds(n_groups, cand.rectangular)
        return self.r_max.copy(), False, self.beta

    def _check_bounds(self, n_groups, rectangular):
        if self.r_max.shape[0] != n_groups:
            what = "contexts (rows)" if rectangular else "groups (distinct labels)"
            raise ValueError(f"r_max has {self.r_max.shape[0]} entries but the rewards have "
                             f"{n_groups} {what}")

    def _for_groups(self, g0, g1, n_groups, rectangular=True):
        if self.r_max is None or isinstance(self.r_max, float):
            return self
        self._check_bounds(n_groups, rectangular)
        part = copy.copy(self)
        part.r_max = self.r_max[g0:g1].copy()
        return part

    def _kernel(self, kernels):
        return kernels.statistical_rs_accept

    def _tilt(self, params):
        r_max, _, beta = params
        return beta, r_max

    def _raise_above_bound(self, r, cand, params):
        r_max = params[0]
        bound = cand.to_input_order(r_max[cand.group_ids()]).reshape(-1)
        a = np.asarray(r, dtype=np.float64).reshape(-1)
        i = int(np.argmax(a > bound))
        raise ValueError(
            f"reward r{_position(cand.shape, i)} = {float(a[i])!r} exceeds r_max = "
            f"{float(bound[i])!r}: the acceptance probability exp((r - r_max)/beta) would "
            "exceed 1 and the accepted candidates would not follow q*exp(r/beta); give an "
            "r_max that bounds every reward (or r_max=None for the approximate per-group "
            "maximum)")


class RSO(Acceptor):
    """RSO's statistical rejection sampling, Algorithm 1 of Liu et al. (2023), per group.

    For each group: repeated passes over the group's remaining candidates, in order; at the
    start of each pass ``r_max`` is the maximum reward over the remaining candidates; a
    candidate is accepted when a uniform ``u < exp((r - r_max) / beta)`` and then leaves the
    pool; the group stops when ``k`` are accepted (possibly mid-pass) or the pool is empty.
    A group with fewer than ``k`` valid candidates accepts them all and is flagged ``short``
    (never an error; the published code crashes on the empty pool). Each pass accepts the
    pool's maximum (``exp(0) = 1 > u``), so a group needs at most ``k`` passes.

    Parameters
    ----------
    beta : float
        Temperature, finite and ``> 0``: small ``beta`` approaches top-k, large ``beta`` a
        uniform pick of ``k``.
    k : int
        Candidates to accept per group (``num_samples`` in the paper), ``>= 1``.
    min_per_group : int, default 0
        Top every group that kept fewer up to this many with its best remaining candidates
        (only ``min_per_group > k`` can add any).
    backend : {"cython", "numpy"}, optional
        Kernel backend; default: the process default (:func:`rsft.get_backend`).

    Notes
    -----
    Failed and duplicate candidates never enter the pool (the published code's dict of
    completions also counts duplicates once). Draw order (identical on both backends): all
    groups run in lockstep, pass by pass; pass ``p`` draws ``rng.random(c)``, one uniform for
    each candidate still in the pool of every open group (groups by ascending label,
    candidates in input order), including the candidates after the point where a group
    reaches ``k`` mid-pass (their draws are unused). One group alone therefore uses the
    published algorithm's draws in the published order. With ``min_per_group > 0``,
    ``rng.random(n_candidates)`` (group order) follows, the top-up's tie keys. The test
    ``u < exp(x)`` evaluates ``exp`` (the C library's and numpy's agree on every machine
    tested; a one-ulp difference could flip a decision with probability about 1e-16).
    ``group_stats`` adds ``expected_acceptance`` (with the first pass's ``r_max``, the
    group's maximum) and ``ess``.

    References
    ----------
    T. Liu et al., "Statistical Rejection Sampling Improves Preference Optimization", ICLR
    2024, arXiv:2309.06657, Algorithm 1.

    Examples
    --------
    >>> import numpy as np
    >>> r = np.array([0.9, 0.1, 0.5, 0.8, -np.inf, 0.2])
    >>> res = RSO(beta=0.5, k=2).accept(r, rng=0, groups=[7, 7, 7, 3, 3, 3])
    >>> res.group_stats.label, res.group_stats.n_accepted
    (array([3, 7]), array([2, 2]))
    """

    _tilted = True

    def __init__(self, beta, k, *, min_per_group=0, backend=None):
        super().__init__(backend, min_per_group)
        self.beta = _validate.real(beta, "beta", lo=0.0, lo_open=True, scalar_arrays=True)
        self.k = _validate.count(k, "k", minimum=1, maximum=_MAX_COUNT)

    def __repr__(self):
        return f"RSO(beta={self.beta!r}, k={self.k})"

    def _draws(self):
        return True

    def _parameters(self, cand, round):
        return self.beta, self.k

    def _kernel(self, kernels):
        return kernels.rso_accept

    def _tilt(self, params):
        return params[0], None


# ---------------------------------------------------------------------------------------------
# The matched random baseline
# ---------------------------------------------------------------------------------------------

def matched_random(result, rng=None, *, backend=None):
    """The honest baseline at an equal budget: per group, as many candidates as ``result``
    kept, chosen uniformly at random among the group's valid (finite, not duplicate)
    candidates.

    Parameters
    ----------
    result : AcceptResult
        What an acceptor's ``accept`` returned (its groups, keys and failed candidates are
        reused).
    rng : None, int, SeedSequence, BitGenerator or Generator, optional
        Randomness, normalised like ``numpy.random.default_rng``.
    backend : {"cython", "numpy"}, optional
        Kernel backend; default: the process default.

    Returns
    -------
    AcceptResult
        Same shape and groups; its ``group_stats`` have the same ``n_accepted`` and the
        rewards of the random pick (``mean_reward_accepted`` is the baseline to compare).

    Notes
    -----
    Draw order: ``rng.random(n_candidates)`` in group order; the group's valid candidates
    with the ``c`` smallest uniforms are picked (a uniformly random ``c``-subset). A public
    study found best-of-n no better than such a pick (0.790 vs 0.795): compare before
    trusting a filter.

    Examples
    --------
    >>> import numpy as np
    >>> r = np.array([[0.1, 0.9, 0.5, -np.inf], [0.3, 0.2, 0.8, 0.4]])
    >>> best = TopK(1).accept(r, rng=0)
    >>> matched_random(best, rng=1).counts      # one per context, -inf never
    array([1, 1])
    """
    if not isinstance(result, AcceptResult) or result._call is None:
        raise TypeError("matched_random needs the AcceptResult of an rsft acceptor's accept, "
                        f"got {type(result).__name__}")
    kernels = _backend.kernels(backend)
    rng = _validate.generator(rng)
    cand = result._call["candidates"]
    # every valid candidate ties at 0: top-k then picks those with the smallest uniforms
    ties = _Candidates(np.where(np.isfinite(cand.r), 0.0, -np.inf), cand.order, cand.starts,
                       cand.labels, cand.n_duplicates, cand.shape, cand.rectangular)
    _, pick = _call_kernel(kernels.topk_accept, rng, ties, (result._call["n_accepted"],), 0,
                           tilt=None, weights=False)
    pick._call["candidates"] = cand      # the statistics of the real rewards
    return pick
