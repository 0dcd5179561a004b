"""rsft.LogConcaveSampler against independent oracles, refusals of non-log-concave targets, and
the hat's own guarantees; every sampling test on every available backend.

* Samples pass a Kolmogorov-Smirnov test against scipy.stats' cdf (n = 20000 per case, fixed
  seeds, reject at ALPHA = 1e-3): Normal, Uniform, Gamma(1), Gamma(3), Beta(2, 5), two
  TruncatedNormals, Laplace, and two callables (unnormalised -x**4 against scipy's gennorm(4),
  a logistic log-density against scipy's logistic).
* The acceptance rate is at least the requested efficiency minus 4 standard errors, the target
  is called on at most 0.02 points per sample, and ``squeeze_area <= integral <= hat_area``.
* At n = 1e6, KS and chi-square (200 equiprobable bins) against scipy for Normal, Gamma(1) (the
  hat's edge at the support's end), Beta(1, 1), Beta(2, 5), TruncatedNormal far in a tail and
  two callables (an asymmetric Gumbel, an unnormalised Gamma(3) on (0, inf)); a 2% error of
  scale is rejected at that n. The position on one piece (the exponential modulo the length)
  has the truncated exponential law from the smallest sloped fall to unbounded tails.
* Refusals: a bimodal mixture, Student t, x**2-growing log-densities, Beta(0.5, 0.5) and more
  are refused at construction; a target that changes after construction is caught while
  sampling (raise, or warn and finish).
"""
from __future__ import annotations

import math
import pickle
import zlib

import numpy as np
import pytest
from scipy import special, stats

import rsft
from rsft import _hat
from rsft._program import PIECE_LEN, Piece

BACKENDS = rsft.available_backends()
N = 20_000
ALPHA = 1e-3       # KS significance level
ACC_Z = 4.0        # acceptance: at least the requested efficiency minus 4 standard errors


def _seed(*parts) -> int:
    return zlib.crc32("/".join(map(str, parts)).encode())


def _quartic(x):
    return -x ** 4


def _logistic(x):
    a = np.abs(x)
    return -a - 2.0 * np.log1p(np.exp(-a))


