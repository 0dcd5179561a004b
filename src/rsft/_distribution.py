"""The base of rsft's distributions: what the samplers and the envelope analysis rely on.

A distribution has ``support``, ``logpdf``, ``pdf`` and ``sample``, and describes its
log-density as :class:`rsft._program.Terms` (``_terms``), its single-density parts
(``_components``) and, if it can be a proposal, its family code (``_code``) and draw parameters
(``_proposal_params``). The families are in :mod:`rsft.distributions`; this base lives apart so
that :mod:`rsft.sampling` needs no family and the two modules import each other in one
direction only.
"""

import numpy as np

from . import _backend, _validate


def _fmt(v):
    return f"{v:g}"


class Distribution:
    """Base class of the built-in families (do not instantiate)."""

    #: proposal family code understood by the kernels, or None if it cannot be a proposal
    _code = None

    @property
    def support(self):
        """``(low, high)``: the closed interval outside which the density is zero."""
        t = self._terms()
        return (t.lo, t.hi)

    def _components(self):
        """``[(component, weight)]``: the single-density parts of this density (a mixture has
        several; every other family is its own only part)."""
        return [(self, 1.0)]

    def _log_concave(self):
        """Whether the density is log-concave (what LogConcaveSampler accepts)."""
        return False

    def logpdf(self, x):
        """Log-density at ``x`` (array-like); ``-inf`` outside the support."""
        x = np.asarray(x, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = self._logpdf(x)
            lo, hi = self.support
            return np.where((x >= lo) & (x <= hi), out, -np.inf)

    def pdf(self, x):
        """Density at ``x`` (array-like)."""
        return np.exp(self.logpdf(x))

    def sample(self, n, rng=None):
        """Draw ``n`` independent samples; returns a float64 array of shape ``(n,)``.

        Proposal families draw exactly as the rejection sampler's proposals do (Normal:
        ``loc + scale*standard_normal(n)``, Uniform: ``low + (high-low)*random(n)``,
        Exponential: ``scale*standard_exponential(n)``, Laplace: ``loc + scale*laplace(0, 1, n)``,
        StudentT: ``loc + scale*standard_t(df, n)``, Gamma: ``scale*standard_gamma(shape, n)``);
        Beta uses ``Generator.beta``,
        TruncatedNormal rsft's rejection sampler, Mixture ``Generator.choice`` for the
        components and then each component's draws in component order.
        """
        n = _validate.count(n)
        rng = _validate.generator(rng)
        return self._sample(n, rng)

    def _sample(self, n, rng):
        out = np.empty(n)
        # the process default backend: both draw the same bits, the compiled one faster
        _backend.kernels().draw_proposals(
            rng, self._code, self._proposal_params(), out)
        return out

    def _centre_and_scale(self):
        """Where the mass is and its spread: where ``find_log_M`` scans around a proposal and
        ``LogConcaveSampler`` starts its construction; ``(None, None)`` when not known."""
        return (None, None)

    def _proposal_params(self):
        raise TypeError(
            f"{type(self).__name__} cannot be a proposal; proposals are Normal, Uniform, "
            "Exponential, Laplace, StudentT or Gamma")

    def __repr__(self):
        args = ", ".join(_fmt(v) for v in self._params())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        return type(self) is type(other) and self._params() == other._params()

    def __hash__(self):
        return hash((type(self).__name__, self._params()))
