"""Reward acceptors: parity between backends, exactness oracles, tie-breaking, bad input.

Statistical checks use fixed seeds, so they are deterministic; their thresholds are derived
from the sample size (4 standard errors) or a stated significance level (chi-square, alpha =
1e-3), so a correct implementation would fail them for about 1 seed in 1000 or fewer.
"""
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy import stats

import rsft
from rsft import _reference
from _helpers import same_state as _same_state
from rsft.acceptors import (AcceptResult, ApproximateTiltWarning, StatisticalRS, Threshold,
                            TopK)

SEEDS = [0, 7, 2024]
ALPHA = 1e-3  # significance level of every chi-square test here


def _rewards(kind, shape, seed):
    g = np.random.default_rng(10_000 + seed)
    if kind == "normal":
        return g.standard_normal(shape)
    if kind == "ties":  # few distinct values: many ties, at the top too
        return g.integers(0, 3, size=shape).astype(float)
    if kind == "constant":
        return np.full(shape, 2.5)
    if kind == "huge":  # +-1e300 and beyond: gaps overflow to -inf
        return g.choice([-1.5e308, -1e300, -1.0, 0.0, 5e299, 1e300, 1.5e308], size=shape)
    if kind == "tiny":
        return g.standard_normal(shape) * 1e-300
    if kind == "failed":  # failed candidates (-inf) among ties, and a row where all failed
        r = g.integers(0, 3, size=shape).astype(float)
        r[g.random(shape) < 0.4] = -np.inf
        if shape[0] > 1:
            r[1] = -np.inf
        return r
    raise AssertionError(kind)


KINDS = ["normal", "ties", "constant", "huge", "tiny", "failed"]
SHAPES = [(1, 1), (13, 1), (4, 7), (3, 64), (2, 1000), (0, 5)]


def _acceptors(n_candidates, kind):
    accs = [Threshold(0.0), Threshold(lambda t: 0.5 * t - 1.0), Threshold(1.0, strict=True)]
    for k in sorted({1, min(3, n_candidates), max(n_candidates - 1, 1), n_candidates}):
        accs.append(TopK(k))
    for beta in [1e-300, 0.1, 1.0, 1e300]:
        accs.append(StatisticalRS(beta))
        bound = 1.5e308 if kind == "huge" else 10.0
        accs.append(StatisticalRS(beta, r_max=bound))
    return accs


def _run(acc, backend, r, seed, round=0):
    acc.backend = backend
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ApproximateTiltWarning)
        warnings.simplefilter("error", RuntimeWarning)  # no overflow/invalid warnings
        res = acc.accept(r, rng, round=round)
    return res, rng.bit_generator.state


# ---------------------------------------------------------------------------------------------
# Parity: same seed => same mask, same weights, same Generator state on both backends
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("kind", KINDS)
def test_backends_bit_identical(kind, shape):
    for seed in SEEDS:
        r = _rewards(kind, shape, seed)
        for acc in _acceptors(shape[1], kind):
            rc, sc = _run(acc, "cython", r, seed, round=seed % 5)
            rn, sn = _run(acc, "numpy", r, seed, round=seed % 5)
            assert rc.mask.dtype == np.bool_ and rc.mask.shape == r.shape, acc
            assert np.array_equal(rc.mask, rn.mask), (acc, seed)
            assert (rc.weights is None) == (rn.weights is None)
            if rc.weights is not None:
                assert np.array_equal(rc.weights, rn.weights), (acc, seed)
            assert _same_state(sc, sn), (acc, seed)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.integers(1, 40), st.integers(0, 2 ** 32 - 1),
       st.sampled_from([1e-300, 1e-3, 0.3, 2.0, 1e300]), st.data())
def test_backends_bit_identical_property(m, n, seed, beta, data):
    vals = st.sampled_from([-np.inf, -1e300, -3.0, -0.5, 0.0, 0.0, 0.5, 1.0, 1e300]) | st.floats(
        -1e6, 1e6)
    r = np.array(data.draw(st.lists(vals, min_size=m * n, max_size=m * n))).reshape(m, n)
    k = data.draw(st.integers(1, n))
    for acc in [TopK(k), StatisticalRS(beta), StatisticalRS(beta, r_max=1e300),
                Threshold(data.draw(st.floats(-2, 2)))]:
        rc, sc = _run(acc, "cython", r, seed)
        rn, sn = _run(acc, "numpy", r, seed)
        assert np.array_equal(rc.mask, rn.mask) and _same_state(sc, sn)


@pytest.mark.parametrize("kind", ["ties", "failed"])
@pytest.mark.parametrize("acc", [TopK(2), StatisticalRS(0.5, r_max=5.0)], ids=repr)
def test_draw_order_is_one_uniform_per_candidate(acc, backend, kind):
    """The Generator advances by exactly r.size Generator.random doubles (-inf included)."""
    r = _rewards(kind, (9, 11), 0)
    res, state = _run(acc, backend, r, 3)
    ref = np.random.default_rng(3)
    u = ref.random(r.shape)
    assert _same_state(state, ref.bit_generator.state)
    if isinstance(acc, StatisticalRS):  # and the decision is 1 - u <= exp((r - r_max)/beta)
        g = (r - 5.0) / 0.5
        assert np.array_equal(res.mask, _reference.accept_test(g.ravel(), u.ravel())
                              .reshape(r.shape))


