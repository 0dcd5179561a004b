"""Exact samples of a log-concave density with an automatic, verified hat: no M to choose."""

import math
import warnings
from dataclasses import dataclass

import numpy as np

from . import _backend, _hat, _validate
from ._distribution import Distribution
from ._program import Piece, Status
from .errors import EnvelopeViolationWarning, NotLogConcaveError, ProposalBudgetExceeded
from .sampling import MAX_PROPOSALS, VIOLATION_TOL, default_budget

__all__ = ["LogConcaveSampler", "LogConcaveStats"]

#: a built-in target's width (its scale, or standard deviation) must span at least this many
#: float64 spacings at its centre: the start points of the hat are 1/12 of it apart, and on a
#: coarser grid they collapse onto a few floats whose log-densities make chords of rounding
MIN_SPACINGS = 16

#: what the width of each built-in family is, for the message of a too narrow one
_WIDTHS = {"Normal": "scale", "Laplace": "scale", "Uniform": "(high - low) / 2",
           "Exponential": "scale", "Gamma": "its standard deviation sqrt(shape) * scale",
           "Beta": "its standard deviation", "TruncatedNormal": "min(scale, (high - low) / 4)"}


def _too_narrow(target, centre, width):
    """The message of a built-in target narrower than ``MIN_SPACINGS`` float64 spacings."""
    name = _WIDTHS.get(type(target).__name__, "width")
    limit = MIN_SPACINGS * math.ulp(centre)
    return (f"{target!r} is too narrow for LogConcaveSampler: its width ({name}) {width:.6g} "
            f"is below {MIN_SPACINGS} float64 spacings at its centre {centre:.17g} "
            f"({MIN_SPACINGS} * {math.ulp(centre):.6g} = {limit:.6g}), where float64 numbers "
            f"cannot represent its shape. The range that works: {name} >= {MIN_SPACINGS} * "
            f"spacing(centre), about {MIN_SPACINGS * 2.0 ** -52:.3g} * |centre| (here >= "
            f"{limit:.6g}); sample the distribution centred at 0 and add {centre:.17g} back")


@dataclass(frozen=True)
class LogConcaveStats:
    """Counts of one ``LogConcaveSampler.sample_with_stats`` call.

    Attributes
    ----------
    n_proposed : int
        Proposals from the hat examined up to the n-th acceptance.
    n_accepted : int
        Samples returned.
    acceptance_rate : float
        ``n_accepted / n_proposed``: about ``area(p) / hat_area`` (NaN when nothing was
        proposed).
    n_evaluated : int
        Points where the target's logpdf was evaluated (the proposals between squeeze and hat,
        in one call per chunk; a few may lie past the n-th acceptance of the last chunk).
    max_excess : float
        Largest relative excess of an evaluated point over the hat or under the squeeze
        (``max(log p - log hat, log squeeze - log p) / (1 + |log hat|)``): ``<= 0`` for a
        log-concave target (``-inf`` when nothing was evaluated).
    """

    n_proposed: int
    n_accepted: int
    acceptance_rate: float
    n_evaluated: int
    max_excess: float


