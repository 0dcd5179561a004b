"""Rejection sampling from a target density under an envelope ``M`` times a proposal."""

import math
import warnings
from dataclasses import dataclass

import numpy as np

from . import _backend, _blocks, _envelope, _validate
from ._program import Status
from ._distribution import Distribution
from .errors import (EnvelopeViolationError, EnvelopeViolationWarning, LargeLogMWarning,
                     ProposalBudgetExceeded)

__all__ = ["RejectionSampler", "SamplingStats", "find_log_M"]

#: the default budget never exceeds this plus 1000 proposals per requested sample (about
#: 20 s of compiled sampling): a pair whose M is astronomically large fails instead of hanging.
_DEFAULT_BUDGET_CAP = 10 ** 9
#: the largest max_proposals accepted (a count that fits the kernels' 64-bit counters with room)
MAX_PROPOSALS = 2 ** 62
#: log p - log q - log M up to this is attributed to floating-point rounding, not a violation
#: (a relative density error of 1e-9, far below anything a sample could show).
VIOLATION_TOL = 1e-9
_LOG_2 = math.log(2.0)


def default_budget(proposals_per_sample, n):
    """The default ``max_proposals`` of a call for ``n`` samples: ``ceil(rate*(20 n + 100)) +
    10000`` with ``rate`` the expected proposals per sample, capped at ``1e9 + 1000 n``."""
    cap = _DEFAULT_BUDGET_CAP + 1000 * n
    b = proposals_per_sample * (20.0 * n + 100.0) + 10000.0
    return cap if not b < cap else int(math.ceil(b))


@dataclass(frozen=True)
class SamplingStats:
    """Counts of one ``sample_with_stats`` call.

    Attributes
    ----------
    n_proposed : int
        Proposals examined up to the n-th acceptance (negative binomial with mean ``n*M`` for
        a normalised target and exact ``M``). The generator advanced by whole chunks, so a few
        more proposals may have been drawn and discarded.
    n_accepted : int
        Samples returned (the same arrays on both backends; ``max_log_ratio`` may differ in the
        last bits, since numpy's SIMD ``log`` and the C library's can differ by an ulp).
    acceptance_rate : float
        ``n_accepted / n_proposed`` (NaN when nothing was proposed).
    max_log_ratio : float
        Largest ``log p(x) - log q(x) - log M`` over the examined proposals; ``<= 0`` when the
        envelope held (``-inf`` when nothing was examined).
    """

    n_proposed: int
    n_accepted: int
    acceptance_rate: float
    max_log_ratio: float


