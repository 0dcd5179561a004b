"""Both backends: bit-identical samples and Generator states for the same seed."""
import math
import threading
import warnings

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

import rsft
from _helpers import same_state as _same_state
from rsft import _core, _reference
from rsft._program import Proposal

SEEDS = [0, 1, 12345]

# (target, proposal) pairs covering every proposal family, every target family and both
# evaluation modes (log mode, product mode).
PAIRS = [
    (rsft.Normal(2, 1), rsft.Normal(0, 2)),
    (rsft.Normal(0.5, 0.7), rsft.StudentT(3, 0, 1)),
    (rsft.Laplace(0, 1), rsft.Laplace(0.3, 2)),
    (rsft.Normal(1, 1), rsft.Laplace(0, 1.5)),
    (rsft.Exponential(1.0), rsft.Exponential(2.0)),
    (rsft.Exponential(1.0), rsft.StudentT(2, 0, 1)),
    (rsft.Beta(2, 5), rsft.Uniform(0, 1)),              # product mode
    (rsft.Beta(2.5, 3.5), rsft.Uniform(-0.5, 1.5)),     # log mode, Beta logs
    (rsft.Beta(3, 2), rsft.Normal(0.5, 1)),
    (rsft.Uniform(-1, 1), rsft.Normal(0, 1)),
    (rsft.TruncatedNormal(0, 1, 1, np.inf), rsft.Laplace(1, 0.5)),
    (rsft.TruncatedNormal(0, 1, -1, 2), rsft.Uniform(-1, 2)),
    (rsft.StudentT(5, 1, 2), rsft.StudentT(3, 0, 3)),
    (rsft.Gamma(3), rsft.Gamma(2, 1.5)),                # Gamma proposal
    (rsft.Gamma(3), rsft.Gamma(3)),                     # product mode, ratio 1
    (rsft.Beta(2, 3), rsft.Gamma(2)),
    (rsft.Gamma(2.5, 0.5), rsft.Exponential(1.0)),
    (rsft.Mixture([rsft.Normal(-2, 1), rsft.Normal(2, 0.5)], [0.3, 0.7]), rsft.Normal(0, 3)),
]


def _run(target, proposal, backend, seed, n, **kw):
    rng = np.random.default_rng(seed)
    s = rsft.RejectionSampler(target, proposal, backend=backend, **kw)
    x, stats = s.sample_with_stats(n, rng)
    return x, stats, rng.bit_generator.state


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: f"{p[0]!r}/{p[1]!r}")
@pytest.mark.parametrize("seed", SEEDS)
def test_builtin_pairs_bit_identical(pair, seed):
    xc, sc, stc = _run(*pair, "cython", seed, 5000)
    xn, sn, stn = _run(*pair, "numpy", seed, 5000)
    assert np.array_equal(xc, xn)
    assert stc == stn
    assert (sc.n_proposed, sc.n_accepted) == (sn.n_proposed, sn.n_accepted)
    # numpy's SIMD log may differ from libm's by an ulp: the stat, not the samples
    assert sc.max_log_ratio == pytest.approx(sn.max_log_ratio, rel=1e-12, abs=1e-12)
    assert sc.max_log_ratio <= 1e-9


def _normal_logpdf_unnormalised(x):
    return -0.5 * (x - 2.0) ** 2


@pytest.mark.parametrize("seed", SEEDS)
def test_callable_target_bit_identical(seed):
    log_M = math.log(2.0) + 2.0 / 3.0 + 0.5 * math.log(2 * math.pi)
    xc, sc, stc = _run(_normal_logpdf_unnormalised, rsft.Normal(0, 2), "cython", seed, 20000,
                       log_M=log_M)
    xn, sn, stn = _run(_normal_logpdf_unnormalised, rsft.Normal(0, 2), "numpy", seed, 20000,
                       log_M=log_M)
    assert np.array_equal(xc, xn) and stc == stn
    assert sc.n_proposed == sn.n_proposed


@pytest.mark.parametrize("bitgen", [np.random.PCG64, np.random.MT19937, np.random.Philox,
                                    np.random.SFC64, np.random.PCG64DXSM])