def test_threshold_draws_nothing(backend):
    rng = np.random.default_rng(5)
    before = rng.bit_generator.state
    Threshold(0.0, backend=backend).accept(np.zeros((3, 4)), rng)
    assert _same_state(rng.bit_generator.state, before)


def test_layouts_and_dtypes(backend):
    base = _rewards("ties", (6, 10), 1)
    ro = base.copy()
    ro.flags.writeable = False
    variants = [ro, np.asfortranarray(base), np.repeat(base, 2, axis=0)[::2],
                np.repeat(base, 2, axis=1)[:, 1::2], base.astype(np.float32),
                base.astype(np.int64), base.tolist()]
    for acc in [TopK(3, backend=backend), StatisticalRS(1.0, r_max=2.0, backend=backend),
                Threshold(1.0, backend=backend)]:
        want = acc.accept(base, 4).mask
        for v in variants:
            assert np.array_equal(acc.accept(v, 4).mask, want)


# ---------------------------------------------------------------------------------------------
# Statistical rejection sampling: Theorem 1 of the RSO paper and the tilted distribution
# ---------------------------------------------------------------------------------------------

VALUES = np.array([0.0, 0.5, 1.0, 2.0])
Q = np.array([0.4, 0.3, 0.2, 0.1])


def _discrete_candidates(seed, shape=(2000, 50)):
    g = np.random.default_rng(seed)
    idx = g.choice(len(VALUES), size=shape, p=Q)
    return VALUES[idx], idx


@pytest.mark.parametrize("beta,r_max", [(0.7, 2.0), (0.25, 2.0), (3.0, 2.0), (0.7, 3.5)])
@pytest.mark.parametrize("seed", SEEDS)
def test_statistical_rs_acceptance_rate_theorem1(beta, r_max, seed, backend):
    """Acceptance rate = E_q[exp((r - r_max)/beta)] within 4 standard errors.

    Candidates are i.i.d. from q and then accepted independently, so each acceptance indicator
    is Bernoulli(p) with p = sum_k q_k exp((v_k - r_max)/beta), and SE = sqrt(p(1 - p) / N).
    """
    r, _ = _discrete_candidates(seed)
    res = StatisticalRS(beta, r_max=r_max, backend=backend).accept(r, rng=seed + 1)
    p = float(np.sum(Q * np.exp((VALUES - r_max) / beta)))
    se = math.sqrt(p * (1.0 - p) / r.size)
    assert abs(res.acceptance_rate - p) <= 4.0 * se, (res.acceptance_rate, p, se)
    # weights are the acceptance probabilities; their mean estimates the same p
    np.testing.assert_allclose(res.weights, np.exp((r - r_max) / beta), rtol=1e-15)


@pytest.mark.parametrize("beta,r_max", [(0.7, 2.0), (0.25, 2.0), (3.0, 2.0), (0.7, 3.5)])
@pytest.mark.parametrize("seed", SEEDS)
def test_statistical_rs_accepted_follow_tilted_distribution(beta, r_max, seed, backend):
    """Accepted rewards follow pi*(v) proportional to q(v) exp(v/beta): chi-square, alpha=1e-3."""
    r, idx = _discrete_candidates(seed)
    res = StatisticalRS(beta, r_max=r_max, backend=backend).accept(r, rng=seed + 1)
    observed = np.bincount(idx[res.mask], minlength=len(VALUES))
    target = Q * np.exp((VALUES - VALUES.max()) / beta)
    target /= target.sum()
    expected = target * observed.sum()
    keep = expected >= 5  # (beta = 0.25 makes the lowest value rare)
    obs = np.append(observed[keep], observed[~keep].sum())
    exp_ = np.append(expected[keep], expected[~keep].sum())
    if obs[-1] == 0 and exp_[-1] < 1e-9:
        obs, exp_ = obs[:-1], exp_[:-1]
    exp_ = exp_ * obs.sum() / exp_.sum()
    assert stats.chisquare(obs, exp_).pvalue > ALPHA, (observed, expected)


def test_statistical_rs_conditional_count(backend):
    """Given the rewards, the accepted count has mean sum p_ij and variance sum p_ij(1-p_ij)."""
    r = _rewards("normal", (300, 100), 3)
    acc = StatisticalRS(0.8, r_max=float(r.max()), backend=backend)
    res = acc.accept(r, rng=11)
    p = np.exp((r - r.max()) / 0.8)
    assert abs(res.n_accepted - p.sum()) <= 4.0 * math.sqrt(np.sum(p * (1 - p)))