class RejectionSampler:
    """Exact samples of ``target`` by rejection from ``proposal`` under the envelope ``M``.

    Draw ``x ~ q`` and ``u ~ U[0, 1)``; accept when ``(1 - u) * M * q(x) <= p(x)``.

    Parameters
    ----------
    target : Distribution or callable
        A built-in distribution, or a vectorised ``logpdf(x) -> ndarray`` (it may be
        unnormalised). A callable is called once per chunk with a read-only 1-D float64 array
        and must return real log-densities of the same shape (``-inf`` allowed, NaN and ``+inf``
        are errors); an exception it raises propagates unchanged.
    proposal : Normal, Uniform, Exponential, Laplace, StudentT or Gamma
    log_M : float, optional
        ``log M``. For a built-in pair it is computed exactly when omitted (``log_M`` attribute);
        a pair with no finite envelope raises :class:`rsft.NoEnvelopeError` (a ``ValueError``)
        saying why. Required for a callable target (how to find it: see the notes below).
    max_proposals : int, optional
        Budget of proposals per call; exceeding it raises :class:`rsft.ProposalBudgetExceeded`.
        Default ``ceil(M * (20 n + 100)) + 10000``, capped at ``1e9 + 1000 n``.
    on_violation : {"raise", "warn"}
        What to do when a proposal shows ``log p - log q - log M > 1e-9`` (smaller excesses
        are floating-point rounding of an exact envelope; larger ones prove the envelope wrong
        and the samples would not follow ``p``): raise :class:`rsft.EnvelopeViolationError` at
        the first such proposal, or finish and emit one :class:`rsft.EnvelopeViolationWarning`.
    backend : {"cython", "numpy"}, optional
        Kernel backend; default: the process default (:func:`rsft.get_backend`).

    Notes
    -----
    Draw order (the stream contract, identical on both backends): proposals come in chunks
    whose length depends only on the counts so far (at most 65536 proposals); for each
    chunk of ``c``, first ``c`` proposal draws (Normal: ``loc + scale*standard_normal``;
    Uniform: ``low + (high-low)*random``; Exponential: ``scale*standard_exponential``; Laplace:
    ``loc + scale*laplace(0, 1)``; StudentT: ``loc + scale*standard_t(df)``; Gamma:
    ``scale*standard_gamma(shape)``), then ``c``
    ``Generator.random`` uniforms. The same seed gives the same samples and leaves the
    Generator in the same state on both backends.

    Unlike the first source article (target N(2, 1), proposal N(0, 1), M = 2, which is no
    envelope since p/q = exp(2x - 2) is unbounded), invalid envelopes are refused or detected.

    Choosing a proposal and ``log_M`` for your own target:

    * The proposal's tails must be at least as heavy as the target's, in both directions
      and on the whole support of ``p``, or ``p/q`` is unbounded and no ``M`` exists: a
      wider ``Normal`` for a Gaussian-tailed target, ``Laplace`` or ``StudentT`` for heavier
      tails (for a Student t target, a ``StudentT`` proposal with ``df`` no larger than the
      target's), ``Uniform`` over a bounded support, ``Exponential`` or ``Gamma`` on
      ``[0, inf)``.
      Centre it near the target's mode with a similar spread: a normalised target is
      accepted at rate ``1/M``, so the closer ``q`` is to ``p``, the closer ``M`` is to 1
      and the fewer proposals are wasted.
    * Built-in target: just try the pair; ``log_M`` is computed exactly, or
      :class:`rsft.NoEnvelopeError` says how the ratio diverges (then pick a heavier tail).
    * Callable target: ``log_M`` must be ``sup_x [log p(x) - log q(x)]`` with ``log p`` as your
      callable computes it (an unnormalised ``log p`` is fine: ``M`` absorbs the constant).
      Derive it by hand where you can: set the derivative of ``log p - log q`` to zero and
      check the tails go to ``-inf`` (see the example below). Otherwise bound it numerically
      with :func:`rsft.find_log_M` (a dense scan plus a local zoom, with a margin of
      ``1e-6 (1 + |log M|)``; a larger ``log_M`` stays correct and only lowers the acceptance
      rate by the factor ``exp(-margin)``), and rely on the envelope watch: a bound found
      numerically is no proof, so every examined proposal is checked, and one above the bound
      (by more than 1e-9) raises :class:`rsft.EnvelopeViolationError` with the offending
      ``x``, its ``log_ratio`` (the excess ``log p - log q - log M`` there) and a
      ``suggested_log_M`` (``on_violation="warn"`` finishes and warns instead).
    * A log-concave target (a normal-like, gamma-like or logistic-like bump) needs no proposal
      and no ``M`` at all: :class:`rsft.LogConcaveSampler` builds and checks its own hat.
    * For a built-in pair, a ``log_M`` more than ``log 2`` above the exact one draws a
      :class:`rsft.LargeLogMWarning` (it only lowers the acceptance rate) naming the exact
      value (attribute ``exact_log_M``).

    Examples
    --------
    A built-in pair, with the exact envelope ``log M = log 2 + 2/3``:

    >>> import numpy as np
    >>> from rsft import Normal, RejectionSampler
    >>> s = RejectionSampler(Normal(2, 1), Normal(0, 2))
    >>> round(s.log_M, 6)
    1.359814
    >>> x, stats = s.sample_with_stats(10_000, rng=0)
    >>> round(float(x.mean()), 2), round(stats.acceptance_rate, 2)   # 1/M = 0.2567
    (2.0, 0.26)
    >>> bool(stats.max_log_ratio <= 1e-9)          # the envelope held on every proposal
    True

    A callable, unnormalised target ``log p(x) = -(x - 2)^2 / 2`` with the same proposal:
    ``log p - log q = -(x - 2)^2/2 + x^2/8 + log 2 + log(2 pi)/2`` peaks at ``x = 8/3``, so
    ``log M = 2/3 + log 2 + log(2 pi)/2``; :func:`rsft.find_log_M` finds the same bound
    numerically (plus its margin of ``1e-6 (1 + |log M|)``) and the point:

    >>> from rsft import find_log_M
    >>> logp = lambda x: -0.5 * (x - 2.0) ** 2
    >>> log_M = 2 / 3 + np.log(2) + 0.5 * np.log(2 * np.pi)
    >>> found, at = find_log_M(logp, Normal(0, 2))
    >>> round(float(log_M), 6), round(found, 5), round(at, 5)
    (2.278752, 2.27876, 2.66667)
    >>> y = RejectionSampler(logp, Normal(0, 2), log_M=log_M).sample(10_000, rng=1)
    >>> round(float(y.mean()), 1)
    2.0
    """

    def __init__(self, target, proposal, log_M=None, *, max_proposals=None,
                 on_violation="raise", backend=None):
        if not isinstance(proposal, Distribution) or proposal._code is None:
            raise TypeError(
                "proposal must be one of rsft.Normal, Uniform, Exponential, Laplace, StudentT "
                f"or Gamma; got {type(proposal).__name__}")
        if log_M is not None:
            log_M = _validate.real(log_M, "log_M", expected="a real number or None")
        if isinstance(target, Distribution):
            self._callable = None
            prog, log_M, exact = _envelope.builtin_program(target, proposal, log_M)
        elif callable(target):
            if log_M is None:
                raise ValueError(
                    "log_M is required for a callable target: rsft cannot bound an arbitrary "
                    "log-density; give log M with p(x) <= M q(x) for all x")
            self._callable = target
            prog = _envelope.proposal_program(proposal, log_M)
            exact = None
        else:
            raise TypeError(
                "target must be an rsft distribution or a callable logpdf(x) -> ndarray; got "
                f"{type(target).__name__}")
        if max_proposals is not None:
            max_proposals = _validate.count(max_proposals, "max_proposals", minimum=1,
                                            maximum=MAX_PROPOSALS)
        if on_violation not in ("raise", "warn"):
            raise ValueError(f"on_violation must be 'raise' or 'warn', got {on_violation!r}")
        if exact is not None and log_M > exact + _LOG_2:
            warnings.warn(LargeLogMWarning(
                f"log_M = {log_M:.6g} is {log_M - exact:.3g} above the exact log M = "
                f"{exact:.10g} of {target!r} / {proposal!r}: the acceptance rate falls by "
                f"the factor {math.exp(min(log_M - exact, 700.0)):.3g} for nothing; omit "
                "log_M to use the exact one"), stacklevel=2)
        self.target = target
        self.proposal = proposal
        self.log_M = log_M
        self.exact_log_M = exact
        self.max_proposals = max_proposals
        self.on_violation = on_violation
        self.backend = _validate.backend(backend)
        self._prog = prog
        self._params = np.ascontiguousarray(proposal._proposal_params(), dtype=np.float64)
        self._prior_rate = min(max(math.exp(min(log_M, 700.0)), 1.0), 1e6)

    def __repr__(self):
        t = self.target if self._callable is None else getattr(
            self.target, "__name__", "callable")
        return (f"RejectionSampler(target={t}, proposal={self.proposal!r}, "
                f"log_M={self.log_M!r})")

    def _budget(self, n):
        if self.max_proposals is not None:
            return self.max_proposals
        return default_budget(math.exp(min(self.log_M, 700.0)), n)

    def _refuse_hopeless(self, n, budget):
        """Fail at once when the exact envelope shows that ``n`` samples need more proposals
        on average than ``budget`` (a built-in target is normalised, so acceptance is exactly
        ``1/M``), instead of drawing the whole budget first."""
        if self._callable is not None:
            return      # an unnormalised target: the acceptance rate is not known
        expected = n * math.exp(min(self.log_M, 700.0))
        if expected > budget:
            raise ProposalBudgetExceeded(0, 0, n, budget, expected_proposals=expected)

    def _refuse_hopeless_blocks(self, bounds):
        """The blocked stream's up-front check (before any child is spawned): its first block
        is the longest, so if that one is hopeless the call fails at once, as one stream
        would. ``rsft.dask.sample_array`` makes the same check when it builds its graph."""
        first, stop = bounds[0]
        self._refuse_hopeless(stop - first, self._budget(stop - first))

    def _logp(self, x):
        """Call the user's logpdf on a read-only chunk and check what it returns."""
        return _validate.logpdf_values(self._callable, x)

    def sample_with_stats(self, n, rng=None, *, n_threads=None, block_size=None):
        """Draw ``n`` samples of the target; return ``(samples, SamplingStats)``.

        Parameters
        ----------
        n : int
            Number of samples (``>= 0``; 0 gives an empty array).
        rng : None, int, SeedSequence, BitGenerator or Generator
            Randomness, normalised like ``numpy.random.default_rng``; a Generator advances.
        n_threads : int, optional
            Giving it (1 included) selects the blocked stream; the blocks of a built-in
            target then run on up to ``n_threads`` threads of the compiled core (an integer in
            ``[1, 256]``). The samples never depend on it.
        block_size : int, optional
            Giving it selects the blocked stream with blocks of ``block_size`` accepted
            samples (``>= 1``); default ``65536``.

        Notes
        -----
        With neither ``n_threads`` nor ``block_size``, one stream is drawn from ``rng`` as the
        class notes describe. With either, the **blocked stream**: the ``n`` samples are cut
        into ``ceil(n / block_size)`` blocks of ``block_size`` (the last one shorter); block
        ``b`` is that one-stream sampling of its length from ``rng.spawn(n_blocks)[b]``, and
        the blocks are concatenated in order. ``Generator.spawn`` spawns children of the bit
        generator's ``SeedSequence`` without drawing from ``rng`` (its state stays, but its
        seed sequence counts the children, so the next call gets new ones); a bit generator
        without a spawnable ``SeedSequence`` seeds one from four ``rng.integers(0, 2**64,
        dtype=uint64)`` draws instead (and spawns the children). The result depends on the seed
        and ``block_size`` only: the same on both backends and for every ``n_threads``. The
        proposal budget ``max_proposals`` (or its default, computed from the block's length)
        applies to each block. Stats add up over the blocks (``max_log_ratio``: their maximum);
        a block that fails raises as a one-stream call would, with the counts of the blocks up
        to it. A callable target is called with the GIL, so its blocks run one after another.
        """
        n = _validate.count(n)
        rng = _validate.generator(rng)
        blocked = n_threads is not None or block_size is not None
        if n_threads is not None:
            n_threads = _validate.n_threads(n_threads)
        if block_size is not None:
            block_size = _validate.count(block_size, "block_size", minimum=1)
        out = _validate.new_array(n, np.float64, f"n = {n} samples")
        if n == 0:
            return out, SamplingStats(0, 0, math.nan, -math.inf)
        kern = _backend.kernels(self.backend)
        logp = None if self._callable is None else self._logp
        args = (self.proposal._code, self._params, self._prog, logp)
        options = (self.on_violation == "raise", VIOLATION_TOL)
        if not blocked:
            budget = self._budget(n)
            self._refuse_hopeless(n, budget)
            n_prop, n_acc, max_g, x_max, status = kern.rejection_sample(
                rng, *args, n, self._prior_rate, budget, *options, out)
            self._raise_for(status, n_prop, n_acc, n, budget, max_g, x_max)
        else:
            bounds = _blocks.block_bounds(n, block_size or _blocks.DEFAULT_BLOCK_SIZE)
            stops = np.array([stop for _, stop in bounds], dtype=np.intp)
            budgets = np.array([self._budget(stop - start) for start, stop in bounds],
                               dtype=np.intp)
            self._refuse_hopeless_blocks(bounds)
            children = _blocks.child_generators(rng, len(bounds))
            props, accs, max_gs, x_maxs, statuses = kern.rejection_sample_blocks(
                children, *args, stops, self._prior_rate, budgets, *options, out, n_threads or 1)
            failed = np.flatnonzero(statuses != Status.OK)
            if failed.size:
                b = int(failed[0])
                self._raise_for(statuses[b], props[:b + 1].sum(), accs[:b + 1].sum(), n,
                                budgets[b], max_gs[b], x_maxs[b])
            b = int(np.argmax(max_gs))
            n_prop, n_acc, max_g, x_max = int(props.sum()), int(accs.sum()), max_gs[b], x_maxs[b]
        if max_g > VIOLATION_TOL:
            err = EnvelopeViolationError(x_max, max_g, self.log_M)
            warnings.warn(EnvelopeViolationWarning(str(err)), stacklevel=2)
        stats = SamplingStats(int(n_prop), int(n_acc), n_acc / n_prop, float(max_g))
        return out, stats

    def _raise_for(self, status, n_prop, n_acc, n, budget, max_g, x_max):
        """Raise the error a kernel's status reports (nothing for ``Status.OK``)."""
        if status == Status.VIOLATION:
            raise EnvelopeViolationError(x_max, max_g, self.log_M)
        if status == Status.BUDGET:
            raise ProposalBudgetExceeded(n_prop, n_acc, n, budget)

    def sample(self, n, rng=None, *, n_threads=None, block_size=None):
        """Draw ``n`` samples of the target (see :meth:`sample_with_stats`)."""
        return self.sample_with_stats(n, rng, n_threads=n_threads, block_size=block_size)[0]