class LogConcaveSampler:
    """Exact samples of a log-concave density, under a hat rsft builds and checks itself.

    The hat is piecewise exponential and needs no derivative: for a concave ``log p``, the
    chord through two construction points lies above ``log p`` outside its interval and below
    it inside (Gilks' derivative-free adaptive rejection sampling), so the neighbours' chords
    make a hat and each interval's own chord a squeeze. Construction evaluates the target in a
    few vectorised calls, adding points until ``squeeze area >= efficiency * hat area``;
    the hat is then fixed. Sampling chooses a piece, places the proposal on it, accepts it
    under the squeeze without calling the target, and passes only the proposals between
    squeeze and hat to the target, once per chunk as one array.

    Parameters
    ----------
    target : callable or Distribution
        A vectorised ``logpdf(x) -> ndarray`` (may be unnormalised; ``support`` is then
        required; called on read-only 1-D float64 arrays, it must return real numbers of the
        same shape, ``-inf`` outside the support, never NaN), or a built-in log-concave
        distribution: ``Normal``, ``Uniform``, ``Exponential``, ``Laplace``,
        ``TruncatedNormal``, ``Beta`` with ``a, b >= 1``, ``Gamma`` with ``shape >= 1``.
    support : (low, high), optional
        The interval outside which the density is zero; infinite ends allowed. Required for a
        callable target, refused for a built-in one (which knows its support). ``log p`` may
        also be ``-inf`` on part of it: a log-concave density is positive on an interval.
    mode : float, optional
        Where the density is high (not necessarily its exact mode): construction starts there
        and needs fewer rounds. Without it, construction starts at the middle of a finite
        support, one unit inside a finite end, or 0, and reaches out to ``2**40`` from there.
    efficiency : float
        Requested ``squeeze area / hat area`` in ``(0, 0.9999]``: at least this fraction of
        proposals is accepted without calling the target, and the acceptance rate is at least
        this. Default 0.99.
    on_violation : {"raise", "warn"}
        What to do when a point evaluated while sampling lies above the hat or below the
        squeeze (by more than a relative 1e-9), which proves the target is not log-concave:
        raise :class:`rsft.NotLogConcaveError` (no samples) or finish and emit one
        :class:`rsft.EnvelopeViolationWarning`.
    max_proposals : int, optional
        Budget of proposals per call (default ``ceil((hat_area/squeeze_area)*(20 n + 100)) +
        10000``, capped at ``1e9 + 1000 n``); exceeding it raises
        :class:`rsft.ProposalBudgetExceeded`.
    backend : {"cython", "numpy"}, optional
        Kernel backend; default: the process default (:func:`rsft.get_backend`).

    Attributes
    ----------
    efficiency : float
        The achieved ``squeeze_area / hat_area`` (at least the requested one).
    n_pieces : int
        Pieces of the hat.
    hat_area, squeeze_area : float
        The integrals of the hat and of the squeeze: bounds of the target's normalising
        constant, ``squeeze_area <= integral of exp(logpdf) <= hat_area`` (as floats: ``inf``
        or ``0.0`` when that integral overflows or underflows, e.g. for an unnormalised
        log-likelihood far from 0; ``efficiency`` is their ratio computed without overflow).
    n_setup_evaluations : int
        logpdf evaluations spent on construction.

    Raises
    ------
    NotLogConcaveError
        At construction, when the chord slopes of ``log p`` increase (naming the three points),
        when ``log p = -inf`` between points where it is finite, or ``+inf`` somewhere (an
        unbounded density); for a built-in family that is not log-concave (StudentT, Beta with
        a or b below 1, Gamma with shape below 1). While sampling, see ``on_violation``.
    ValueError
        Bad arguments; a density that does not decay towards an infinite end; ``-inf`` at every
        start point; construction that cannot reach ``efficiency`` within its budget (4096
        points in 60 rounds). A density too narrow for the float64 grid: a built-in whose
        width (its scale; for Uniform half its length, for Gamma and Beta its standard
        deviation, for TruncatedNormal ``min(scale, (high - low)/4)``) is below 16 float64
        spacings at its centre, ``width < 16 * math.ulp(centre)`` (about ``3.6e-15 *
        |centre|``: ``Normal(1, 1e-15)``, ``Laplace(1e6, 1e-11)``), where the float64 numbers
        are too coarse to represent its shape (the hat's start points, 1/12 of the width
        apart, would collapse onto a few floats); and any hat with less area than its squeeze
        on some interval, which only rounding can cause (a callable that narrow).

    Notes
    -----
    Draw order (the stream contract, identical on both backends): proposals come in chunks
    whose length depends only on the counts so far (at most 65536); per chunk of ``c``, first
    ``c`` ``Generator.random`` uniforms (which piece; on a flat piece also where on it), then
    ``c`` ``Generator.standard_exponential`` draws (where on a sloped piece: the exponential
    modulo the piece's length, which has exactly the truncated exponential shape of the hat
    there), then ``c`` ``Generator.random`` uniforms (the acceptance test). The same seed
    gives the same samples and leaves the Generator in the same state on both backends
    (``rsft._reference.hat`` is the specification).

    Examples
    --------
    >>> import numpy as np
    >>> import rsft
    >>> s = rsft.LogConcaveSampler(lambda x: -x ** 4, support=(-np.inf, np.inf))
    >>> bool(s.efficiency >= 0.99), s.n_pieces < 300
    (True, True)
    >>> x, stats = s.sample_with_stats(100_000, rng=0)
    >>> bool(stats.n_evaluated / stats.n_accepted < 0.02)   # logpdf calls per sample
    True
    >>> round(float(np.mean(x ** 4)), 2)                 # E x^4 = 1/4 for p ~ exp(-x^4)
    0.25
    """

    def __init__(self, target, *, support=None, mode=None, efficiency=0.99,
                 on_violation="raise", max_proposals=None, backend=None):
        if isinstance(target, Distribution):
            if support is not None:
                raise ValueError(
                    "support is given by a built-in distribution itself; pass support only "
                    "with a callable target")
            if not target._log_concave():
                raise NotLogConcaveError(
                    f"{target!r} is not log-concave, so LogConcaveSampler cannot bound it; the "
                    "log-concave built-ins are Normal, Uniform, Exponential, Laplace, "
                    "TruncatedNormal, Beta with a, b >= 1 and Gamma with shape >= 1 (use "
                    "RejectionSampler, or pass logpdf with support= to have it checked)",
                    math.nan, math.nan, math.nan)
            self._logpdf = target.logpdf
            # a built-in log-concave density returns float64 arrays, finite or -inf: its
            # values need no check (a user's callable's do)
            self._trusted = True
            lo, hi = target.support
            centre, scale = target._centre_and_scale()
            if not scale >= MIN_SPACINGS * math.ulp(centre):
                raise ValueError(_too_narrow(target, centre, scale))
        elif callable(target):
            if support is None:
                raise ValueError(
                    "support=(low, high) is required for a callable target (infinite ends "
                    "allowed): the interval outside which the density is zero")
            lo, hi = _validate.interval(support, "support")
            self._logpdf = target
            self._trusted = False
            centre = scale = None
        else:
            raise TypeError(
                "target must be a callable logpdf(x) -> ndarray or an rsft distribution; got "
                f"{type(target).__name__}")
        if mode is not None:
            centre = _validate.real(mode, "mode", lo=lo, hi=hi)
        requested = _validate.real(efficiency, "efficiency", lo=0.0, hi=0.9999, lo_open=True)
        if on_violation not in ("raise", "warn"):
            raise ValueError(f"on_violation must be 'raise' or 'warn', got {on_violation!r}")
        if max_proposals is not None:
            max_proposals = _validate.count(max_proposals, "max_proposals", minimum=1,
                                            maximum=MAX_PROPOSALS)     # as RejectionSampler
        self.target = target
        self.support = (lo, hi)
        self.requested_efficiency = requested
        self.on_violation = on_violation
        self.max_proposals = max_proposals
        self.backend = _validate.backend(backend)
        hat = _hat.build(_backend.kernels(self.backend), self._construction_logp, lo, hi,
                         requested, centre, scale)
        self._hat = hat
        self.efficiency = hat.efficiency
        self.n_pieces = int(hat.pieces.shape[0])
        self.hat_area = hat.hat_area
        self.squeeze_area = hat.squeeze_area
        self.n_setup_evaluations = hat.n_evaluations
        # expected proposals per sample <= hat/squeeze: the first chunk's estimate
        self._prior_rate = 1.0 / self.efficiency

    def __repr__(self):
        t = self.target if isinstance(self.target, Distribution) else getattr(
            self.target, "__name__", "callable")
        return (f"LogConcaveSampler(target={t}, support={self.support!r}, "
                f"n_pieces={self.n_pieces}, efficiency={self.efficiency:.4f})")

    def _construction_logp(self, x):
        if self._trusted:
            return self._logpdf(x)
        r = _validate.logpdf_values(self._logpdf, x, inf_ok=True)
        if (r == np.inf).any():
            i = int(np.argmax(r == np.inf))
            raise NotLogConcaveError(
                f"the target's density is unbounded: log p(x) = inf at x = {x[i]!r}; a "
                "log-concave density is bounded", x[i], math.inf, math.nan)
        return r

    def _sampling_logp(self, x):
        if self._trusted:
            return self._logpdf(x)
        return _validate.logpdf_values(self._logpdf, x)

    def _budget(self, n):
        if self.max_proposals is not None:
            return self.max_proposals
        return default_budget(self._prior_rate, n)

    def _violation(self, x, log_p, piece):
        """The NotLogConcaveError of a point evaluated while sampling."""
        row = self._hat.pieces[piece]
        step = x - row[Piece.ANCHOR]
        log_hat = row[Piece.HAT_AT] + row[Piece.HAT_SLOPE] * step
        if log_p > log_hat:
            where, bound = "above the hat", log_hat
        else:
            where = "below the squeeze"
            bound = log_hat + row[Piece.GAP_AT] + row[Piece.GAP_SLOPE] * step
        return NotLogConcaveError(
            f"the target is not log-concave: while sampling, log p(x) = {log_p:.10g} at "
            f"x = {x!r} lies {where} ({bound:.10g}) built from its chords, which is "
            "impossible for a log-concave density; the samples would not follow the target. "
            "on_violation='warn' continues instead of raising", x, log_p, bound)

    def sample_with_stats(self, n, rng=None):
        """Draw ``n`` samples of the target; return ``(samples, LogConcaveStats)``. ``n`` and
        ``rng`` as in :meth:`rsft.RejectionSampler.sample_with_stats`."""
        n = _validate.count(n)
        rng = _validate.generator(rng)
        out = _validate.new_array(n, np.float64, f"n = {n} samples")
        if n == 0:
            return out, LogConcaveStats(0, 0, math.nan, 0, -math.inf)
        kern = _backend.kernels(self.backend)
        budget = self._budget(n)
        n_prop, n_acc, n_eval, excess, x_max, logp_max, piece, status = kern.hat_sample(
            rng, self._hat.pieces, self._hat.guide, self._sampling_logp, n, self._prior_rate,
            budget, self.on_violation == "raise", VIOLATION_TOL, out)
        if status == Status.VIOLATION:
            raise self._violation(x_max, logp_max, piece)
        if status == Status.BUDGET:
            raise ProposalBudgetExceeded(n_prop, n_acc, n, budget)
        if excess > VIOLATION_TOL:
            err = self._violation(x_max, logp_max, piece)
            warnings.warn(EnvelopeViolationWarning(str(err)), stacklevel=2)
        stats = LogConcaveStats(int(n_prop), int(n_acc), n_acc / n_prop, int(n_eval),
                                float(excess))
        return out, stats

    def sample(self, n, rng=None):
        """Draw ``n`` samples of the target (see :meth:`sample_with_stats`)."""
        return self.sample_with_stats(n, rng)[0]