def test_statistical_rs_extremes(backend):
    r = np.array([[1e300, -1e300, 1e300, 0.0], [-1.5e308, 1.5e308, 3.0, 3.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # bound = per-row maximum given explicitly: exact, no warning, no overflow warning
        res = StatisticalRS(1.0, r_max=[1e300, 1.5e308], backend=backend).accept(r, rng=0)
    assert np.array_equal(res.mask, [[True, False, True, False], [False, True, False, False]])
    assert np.array_equal(res.weights, res.mask.astype(float))
    # tiny beta: only the maxima (all of them) survive; huge beta: everything survives
    r2 = np.array([[1.0, 2.0, 2.0, 2.0 - 1e-12], [0.0, 0.0, 0.0, 0.0]])
    tiny = StatisticalRS(1e-300, r_max=[2.0, 0.0], backend=backend).accept(r2, rng=1)
    assert np.array_equal(tiny.mask, r2 == r2.max(axis=1, keepdims=True))
    huge = StatisticalRS(1e300, r_max=10.0, backend=backend).accept(_rewards(
        "normal", (50, 50), 0), rng=2)
    assert huge.mask.all()


def test_statistical_rs_r_max_none_warns_once_and_keeps_the_max(backend):
    r = _rewards("normal", (40, 8), 5)
    acc = StatisticalRS(0.05, backend=backend)
    with pytest.warns(ApproximateTiltWarning, match="approximately"):
        res = acc.accept(r, rng=0)
    assert res.mask[np.arange(40), r.argmax(axis=1)].all()
    np.testing.assert_array_equal(res.weights, np.exp((r - r.max(axis=1, keepdims=True))
                                                      / 0.05))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        acc.accept(r, rng=1)  # second call: no warning
    with pytest.warns(ApproximateTiltWarning):  # a new object warns again
        StatisticalRS(0.05, backend=backend).accept(r, rng=0)


def test_statistical_rs_r_max_below_a_reward_is_refused(backend):
    r = np.array([[0.0, 1.0], [2.0, 0.5]])
    with pytest.raises(ValueError, match=r"r\[1, 0\] = 2.0 exceeds r_max = 1.5"):
        StatisticalRS(1.0, r_max=1.5, backend=backend).accept(r, rng=0)
    with pytest.raises(ValueError, match=r"r\[0, 1\] = 1.0 exceeds r_max = 0.5"):
        StatisticalRS(1.0, r_max=[0.5, 3.0], backend=backend).accept(r, rng=0)
    with pytest.raises(ValueError, match="3 entries but the rewards have 2 contexts"):
        StatisticalRS(1.0, r_max=[1, 2, 3], backend=backend).accept(r, rng=0)
    # equality is allowed (acceptance probability exactly 1)
    assert StatisticalRS(1.0, r_max=[1.0, 2.0], backend=backend).accept(r, rng=0).mask[
        [0, 1], [1, 0]].all()


# ---------------------------------------------------------------------------------------------
# Top-k / best-of-n
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 2, 4, 9])
def test_best_of_n_distribution(n, backend):
    """The kept reward of best-of-n is the max: P(max = v_k) = F(k)^n - F(k-1)^n."""
    values = np.arange(6.0)
    q = np.array([0.3, 0.25, 0.2, 0.12, 0.08, 0.05])
    g = np.random.default_rng(100 + n)
    idx = g.choice(6, size=(20000, n), p=q)
    r = values[idx]
    res = TopK(1, backend=backend).accept(r, rng=n)
    assert np.array_equal(res.counts, np.ones(20000, np.int64))
    kept = idx[res.mask]
    F = np.cumsum(q)
    p = F ** n - np.concatenate([[0.0], F[:-1]]) ** n
    expected = p * kept.size
    keep = expected >= 5
    obs = np.append(np.bincount(kept, minlength=6)[keep], np.bincount(kept, minlength=6)
                    [~keep].sum())
    exp_ = np.append(expected[keep], expected[~keep].sum())
    if exp_[-1] == 0:
        obs, exp_ = obs[:-1], exp_[:-1]
    exp_ = exp_ * obs.sum() / exp_.sum()
    assert stats.chisquare(obs, exp_).pvalue > ALPHA


def test_topk_keeps_the_best(backend):
    r = _rewards("normal", (50, 30), 2)  # no ties
    for k in [1, 5, 29, 30]:
        m = TopK(k, backend=backend).accept(r, rng=0).mask
        assert np.array_equal(m.sum(axis=1), np.full(50, k))
        kth = -np.sort(-r, axis=1)[:, k - 1:k]
        assert np.array_equal(m, r >= kth)


@pytest.mark.parametrize("seed", SEEDS)
def test_topk_ties_broken_uniformly(seed, backend):
    """Which tied candidate wins is uniform (chi-square, alpha = 1e-3), not the first/last."""
    n_ctx = 20000
    r = np.tile([1.0, 3.0, 3.0, 0.0, 3.0, 3.0], (n_ctx, 1))
    res = TopK(1, backend=backend).accept(r, rng=seed)
    winners = np.bincount(np.argmax(res.mask, axis=1), minlength=6)
    assert winners[[0, 3]].sum() == 0
    assert stats.chisquare(winners[[1, 2, 4, 5]]).pvalue > ALPHA
    # top-2 of three tied: the dropped one is uniform; the untied best is always kept
    r = np.tile([3.0, 5.0, 3.0, 3.0, 1.0], (n_ctx, 1))
    res = TopK(3, backend=backend).accept(r, rng=seed + 1)
    assert res.mask[:, 1].all() and not res.mask[:, 4].any()
    dropped = np.bincount(np.argmin(res.mask[:, [0, 2, 3]], axis=1), minlength=3)
    assert stats.chisquare(dropped).pvalue > ALPHA


def test_topk_all_tied_large_row(backend):
    """A long all-tied row (heap path): each candidate is kept with probability k/n."""
    n, k, reps = 200, 20, 500
    r = np.zeros((reps, n))
    res = TopK(k, backend=backend).accept(r, rng=9)
    counts = res.mask.sum(axis=0)  # Binomial(reps, k/n) per position
    p = k / n
    z = (counts - reps * p) / math.sqrt(reps * p * (1 - p))
    assert stats.chisquare(counts).pvalue > ALPHA and abs(z).max() < 5


def test_topk_k_larger_than_candidates_is_an_error(backend):
    with pytest.raises(ValueError, match=r"TopK\(k=4\) needs at least 4 candidates"):
        TopK(4, backend=backend).accept(np.zeros((2, 3)), rng=0)
    # k == n keeps everything (and still draws, see the draw-order test)
    assert TopK(3, backend=backend).accept(np.zeros((2, 3)), rng=0).mask.all()


# ---------------------------------------------------------------------------------------------
# Threshold
# ---------------------------------------------------------------------------------------------

def test_threshold_constant_and_strict(backend):
    r = np.array([[0.0, 0.5, 1.0, 1.5], [-1e300, 1e300, 0.5, 0.49999999999]])
    m = Threshold(0.5, backend=backend).accept(r).mask
    assert np.array_equal(m, [[False, True, True, True], [False, True, True, False]])
    m = Threshold(0.5, strict=True, backend=backend).accept(r).mask
    assert np.array_equal(m, [[False, False, True, True], [False, True, False, False]])
    assert Threshold(-np.inf, backend=backend).accept(r).mask.all()
    assert not Threshold(np.inf, backend=backend).accept(r).mask.any()


def test_threshold_schedule(backend):
    r = np.array([[0.0, 0.5, 1.0, 1.5]])
    calls = []

    def tau(t):
        calls.append(t)
        return 0.5 * t

    acc = Threshold(tau, backend=backend)
    got = [acc.accept(r, round=t).mask[0].tolist() for t in range(4)]
    assert got == [[True] * 4, [False, True, True, True], [False, False, True, True],
                   [False, False, False, True]]
    assert calls == [0, 1, 2, 3]
    assert acc.tau_at(5) == 2.5
    assert acc(r, None, 3).n_accepted == 1  # __call__ is accept
    with pytest.raises(ValueError, match="NaN"):
        Threshold(lambda t: float("nan")).accept(r)
    with pytest.raises(TypeError, match="real number"):
        Threshold(lambda t: "high").accept(r)
    with pytest.raises(ValueError, match="round must be >= 0"):
        acc.accept(r, round=-1)


def test_accept_result():
    res = AcceptResult(np.array([[True, False], [True, True]]))
    assert res.n_accepted == 3 and res.acceptance_rate == 0.75
    assert res.counts.tolist() == [1, 2] and res.weights is None
    assert math.isnan(AcceptResult(np.zeros((0, 3), bool)).acceptance_rate)


# ---------------------------------------------------------------------------------------------
# Failed candidates: a reward of -inf is allowed and never accepted
# ---------------------------------------------------------------------------------------------

NINF = -np.inf


@pytest.mark.parametrize("strict", [False, True])
def test_threshold_never_accepts_a_failed_candidate(strict, backend):
    r = np.array([[NINF, -1e300, 0.0, 2.0], [NINF, NINF, NINF, NINF]])
    for tau in [0.0, -1e308, NINF]:
        m = Threshold(tau, strict=strict, backend=backend).accept(r).mask
        assert not m[r == NINF].any(), tau
        assert np.array_equal(m[r > NINF], (r > tau if strict else r >= tau)[r > NINF]), tau
    # tau = -inf accepts every candidate that did not fail, strict or not
    m = Threshold(NINF, strict=strict, backend=backend).accept(r).mask
    assert np.array_equal(m, r > NINF)
    assert Threshold(lambda t: NINF, backend=backend).accept(r).n_accepted == 3


def test_topk_keeps_only_finite_candidates(backend):
    r = np.array([[NINF, 3.0, NINF, 1.0, 2.0],    # 3 finite: k = 2 keeps the best two
                  [NINF, 5.0, NINF, NINF, NINF],  # 1 finite: only it, for any k
                  [NINF, NINF, NINF, NINF, NINF],  # all failed: nothing
                  [0.0, 0.0, NINF, 0.0, 0.0]])    # ties among the finite ones
    for k in range(1, 6):
        m = TopK(k, backend=backend).accept(r, rng=k).mask
        assert not m[r == NINF].any(), k
        finite = (r > NINF).sum(axis=1)
        assert np.array_equal(m.sum(axis=1), np.minimum(k, finite)), k
        if k >= 3:
            assert m[0].tolist() == [False, True, False, True, True]
        assert m[1].tolist() == [False, True, False, False, False]
    # the failed candidates never displace a finite one, whatever the tie-break keys
    for seed in range(20):
        m = TopK(4, backend=backend).accept(r, rng=seed).mask
        assert m[3].tolist() == [True, True, False, True, True]


def test_topk_failed_candidates_do_not_change_the_stream_or_the_finite_choice(backend):
    """Marking some candidates as failed only removes them: the same keys rank the rest."""
    g = np.random.default_rng(4)
    r = g.integers(0, 4, size=(200, 12)).astype(float)
    failed = g.random(r.shape) < 0.3
    rf = np.where(failed, NINF, r)
    for k in [1, 3, 12]:
        rng_a, rng_b = np.random.default_rng(8), np.random.default_rng(8)
        m = TopK(k, backend=backend).accept(rf, rng=rng_a).mask
        # the reference rule: rank all by (r desc, u asc) with -inf last, keep k, drop -inf
        u = rng_b.random(r.shape)
        order = np.lexsort((u, -rf), axis=-1)[:, :k]
        want = np.zeros(r.shape, bool)
        want[np.arange(200)[:, None], order] = True
        assert np.array_equal(m, want & ~failed), k
        assert _same_state(rng_a.bit_generator.state, rng_b.bit_generator.state)


def test_statistical_rs_failed_candidates(backend):
    r = np.array([[NINF, 1.0, 0.5, NINF], [NINF, NINF, NINF, NINF], [0.0, 2.0, NINF, 2.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = StatisticalRS(0.5, r_max=3.0, backend=backend).accept(r, rng=0)
    assert not res.mask[r == NINF].any()
    assert (r == NINF).sum() == 7 and not res.weights[r == NINF].any()
    np.testing.assert_array_equal(res.weights[r > NINF], np.exp((r[r > NINF] - 3.0) / 0.5))
    # r_max=None: the bound is each row's maximum finite reward (always accepted); a row in
    # which every candidate failed accepts nothing
    acc = StatisticalRS(0.5, backend=backend)
    with pytest.warns(ApproximateTiltWarning):
        res = acc.accept(r, rng=1)
    assert res.mask[[0, 2, 2], [1, 1, 3]].all()
    assert not res.mask[1].any() and not res.mask[r == NINF].any()
    want = np.exp((r - np.array([[1.0], [0.0], [2.0]])) / 0.5)
    np.testing.assert_array_equal(res.weights, want)
    for beta in [1e-300, 1e300]:  # no temperature makes a failed candidate acceptable
        with pytest.warns(ApproximateTiltWarning):
            res = StatisticalRS(beta, backend=backend).accept(r, rng=2)
        assert not res.mask[r == NINF].any() and res.mask[0, 1] and res.mask[2, 1]


def test_failed_candidates_do_not_change_the_draws(backend):
    """One uniform per candidate, failed or not: the same stream as without failures."""
    r = _rewards("ties", (30, 9), 1)
    rf = r.copy()
    rf[::3, ::2] = NINF
    for acc in [TopK(2, backend=backend), StatisticalRS(0.7, r_max=2.0, backend=backend)]:
        a, b = np.random.default_rng(6), np.random.default_rng(6)
        ma, mb = acc.accept(r, rng=a).mask, acc.accept(rf, rng=b).mask
        assert _same_state(a.bit_generator.state, b.bit_generator.state)
        if isinstance(acc, StatisticalRS):  # independent decisions: the others are unchanged
            assert np.array_equal(mb, ma & (rf > NINF))


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------

BAD_REWARDS = [
    (np.zeros(4), ValueError, r"2-D .* got 1-D shape \(4,\) \(for one context use r\[None, :\]\)"),
    (np.zeros((2, 2, 2)), ValueError, "got 3-D"),
    (np.zeros(()), ValueError, "got 0-D"),
    (np.array([[0.0, np.nan]]), ValueError, r"finite; r\[0, 1\] = nan"),
    (np.array([[0.0], [np.inf]]), ValueError, r"finite; r\[1, 0\] = inf"),
    (np.array([[-np.inf, np.inf]]), ValueError, r"finite; r\[0, 1\] = inf"),
    (np.array([[-np.inf], [np.nan]]), ValueError, r"finite; r\[1, 0\] = nan"),
    (np.ones((2, 2), complex), TypeError, "real numbers"),
    (np.ones((2, 2), bool), TypeError, "real numbers"),
    ([["a", "b"]], TypeError, "real numbers"),
]


@pytest.mark.parametrize("bad,exc,msg", BAD_REWARDS)
@pytest.mark.parametrize("acc", [Threshold(0.0), TopK(1), StatisticalRS(1.0, r_max=5.0)],
                         ids=repr)
def test_bad_rewards(acc, bad, exc, msg):
    with pytest.raises(exc, match=msg):
        acc.accept(bad, rng=0)


def test_bad_parameters():
    with pytest.raises(ValueError, match="k must be >= 1"):
        TopK(0)
    for k in [1.5, True, "2", None]:
        with pytest.raises(TypeError, match="k must be a non-negative integer"):
            TopK(k)
    with pytest.raises(ValueError, match="k must be >= 0"):
        TopK(-1)
    for beta in [0.0, -1.0, np.inf, np.nan]:
        with pytest.raises(ValueError, match="beta must be finite and > 0"):
            StatisticalRS(beta)
    for beta in ["1", None, True]:
        with pytest.raises(TypeError, match="beta must be a real number"):
            StatisticalRS(beta)
    with pytest.raises(ValueError, match="r_max must be finite"):
        StatisticalRS(1.0, r_max=np.inf)
    with pytest.raises(ValueError, match="r_max must be finite"):
        StatisticalRS(1.0, r_max=[1.0, np.nan])
    with pytest.raises(ValueError, match="one bound per context"):
        StatisticalRS(1.0, r_max=np.zeros((2, 2)))
    with pytest.raises(TypeError, match="r_max must be a real number"):
        StatisticalRS(1.0, r_max="big")
    with pytest.raises(ValueError, match="tau must not be NaN"):
        Threshold(np.nan)
    with pytest.raises(TypeError, match="tau must be a real number"):
        Threshold("0.5")
    for cls, args in [(Threshold, (0.0,)), (TopK, (1,)), (StatisticalRS, (1.0,))]:
        with pytest.raises(ValueError, match="unknown backend"):
            cls(*args, backend="fortran")


def test_bad_rng_and_round():
    r = np.zeros((2, 3))
    for acc in [Threshold(0.0), TopK(1), StatisticalRS(1.0, r_max=0.0)]:
        with pytest.raises(TypeError, match="rng must be"):
            acc.accept(r, rng="seed")
        with pytest.raises(ValueError, match="rng seed must be non-negative"):
            acc.accept(r, rng=-1)
        with pytest.raises(TypeError, match="round must be a non-negative integer"):
            acc.accept(r, rng=0, round=1.5)


def test_empty_candidate_sets(backend):
    for shape in [(0, 4), (3, 0)]:
        r = np.zeros(shape)
        rng = np.random.default_rng(0)
        before = rng.bit_generator.state
        for acc in [Threshold(0.0, backend=backend), StatisticalRS(1.0, r_max=1.0,
                                                                   backend=backend)]:
            res = acc.accept(r, rng)
            assert res.mask.shape == shape and res.n_accepted == 0
        assert _same_state(rng.bit_generator.state, before)
    assert TopK(2, backend=backend).accept(np.zeros((0, 4)), rng=0).mask.shape == (0, 4)


def test_zero_dim_array_parameters_of_acceptors():
    r = np.array([[1.0, 2.0, 3.0]])
    a = rsft.StatisticalRS(1.0, r_max=np.array(20.0)).accept(r, rng=0)
    b = rsft.StatisticalRS(1.0, r_max=20.0).accept(r, rng=0)
    assert np.array_equal(a.mask, b.mask)
    t = rsft.Threshold(np.array(2.0)).accept(r)
    assert t.mask.tolist() == [[False, True, True]]


# ---------------------------------------------------------------------------------------------
# Grouped rewards: oracles (RSO's published algorithm, Theorem 1, numpy.quantile, a uniform
# matched pick) and the semantics of -inf, keys, min_per_group and the statistics
# ---------------------------------------------------------------------------------------------

def _published_rso(rewards, num_samples, beta, rng):
    """RSO's Algorithm 1 (Liu et al. 2023) transcribed as published, with ``rng.random()``
    for ``np.random.uniform()``; the candidates are the positions (distinct, so the dict of
    completions changes nothing). The published loop fails on an empty pool; so does this."""
    candidates = {c: r for c, r in enumerate(rewards)}
    accepted = []
    while len(accepted) < num_samples:
        max_reward = max(candidates.values())
        to_remove = []
        for c, r in candidates.items():
            u = rng.random()
            if u >= math.exp((r - max_reward) / beta):
                continue
            accepted.append(c)
            to_remove.append(c)
            if len(accepted) == num_samples:
                break
        for c in to_remove:
            candidates.pop(c)
    return accepted


@pytest.mark.parametrize("beta", [0.05, 0.5, 3.0])
def test_rso_equals_the_published_algorithm(beta, backend):
    """Same Generator, same draws: the same accepted set, group of any size, any k <= n."""
    for seed in range(60):
        g = np.random.default_rng(seed)
        n = int(g.integers(1, 16))
        k = int(g.integers(1, n + 1))
        r = g.normal(size=n) if seed % 2 else g.integers(0, 3, n).astype(float)  # ties too
        want = sorted(_published_rso(r.tolist(), k, beta, np.random.default_rng(seed)))
        res = rsft.RSO(beta, k, backend=backend).accept(r, rng=seed, groups=np.zeros(n, int))
        assert res.index.tolist() == want, (seed, n, k)
        assert res.group_stats.n_accepted.tolist() == [k]


def test_rso_short_groups_accept_everything_valid(backend):
    r = np.array([0.3, -np.inf, 0.1, 5.0, -np.inf, -np.inf])
    res = rsft.RSO(0.5, 3, backend=backend).accept(r, rng=0, groups=[1, 1, 1, 2, 3, 3])
    st = res.group_stats
    assert res.mask.tolist() == [True, False, True, True, False, False]
    assert st.short.tolist() == [True, True, True] and st.n_accepted.tolist() == [2, 1, 0]
    assert math.isnan(st.acceptance_rate[2]) and math.isnan(st.mean_reward_accepted[2])


@pytest.mark.parametrize("seed", SEEDS)
def test_grouped_statistical_rs_acceptance_rate_theorem1(seed, backend):
    """Ragged groups with a -inf share: the acceptance rate of the valid candidates is
    E_q[exp((r - r_max)/beta)] within 4 standard errors, and so is expected_acceptance."""
    g = np.random.default_rng(seed)
    sizes = g.integers(1, 40, 3000)
    labels = g.permutation(np.repeat(np.arange(3000), sizes))
    idx = g.choice(len(VALUES), size=labels.size, p=Q)
    r = VALUES[idx]
    r[g.random(r.size) < 0.1] = -np.inf
    beta, r_max = 0.7, 2.0
    res = StatisticalRS(beta, r_max=r_max, backend=backend).accept(r, rng=seed, groups=labels)
    p = float(np.sum(Q * np.exp((VALUES - r_max) / beta)))
    summary = res.summary()
    n = summary["n_valid"]
    se = math.sqrt(p * (1 - p) / n)
    assert abs(summary["acceptance_rate"] - p) <= 4 * se, (summary, p)
    assert abs(summary["expected_acceptance"] - p) <= 4 * se
    assert not res.mask[r == -np.inf].any()


@pytest.mark.parametrize("q", [0.0, 0.1, 0.25, 0.5, 0.7, 0.95, 1.0])
def test_quantile_against_numpy_quantile(q, backend):
    g = np.random.default_rng(int(q * 100))
    sizes = g.integers(1, 30, 200)
    labels = np.repeat(np.arange(200), sizes)
    r = np.where(g.random(labels.size) < 0.5, g.normal(size=labels.size),
                 g.integers(0, 3, labels.size).astype(float))
    r[g.random(r.size) < 0.1] = -np.inf
    res = rsft.Quantile(q, backend=backend).accept(r, groups=labels)
    for lab in range(200):
        sel = labels == lab
        valid = r[sel][np.isfinite(r[sel])]
        want = (r[sel] >= np.quantile(valid, q)) if valid.size else np.zeros(sel.sum(), bool)
        assert np.array_equal(res.mask[sel], want), (lab, r[sel])
    assert _quantile_schedule_keeps(backend) == [6, 4, 1]   # q = 0.7, 0.8, 0.95 of 0..19


def test_quantile_at_the_ends_of_the_double_range(backend):
    """Rewards of any scale: where numpy's b - a overflows (valid rewards near -DBL_MAX and
    +DBL_MAX) the quantile is still between them, so q = 0 keeps every valid candidate, q = 1
    the maximum, and the median of two keeps the larger one alone."""
    big = np.finfo(np.float64).max
    r = np.array([[-big, big, -np.inf], [big, -big, 0.0]])
    keeps = {q: rsft.Quantile(q, backend=backend).accept(r).mask.tolist()
             for q in (0.0, 0.5, 1.0)}
    assert keeps[0.0] == [[True, True, False], [True, True, True]]
    assert keeps[0.5] == [[False, True, False], [True, False, True]]
    assert keeps[1.0] == [[False, True, False], [True, False, False]]


def _quantile_schedule_keeps(backend):
    acc = rsft.Quantile(lambda t: min(0.7 + 0.05 * t, 0.95), backend=backend)
    r = np.arange(20.0)[None, :]
    return [acc.accept(r, round=t).n_accepted for t in (0, 2, 10)]


def test_matched_random_is_uniform_over_valid_candidates(backend):
    """Per group, each valid candidate is picked with probability c / n_valid: chi-square over
    the positions of 4000 repetitions, alpha = 1e-3; never a failed or duplicate candidate."""
    r = np.array([3.0, -np.inf, 1.0, 2.0, 2.0, 0.5, 9.0, 8.0, 7.0])
    labels = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1])
    keys = np.array([1, 2, 3, 4, 4, 5, 6, 7, 8])     # candidate 4 duplicates candidate 3
    best = TopK(2, backend=backend).accept(r, rng=0, groups=labels, keys=keys)
    reps = 4000
    counts = np.zeros(r.size)
    rng = np.random.default_rng(11)
    for _ in range(reps):
        pick = rsft.acceptors.matched_random(best, rng, backend=backend)
        assert pick.group_stats.n_accepted.tolist() == [2, 2]
        counts += pick.mask
    assert counts[1] == 0 and counts[4] == 0
    for members in ([0, 2, 3], [5, 6, 7, 8]):
        observed = counts[members]
        assert observed.sum() == 2 * reps
        assert stats.chisquare(observed).pvalue > ALPHA, observed


def test_duplicates_count_once_first_kept(backend):
    r = np.array([1.0, 1.0, 0.5, -np.inf, 0.2, 0.9])
    keys = np.array([7, 7, 7, 8, 8, 7])
    labels = np.array([0, 0, 0, 0, 0, 1])
    res = Threshold(0.0, backend=backend).accept(r, groups=labels, keys=keys)
    # group 0: key 7 first at position 0 (kept), 1 and 2 duplicates; the failed candidate
    # with key 8 is no duplicate, so position 4 is the first valid key 8
    assert res.mask.tolist() == [True, False, False, False, True, True]
    st = res.group_stats
    assert st.n_duplicates.tolist() == [2, 0] and st.n_valid.tolist() == [2, 1]
    assert st.n_candidates.tolist() == [5, 1]
    with pytest.raises(ValueError, match="keys must have the rewards' shape"):
        Threshold(0.0).accept(r, groups=labels, keys=keys[:3])


def test_min_per_group_tops_up_with_the_best(backend):
    r = np.array([[0.1, 0.9, 0.5, -np.inf], [2.0, 1.0, 3.0, 0.0], [-np.inf] * 4])
    res = Threshold(2.5, min_per_group=2, backend=backend).accept(r, rng=0)
    assert res.mask.tolist() == [[False, True, True, False], [True, False, True, False],
                                 [False] * 4]
    st = res.group_stats
    assert st.topped_up.tolist() == [True, True, False]
    assert st.short.tolist() == [False, False, True]
    # ties at random: two of three tied candidates, each with probability 2/3
    tied = np.zeros((3000, 3))
    kept = Threshold(5.0, min_per_group=2, backend=backend).accept(tied, rng=1).mask
    assert kept.sum(axis=1).tolist() == [2] * 3000
    assert stats.chisquare(kept.sum(axis=0)).pvalue > ALPHA


def test_group_stats_by_hand(backend):
    r = np.array([1.0, 3.0, -np.inf, 2.0, 2.0, 4.0])
    labels = np.array([5, 5, 5, 9, 9, -1])
    res = StatisticalRS(1.0, r_max=4.0, backend=backend).accept(r, rng=0, groups=labels)
    st = res.group_stats
    assert st.label.tolist() == [-1, 5, 9] and len(st) == 3
    assert st.n_candidates.tolist() == [1, 3, 2] and st.n_valid.tolist() == [1, 2, 2]
    assert st.mean_reward.tolist() == [4.0, 2.0, 2.0]
    assert st.degenerate.tolist() == [True, False, True]
    w = np.exp(np.array([1.0, 3.0]) - 4.0)
    assert st.expected_acceptance[1] == pytest.approx(w.mean(), rel=1e-15)
    assert st.ess[1] == pytest.approx(w.sum() ** 2 / (w ** 2).sum(), rel=1e-15)
    assert st.ess[2] == pytest.approx(2.0) and st.ess[0] == pytest.approx(1.0)
    assert np.array_equal(st.acceptance_rate, st.n_accepted / st.n_valid)
    s = res.summary()
    assert s["n_groups"] == 3 and s["n_candidates"] == 6 and s["n_valid"] == 5
    assert s["mean_reward"] == pytest.approx(12.0 / 5) and s["degenerate"] == 2
    assert res.weights.tolist() == pytest.approx(np.exp(np.minimum(r - 4.0, 0)).tolist())
    assert Threshold(0.0).accept(r, groups=labels).group_stats.ess is None
    assert res.counts.tolist() == st.n_accepted.tolist()
    with pytest.raises(ValueError, match="built from a mask alone"):
        AcceptResult(np.ones((1, 2), bool)).summary()


class _TensorLike:
    """What a CPU torch tensor offers numpy: ``__array__`` (no torch needed)."""

    def __init__(self, values):
        self.values = np.asarray(values)

    def __array__(self, dtype=None, copy=None):
        return self.values if dtype is None else self.values.astype(dtype)


def test_array_like_inputs_such_as_torch_tensors(backend):
    try:
        import torch
    except ImportError:
        wrap = _TensorLike
    else:
        wrap = torch.as_tensor
    r = np.array([0.5, 0.1, 0.9, 0.3, -np.inf])
    labels = np.array([0, 1, 0, 1, 1])
    keys = np.array([1, 2, 3, 2, 5])
    want = TopK(1, backend=backend).accept(r, rng=0, groups=labels, keys=keys)
    got = TopK(1, backend=backend).accept(wrap(r), rng=0, groups=wrap(labels), keys=wrap(keys))
    assert np.array_equal(want.mask, got.mask) and want.mask.tolist() == [
        False, True, True, False, False]


def test_blocks_in_threads_stop_at_ctrl_c():
    """Ctrl-C in the calling thread while blocks run on threads (the acceptors' blocked
    stream): the blocks not started are dropped, the call raises KeyboardInterrupt at once,
    and only the blocks already running finish (at most one per thread, plus the one that
    sent the signal)."""
    import signal
    import threading
    from rsft import _blocks
    ran, threads = [], set()
    second_runs, release = threading.Event(), threading.Event()
    main = threading.main_thread().ident

    def run_block(b):
        threads.add(threading.current_thread())
        if b == 0:
            second_runs.wait(timeout=20)    # both threads busy, then Ctrl-C to the caller
            signal.pthread_kill(main, signal.SIGINT)
        else:
            second_runs.set()
            release.wait(timeout=20)    # hold the other blocks until the caller has raised
        ran.append(b)
        return b

    with pytest.raises(KeyboardInterrupt):
        _blocks.run_in_threads(run_block, 40, 2)
    release.set()
    for thread in list(threads):    # the pool's threads end once its queue is done
        thread.join()
    assert 0 in ran and len(ran) <= 3, sorted(ran)
    # without an interruption every block runs, results in block order
    assert _blocks.run_in_threads(lambda b: b * b, 9, 4) == [b * b for b in range(9)]