def test_any_bit_generator(bitgen):
    out = []
    for backend in ("cython", "numpy"):
        rng = np.random.Generator(bitgen(7))
        x = rsft.RejectionSampler(rsft.Normal(2, 1), rsft.Normal(0, 2),
                                  backend=backend).sample(3000, rng)
        out.append((x, rng.bit_generator.state))
    assert np.array_equal(out[0][0], out[1][0])
    assert _same_state(out[0][1], out[1][1])


@pytest.mark.parametrize("code,params,method", [
    (Proposal.NORMAL, [0.0, 1.0, 0, 0], lambda r, n: r.standard_normal(n)),
    (Proposal.UNIFORM, [0.0, 1.0, 0, 0], lambda r, n: r.random(n)),
    (Proposal.EXPONENTIAL, [1.0, 0, 0, 0], lambda r, n: r.standard_exponential(n)),
    (Proposal.LAPLACE, [0.0, 1.0, 0, 0], lambda r, n: r.laplace(0.0, 1.0, n)),
    (Proposal.STUDENT_T, [4.0, 0.0, 1.0, 0], lambda r, n: r.standard_t(4.0, n)),
    (Proposal.GAMMA, [2.5, 1.0, 0, 0], lambda r, n: r.standard_gamma(2.5, n)),
    (Proposal.GAMMA, [0.5, 1.0, 0, 0], lambda r, n: r.standard_gamma(0.5, n)),
])
def test_proposal_stream_is_numpys(code, params, method):
    """The compiled draws (inlined ziggurat included) are numpy's own streams."""
    n = 2_000_000 if code == Proposal.NORMAL else 200_000  # normal: exercises tail + wedge
    a = np.empty(n)
    r1, r2 = np.random.default_rng(99), np.random.default_rng(99)
    _core.draw_proposals(r1, code, np.array(params, dtype=float), a)
    b = method(r2, n)
    assert np.array_equal(a, b)
    assert r1.bit_generator.state == r2.bit_generator.state
    if code == Proposal.NORMAL:
        assert np.abs(b).max() > 3.6541528853610088   # the tail branch was taken


def test_log_ratio_and_accept_kernels_agree():
    rng = np.random.default_rng(3)
    for target, proposal in PAIRS:
        s = rsft.RejectionSampler(target, proposal)
        x = np.empty(4000)
        _reference.draw_proposals(rng, proposal._code, s._params, x)
        gc, gn = np.empty_like(x), np.empty_like(x)
        _core.log_ratio(s._prog, x, gc)
        _reference.log_ratio(s._prog, x, gn)
        fin = np.isfinite(gn)
        assert np.array_equal(np.isfinite(gc), fin)
        np.testing.assert_allclose(gc[fin], gn[fin], rtol=1e-13, atol=1e-13)
        u = rng.random(x.shape[0])
        assert np.array_equal(_core.accept_test(gn, u), _reference.accept_test(gn, u))
        # the decision is v <= exp(g)
        with np.errstate(over="ignore"):
            assert np.array_equal(_reference.accept_test(gn, u), 1.0 - u <= np.exp(gn))


def test_chunk_schedule_agrees():
    rng = np.random.default_rng(5)
    for _ in range(2000):
        args = (int(rng.integers(1, 10**7)), int(rng.integers(0, 10**6)),
                int(rng.integers(0, 10**5)), float(rng.uniform(1, 1e6)),
                int(rng.integers(0, 80)), int(rng.integers(0, 10**8)))
        assert _core.chunk_length(*args) == _reference.chunk_length(*args)


def test_violation_and_budget_identical():
    t, q = rsft.Normal(2, 1), rsft.Normal(0, 1)
    res = []
    for backend in ("cython", "numpy"):
        with pytest.raises(rsft.EnvelopeViolationError) as ei:
            rsft.RejectionSampler(t, q, log_M=math.log(2), backend=backend).sample(1000, 4)
        res.append((ei.value.x, ei.value.log_ratio))
        with pytest.warns(rsft.EnvelopeViolationWarning):
            x = rsft.RejectionSampler(t, q, log_M=math.log(2), on_violation="warn",
                                      backend=backend).sample(1000, 4)
        res.append(tuple(x))
        with pytest.raises(rsft.ProposalBudgetExceeded) as eb:   # 1000 M = 3895 on average:
            rsft.RejectionSampler(rsft.Normal(2, 1), rsft.Normal(0, 2), max_proposals=3900,
                                  backend=backend).sample(1000, 7)      # seed 7 runs out
        res.append((eb.value.n_proposed, eb.value.n_accepted))
    assert res[0][0] == res[3][0]
    assert res[0][1] == pytest.approx(res[3][1], rel=1e-12)
    assert res[1] == res[4]
    assert res[2] == res[5] and res[2][0] == 3900