# (id, target, construction keywords, scipy reference, integral of exp(logpdf))
CASES = [
    ("normal", lambda: rsft.Normal(0.5, 2.0), {}, stats.norm(0.5, 2.0), 1.0),
    ("uniform", lambda: rsft.Uniform(-1.0, 2.0), {}, stats.uniform(-1.0, 3.0), 1.0),
    ("gamma-1", lambda: rsft.Gamma(1.0), {}, stats.gamma(1.0), 1.0),
    ("gamma-3", lambda: rsft.Gamma(3.0), {}, stats.gamma(3.0), 1.0),
    ("gamma-3-scaled", lambda: rsft.Gamma(3.0, 0.01), {}, stats.gamma(3.0, scale=0.01), 1.0),
    ("beta-2-5", lambda: rsft.Beta(2.0, 5.0), {}, stats.beta(2.0, 5.0), 1.0),
    ("truncnorm", lambda: rsft.TruncatedNormal(0.0, 1.0, -1.0, 2.0), {},
     stats.truncnorm(-1.0, 2.0), 1.0),
    ("truncnorm-tail", lambda: rsft.TruncatedNormal(0.0, 1.0, 3.0, np.inf), {},
     stats.truncnorm(3.0, np.inf), 1.0),
    ("laplace", lambda: rsft.Laplace(1.0, 0.5), {}, stats.laplace(1.0, 0.5), 1.0),
    ("quartic-callable", lambda: _quartic, {"support": (-np.inf, np.inf)}, stats.gennorm(4.0),
     2.0 * math.gamma(1.25)),
    ("logistic-callable", lambda: _logistic, {"support": (-np.inf, np.inf)}, stats.logistic(),
     1.0),
    ("narrow-far-callable", lambda: (lambda x: -0.5 * ((x - 1e4) / 1e-3) ** 2),
     {"support": (-np.inf, np.inf), "mode": 1e4}, stats.norm(1e4, 1e-3),
     1e-3 * math.sqrt(2.0 * math.pi)),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name, make, kw, ref, integral", CASES, ids=IDS)
def test_samples_match_scipy(name, make, kw, ref, integral, backend):
    s = rsft.LogConcaveSampler(make(), backend=backend, **kw)
    x, st = s.sample_with_stats(N, rng=_seed(name, backend))
    assert x.shape == (N,) and st.n_accepted == N
    assert stats.kstest(x, ref.cdf).pvalue > ALPHA
    eff = s.requested_efficiency
    assert s.efficiency >= eff
    assert st.acceptance_rate >= eff - ACC_Z * eff * math.sqrt((1.0 - eff) / N)
    assert st.n_evaluated / st.n_accepted <= 0.02
    assert st.max_excess <= 1e-9
    assert s.squeeze_area <= integral * (1.0 + 1e-12)
    assert integral <= s.hat_area * (1.0 + 1e-12)
    lo, hi = ref.support()
    assert x.min() >= lo and x.max() <= hi


@pytest.mark.parametrize("efficiency", [0.5, 0.9, 0.999])
def test_requested_efficiency_is_reached(efficiency):
    s = rsft.LogConcaveSampler(rsft.Gamma(3.0), efficiency=efficiency)
    assert efficiency <= s.efficiency
    assert s.efficiency == pytest.approx(s.squeeze_area / s.hat_area, rel=1e-13)
    _, st = s.sample_with_stats(N, rng=_seed("eff", efficiency))
    se = efficiency * math.sqrt((1.0 - efficiency) / N)
    assert st.acceptance_rate >= efficiency - ACC_Z * se
    # the target is asked about the proposals between squeeze and hat only
    assert st.n_evaluated <= (1.0 - efficiency) * st.n_proposed * 1.1 + 100


def test_construction_calls_are_few_and_vectorised():
    calls = []

    def lp(x):
        calls.append(x.size)
        return -0.5 * x * x

    s = rsft.LogConcaveSampler(lp, support=(-np.inf, np.inf))
    assert len(calls) <= 12 and sum(calls) == s.n_setup_evaluations
    calls.clear()
    s.sample(100_000, rng=0)
    # one call per chunk at most, with every in-between point of the chunk
    assert 1 <= len(calls) <= 10 and sum(calls) <= 0.02 * 100_000


def test_chords_bound_the_log_density():
    """The hat lies above and the squeeze below log p on every piece (checked densely)."""
    s = rsft.LogConcaveSampler(rsft.Gamma(3.0))
    pieces = s._hat.pieces
    for row in pieces:
        length = min(row[Piece.LENGTH], 50.0)
        t = np.linspace(0.0, length, 41)
        x = row[Piece.ANCHOR] + row[Piece.DIRECTION] * t
        log_hat = row[Piece.HAT_AT] + row[Piece.HAT_SLOPE] * (x - row[Piece.ANCHOR])
        lp = rsft.Gamma(3.0).logpdf(x)
        assert np.all(lp <= log_hat + 1e-9 * (1 + np.abs(log_hat)))
        if row[Piece.GAP_AT] > -np.inf:
            sq = log_hat + row[Piece.GAP_AT] + row[Piece.GAP_SLOPE] * (x - row[Piece.ANCHOR])
            assert np.all(sq <= lp + 1e-9 * (1 + np.abs(lp)))
    assert pieces[-1, Piece.CUM] == 1.0
    assert np.all(np.diff(pieces[:, Piece.CUM]) > 0.0)


# (parity of both backends: tests/test_parity.py; bad arguments: tests/test_bad_input.py)


def test_draw_order_is_documented_stream():
    """One chunk: c uniforms, c standard exponentials, c uniforms (the reference's order)."""
    s = rsft.LogConcaveSampler(rsft.Exponential(1.0), backend="numpy")
    rng = np.random.default_rng(7)
    s.sample(100, rng)
    c = rsft._reference.chunk_length(100, 0, 0, 1.0 / s.efficiency, 0, 10 ** 9)
    ref = np.random.default_rng(7)
    ref.random(c), ref.standard_exponential(c), ref.random(c)
    assert rng.bit_generator.state == ref.bit_generator.state


# ---------------------------------------------------------------------------------------------
# refusals: never a silently wrong sample
# ---------------------------------------------------------------------------------------------
_bimodal = rsft.Mixture([rsft.Normal(-3.0, 1.0), rsft.Normal(3.0, 1.0)], [0.5, 0.5])


@pytest.mark.parametrize("target, kw", [
    (_bimodal.logpdf, {"support": (-np.inf, np.inf)}),
    (_bimodal.logpdf, {"support": (-np.inf, np.inf), "mode": 3.0}),
    (stats.t(3.0).logpdf, {"support": (-np.inf, np.inf)}),
    (stats.t(30.0).logpdf, {"support": (-np.inf, np.inf)}),
    (lambda x: 0.5 * x ** 2, {"support": (-np.inf, np.inf)}),
    (lambda x: x ** 2, {"support": (-1.0, 2.0)}),
    (lambda x: -x ** 2 + 0.1 * x ** 4, {"support": (-np.inf, np.inf)}),
    (lambda x: -np.sqrt(np.abs(x)), {"support": (-np.inf, np.inf)}),
    (stats.beta(0.5, 0.5).logpdf, {"support": (0.0, 1.0)}),
    (stats.gamma(0.5).logpdf, {"support": (0.0, np.inf)}),
    (lambda x: np.where(np.abs(x - 1.0) < 0.5, -np.inf, -0.5 * x * x),
     {"support": (-np.inf, np.inf)}),                              # a hole in the support
], ids=["bimodal", "bimodal-mode", "student-t3", "student-t30", "x2-growing",
        "x2-on-interval", "x4-growing", "sqrt-cusp", "beta-half", "gamma-half", "hole"])
def test_not_log_concave_refused_at_construction(target, kw):
    with pytest.raises(rsft.NotLogConcaveError) as ei:
        rsft.LogConcaveSampler(target, **kw)
    e = ei.value
    assert isinstance(e, ValueError)
    assert "not log-concave" in str(e) or "unbounded" in str(e)
    if e.points:          # the chord check names three points around x
        assert len(e.points) == 3 and e.points[0] < e.x < e.points[2]
        assert e.log_p < e.bound


@pytest.mark.parametrize("target", [
    rsft.StudentT(3.0), rsft.Beta(0.5, 0.5), rsft.Beta(2.0, 0.9), rsft.Gamma(0.7), _bimodal,
], ids=repr)
def test_builtin_families_that_are_not_log_concave_are_refused(target):
    with pytest.raises(rsft.NotLogConcaveError, match="not log-concave"):
        rsft.LogConcaveSampler(target)


class _Switching:
    """-x^2/2 during construction; afterwards shifted by ``shift`` (a changed target: above
    the hat for shift > 0, below the squeeze for shift < 0)."""

    def __init__(self, shift):
        self.shift, self.built = shift, False

    def __call__(self, x):
        return -0.5 * x * x + (self.shift if self.built else 0.0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shift, where", [(1.0, "above the hat"), (-1.0, "below the squeeze")])
def test_violation_caught_while_sampling(shift, where, backend):
    f = _Switching(shift)
    s = rsft.LogConcaveSampler(f, support=(-np.inf, np.inf), backend=backend)
    f.built = True
    with pytest.raises(rsft.NotLogConcaveError, match=where) as ei:
        s.sample(10_000, rng=1)
    e = ei.value
    assert e.log_p == pytest.approx(-0.5 * e.x * e.x + shift, rel=1e-12, abs=1e-12)
    assert (e.log_p > e.bound) if shift > 0 else (e.log_p < e.bound)
    assert e.points == ()
    f2 = _Switching(shift)
    s = rsft.LogConcaveSampler(f2, support=(-np.inf, np.inf), on_violation="warn",
                               backend=backend)
    f2.built = True
    with pytest.warns(rsft.EnvelopeViolationWarning, match="not log-concave"):
        x, st = s.sample_with_stats(10_000, rng=1)
    assert x.shape == (10_000,) and st.max_excess > 1e-9


def test_exceptions_pickle_with_their_attributes():
    errors = [rsft.NotLogConcaveError("msg", 1.5, -2.0, -1.0, (1.0, 1.5, 2.0)),
              rsft.EnvelopeViolationError(0.3, 0.1, 1.2),
              rsft.ProposalBudgetExceeded(10, 2, 5, 10)]
    for e in errors:
        back = pickle.loads(pickle.dumps(e))
        assert type(back) is type(e) and str(back) == str(e)
        assert vars(back) == vars(e)


# ---------------------------------------------------------------------------------------------
# budgets and bad input
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_proposal_budget(backend):
    s = rsft.LogConcaveSampler(rsft.Normal(), max_proposals=500, backend=backend)
    with pytest.raises(rsft.ProposalBudgetExceeded) as ei:
        s.sample(10_000, rng=0)
    assert ei.value.n_proposed <= 500 and ei.value.n_requested == 10_000
    assert s._budget(10) == 500
    d = rsft.LogConcaveSampler(rsft.Normal())
    assert d._budget(1000) == math.ceil(20_100 / d.efficiency + 10_000)


def test_construction_budget(monkeypatch):
    """Construction stops with a clear error, never hangs: a needle narrower than the spacing
    of doubles there cannot be refined; a hat that needs more points than the budget."""
    calls = []

    def needle(x):
        calls.append(x.size)
        return -0.5 * ((x - 3.3e6) / 1e-9) ** 2

    with pytest.raises(ValueError, match="could not build a hat"):
        rsft.LogConcaveSampler(needle, support=(-np.inf, np.inf))
    assert sum(calls) <= _hat.MAX_POINTS and len(calls) <= _hat.MAX_ROUNDS + 1
    # a needle that doubles can resolve is found, with or without a mode
    for mode in (None, 1e3):
        s = rsft.LogConcaveSampler(lambda x: -0.5 * ((x - 1e3) / 1e-7) ** 2,
                                   support=(-np.inf, np.inf), mode=mode)
        assert abs(np.mean(s.sample(1000, rng=0)) - 1e3) < 1e-7
    monkeypatch.setattr(_hat, "MAX_POINTS", 160)         # the start points and a few more
    calls.clear()
    with pytest.raises(ValueError, match="at most 160 points"):
        rsft.LogConcaveSampler(lambda x: calls.append(x.size) or -0.5 * x * x,
                               support=(-np.inf, np.inf), efficiency=0.9999)
    assert sum(calls) <= 160


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_n_rng_and_logpdf_errors_while_sampling(backend):
    s = rsft.LogConcaveSampler(rsft.Normal(), backend=backend)
    with pytest.raises(TypeError):
        s.sample(1.5)
    with pytest.raises(ValueError):
        s.sample(-1)
    with pytest.raises(TypeError):
        s.sample(10, rng="seed")
    x, st = s.sample_with_stats(0, rng=0)
    assert x.shape == (0,) and x.dtype == np.float64 and st.n_proposed == 0

    class Boom(Exception):
        pass

    state = {"built": False}

    def lp(x):
        if state["built"]:
            raise Boom("from the target")
        return -0.5 * x * x

    s = rsft.LogConcaveSampler(lp, support=(-np.inf, np.inf), backend=backend)
    state["built"] = True
    with pytest.raises(Boom):
        s.sample(100_000, rng=0)


def test_normalising_constant_is_bracketed():
    """For exp(-x^4) (integral 2 Gamma(5/4)) the areas bracket the integral within 1%."""
    s = rsft.LogConcaveSampler(_quartic, support=(-np.inf, np.inf))
    z = 2.0 * special.gamma(1.25)
    assert s.squeeze_area <= z <= s.hat_area
    assert s.hat_area / s.squeeze_area <= 1.0 / 0.99 + 1e-12
    assert "LogConcaveSampler" in repr(s) and "n_pieces" in repr(s)


# ---------------------------------------------------------------------------------------------
# log-densities far from 0: the areas over- or underflow, their ratio must not
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name, logpdf, support, ref, shift", [
    ("loglik-minus-1e4", lambda x: -1e4 - 0.5 * x * x, (-np.inf, np.inf), stats.norm(), 0.0),
    ("plus-1e4", lambda x: 1e4 - 0.5 * x * x, (-np.inf, np.inf), stats.norm(), 0.0),
    # exp(1000 x) on (0, 1): 1 - x is an exponential of rate 1000 truncated to (0, 1)
    ("steep-1e3", lambda x: 1e3 * x, (0.0, 1.0), stats.truncexpon(1e3, scale=1e-3), 1.0),
], ids=["loglik-minus-1e4", "plus-1e4", "steep-1e3"])
def test_log_density_far_from_zero(name, logpdf, support, ref, shift, backend):
    """``hat_area`` may overflow (inf) or underflow (0) as a float; the efficiency, the budget
    and the samples must not depend on that (they were NaN / a ZeroDivisionError)."""
    s = rsft.LogConcaveSampler(logpdf, support=support, backend=backend)
    assert s.requested_efficiency <= s.efficiency <= 1.0
    x, st = s.sample_with_stats(N, rng=_seed("far", name, backend))
    y = shift - x if shift else x
    assert st.n_accepted == N and st.max_excess <= 1e-9
    assert stats.kstest(y, ref.cdf).pvalue > ALPHA


