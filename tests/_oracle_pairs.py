"""Built-in (target, proposal) pairs with scipy references and exact log M where known: the
shared oracle table of test_sampling.py and test_envelope.py."""
import math

import numpy as np
from scipy import stats

import rsft
from _helpers import MixtureRef

INF = np.inf

LOG_2PI = math.log(2.0 * math.pi)


def _tn(loc, scale, low, high):
    return stats.truncnorm((low - loc) / scale, (high - loc) / scale, loc=loc, scale=scale)


def _normal_pair_log_M(m1, s1, m2, s2):
    """sup_x log N(x; m1, s1) - log N(x; m2, s2) for s1 < s2 (attained at
    x* = (m1 s2^2 - m2 s1^2) / (s2^2 - s1^2))."""
    return math.log(s2 / s1) + (m1 - m2) ** 2 / (2.0 * (s2 ** 2 - s1 ** 2))


_norm = stats.norm


_MIX2 = ([(-2.0, 0.5), (1.5, 1.0)], [0.3, 0.7])


def _mix2():
    return rsft.Mixture([rsft.Normal(m, s) for m, s in _MIX2[0]], _MIX2[1])


def _mix2_ref():
    return MixtureRef([stats.norm(m, s) for m, s in _MIX2[0]], _MIX2[1])