def test_threads_give_sequential_results():
    """Each thread owns its Generator: results do not depend on threading."""
    s = rsft.RejectionSampler(rsft.Normal(2, 1), rsft.Normal(0, 2), backend="cython")
    seeds = np.random.SeedSequence(11).spawn(4)
    expected = [s.sample(50_000, np.random.default_rng(sd)) for sd in seeds]
    got = [None] * 4

    def work(i):
        got[i] = s.sample(50_000, np.random.default_rng(seeds[i]))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for e, g in zip(expected, got):
        assert np.array_equal(e, g)


def test_callable_may_use_the_same_generator():
    """The Generator's lock is not held while the callable runs (no deadlock)."""
    rng = np.random.default_rng(0)

    def logp(x):
        rng.random()   # would deadlock if the kernel held rng's lock here
        return -0.5 * (x - 2.0) ** 2

    log_M = math.log(2.0) + 2.0 / 3.0 + 0.5 * math.log(2 * math.pi)
    x = rsft.RejectionSampler(logp, rsft.Normal(0, 2), log_M=log_M,
                              backend="cython").sample(2000, rng)
    assert x.shape == (2000,)


@settings(max_examples=40, deadline=None)
@given(m1=st.floats(-3, 3), s1=st.floats(0.2, 3), dm=st.floats(-2, 2), ratio=st.floats(1.05, 4),
       seed=st.integers(0, 2**32 - 1), n=st.integers(0, 3000))
def test_property_normal_pairs(m1, s1, dm, ratio, seed, n):
    t, q = rsft.Normal(m1, s1), rsft.Normal(m1 + dm, s1 * ratio)
    assume(rsft.RejectionSampler(t, q).log_M < 4.0)   # keep each example fast
    xc, sc, stc = _run(t, q, "cython", seed, n)
    xn, sn, stn = _run(t, q, "numpy", seed, n)
    assert np.array_equal(xc, xn) and stc == stn
    assert sc.max_log_ratio <= 1e-9


def test_backend_switch():
    before = rsft.get_backend()
    try:
        rsft.set_backend("numpy")
        assert rsft.get_backend() == "numpy"
        with pytest.raises(ValueError, match="cython.*numpy"):
            rsft.set_backend("fortran")
        assert rsft.get_backend() == "numpy"
    finally:
        rsft.set_backend(before)


