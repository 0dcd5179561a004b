"""rsft._envelope: exact envelopes of built-in pairs against closed forms and scipy.

* ``log_M`` equals the closed form (rtol 1e-8; atol 1e-8 covers the documented rounding
  margin of ~1e-10 * (1 + |log M|) when log M is near 0) and never lies below it by more than
  1e-12 (the envelope must be safe). For mixtures, whose log_M is an upper bound, the bound
  is checked against a numerical supremum of log p - log q computed from scipy densities.
* The program's pieces the analysis relies on (rsft._program: packing, derivative parts,
  tails) are checked against the reference row evaluation directly.
"""
import math

import numpy as np
import pytest
from scipy import optimize, stats

import rsft
from _oracle_pairs import BOUND_PAIRS, EXACT_PAIRS, INF, _MIX2, _norm, _tn

LOGM_RTOL = 1e-8

LOGM_ATOL = 1e-8

SAFE_TOL = 1e-12  # log_M >= exact - SAFE_TOL


def _numeric_sup(tref, qref):
    """sup_x log p(x) - log q(x) from scipy densities: a fine grid over the target's support
    (clipped to [-60, 60]) refined by bounded Brent search around the best grid point."""
    lo, hi = (float(v) for v in tref.support())

    def g(x):
        with np.errstate(all="ignore"):
            return tref.logpdf(x) - qref.logpdf(x)

    grid = np.linspace(max(lo, -60.0), min(hi, 60.0), 200_001)
    vals = g(grid)
    i = int(np.nanargmax(vals))
    a, b = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    res = optimize.minimize_scalar(lambda x: -float(g(np.array([x]))[0]), bounds=(a, b),
                                   method="bounded", options={"xatol": 1e-13})
    return max(float(vals[i]), -float(res.fun))


@pytest.mark.parametrize("name, target, proposal, tref, qref, exact", EXACT_PAIRS,
                         ids=[p[0] for p in EXACT_PAIRS])
def test_log_M_closed_form(name, target, proposal, tref, qref, exact):
    s = rsft.RejectionSampler(target(), proposal())
    assert isinstance(s.log_M, float) and math.isfinite(s.log_M)
    np.testing.assert_allclose(s.log_M, exact, rtol=LOGM_RTOL, atol=LOGM_ATOL)
    assert s.log_M >= exact - SAFE_TOL  # the envelope must be safe, never below the sup


NUMERIC_PAIRS = [
    ("studentt5/studentt3", lambda: rsft.StudentT(5.0, 0.0, 1.0),
     lambda: rsft.StudentT(3.0, 0.0, 1.0), lambda: stats.t(5.0), lambda: stats.t(3.0)),
    ("studentt30-shifted/studentt5", lambda: rsft.StudentT(30.0, 0.3, 1.0),
     lambda: rsft.StudentT(5.0, 0.5, 1.5), lambda: stats.t(30.0, 0.3, 1.0),
     lambda: stats.t(5.0, 0.5, 1.5)),
    ("normal/studentt-shifted", lambda: rsft.Normal(-1.0, 0.5),
     lambda: rsft.StudentT(5.0, 0.5, 1.5), lambda: _norm(-1.0, 0.5),
     lambda: stats.t(5.0, 0.5, 1.5)),
    ("laplace/studentt", lambda: rsft.Laplace(0.5, 1.0), lambda: rsft.StudentT(1.0, 0.0, 2.0),
     lambda: stats.laplace(0.5, 1.0), lambda: stats.t(1.0, 0.0, 2.0)),
    ("normal/laplace-shifted", lambda: rsft.Normal(0.3, 1.0), lambda: rsft.Laplace(1.0, 3.0),
     lambda: _norm(0.3, 1.0), lambda: stats.laplace(1.0, 3.0)),
    ("beta/normal", lambda: rsft.Beta(3.0, 3.0), lambda: rsft.Normal(1.0, 2.0),
     lambda: stats.beta(3.0, 3.0), lambda: _norm(1.0, 2.0)),
    ("beta/studentt", lambda: rsft.Beta(2.0, 5.0), lambda: rsft.StudentT(3.0, 0.0, 1.0),
     lambda: stats.beta(2.0, 5.0), lambda: stats.t(3.0)),
    ("truncnorm/laplace", lambda: rsft.TruncatedNormal(1.0, 2.0, 0.0, INF),
     lambda: rsft.Laplace(1.0, 3.0), lambda: _tn(1.0, 2.0, 0.0, INF),
     lambda: stats.laplace(1.0, 3.0)),
    ("exponential/studentt", lambda: rsft.Exponential(0.3), lambda: rsft.StudentT(1.0, 0.0, 2.0),
     lambda: stats.expon(scale=0.3), lambda: stats.t(1.0, 0.0, 2.0)),
    ("uniform/laplace", lambda: rsft.Uniform(-1.0, 2.0), lambda: rsft.Laplace(1.0, 3.0),
     lambda: stats.uniform(-1.0, 3.0), lambda: stats.laplace(1.0, 3.0)),
]


