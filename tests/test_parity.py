"""Both backends: bit-identical samples and Generator states for the same seed."""
import math
import threading

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
        with pytest.raises(rsft.ProposalBudgetExceeded) as eb:
            rsft.RejectionSampler(rsft.Normal(2, 1), rsft.Normal(0, 2), max_proposals=500,
                                  backend=backend).sample(1000, 4)
        res.append((eb.value.n_proposed, eb.value.n_accepted))
    assert res[0][0] == res[3][0]
    assert res[0][1] == pytest.approx(res[3][1], rel=1e-12)
    assert res[1] == res[4]
    assert res[2] == res[5] and res[2][0] == 500


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