def test_env_variable_selects_backend():
    import subprocess
    import sys
    import os
    code = "import rsft; print(rsft.get_backend())"
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "RSFT_BACKEND": "numpy"},
                         capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "numpy"
    # an unknown name does not make `import rsft` fail: a RuntimeWarning, then the default
    bad = subprocess.run([sys.executable, "-c", code], env={**os.environ, "RSFT_BACKEND": "gpu"},
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 0, bad.stderr
    assert bad.stdout.strip() == rsft.available_backends()[0]
    assert "RuntimeWarning: RSFT_BACKEND='gpu' ignored" in bad.stderr
    assert "valid backends are 'cython' and 'numpy'" in bad.stderr


def test_default_budget_is_bounded():
    """A pair with an astronomically large M fails after a bounded number of proposals."""
    s = rsft.RejectionSampler(rsft.Normal(0, 0.05), rsft.Normal(60, 1))
    assert s.log_M > 1000
    assert s._budget(10) == 10**9 + 1000 * 10
    small = rsft.RejectionSampler(rsft.Normal(2, 1), rsft.Normal(0, 2))
    assert small._budget(100) == math.ceil(math.exp(small.log_M) * (20 * 100 + 100)) + 10000


# ---------------------------------------------------------------------------------------------
# The blocked stream (n_threads= / block_size=): both backends, every thread count
# ---------------------------------------------------------------------------------------------

#: log M of the callable target _normal_logpdf_unnormalised with proposal Normal(0, 2)
_CALLABLE_LOG_M = 2 / 3 + math.log(2) + 0.5 * math.log(2 * math.pi)


def _run_blocked(target, proposal, backend, seed, n, **kw):
    """Blocked sampling from default_rng(seed): samples, stats, the Generator's state after
    and the number of children its seed sequence spawned."""
    rng = np.random.default_rng(seed)
    log_M = _CALLABLE_LOG_M if target is _normal_logpdf_unnormalised else None
    s = rsft.RejectionSampler(target, proposal, log_M, backend=backend)
    x, stats = s.sample_with_stats(n, rng, **kw)
    return x, stats, rng.bit_generator.state, rng.bit_generator.seed_seq.n_children_spawned


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: f"{p[0]!r}/{p[1]!r}")
def test_blocked_stream_bit_identical_across_backends_and_threads(pair):
    """Blocks of 700 (the last one shorter): the same samples, stats and Generator state on
    both backends and for 1, 2 and 4 threads."""
    expected = _run_blocked(*pair, "numpy", 3, 5000, n_threads=1, block_size=700)
    for backend, n_threads in [("cython", 1), ("cython", 2), ("cython", 4), ("numpy", 4)]:
        x, stats, state, n_children = _run_blocked(*pair, backend, 3, 5000, n_threads=n_threads,
                                                   block_size=700)
        assert np.array_equal(x, expected[0]), (backend, n_threads)
        assert (stats.n_proposed, stats.n_accepted) == (expected[1].n_proposed, 5000)
        assert stats.max_log_ratio == pytest.approx(expected[1].max_log_ratio, rel=1e-12,
                                                    abs=1e-12)
        assert state == expected[2] and n_children == expected[3] == 8


@pytest.mark.parametrize("seed", SEEDS)
def test_blocked_callable_target_bit_identical(seed):
    results = [_run_blocked(_normal_logpdf_unnormalised, rsft.Normal(0, 2), backend, seed,
                            3000, n_threads=n_threads, block_size=1000)
               for backend, n_threads in [("numpy", 1), ("cython", 1), ("cython", 3)]]
    for x, stats, state, _ in results[1:]:
        assert np.array_equal(x, results[0][0])
        assert stats.n_proposed == results[0][1].n_proposed and state == results[0][2]


def test_blocked_kernel_refuses_children_of_mixed_bit_generator_types():
    """The compiled kernel chooses the strategy once, from the first child's bit generator
    (the inline PCG64 path or not): children of another type would be read wrongly."""
    s = rsft.RejectionSampler(rsft.Beta(2, 5), rsft.Uniform(0, 1))
    children = [np.random.default_rng(1), np.random.Generator(np.random.MT19937(2))]
    stops = np.array([10, 20], dtype=np.intp)
    budgets = np.array([10**6, 10**6], dtype=np.intp)
    with pytest.raises(TypeError, match="one bit generator type"):
        _core.rejection_sample_blocks(children, s.proposal._code, s._params, s._prog, None,
                                      stops, s._prior_rate, budgets, True, 1e-9, np.empty(20),
                                      2)


def _minus_x4(x):
    return -x ** 4


def _logistic_logpdf(x):
    a = np.abs(x)
    return -a - 2.0 * np.log1p(np.exp(-a))


# ---------------------------------------------------------------------------------------------
# LogConcaveSampler: the same hat, samples, counts and Generator states on both backends
# ---------------------------------------------------------------------------------------------
LOG_CONCAVE = [
    (rsft.Normal(0.0, 1.0), {}),
    (rsft.Beta(2.0, 5.0), {}),
    (rsft.Uniform(0.0, 3.0), {}),         # flat pieces only
    (_minus_x4, {"support": (-np.inf, np.inf)}),
    (_logistic_logpdf, {"support": (-np.inf, np.inf), "efficiency": 0.8}),
]