PAIRS = [
    # N(2,1) / N(0,2): M = 2 e^{2/3} (the valid replacement for the source article's pair)
    ("normal/normal", lambda: rsft.Normal(2.0, 1.0), lambda: rsft.Normal(0.0, 2.0),
     lambda: _norm(2.0, 1.0), lambda: _norm(0.0, 2.0), math.log(2.0) + 2.0 / 3.0),
    ("normal/normal-general", lambda: rsft.Normal(-1.0, 0.7), lambda: rsft.Normal(0.5, 1.5),
     lambda: _norm(-1.0, 0.7), lambda: _norm(0.5, 1.5), _normal_pair_log_M(-1.0, 0.7, 0.5, 1.5)),
    # identical target and proposal: M = 1, every proposal accepted
    ("normal/same-normal", lambda: rsft.Normal(1.0, 2.0), lambda: rsft.Normal(1.0, 2.0),
     lambda: _norm(1.0, 2.0), lambda: _norm(1.0, 2.0), 0.0),
    # N(0,1) / Laplace(0,1): sup at |x| = 1: M = sqrt(2e/pi)
    ("normal/laplace", lambda: rsft.Normal(0.0, 1.0), lambda: rsft.Laplace(0.0, 1.0),
     lambda: _norm(0.0, 1.0), lambda: stats.laplace(0.0, 1.0),
     0.5 + math.log(2.0) - 0.5 * LOG_2PI),
    # N(0,1) / t_3: d/dx = x(-1 + 4/(3 + x^2)) = 0 at x^2 = 1, which beats x = 0
    ("normal/studentt", lambda: rsft.Normal(0.0, 1.0), lambda: rsft.StudentT(3.0, 0.0, 1.0),
     lambda: _norm(0.0, 1.0), lambda: stats.t(3.0),
     float(_norm.logpdf(1.0) - stats.t.logpdf(1.0, 3.0))),
    # N(0,1) / t_3(scale 2): stationary x^2 = 4 - 3*4 < 0, so the sup is at x = 0
    ("normal/studentt-wide", lambda: rsft.Normal(0.0, 1.0), lambda: rsft.StudentT(3.0, 0.0, 2.0),
     lambda: _norm(0.0, 1.0), lambda: stats.t(3.0, 0.0, 2.0),
     float(_norm.logpdf(0.0) - stats.t.logpdf(0.0, 3.0, 0.0, 2.0))),
    # U(0,1) / U(-1,2): M = 3
    ("uniform/uniform", lambda: rsft.Uniform(0.0, 1.0), lambda: rsft.Uniform(-1.0, 2.0),
     lambda: stats.uniform(0.0, 1.0), lambda: stats.uniform(-1.0, 3.0), math.log(3.0)),
    # U(0,1) / N(0,1): M = 1 / phi(1)
    ("uniform/normal", lambda: rsft.Uniform(0.0, 1.0), lambda: rsft.Normal(0.0, 1.0),
     lambda: stats.uniform(0.0, 1.0), lambda: _norm(0.0, 1.0), float(-_norm.logpdf(1.0))),
    # Exp(1) / Exp(2): p/q = 2 e^{-x/2}, M = 2
    ("exponential/exponential", lambda: rsft.Exponential(1.0), lambda: rsft.Exponential(2.0),
     lambda: stats.expon(), lambda: stats.expon(scale=2.0), math.log(2.0)),
    # Laplace(0,1) / Laplace(0,2): p/q = 2 e^{-|x|/2}, M = 2
    ("laplace/laplace", lambda: rsft.Laplace(0.0, 1.0), lambda: rsft.Laplace(0.0, 2.0),
     lambda: stats.laplace(0.0, 1.0), lambda: stats.laplace(0.0, 2.0), math.log(2.0)),
    # Laplace(m1,b1) / Laplace(m2,b2), b1 < b2: sup at x = m1: log(b2/b1) + |m1 - m2| / b2
    ("laplace/laplace-shifted", lambda: rsft.Laplace(0.5, 1.0), lambda: rsft.Laplace(0.0, 2.0),
     lambda: stats.laplace(0.5, 1.0), lambda: stats.laplace(0.0, 2.0), math.log(2.0) + 0.25),
    # equal scales: log p/q = (|x - m2| - |x - m1|)/b <= |m1 - m2|/b is bounded: M = e
    ("laplace/laplace-same-scale", lambda: rsft.Laplace(1.0, 1.0), lambda: rsft.Laplace(0.0, 1.0),
     lambda: stats.laplace(1.0, 1.0), lambda: stats.laplace(0.0, 1.0), 1.0),
    # Beta(2,5) / U(0,1): M = Beta pdf at the mode (a-1)/(a+b-2) = 1/5, = 30 * 0.2 * 0.8^4
    ("beta/uniform", lambda: rsft.Beta(2.0, 5.0), lambda: rsft.Uniform(0.0, 1.0),
     lambda: stats.beta(2.0, 5.0), lambda: stats.uniform(0.0, 1.0),
     float(stats.beta.logpdf(0.2, 2.0, 5.0))),
    # Beta(1,3) / U(0,1): mode at the boundary x = 0, pdf(0) = 3
    ("beta/uniform-boundary-mode", lambda: rsft.Beta(1.0, 3.0), lambda: rsft.Uniform(0.0, 1.0),
     lambda: stats.beta(1.0, 3.0), lambda: stats.uniform(0.0, 1.0), math.log(3.0)),
    # TN(0,1,-1,2) / U(-1,2): M = 3 phi(0) / (Phi(2) - Phi(-1))
    ("truncnorm/uniform", lambda: rsft.TruncatedNormal(0.0, 1.0, -1.0, 2.0),
     lambda: rsft.Uniform(-1.0, 2.0), lambda: _tn(0.0, 1.0, -1.0, 2.0),
     lambda: stats.uniform(-1.0, 3.0),
     math.log(3.0) + float(_norm.logpdf(0.0)) - math.log(_norm.cdf(2.0) - _norm.cdf(-1.0))),
    # TN(0,1,-inf,1) / N(0,1): p/q = 1/Phi(1) on the support
    ("truncnorm-one-sided/normal", lambda: rsft.TruncatedNormal(0.0, 1.0, -INF, 1.0),
     lambda: rsft.Normal(0.0, 1.0), lambda: _tn(0.0, 1.0, -INF, 1.0), lambda: _norm(0.0, 1.0),
     float(-_norm.logcdf(1.0))),
    # half-normal TN(0,1,0,inf) / Exp(1): log p/q = -x^2/2 + x + const, sup at x = 1
    ("truncnorm-half/exponential", lambda: rsft.TruncatedNormal(0.0, 1.0, 0.0, INF),
     lambda: rsft.Exponential(1.0), lambda: _tn(0.0, 1.0, 0.0, INF), lambda: stats.expon(),
     0.5 + math.log(2.0) - 0.5 * LOG_2PI),
    # far tail TN(0,1,4,inf) / N(4,1): log p/q = -4x + const decreasing, sup at x = 4:
    # log M = log(phi(4)/Q(4)) - log phi(0) = -8 - log Q(4)
    ("truncnorm-far-tail/normal", lambda: rsft.TruncatedNormal(0.0, 1.0, 4.0, INF),
     lambda: rsft.Normal(4.0, 1.0), lambda: _tn(0.0, 1.0, 4.0, INF), lambda: _norm(4.0, 1.0),
     -8.0 - float(_norm.logsf(4.0))),
    # t_3 / t_3(scale 2): the bracket ((1+x^2/(3*4)) / (1+x^2/3))^2 <= 1, sup at 0: M = 2
    ("studentt/studentt", lambda: rsft.StudentT(3.0, 0.0, 1.0),
     lambda: rsft.StudentT(3.0, 0.0, 2.0), lambda: stats.t(3.0),
     lambda: stats.t(3.0, 0.0, 2.0), math.log(2.0)),
    # Gamma(3) / Exp(2): log p/q = 2 log x - x/2 (the constants cancel), sup at x = 4
    ("gamma/exponential", lambda: rsft.Gamma(3.0), lambda: rsft.Exponential(2.0),
     lambda: stats.gamma(3.0), lambda: stats.expon(scale=2.0), 2.0 * math.log(4.0) - 2.0),
    # Gamma(3) / Gamma(2, 1.5): log p/q = log x - x/3 - log 2 + 2 log 1.5, sup at x = 3
    ("gamma/gamma", lambda: rsft.Gamma(3.0), lambda: rsft.Gamma(2.0, 1.5),
     lambda: stats.gamma(3.0), lambda: stats.gamma(2.0, scale=1.5),
     math.log(3.0) - 1.0 - math.log(2.0) + 2.0 * math.log(1.5)),
    # Beta(2,3) / Gamma(2): p/q = 12 (1-x)^2 e^x is decreasing on [0, 1], sup at x = 0: M = 12
    ("beta/gamma", lambda: rsft.Beta(2.0, 3.0), lambda: rsft.Gamma(2.0),
     lambda: stats.beta(2.0, 3.0), lambda: stats.gamma(2.0), math.log(12.0)),
    # mixtures: log_M is an upper bound (sum_k w_k M_k), checked against a numerical sup
    ("mixture/normal", _mix2, lambda: rsft.Normal(0.0, 3.0), _mix2_ref,
     lambda: _norm(0.0, 3.0), None),
    ("mixture/studentt", _mix2, lambda: rsft.StudentT(3.0, 0.0, 2.0), _mix2_ref,
     lambda: stats.t(3.0, 0.0, 2.0), None),
]


PAIR_IDS = [p[0] for p in PAIRS]


EXACT_PAIRS = [p for p in PAIRS if p[5] is not None]


BOUND_PAIRS = [p for p in PAIRS if p[5] is None]