def find_log_M(target, proposal, *, bounds=None):
    """A numerical bound of ``sup_x [log p(x) - log q(x)]``: a ``log_M`` for
    :class:`RejectionSampler` with a callable target, and the point where it was found.

    A dense vectorised scan (200,001 points over ``bounds``, plus points out to ``2**40``
    proposal scales on an infinite side, to see whether the ratio keeps growing), then a local
    zoom around the best point (6 rescans of 401 points). The returned value is the largest
    ``log p - log q`` found plus a stated margin of ``1e-6 * (1 + |value|)`` (so the
    acceptance rate is lowered by about that fraction).

    It is a bound found numerically, **not a proof**: a spike narrower than the scan's spacing
    can be missed. The samplers' envelope watch stays the guard: a proposal above the bound
    raises :class:`rsft.EnvelopeViolationError` with a ``suggested_log_M``.

    Parameters
    ----------
    target : callable or Distribution
        A vectorised ``logpdf(x) -> ndarray`` (may be unnormalised: ``M`` absorbs the
        constant), or a built-in distribution (whose exact ``log M`` ``RejectionSampler``
        computes itself).
    proposal : Normal, Uniform, Exponential, Laplace, StudentT or Gamma
    bounds : (low, high), optional
        The interval to scan (infinite ends allowed). Default: the proposal's support, scanned
        densely over 60 proposal scales around its centre.

    Returns
    -------
    (log_M, x) : (float, float)

    Raises
    ------
    NoEnvelopeError
        The ratio grows towards an infinite end of the scan, is infinite somewhere, or the
        target is positive where the proposal is not.

    Examples
    --------
    >>> import numpy as np, rsft
    >>> log_M, x = rsft.find_log_M(lambda x: -0.5 * (x - 2.0) ** 2, rsft.Normal(0, 2))
    >>> round(x, 4), round(log_M, 5)      # exact: x = 8/3, 2/3 + log 2 + log(2 pi)/2
    (2.6667, 2.27876)
    """
    if not isinstance(proposal, Distribution) or proposal._code is None:
        raise TypeError(
            "proposal must be one of rsft.Normal, Uniform, Exponential, Laplace, StudentT or "
            f"Gamma; got {type(proposal).__name__}")
    if isinstance(target, Distribution):
        logpdf = target.logpdf
    elif callable(target):
        def logpdf(x):
            return _validate.logpdf_values(target, x)
    else:
        raise TypeError(
            "target must be an rsft distribution or a callable logpdf(x) -> ndarray; got "
            f"{type(target).__name__}")
    if bounds is not None:
        bounds = _validate.interval(bounds, "bounds")
    log_M, x = _envelope.find_log_M(logpdf, proposal, bounds)
    return float(log_M), float(x)