@pytest.mark.parametrize("bitgen", [np.random.PCG64, np.random.MT19937])
@pytest.mark.parametrize("seed", [0, 12345])
@pytest.mark.parametrize("case", range(len(LOG_CONCAVE)))
def test_log_concave_sampler_bit_identical(case, seed, bitgen):
    target, kw = LOG_CONCAVE[case]
    out = []
    for backend in ("cython", "numpy"):
        calls = []
        if not isinstance(target, rsft.Distribution):
            def lp(x, calls=calls):
                calls.append(x.copy())
                return target(x)
        rng = np.random.Generator(bitgen(seed))
        s = rsft.LogConcaveSampler(target if isinstance(target, rsft.Distribution) else lp,
                                   backend=backend, **kw)
        x, st = s.sample_with_stats(30_000, rng)
        out.append((x, st, rng.bit_generator.state, s._hat.pieces, calls))
    (xc, sc, stc, pc, cc), (xn, sn, stn, pn, cn) = out
    assert np.array_equal(pc, pn)
    assert np.array_equal(xc, xn)
    assert _same_state(stc, stn)
    assert (sc.n_proposed, sc.n_accepted, sc.n_evaluated) == (sn.n_proposed, sn.n_accepted,
                                                              sn.n_evaluated)
    assert sc.max_excess == pytest.approx(sn.max_excess, rel=1e-12, abs=1e-15)
    # the target saw the same arrays: construction's, then the in-between points per chunk
    assert len(cc) == len(cn) and all(np.array_equal(a, b) for a, b in zip(cc, cn))


@pytest.mark.parametrize("target, kw", [
    (rsft.Gamma(3.0), {}),
    (rsft.Gamma(1.0), {}),
    (rsft.Beta(1.0, 1.0), {}),
    (rsft.TruncatedNormal(0.0, 1.0, 5.0, np.inf), {}),
    (lambda x: -1e4 - 0.5 * x * x, {"support": (-np.inf, np.inf)}),
    (lambda x: 1e3 * x, {"support": (0.0, 1.0)}),                  # ulp-narrow intervals
    (lambda x: -1e-200 * x, {"support": (0.0, np.inf)}),           # a tail of decay 1e200
    (_minus_x4, {"support": (-np.inf, np.inf), "efficiency": 0.9999}),
], ids=["gamma-3", "gamma-1", "beta-1-1", "truncnorm-tail", "loglik", "steep", "slow-tail",
        "x4-0.9999"])
def test_log_concave_hat_bit_identical(target, kw):
    """The construction arithmetic (hat_check_concave, hat_table, hat_finish) of both backends
    builds the same hat to the bit."""
    hats = [rsft.LogConcaveSampler(target, backend=b, **kw)._hat for b in ("cython", "numpy")]
    for field in ("pieces", "guide", "points"):
        assert np.array_equal(getattr(hats[0], field), getattr(hats[1], field)), field
    for field in ("hat_area", "squeeze_area", "efficiency", "n_evaluations"):
        assert getattr(hats[0], field) == getattr(hats[1], field), field


def test_hat_finish_drops_vanished_pieces_alike():
    """A piece whose area vanishes in the cumulative sum is left out, the rows after it move
    up; both backends alike."""
    from rsft._program import PIECE_LEN, Piece
    table = np.arange(4 * PIECE_LEN, dtype=np.float64).reshape(4, PIECE_LEN)
    table[:, Piece.DECAY] = [1.0, 0.0, 0.0, 1.0]
    area = np.array([1.0, 1e-17, 2.0, 0.0])
    out = []
    for backend in ("cython", "numpy"):
        pieces, guide = getattr(rsft._backend.kernels(backend), "hat_finish")(table.copy(),
                                                                            area)
        out.append((pieces, guide))
        assert pieces.shape == (2, PIECE_LEN)
        assert np.array_equal(pieces[:, Piece.ANCHOR], table[[0, 2], Piece.ANCHOR])
        assert list(pieces[:, Piece.CUM]) == [1.0 / 3.0, 1.0]
        assert pieces[1, Piece.SHARE_SCALE] == table[2, Piece.LENGTH] / (1.0 - 1.0 / 3.0)
        assert list(guide) == [0, 0, 0, 1, 1, 1, 1, 1]       # first CUM > g/8
    assert np.array_equal(out[0][0], out[1][0]) and np.array_equal(out[0][1], out[1][1])


# ---------------------------------------------------------------------------------------------
# Reward acceptors on grouped (ragged) rewards: masks, statistics and Generator states
# ---------------------------------------------------------------------------------------------