# ---------------------------------------------------------------------------------------------
# exactness at large n: KS and chi-square (200 equiprobable bins) against scipy
# ---------------------------------------------------------------------------------------------
N_LARGE = 1_000_000
P_MIN = 1e-4                 # both tests reject below this p-value (they use n themselves)
N_BINS = 200


def _gumbel(x):                             # asymmetric, log-concave
    with np.errstate(over="ignore"):        # -inf far left, where exp(-x) overflows
        return -(x + np.exp(-x))


def _gamma3_unnormalised(x):                # Gamma(3) up to a constant, support (0, inf)
    with np.errstate(divide="ignore"):
        return 2.0 * np.log(x) - x


LARGE_CASES = [
    ("normal", lambda: rsft.Normal(0.5, 2.0), {}, stats.norm(0.5, 2.0)),
    ("gamma-1-edge-at-0", lambda: rsft.Gamma(1.0), {}, stats.expon()),
    ("beta-1-1", lambda: rsft.Beta(1.0, 1.0), {}, stats.uniform()),
    ("beta-2-5", lambda: rsft.Beta(2.0, 5.0), {}, stats.beta(2.0, 5.0)),
    ("truncnorm-5-inf", lambda: rsft.TruncatedNormal(0.0, 1.0, 5.0, np.inf), {},
     stats.truncnorm(5.0, np.inf)),
    ("gumbel-callable", lambda: _gumbel, {"support": (-np.inf, np.inf)}, stats.gumbel_r()),
    ("gamma-3-callable-half-line", lambda: _gamma3_unnormalised, {"support": (0.0, np.inf)},
     stats.gamma(3.0)),
]


