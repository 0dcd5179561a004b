"""Built-in distribution families that the compiled rejection loop understands.

Each family has ``logpdf``, ``pdf``, ``sample`` and ``support``, and describes its log-density
as a sum of simple *terms* (quadratic, linear, absolute-value, Student-t log, Beta logs) so that
:mod:`rsft._envelope` can compute exact envelopes and compile target/proposal pairs into the
log-ratio programs evaluated by the kernels.
"""

import math

import numpy as np

from . import _validate
from ._distribution import Distribution
from ._program import Proposal, Terms
from .sampling import RejectionSampler

__all__ = [
    "Distribution", "Normal", "Uniform", "Exponential", "Laplace", "Beta", "TruncatedNormal",
    "StudentT", "Gamma", "Mixture",
]

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


class _LocScale(Distribution):
    """A location-scale family with parameters ``loc`` (finite) and ``scale`` (> 0)."""

    def __init__(self, loc=0.0, scale=1.0):
        self.loc = _validate.real(loc, "loc")
        self.scale = _validate.scale(scale)

    def _params(self):
        return (self.loc, self.scale)

    def _centre_and_scale(self):
        return (self.loc, self.scale)

    def _proposal_params(self):
        return np.array([self.loc, self.scale, 0.0, 0.0])


class Normal(_LocScale):
    """Normal distribution N(loc, scale**2)."""

    _code = Proposal.NORMAL

    def _log_concave(self):
        return True

    def _logpdf(self, x):
        z = (x - self.loc) / self.scale
        return -0.5 * z * z - math.log(self.scale) - _LOG_SQRT_2PI

    def _terms(self):
        return Terms(const=-math.log(self.scale) - _LOG_SQRT_2PI,
                     quad=[(-0.5 / (self.scale * self.scale), self.loc)], center=self.loc)


class Uniform(Distribution):
    """Continuous uniform distribution on [low, high]."""

    _code = Proposal.UNIFORM

    def _log_concave(self):
        return True

    def __init__(self, low=0.0, high=1.0):
        self.low = _validate.real(low, "low")
        self.high = _validate.real(high, "high")
        if not self.low < self.high:
            raise ValueError(f"Uniform needs low < high, got low={self.low}, high={self.high}")
        if not math.isfinite(self.high - self.low):
            raise ValueError("Uniform: high - low overflows")

    def _params(self):
        return (self.low, self.high)

    def _logpdf(self, x):
        return np.full(x.shape, -math.log(self.high - self.low))

    def _terms(self):
        return Terms(const=-math.log(self.high - self.low), lo=self.low, hi=self.high,
                     center=0.5 * (self.low + self.high))

    def _centre_and_scale(self):
        return (0.5 * self.low + 0.5 * self.high, 0.5 * (self.high - self.low))

    def _proposal_params(self):
        return np.array([self.low, self.high - self.low, 0.0, 0.0])


class Exponential(Distribution):
    """Exponential distribution with density exp(-x/scale)/scale on [0, inf)."""

    _code = Proposal.EXPONENTIAL

    def _log_concave(self):
        return True

    def __init__(self, scale=1.0):
        self.scale = _validate.scale(scale)

    def _params(self):
        return (self.scale,)

    def _logpdf(self, x):
        return -x / self.scale - math.log(self.scale)

    def _terms(self):
        return Terms(const=-math.log(self.scale), lin=-1.0 / self.scale, lo=0.0)

    def _centre_and_scale(self):
        return (self.scale, self.scale)

    def _proposal_params(self):
        return np.array([self.scale, 0.0, 0.0, 0.0])


class Laplace(_LocScale):
    """Laplace (double exponential) distribution with density exp(-|x-loc|/scale)/(2 scale)."""

    _code = Proposal.LAPLACE

    def _log_concave(self):
        return True

    def _logpdf(self, x):
        return -np.abs(x - self.loc) / self.scale - math.log(2.0 * self.scale)

    def _terms(self):
        return Terms(const=-math.log(2.0 * self.scale), abs=[(-1.0 / self.scale, self.loc)],
                     center=self.loc)