def _ragged(seed, n_groups=40, sorted_labels=False, n_values=4):
    """Ragged groups of sizes 1..12 (some of size 1), few distinct rewards (ties), failed
    candidates (-inf), one all-failed group and duplicate keys; labels sparse and shuffled."""
    g = np.random.default_rng(seed)
    sizes = g.integers(1, 13, n_groups)
    sizes[:3] = 1
    labels = np.repeat(g.choice(10 * n_groups, n_groups, replace=False) - 5 * n_groups, sizes)
    r = g.integers(0, n_values, labels.size).astype(float)
    r[g.random(labels.size) < 0.15] = -np.inf
    r[labels == labels[-1]] = -np.inf
    keys = g.integers(0, 6, labels.size)
    if not sorted_labels:
        perm = g.permutation(labels.size)
        labels, r, keys = labels[perm], r[perm], keys[perm]
    else:
        order = np.argsort(labels, kind="stable")
        labels, r, keys = labels[order], r[order], keys[order]
    return r, labels, keys


def _grouped_acceptors():
    return [rsft.Threshold(1.0), rsft.Threshold(1.0, min_per_group=2),
            rsft.Quantile(0.5), rsft.Quantile(lambda t: 0.9, min_per_group=3),
            rsft.TopK(1), rsft.TopK(3, min_per_group=4),
            rsft.StatisticalRS(0.5), rsft.StatisticalRS(1.0, r_max=3.0, min_per_group=2),
            rsft.RSO(0.5, 2), rsft.RSO(2.0, 3, min_per_group=5), rsft.RSO(1e-3, 1)]


def _same_stats(a, b):
    for name in rsft.acceptors.GroupStats.FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            assert x.dtype == y.dtype and np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), name
    sa, sb = a.summary(), b.summary()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert sa[k] == sb[k] or (sa[k] != sa[k] and sb[k] != sb[k]), k


def _accept_both(acc, seed, *args, **kw):
    out = []
    for be in ("cython", "numpy"):
        rng = np.random.default_rng(seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rsft.ApproximateTiltWarning)
            res = acc.accept(*args, rng=rng, backend=be, **kw)
        out.append((res, rng))
    return out


@pytest.mark.parametrize("sorted_labels", [False, True])
@pytest.mark.parametrize("with_keys", [False, True])
def test_grouped_acceptors_bit_identical(sorted_labels, with_keys):
    for seed in SEEDS:
        r, labels, keys = _ragged(seed, sorted_labels=sorted_labels)
        for acc in _grouped_acceptors():
            (rc, gc), (rn, gn) = _accept_both(acc, seed, r, groups=labels,
                                              keys=keys if with_keys else None)
            assert rc.mask.shape == r.shape and np.array_equal(rc.mask, rn.mask), acc
            assert np.array_equal(rc.index, rn.index)
            assert np.array_equal(rc.index, np.flatnonzero(rc.mask))
            _same_stats(rc.group_stats, rn.group_stats)
            assert (rc.weights is None) == (rn.weights is None)
            if rc.weights is not None:
                assert np.array_equal(rc.weights, rn.weights)
            assert _same_state(gc.bit_generator.state, gn.bit_generator.state), acc
            # the matched random baseline, from the same result, on both backends
            mc = rsft.acceptors.matched_random(rc, np.random.default_rng(seed), backend="cython")
            mn = rsft.acceptors.matched_random(rc, np.random.default_rng(seed), backend="numpy")
            assert np.array_equal(mc.mask, mn.mask)
            _same_stats(mc.group_stats, mn.group_stats)