@pytest.mark.parametrize("name, target, proposal, tref, qref", NUMERIC_PAIRS,
                         ids=[p[0] for p in NUMERIC_PAIRS])
def test_log_M_matches_numerical_sup(name, target, proposal, tref, qref):
    s = rsft.RejectionSampler(target(), proposal())
    sup = _numeric_sup(tref(), qref())
    np.testing.assert_allclose(s.log_M, sup, rtol=LOGM_RTOL, atol=LOGM_ATOL)
    assert s.log_M >= sup - SAFE_TOL


@pytest.mark.parametrize("name, target, proposal, tref, qref, exact", BOUND_PAIRS,
                         ids=[p[0] for p in BOUND_PAIRS])
def test_log_M_mixture_is_safe_bound(name, target, proposal, tref, qref, exact):
    s = rsft.RejectionSampler(target(), proposal())
    sup = _numeric_sup(tref(), qref())
    assert math.isfinite(s.log_M)
    assert s.log_M >= sup - SAFE_TOL
    # sum_k w_k M_k: never more than the largest component envelope
    comps_M = []
    for (m, sd) in _MIX2[0]:
        comps_M.append(rsft.RejectionSampler(rsft.Normal(m, sd), proposal()).log_M)
    assert s.log_M <= max(comps_M) + 1e-9


# ---------------------------------------------------------------------------------------------
# The pieces of rsft._program the analysis relies on, against the reference row evaluation
# ---------------------------------------------------------------------------------------------
from numpy.polynomial import polynomial as P  # noqa: E402

from rsft import _envelope, _program  # noqa: E402
from rsft._program import Row  # noqa: E402
from rsft._reference.sampler import eval_row, eval_row_on_support  # noqa: E402

ROW_PAIRS = [  # (target, proposal, points inside the support and away from kinks)
    (rsft.Normal(0.3, 1.0), rsft.StudentT(3.0, 0.0, 2.0), np.linspace(-4, 4, 9)),
    (rsft.StudentT(5.0, 0.3, 1.0), rsft.StudentT(3.0, -0.5, 1.5), np.linspace(-6, 6, 9)),
    (rsft.Laplace(0.5, 1.0), rsft.Laplace(-0.2, 2.0), np.array([-3.1, -1.3, 0.1, 1.7, 4.2])),
    (rsft.Beta(2.5, 3.5), rsft.Normal(0.5, 1.0), np.linspace(0.05, 0.95, 7)),
    (rsft.Exponential(0.7), rsft.Laplace(0.0, 2.0), np.array([0.3, 1.1, 2.9, 6.0])),
]


def _row(target, proposal):
    return _program.pack(target._terms().plus(proposal._terms().negated()))


@pytest.mark.parametrize("target, proposal, xs", ROW_PAIRS, ids=lambda v: repr(v)[:24])
def test_packed_row_is_log_p_minus_log_q(target, proposal, xs):
    row = np.array(_row(target, proposal))
    expected = target.logpdf(xs) - proposal.logpdf(xs)
    np.testing.assert_allclose(eval_row(row, xs), expected, rtol=1e-12, atol=1e-12)
    assert np.array_equal(eval_row(row, xs), eval_row_on_support(row, xs))
    assert all(float(eval_row_on_support(list(row), float(x))) == g
               for x, g in zip(xs, eval_row(row, xs)))          # scalar and array agree
    lo, hi = target.support
    outside = np.array([v for v in (lo - 1.0, hi + 1.0) if np.isfinite(v)])
    assert np.all(eval_row(row, outside) == -np.inf)
    assert bool(row[Row.QUADRATIC_ONLY]) == (not (target._terms().abs or target._terms().tlog
                                                  or proposal._terms().abs
                                                  or proposal._terms().tlog
                                                  or target._terms().log_x
                                                  or target._terms().log1m_x))