class StudentT(Distribution):
    """Student's t distribution with ``df`` degrees of freedom, location and scale."""

    _code = Proposal.STUDENT_T

    def __init__(self, df, loc=0.0, scale=1.0):
        # above 1e100 degrees of freedom the t is a normal to every digit (use Normal), and
        # df * scale**2, a term of the log-density, would overflow; below 1e-100 lgamma(df / 2)
        # of the normaliser loses its argument (df = 5e-324: "math domain error")
        self.df = _validate.real(df, "df", lo=1e-100, hi=1e100)
        self.loc = _validate.real(loc, "loc")
        self.scale = _validate.scale(scale)

    def _params(self):
        return (self.df, self.loc, self.scale)

    def _const(self):
        nu = self.df
        if nu >= 1000.0:
            # lgamma((nu+1)/2) - lgamma(nu/2) - log(nu*pi)/2 cancels for large nu; its
            # asymptotic series in h = nu/2 is exact to rounding here (next term 1/(640 h^5)).
            h = 0.5 * nu
            c = -_LOG_SQRT_2PI - 1.0 / (8.0 * h) + 1.0 / (192.0 * h * h * h)
        else:
            c = (math.lgamma(0.5 * (nu + 1.0)) - math.lgamma(0.5 * nu)
                 - 0.5 * math.log(nu * math.pi))
        return c - math.log(self.scale)

    def _logpdf(self, x):
        z = (x - self.loc) / self.scale
        return self._const() - 0.5 * (self.df + 1.0) * np.log1p(z * z / self.df)

    @property
    def support(self):
        """``(-inf, inf)`` (without building the envelope's terms, which may be refused)."""
        return (-math.inf, math.inf)

    def _terms(self):
        # the envelope's term (df + 1)/2 * log1p(k (x - loc)^2) needs k = 1 / (df scale^2) as a
        # normal float: StudentT(1e100, 0, 1e150) has df scale^2 = 1e400, k = 0, and the term
        # would vanish from the log-ratio (log M was then computed without it)
        width = self.df * self.scale * self.scale
        if not 1e-300 <= width <= 1e300:
            raise ValueError(
                f"{self!r}: df * scale**2 = {self.df:.6g} * {self.scale:.6g}**2 is outside "
                "[1e-300, 1e300], where the "
                "exact envelope's Student t term can be represented in float64; rescale the "
                "problem (or use Normal for df above about 1e6)")
        k = 1.0 / width
        return Terms(const=self._const(), tlog=[(-0.5 * (self.df + 1.0), self.loc, k)],
                     center=self.loc)

    def _centre_and_scale(self):
        return (self.loc, self.scale)

    def _proposal_params(self):
        return np.array([self.df, self.loc, self.scale, 0.0])


class Beta(Distribution):
    """Beta distribution on [0, 1] with shape parameters ``a`` and ``b``."""

    def __init__(self, a, b):
        # above 1e100, lgamma of the shapes (the normaliser) overflows for the largest ones
        self.a = _validate.real(a, "a", lo=0.0, lo_open=True, hi=1e100)
        self.b = _validate.real(b, "b", lo=0.0, lo_open=True, hi=1e100)

    def _log_concave(self):
        return self.a >= 1.0 and self.b >= 1.0

    def _params(self):
        return (self.a, self.b)

    def _centre_and_scale(self):
        a, b = self.a, self.b
        return (a / (a + b), math.sqrt(a * b / ((a + b + 1.0) * (a + b) * (a + b))))

    def _log_beta(self):
        return math.lgamma(self.a) + math.lgamma(self.b) - math.lgamma(self.a + self.b)

    def _logpdf(self, x):
        out = -self._log_beta()
        if self.a != 1.0:
            out = out + (self.a - 1.0) * np.log(x)
        if self.b != 1.0:
            out = out + (self.b - 1.0) * np.log1p(-x)
        return np.broadcast_to(out, x.shape) * 1.0

    def _terms(self):
        return Terms(const=-self._log_beta(), log_x=self.a - 1.0, log1m_x=self.b - 1.0, lo=0.0,
                     hi=1.0, center=0.5)

    def _sample(self, n, rng):
        return rng.beta(self.a, self.b, n)