def _p_values(x, ref):
    edges = ref.ppf(np.arange(1, N_BINS) / N_BINS)
    counts = np.bincount(np.searchsorted(edges, x), minlength=N_BINS)
    return stats.kstest(x, ref.cdf).pvalue, stats.chisquare(counts).pvalue


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name, make, kw, ref", LARGE_CASES, ids=[c[0] for c in LARGE_CASES])
def test_exact_at_large_n(name, make, kw, ref, backend):
    s = rsft.LogConcaveSampler(make(), backend=backend, **kw)
    x = s.sample(N_LARGE, rng=_seed("large", name))
    p_ks, p_chi = _p_values(x, ref)
    assert p_ks > P_MIN and p_chi > P_MIN, (p_ks, p_chi)


def test_large_n_tests_can_fail():
    """The tests above have the power to see a 2% error of scale at this n."""
    x = rsft.LogConcaveSampler(rsft.Normal(0.5, 2.0)).sample(N_LARGE, rng=_seed("power"))
    p_ks, p_chi = _p_values(x, stats.norm(0.5, 2.04))
    assert p_ks < P_MIN and p_chi < P_MIN


def _one_piece(direction, length, rate):
    """A hat of one piece anchored at 5.0 with log slope -rate away from it and squeeze = hat
    (every proposal accepted without the target: the samples are the hat's own)."""
    table = np.zeros((1, PIECE_LEN))
    table[0, [Piece.ANCHOR, Piece.DIRECTION, Piece.LENGTH, Piece.CUM]] = (5.0, direction,
                                                                           length, 1.0)
    table[0, Piece.DECAY] = 1.0 / rate if rate > 0.0 else 0.0
    table[0, Piece.HAT_SLOPE] = -direction * rate
    table[0, Piece.SHARE_SCALE] = length if rate == 0.0 else 0.0
    return table


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("direction", [1.0, -1.0])
@pytest.mark.parametrize("length, rate", [
    (1.0, 1.0001 * _hat.FLAT_DROP),   # the smallest sloped fall: about 1e4 wraps of the modulo
    (1.0, 1e-2), (1.0, 1.0), (0.5, 60.0), (1e-3, 7e5), (2.0, 1e6),
    (np.inf, 2.0), (np.inf, 1e-250), (3.0, 0.0),      # unbounded tails, a flat piece
])
def test_position_on_a_piece_is_the_truncated_exponential(length, rate, direction, backend):
    """``e * DECAY`` modulo ``LENGTH`` has the truncated exponential law on the piece, on both
    backends, from the smallest sloped fall to falls of 2e6 (and uniform on a flat piece)."""
    table = _one_piece(direction, length, rate)
    out = np.empty(N_LARGE)
    counts = rsft._backend.kernels(backend).hat_sample(
        np.random.default_rng(_seed("piece", length, rate, direction)), table,
        np.zeros(4, dtype=np.int64), None, N_LARGE, 1.0, 2 * N_LARGE, True, 1e-9, out)
    assert counts[:3] == (N_LARGE, N_LARGE, 0)
    t = (out - 5.0) * direction                       # distance from the anchor
    assert t.min() >= 0.0 and t.max() <= length
    if rate == 0.0:
        cdf = stats.uniform(0.0, length).cdf
    elif math.isinf(length):
        cdf = stats.expon(scale=1.0 / rate).cdf
    else:
        fall = rate * length
        cdf = (lambda s: np.minimum(-np.expm1(-rate * s) / -math.expm1(-fall), 1.0))
    assert stats.kstest(t, cdf).pvalue > P_MIN


# ---------------------------------------------------------------------------------------------
# a built sampler is immutable: threads, pickling
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_threads_share_one_sampler(backend):
    from concurrent.futures import ThreadPoolExecutor
    s = rsft.LogConcaveSampler(rsft.Gamma(3.0), backend=backend)
    seeds = range(8)
    expected = [s.sample(50_000, rng=seed) for seed in seeds]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda seed: s.sample(50_000, rng=seed), seeds))
    assert all(np.array_equal(a, b) for a, b in zip(expected, got))


@pytest.mark.parametrize("backend", BACKENDS)
def test_sampler_pickles(backend):
    s = rsft.LogConcaveSampler(rsft.Beta(2.0, 5.0), backend=backend)
    back = pickle.loads(pickle.dumps(s))
    assert np.array_equal(back._hat.pieces, s._hat.pieces)
    assert np.array_equal(back.sample(1000, rng=3), s.sample(1000, rng=3))
    q = rsft.LogConcaveSampler(_quartic, support=(-np.inf, np.inf), backend=backend)
    assert np.array_equal(pickle.loads(pickle.dumps(q)).sample(1000, rng=4),
                          q.sample(1000, rng=4))