def test_grouped_and_rectangular_give_the_same_masks():
    g = np.random.default_rng(3)
    r2 = g.integers(0, 3, (30, 9)).astype(float)
    r2[g.random(r2.shape) < 0.2] = -np.inf
    labels = np.repeat(np.arange(30), 9)
    for acc in _grouped_acceptors():
        for be in ("cython", "numpy"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", rsft.ApproximateTiltWarning)
                rect = acc.accept(r2, rng=5, backend=be)
                grouped = acc.accept(r2.ravel(), rng=5, groups=labels, backend=be)
            assert np.array_equal(rect.mask.ravel(), grouped.mask), (acc, be)
            _same_stats(rect.group_stats, grouped.group_stats)
            # shuffled labels hold the same groups: the same decisions, candidate by candidate
            perm = np.random.default_rng(1).permutation(labels.size)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", rsft.ApproximateTiltWarning)
                shuffled = acc.accept(r2.ravel()[perm], rng=5, groups=labels[perm], backend=be)
            if not isinstance(acc, (rsft.TopK, rsft.StatisticalRS, rsft.RSO)) and \
                    acc.min_per_group == 0:   # random acceptors draw in group order, which
                assert np.array_equal(shuffled.mask, rect.mask.ravel()[perm])   # depends on it


def test_grouped_empty_and_singletons():
    for acc in _grouped_acceptors():
        for r, labels in [(np.zeros(0), np.zeros(0, np.int64)),
                          (np.array([0.5, -np.inf, 2.0]), np.array([9, 8, 7]))]:
            (rc, gc), (rn, gn) = _accept_both(acc, 0, r, groups=labels)
            assert np.array_equal(rc.mask, rn.mask) and rc.mask.shape == r.shape
            _same_stats(rc.group_stats, rn.group_stats)
            assert _same_state(gc.bit_generator.state, gn.bit_generator.state)
            assert not rc.mask[r == -np.inf].any()


@pytest.mark.parametrize("labels", [
    np.array([2 ** 62, -2 ** 62, 5, 2 ** 62, -(2 ** 63), 2 ** 63 - 1, 5]),   # radix, 6 passes
    np.random.default_rng(0).integers(-3, 3, 500),                          # one pass
    np.random.default_rng(1).integers(0, 10 ** 6, 5000),                    # three passes
    np.arange(100),                                                          # in order
])
def test_group_order_kernels_agree(labels):
    labels = labels.astype(np.int64)
    oc, sc, lc = _core.group_order(labels)
    on, sn, ln = _reference.group_order(labels)
    assert (oc is None) == (on is None)
    if oc is not None:
        assert np.array_equal(oc, on) and np.array_equal(oc, np.argsort(labels, kind="stable"))
    assert np.array_equal(sc, sn) and np.array_equal(lc, ln)
    assert np.array_equal(lc, np.unique(labels))


# ---------------------------------------------------------------------------------------------
# Reward acceptors, blocked (n_threads= / block_size=): both backends, every thread count
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("grouped", [False, True])
def test_blocked_acceptors_bit_identical_across_backends_and_threads(grouped):
    """Blocks of 7 groups: the same masks, statistics and Generator state on both backends and
    for 1, 2 and 4 threads; block b decided alone from rng.spawn(n_blocks)[b]."""
    r, labels, keys = _ragged(11, n_groups=40)
    if not grouped:
        r = np.resize(r, 40 * 9).reshape(40, 9)    # rows of 9, with ties and -inf
        labels = keys = None
    for acc in _grouped_acceptors():
        runs = []
        for backend, n_threads in [("numpy", 1), ("cython", 1), ("cython", 2), ("cython", 4),
                                   ("numpy", 3)]:
            rng = np.random.default_rng(4)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", rsft.ApproximateTiltWarning)
                res = acc.accept(r, rng=rng, groups=labels, keys=keys, backend=backend,
                                 n_threads=n_threads, block_size=7)
            runs.append((res, rng))
        (first, rng0) = runs[0]
        for res, rng in runs[1:]:
            assert np.array_equal(res.mask, first.mask), acc
            _same_stats(res.group_stats, first.group_stats)
            assert _same_state(rng.bit_generator.state, rng0.bit_generator.state)
        # the derivation by hand: block 0 is the first 7 groups decided from child 0
        child = np.random.default_rng(4).spawn(-(-len(first.group_stats) // 7))[0]
        if grouped:
            in_block = np.isin(labels, first.group_stats.label[:7])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", rsft.ApproximateTiltWarning)
                alone = acc.accept(r[in_block], rng=child, groups=labels[in_block],
                                   keys=keys[in_block], backend="numpy")
            assert np.array_equal(alone.mask, first.mask[in_block]), acc
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", rsft.ApproximateTiltWarning)
                alone = acc.accept(r[:7], rng=child, backend="numpy")
            assert np.array_equal(alone.mask, first.mask[:7]), acc