@pytest.mark.parametrize("target, proposal, xs", ROW_PAIRS, ids=lambda v: repr(v)[:24])
def test_derivative_parts_match_finite_differences(target, proposal, xs):
    row = _row(target, proposal)
    v = row[Row.CENTER]
    h = 1e-4
    for x in xs:
        signs = [1.0 if x > row[at] else -1.0 for _, at in _program.ABS_SLOTS]
        parts = _program.derivative_parts(row, signs)
        d = sum(P.polyval(x - v, num) / P.polyval(x - v, den) for num, den in parts)
        f = lambda t: float(eval_row_on_support(row, t))  # noqa: E731
        fd = (-f(x + 2 * h) + 8 * f(x + h) - 8 * f(x - h) + f(x - 2 * h)) / (12 * h)  # O(h^4)
        assert d == pytest.approx(fd, rel=1e-7, abs=1e-7)
        # the stationary polynomial in z = (x - v) / h is g' times the common denominator
        # (positive here) times a positive power of two
        scale = _envelope._row_scale(row)
        poly = _envelope._stationary_poly(row, signs, scale)
        den = np.prod([P.polyval(x - v, den) for _, den in parts])
        value = P.polyval((x - v) / scale, poly)
        if abs(d * den) < 1e-12:
            assert abs(value) < 1e-9
            continue
        factor = value / (d * den)
        assert factor > 0 and abs(math.log2(factor) - round(math.log2(factor))) < 1e-9


@pytest.mark.parametrize("target, proposal, limit", [
    (rsft.Laplace(1.0, 1.0), rsft.Laplace(0.0, 1.0), {1.0: 1.0, -1.0: -1.0}),
    (rsft.StudentT(3.0, 0.0, 1.0), rsft.StudentT(3.0, 0.0, 2.0), None),
    (rsft.Normal(0.0, 1.0), rsft.Normal(0.0, 2.0), {1.0: None, -1.0: None}),
])
def test_tail_limits(target, proposal, limit):
    row = _row(target, proposal)
    for side in (1.0, -1.0):
        res = _program.tail(row, side)
        far = float(eval_row_on_support(row, side * 1e7))
        if limit is not None and limit[side] is None:
            assert res is None and far < -1e12         # tends to -inf
        else:
            assert res[0] == "value"
            assert far == pytest.approx(res[1], abs=1e-6)
            if limit is not None:
                assert res[1] == pytest.approx(limit[side], rel=1e-14)


def test_divergent_tail_is_reported_with_its_growth():
    row = _row(rsft.Normal(2.0, 1.0), rsft.Normal(0.0, 1.0))   # the first article's pair
    assert _program.tail(row, 1.0) == ("inf", "2*x")
    assert _program.tail(row, -1.0) is None
    with pytest.raises(rsft.NoEnvelopeError, match=r"x -> \+inf \(like 2\*x\)"):
        rsft.RejectionSampler(rsft.Normal(2.0, 1.0), rsft.Normal(0.0, 1.0))


def test_sup_row_is_the_max_over_a_dense_grid():
    for target, proposal, _ in ROW_PAIRS:
        row = _row(target, proposal)
        lo, hi = target.support
        xs = np.linspace(max(lo, -30.0), min(hi, 30.0), 200_001)
        grid_max = float(np.max(eval_row(np.array(row), xs)))
        sup = _envelope.sup_row(row, target, proposal)
        assert grid_max <= sup + 1e-12
        assert sup - grid_max < 1e-3   # grid spacing 3e-4 times |g'| < 3 near a kink


def test_product_mode_is_decided_once_from_the_row():
    prog, _, _ = _envelope.builtin_program(rsft.Beta(2, 5), rsft.Uniform(0, 1))
    assert prog[0, Row.PRODUCT_MODE] == 1.0
    assert prog[0, Row.EXP_CONST] == math.exp(prog[0, Row.CONST])
    for t, q in [(rsft.Beta(2.5, 5), rsft.Uniform(0, 1)), (rsft.Beta(2, 5), rsft.Normal(0.5, 1))]:
        prog, _, _ = _envelope.builtin_program(t, q)
        assert prog[0, Row.PRODUCT_MODE] == 0.0