class Gamma(Distribution):
    """Gamma distribution with ``shape`` k and ``scale`` s: density
    ``x**(k-1) exp(-x/s) / (Gamma(k) s**k)`` on ``[0, inf)``.

    Its log-density is a ``log x`` term plus a linear term, so every pair with it has an exact
    envelope; it is log-concave for ``shape >= 1`` (``LogConcaveSampler``) and can be a
    proposal (``scale*standard_gamma(shape)``).
    """

    _code = Proposal.GAMMA

    def __init__(self, shape, scale=1.0):
        self.shape = _validate.real(shape, "shape", lo=0.0, lo_open=True, hi=1e100)
        self.scale = _validate.scale(scale)

    def _params(self):
        return (self.shape, self.scale)

    def _log_concave(self):
        return self.shape >= 1.0

    def _const(self):
        return -math.lgamma(self.shape) - self.shape * math.log(self.scale)

    def _logpdf(self, x):
        out = self._const() - x / self.scale
        if self.shape != 1.0:           # (shape - 1)*log(0) would be 0*-inf at x = 0
            out = out + (self.shape - 1.0) * np.log(x)
        return out

    def _terms(self):
        return Terms(const=self._const(), lin=-1.0 / self.scale, log_x=self.shape - 1.0,
                     lo=0.0)

    def _centre_and_scale(self):
        return (self.shape * self.scale, math.sqrt(self.shape) * self.scale)

    def _proposal_params(self):
        return np.array([self.shape, self.scale, 0.0, 0.0])


def _normal_sf(t):
    """Upper tail probability of the standard normal."""
    return 0.5 * math.erfc(t / math.sqrt(2.0))


_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(24)


def _log_normal_mass(a, b):
    """log(Phi(b) - Phi(a)) for the standard normal, without cancellation.

    Intervals narrower than 1 are integrated by 24-point Gauss-Legendre in log space (exact to
    rounding for such a smooth integrand, and free of underflow in far tails); wider ones
    subtract tail probabilities of the far side, which then differ by a factor > e^(1/2).
    Bounds so far out that their difference is lost to rounding (``b - a`` not positive) give
    ``-inf``: such a mass is far below anything float64 can hold.
    """
    if not b - a > 0.0:
        return -math.inf
    if b - a <= 1.0:
        half = 0.5 * (b - a)
        x = 0.5 * (a + b) + half * _GL_NODES
        e = -0.5 * x * x
        m = float(e.max())
        return (m + math.log(float(np.dot(_GL_WEIGHTS, np.exp(e - m))) * half)
                - _LOG_SQRT_2PI)
    if a > 0:
        z = _normal_sf(a) - _normal_sf(b)
    elif b < 0:
        z = _normal_sf(-b) - _normal_sf(-a)
    else:
        z = 1.0 - _normal_sf(-a) - _normal_sf(b)
    return math.log(z) if z > 0 else -math.inf


class TruncatedNormal(Distribution):
    """Normal(loc, scale) restricted to [low, high]; one bound may be infinite.

    Sampling uses rsft's own rejection sampler with the best of a Normal, a Uniform (finite
    intervals) and a Laplace tail proposal (chosen by the smallest exact envelope M).
    The normaliser is computed with ``erfc``; intervals with probability below 1e-300 under the
    untruncated normal are refused.
    """

    def __init__(self, loc, scale, low, high):
        self.loc = _validate.real(loc, "loc")
        self.scale = _validate.scale(scale)
        self.low = _validate.real(low, "low", finite=False)
        self.high = _validate.real(high, "high", finite=False)
        if not self.low < self.high:
            raise ValueError(
                f"TruncatedNormal needs low < high, got low={self.low}, high={self.high}")
        if math.isinf(self.low) and math.isinf(self.high):
            raise ValueError("TruncatedNormal needs at least one finite bound; use Normal")
        self._log_z = _log_normal_mass((self.low - self.loc) / self.scale,
                                       (self.high - self.loc) / self.scale)
        if not math.isfinite(self._log_z) or self._log_z < math.log(1e-300):
            raise ValueError(
                f"TruncatedNormal: [{self.low}, {self.high}] has probability "
                f"exp({self._log_z:.6g}) under Normal({self.loc}, {self.scale}); below 1e-300 "
                "is not supported unless the interval is narrower than one scale")
        self._sampler = None

    def _log_concave(self):
        return True

    def _params(self):
        return (self.loc, self.scale, self.low, self.high)

    def _centre_and_scale(self):
        centre = min(max(self.loc, self.low), self.high)
        return (centre, min(self.scale, 0.25 * (self.high - self.low)))

    def _logpdf(self, x):
        z = (x - self.loc) / self.scale
        return -0.5 * z * z - math.log(self.scale) - _LOG_SQRT_2PI - self._log_z

    def _terms(self):
        return Terms(const=-math.log(self.scale) - _LOG_SQRT_2PI - self._log_z,
                     quad=[(-0.5 / (self.scale * self.scale), self.loc)], lo=self.low,
                     hi=self.high, center=self.loc)

    def _sample(self, n, rng):
        if self._sampler is None:
            cands = [Normal(self.loc, self.scale)]
            if math.isfinite(self.low) and math.isfinite(self.high):
                cands.append(Uniform(self.low, self.high))
            a = (self.low - self.loc) / self.scale
            b = (self.high - self.loc) / self.scale
            if a > 0 or b < 0:  # a tail: Laplace at the near bound, optimal exponential rate
                t = a if a > 0 else -b
                rate = 0.5 * (t + math.sqrt(t * t + 4.0))
                edge = self.low if a > 0 else self.high
                cands.append(Laplace(edge, self.scale / rate))
            samplers = [RejectionSampler(self, q) for q in cands]
            self._sampler = min(samplers, key=lambda s: s.log_M)
        return self._sampler.sample(n, rng)


class Mixture(Distribution):
    """Finite mixture ``sum_k w_k p_k`` of built-in distributions.

    As a rejection-sampling target its envelope is the proven bound ``M = sum_k w_k M_k``.
    """

    def __init__(self, components, weights):
        comps = list(components)
        if not comps:
            raise ValueError("Mixture needs at least one component")
        for c in comps:
            if not isinstance(c, Distribution):
                raise TypeError(
                    f"Mixture components must be rsft distributions, got {type(c).__name__}")
        w = np.asarray(weights)
        if w.dtype.kind not in "iuf" or w.ndim != 1:
            raise TypeError("Mixture weights must be a 1-D sequence of real numbers")
        w = w.astype(np.float64)
        if w.shape[0] != len(comps):
            raise ValueError(
                f"Mixture got {len(comps)} components but {w.shape[0]} weights")
        if not np.all(np.isfinite(w)) or np.any(w < 0) or not np.any(w > 0):
            raise ValueError("Mixture weights must be finite, >= 0 and not all zero")
        w = w / w.max()         # first to at most 1: the sum of huge weights cannot overflow
        # flatten nested mixtures
        flat_c, flat_w = [], []
        for c, wk in zip(comps, w / w.sum()):
            if isinstance(c, Mixture):
                flat_c.extend(c.components)
                flat_w.extend(wk * c.weights)
            else:
                flat_c.append(c)
                flat_w.append(wk)
        self.components = tuple(flat_c)
        self.weights = np.asarray(flat_w) / np.sum(flat_w)

    def _params(self):
        return (self.components, tuple(self.weights.tolist()))

    def __repr__(self):
        return f"Mixture({list(self.components)!r}, {self.weights.tolist()!r})"

    @property
    def support(self):
        sups = [c.support for c, _ in self._components()]
        return (min(s[0] for s in sups), max(s[1] for s in sups))

    def _components(self):
        return [(c, w) for c, w in zip(self.components, self.weights) if w > 0]

    def logpdf(self, x):
        """Log-density ``log sum_k w_k p_k(x)`` (max-subtracted log-sum-exp)."""
        x = np.asarray(x, dtype=np.float64)
        with np.errstate(divide="ignore"):
            parts = np.stack([np.log(w) + c.logpdf(x)
                              for c, w in zip(self.components, self.weights)])
        m = parts.max(axis=0)
        safe = np.where(np.isfinite(m), m, 0.0)
        with np.errstate(divide="ignore"):
            return np.where(np.isfinite(m),
                            safe + np.log(np.exp(parts - safe).sum(axis=0)), -np.inf)

    def _sample(self, n, rng):
        k = rng.choice(len(self.components), size=n, p=self.weights)
        out = np.empty(n)
        for j, c in enumerate(self.components):
            sel = k == j
            out[sel] = c._sample(int(sel.sum()), rng)
        return out
