"""The shared argument checks (rsft._validate), the kernel lookup (rsft._backend.kernels), the
exact policy metrics (rsft._tilt) against plain numpy/scipy transcriptions, and the rule that no
constructor changes the objects it is given (RSFTTrainer passes its backend per call)."""
import math

import numpy as np
import pytest
from scipy import special, stats

import rsft
from rsft import _backend, _reference, _tilt, _validate, optim
from rsft.finetune import DensityTrainer, RSFTTrainer

BACKENDS = rsft.available_backends()


# ---------------------------------------------------------------------------------------------
# _validate.real
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("x", [1, -2.5, np.float32(0.25), np.int64(3), np.uint8(7)])
def test_real_accepts_python_and_numpy_numbers(x):
    v = _validate.real(x, "alpha")
    assert type(v) is float and v == float(x)


@pytest.mark.parametrize("x", ["1", None, True, np.bool_(False), [1.0], np.array(1.0),
                               1 + 2j], ids=repr)
def test_real_refuses_other_kinds_with_type_error_naming_the_argument(x):
    with pytest.raises(TypeError, match=r"^alpha must be a real number, got "):
        _validate.real(x, "alpha")


def test_real_expected_text_and_scalar_arrays():
    with pytest.raises(TypeError, match="log_M must be a real number or None, got str"):
        _validate.real("2", "log_M", expected="a real number or None")
    assert _validate.real(np.array(2), "beta", scalar_arrays=True) == 2.0
    with pytest.raises(TypeError, match="beta must be a real number"):
        _validate.real(np.array([2.0]), "beta", scalar_arrays=True)
    with pytest.raises(TypeError, match="beta must be a real number"):
        _validate.real(np.array(True), "beta", scalar_arrays=True)


@pytest.mark.parametrize("x, kw, msg", [
    (math.nan, {}, "x must be finite, got nan"),
    (math.inf, {}, "x must be finite, got inf"),
    (-1.0, {"lo": 0.0}, "x must be finite and >= 0, got -1.0"),
    (0.0, {"lo": 0.0, "lo_open": True}, "x must be finite and > 0, got 0.0"),
    (math.nan, {"lo": 0.0, "lo_open": True}, "x must be finite and > 0, got nan"),
    (2.0, {"hi": 1.0}, "x must be finite and <= 1, got 2.0"),
    (1.0, {"lo": 0.0, "hi": 1.0, "hi_open": True}, r"x must be in \[0, 1\), got 1.0"),
    (1.5, {"lo": 0.0, "hi": 1.0}, r"x must be in \[0, 1\], got 1.5"),
    (math.nan, {"finite": False}, "x must not be NaN"),
    (-math.inf, {"finite": False, "lo": 0.0}, "x must be >= 0, got -inf"),
])
def test_real_range_errors_name_the_argument_and_range(x, kw, msg):
    with pytest.raises(ValueError, match=f"^{msg}$"):
        _validate.real(x, "x", **kw)


def test_real_bounds_are_inclusive_unless_open():
    assert _validate.real(0, "x", lo=0.0) == 0.0
    assert _validate.real(1, "x", lo=0.0, hi=1.0) == 1.0
    assert _validate.real(math.inf, "x", finite=False) == math.inf
    assert _validate.real(-math.inf, "x", finite=False) == -math.inf


def test_rate_or_schedule():
    schedule = rsft.schedules.CosineLR(0.1, 10)
    assert _validate.rate_or_schedule(schedule, "lr") is schedule
    assert _validate.rate_or_schedule(len, "lr") is len            # any callable, as is
    assert type(_validate.rate_or_schedule(np.float32(0.5), "lr")) is float
    with pytest.raises(TypeError, match="^lr must be a real number or a schedule "):
        _validate.rate_or_schedule("0.1", "lr")
    with pytest.raises(TypeError, match="^lr must be a real number or a schedule "):
        _validate.rate_or_schedule(True, "lr")
    for bad in (-0.1, math.nan, math.inf):
        with pytest.raises(ValueError, match="^lr must be finite and >= 0"):
            _validate.rate_or_schedule(bad, "lr")


# ---------------------------------------------------------------------------------------------
# counts, batch sizes, flags
# ---------------------------------------------------------------------------------------------
def test_count():
    assert _validate.count(0) == 0 and type(_validate.count(np.int32(5))) is int
    for bad in (1.5, 2.0, True, np.bool_(True), "3", None):
        with pytest.raises(TypeError, match="^n_items must be a non-negative integer, got "):
            _validate.count(bad, "n_items")
    with pytest.raises(ValueError, match="^n_items must be >= 0, got -1$"):
        _validate.count(-1, "n_items")
    with pytest.raises(ValueError, match="^n_items must be >= 0, got -1$"):
        _validate.count(-1, "n_items", minimum=2)
    with pytest.raises(ValueError, match="^n_items must be >= 2, got 1$"):
        _validate.count(1, "n_items", minimum=2)
    assert _validate.count(2, "n_items", minimum=2) == 2


def test_batch_size():
    assert _validate.batch_size(None) is None
    assert _validate.batch_size(np.int64(4)) == 4
    for bad in (0, -3, 2.0, True, "8"):
        with pytest.raises(ValueError, match="^batch_size must be None or a positive integer"):
            _validate.batch_size(bad)


def test_flag():
    assert _validate.flag(np.bool_(True), "amsgrad") is True
    assert _validate.flag(False, "amsgrad") is False
    for bad in (0, 1, "yes", None):
        with pytest.raises(TypeError, match="^amsgrad must be True or False"):
            _validate.flag(bad, "amsgrad")


# ---------------------------------------------------------------------------------------------
# rng, dtypes, arrays, backends
# ---------------------------------------------------------------------------------------------
def test_generator_forms():
    g = np.random.default_rng(3)
    assert _validate.generator(g) is g
    a = _validate.generator(5).random(3)
    assert np.array_equal(a, np.random.default_rng(5).random(3))
    assert np.array_equal(_validate.generator(np.int8(5)).random(3), a)
    assert np.array_equal(_validate.generator(np.random.SeedSequence(5)).random(3), a)
    assert np.array_equal(_validate.generator(np.random.PCG64(5)).random(3), a)
    assert isinstance(_validate.generator(None), np.random.Generator)
    with pytest.raises(ValueError, match="rng seed must be non-negative"):
        _validate.generator(-1)
    for bad in (1.5, "seed", True, [1.5, 2], [], [[1, 2]]):
        with pytest.raises(TypeError, match="^rng must be None, an int seed"):
            _validate.generator(bad)
    # a sequence of seeds, as numpy.random.default_rng takes it
    assert np.array_equal(_validate.generator([1, 2]).random(3),
                          np.random.default_rng([1, 2]).random(3))


def test_float_dtype():
    assert _validate.float_dtype("float32") == np.float32
    assert _validate.float_dtype(np.float64) == np.float64
    for bad in (np.int64, "float16", "not a dtype", np.dtype(">f8")):
        with pytest.raises(TypeError, match="^dtype must be float32 or float64"):
            _validate.float_dtype(bad)
    # a name numpy does not understand used to pass as float64 (np.dtype("f8") == None)
    with pytest.raises(TypeError, match="dtype must be float32 or float64, got 'bogus'"):
        rsft.LinearRegression(2, dtype="bogus")


def test_real_array():
    a = np.arange(3)
    assert _validate.real_array(a, "X") is a
    assert _validate.real_array([True, False], "X").dtype == np.bool_
    with pytest.raises(TypeError, match=r"^rewards must be real numbers \(int or float\), got "
                                        "dtype bool"):
        _validate.real_array([True], "rewards", bool_ok=False)
    for bad in (["a"], np.ones(2, complex), [object()]):
        with pytest.raises(TypeError, match="^X must be real numbers, got dtype"):
            _validate.real_array(bad, "X")


def test_array_list():
    a, b = np.zeros(2), np.ones(3)
    got = _validate.array_list(a, "params")
    assert len(got) == 1 and got[0] is a
    pair = (a, b)
    got = _validate.array_list(pair, "params")
    assert isinstance(got, list) and got[0] is a and got[1] is b
    with pytest.raises(TypeError, match="^grads must be a numpy array or a list of numpy arrays, "
                                        "got float"):
        _validate.array_list(1.0, "grads")


def test_backend_argument_and_kernel_lookup():
    assert _validate.backend(None) is None
    for name in BACKENDS:
        assert _validate.backend(name) == name
    for bad in ("fortran", "", "NUMPY", 3):
        with pytest.raises(ValueError, match="unknown backend"):
            _validate.backend(bad)
    # kernels(): the first name that is not None, else the process default
    assert _backend.kernels("numpy") is _reference
    assert _backend.kernels(None, "numpy") is _reference
    assert _backend.kernels() is _backend.kernels(rsft.get_backend())
    assert _backend.kernels(None, None) is _backend.kernels(rsft.get_backend())
    if "cython" in BACKENDS:
        assert _backend.kernels("numpy", "cython") is _reference
        assert _backend.kernels(None, "cython") is not _reference
    with pytest.raises(ValueError, match="unknown backend"):
        _backend.kernels(None, "fortran")


# ---------------------------------------------------------------------------------------------
# _tilt against plain transcriptions
# ---------------------------------------------------------------------------------------------
def _logits(seed, n=40, k=6, scale=3.0):
    return np.random.default_rng(seed).normal(0.0, scale, (n, k))


@pytest.mark.parametrize("scale", [1.0, 30.0, 1e4])
def test_log_softmax_matches_scipy(scale):
    z = _logits(0, scale=scale)
    got = _tilt.log_softmax(z)
    assert got.dtype == np.float64 and np.all(np.isfinite(got))
    np.testing.assert_allclose(got, special.log_softmax(z, axis=1), rtol=1e-12,
                               atol=1e-12 * scale)
    # float32 logits are computed in float64
    z32 = z.astype(np.float32)
    np.testing.assert_allclose(_tilt.log_softmax(z32),
                               special.log_softmax(z32.astype(np.float64), axis=1),
                               rtol=1e-12, atol=1e-12 * scale)


def test_softmax_kl_and_expected_reward_match_scipy():
    lp = special.log_softmax(_logits(1), axis=1)
    lq = special.log_softmax(_logits(2), axis=1)
    p, q = np.exp(lp), np.exp(lq)
    kl = np.mean([stats.entropy(pi, qi) for pi, qi in zip(p, q)])
    assert _tilt.softmax_kl(lp, lq) == pytest.approx(kl, rel=1e-12)
    assert _tilt.softmax_kl(lp, lp) == 0.0
    table = np.random.default_rng(3).normal(size=p.shape)
    er = np.mean([pi @ ri for pi, ri in zip(p, table)])
    assert _tilt.expected_reward(p, table) == pytest.approx(er, rel=1e-12)


@pytest.mark.parametrize("beta", [0.05, 1.0, 1e3])
def test_tilted_log_probs_is_the_normalised_tilt(beta):
    lq = special.log_softmax(_logits(4), axis=1)
    table = np.random.default_rng(5).normal(size=lq.shape)
    w = np.exp(lq) * np.exp((table - table.max(axis=1, keepdims=True)) / beta)
    want = w / w.sum(axis=1, keepdims=True)
    got = np.exp(_tilt.tilted_log_probs(lq, table, beta))
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-300)
    # rewards of any scale: the log-sum-exp is max-subtracted, nothing overflows
    big = _tilt.tilted_log_probs(lq, 1e6 * table, 1e-3)
    assert np.all(np.isfinite(np.exp(big).sum(axis=1)))
    np.testing.assert_allclose(np.exp(big).sum(axis=1), 1.0, rtol=1e-12)


def test_tilted_target_maximises_the_regularised_reward():
    # pi* maximises E_pi[r] - beta KL(pi || q): any other distribution scores lower
    beta = 0.7
    lq = special.log_softmax(_logits(6, n=1), axis=1)
    table = np.random.default_rng(7).normal(size=lq.shape)
    lp = _tilt.tilted_log_probs(lq, table, beta)

    def score(l):
        return _tilt.expected_reward(np.exp(l), table) - beta * _tilt.softmax_kl(l, lq)
    best = score(lp)
    assert best == pytest.approx(beta * special.logsumexp(lq + table / beta), rel=1e-12)
    for seed in range(20):
        other = special.log_softmax(lp + np.random.default_rng(seed).normal(0, 0.3, lp.shape),
                                    axis=1)
        assert score(other) < best


def test_gaussian_kl_matches_the_general_formula():
    g = np.random.default_rng(8)
    mu, mu_ref = g.normal(size=(25, 3)), g.normal(size=(25, 3))
    sigma = np.array([0.5, 1.0, 2.0])
    S = np.diag(sigma ** 2)
    S_inv = np.linalg.inv(S)
    k = 3
    # KL(N(m1, S1) || N(m2, S2)) = (tr(S2^-1 S1) + d' S2^-1 d - k + log det S2 / det S1) / 2
    log_det_ratio = np.log(np.linalg.det(S) / np.linalg.det(S))
    want = np.mean([0.5 * (np.trace(S_inv @ S) + (b - a) @ S_inv @ (b - a) - k + log_det_ratio)
                    for a, b in zip(mu, mu_ref)])
    assert _tilt.gaussian_kl(mu, mu_ref, sigma) == pytest.approx(want, rel=1e-12)
    got32 = _tilt.gaussian_kl(mu.astype(np.float32), mu_ref.astype(np.float32), sigma)
    assert got32 == pytest.approx(want, rel=1e-6)
    assert _tilt.gaussian_kl(mu, mu, sigma) == 0.0


def test_trainer_metrics_are_the_tilt_functions():
    X, table, reward, pol = _bandit()
    tr = RSFTTrainer(pol, reward, rsft.StatisticalRS(0.5, r_max=table.max(1)), X,
                     proposal="reference", epochs=2)
    tr.fit(2, rng=0)
    lp = _tilt.log_softmax(pol.decision_function(X))
    lq = _tilt.log_softmax(tr.reference.decision_function(X))
    m = tr.metrics()
    assert m["kl"] == max(_tilt.softmax_kl(lp, lq), 0.0)
    assert m["expected_reward"] == _tilt.expected_reward(np.exp(lp), table)
    t = tr.tilted_target(0.5)
    lt = _tilt.tilted_log_probs(lq, table, 0.5)
    assert np.array_equal(t["probs"], np.exp(lt))
    assert t["kl"] == _tilt.softmax_kl(lt, lq)
    with pytest.raises(TypeError, match="beta must be a real number"):
        tr.tilted_target("0.5")


# ---------------------------------------------------------------------------------------------
# constructors leave the caller's objects alone
# ---------------------------------------------------------------------------------------------
D, K, N = 3, 4, 30


def _bandit(backend=None, seed=0):
    g = np.random.default_rng(seed)
    theta = g.normal(size=(D, K))
    X = g.normal(size=(N, D))
    table = X @ theta

    def reward(X_, a, rng):
        return np.take_along_axis(X_ @ theta, a, axis=1)
    pol = rsft.SoftmaxPolicy(D, K, backend=backend)
    pol.params[0][...] = g.normal(0.0, 0.5, (D, K))
    return X, table, reward, pol


@pytest.mark.parametrize("trainer_backend", BACKENDS)
@pytest.mark.parametrize("own", [None, "numpy"])
def test_rsft_trainer_leaves_backends_of_passed_objects_unchanged(trainer_backend, own):
    X, table, reward, pol = _bandit(backend=own)
    ref = rsft.SoftmaxPolicy(D, K, backend=own)
    acc = rsft.StatisticalRS(1.0, r_max=table.max(1), backend=own)
    params = list(pol.params)
    before = [p.copy() for p in params]
    opt = optim.Adam(pol.params, lr=0.05)
    tr = RSFTTrainer(pol, reward, acc, X, reference=ref, optimizer=opt, epochs=2,
                     backend=trainer_backend)
    tr.fit(2, rng=1)
    assert pol.backend == own and ref.backend == own and acc.backend == own
    assert opt.backend is None
    # the policy passed is the one trained: its own arrays, updated in place
    assert tr.policy is pol and tr.reference is ref and tr.acceptor is acc
    assert tr.optimizer is opt
    assert all(a is b for a, b in zip(pol.params, params))
    assert any(not np.array_equal(a, b) for a, b in zip(pol.params, before))


@pytest.mark.parametrize("trainer_backend", BACKENDS)
def test_default_reference_is_a_new_copy_with_the_trainers_backend(trainer_backend):
    X, table, reward, pol = _bandit()
    tr = RSFTTrainer(pol, reward, rsft.TopK(1), X, backend=trainer_backend)
    assert pol.backend is None
    assert tr.reference is not pol and tr.reference.backend == trainer_backend
    assert all(not np.shares_memory(a, b) for a, b in zip(tr.reference.params, pol.params))
    assert all(np.array_equal(a, b) for a, b in zip(tr.reference.params, pol.params))
    tr = RSFTTrainer(pol, reward, rsft.TopK(1), X)
    assert tr.reference.backend is None


class _SpyTopK(rsft.TopK):
    def __init__(self, k, backend=None):
        super().__init__(k, backend=backend)
        self.seen = []

    def accept(self, r, rng=None, round=0, *, backend=None):
        self.seen.append(backend)
        return super().accept(r, rng, round, backend=backend)


class _SpyPolicy(rsft.SoftmaxPolicy):
    def sample(self, X, n_per_row=1, rng=None, *, backend=None):
        self.seen.append(backend)
        return super().sample(X, n_per_row, rng, backend=backend)


@pytest.mark.parametrize("trainer_backend", [None, *BACKENDS])
@pytest.mark.parametrize("own", [None, "numpy"])
def test_trainer_passes_its_backend_per_call(trainer_backend, own):
    X, table, reward, _ = _bandit()
    pol = _SpyPolicy(D, K, backend=own)
    pol.seen = []
    acc = _SpyTopK(2, backend=own)
    RSFTTrainer(pol, reward, acc, X, epochs=1, backend=trainer_backend).fit(3, rng=2)
    # the policy: the trainer's backend, whatever its own
    assert pol.seen == [trainer_backend] * 3
    # the acceptor: its own first; the trainer's only stands in for none
    assert acc.seen == [trainer_backend if own is None else None] * 3


class _LegacyAcceptor(rsft.acceptors.Acceptor):
    """An acceptor written before accept() had backend=: keeps the top half of each row."""

    def accept(self, r, rng=None, round=0):
        r = np.asarray(r)
        return rsft.AcceptResult(r >= np.median(r, axis=1, keepdims=True))


@pytest.mark.parametrize("trainer_backend", [None, *BACKENDS])
def test_acceptor_without_backend_keyword_still_works(trainer_backend):
    X, table, reward, pol = _bandit()
    acc = _LegacyAcceptor(backend=None if trainer_backend is None else "numpy")
    h = RSFTTrainer(pol, reward, acc, X, epochs=1, backend=trainer_backend).fit(2, rng=3)
    assert len(h) == 2 and h["accepted"].sum() > 0


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("acc_name", ["thr", "topk", "srs"])
def test_trainer_backend_gives_the_run_of_objects_set_to_that_backend(acc_name, backend):
    # what the trainer's backend= did by assignment before, it now does per call: same bits
    runs = []
    for on_trainer in (True, False):
        X, table, reward, pol = _bandit(backend=None if on_trainer else backend)
        acc = {"thr": rsft.Threshold(0.0), "topk": rsft.TopK(2),
               "srs": rsft.StatisticalRS(0.8, r_max=table.max(1))}[acc_name]
        if not on_trainer:
            acc.backend = backend
        tr = RSFTTrainer(pol, reward, acc, X, epochs=3, batch_size=16,
                         proposal="reference" if acc_name == "srs" else "current",
                         backend=backend if on_trainer else None,
                         optimizer=optim.Adam(pol.params, lr=0.05, backend=backend))
        tr.loss.backend = backend
        h = tr.fit(3, rng=4)
        runs.append((h.as_dict(), [p.copy() for p in pol.params]))
    (h1, p1), (h2, p2) = runs
    assert h1 == h2
    assert all(np.array_equal(a, b) for a, b in zip(p1, p2))


@pytest.mark.parametrize("backend", BACKENDS)
def test_per_call_backend_of_sample_and_accept(backend):
    X, table, reward, pol = _bandit()
    other = "numpy" if backend == "cython" else BACKENDS[0]
    pol.backend = other
    a = pol.sample(X, 5, rng=9, backend=backend)
    assert np.array_equal(a, pol.sample(X, 5, rng=9))
    assert pol.backend == other
    with pytest.raises(ValueError, match="unknown backend"):
        pol.sample(X, 5, rng=9, backend="fortran")
    gp = rsft.GaussianPolicy(D, 2, sigma=0.5)
    assert np.array_equal(gp.sample(X, 3, rng=1, backend=backend), gp.sample(X, 3, rng=1))
    with pytest.raises(ValueError, match="unknown backend"):
        gp.sample(X, 3, rng=1, backend="fortran")
    r = np.random.default_rng(2).normal(size=(6, 5))
    for acc in (rsft.Threshold(0.1, backend=other), rsft.TopK(2, backend=other),
                rsft.StatisticalRS(0.5, r_max=r.max(1), backend=other)):
        res = acc.accept(r, rng=3, backend=backend)
        want = acc.accept(r, rng=3)
        assert np.array_equal(res.mask, want.mask) and acc.backend == other
        with pytest.raises(ValueError, match="unknown backend"):
            acc.accept(r, rng=3, backend="fortran")


def test_other_constructors_leave_passed_objects_alone():
    s = rsft.RejectionSampler(rsft.Normal(2.0, 1.0), rsft.Normal(0.0, 2.0), backend="numpy")
    x = np.zeros(1)
    opt = optim.SGD([x], lr=0.1)
    tr = DensityTrainer(s, x, lambda p, v: (float(np.mean((p[0] - v) ** 2)),
                                            [2 * np.mean(p[0] - v, keepdims=True)]), opt)
    tr.fit(3, rng=0)
    assert s.backend == "numpy" and opt.backend is None
    assert tr.params[0] is x and opt.params[0] is x and x[0] != 0.0
    m = rsft.LinearRegression(1, backend="numpy")
    loss = rsft.MSE()
    w = m.params[0]
    rsft.fit(m, np.ones((4, 1)), np.ones(4), loss, optim.SGD(m.params, lr=0.1), 2)
    assert m.backend == "numpy" and loss.backend is None and m.params[0] is w


def test_trainer_works_with_a_user_acceptor_and_policy_written_without_backend():
    """A user's Acceptor subclass and a policy subclass overriding ``sample`` without a
    ``backend=`` keyword keep working when the trainer has a backend (it is not passed)."""
    class TopHalf(rsft.acceptors.Acceptor):
        def accept(self, r, rng=None, round=0):
            return rsft.AcceptResult(r >= np.median(r, axis=1, keepdims=True))

    class MyPolicy(rsft.SoftmaxPolicy):
        def sample(self, X, n_per_row=1, rng=None):
            return super().sample(X, n_per_row, rng)

    X = np.random.default_rng(0).normal(size=(6, 2))
    runs = []
    for backend in (None, "numpy", "cython"):
        pol = MyPolicy(2, 3)
        h = rsft.RSFTTrainer(pol, lambda X_, a, g: a.astype(float), TopHalf(), X, epochs=1,
                             backend=backend).fit(2, rng=0)
        runs.append((h["accepted"], [p.copy() for p in pol.params]))
    for accepted, params in runs[1:]:
        assert np.array_equal(accepted, runs[0][0])
        assert all(np.array_equal(a, b) for a, b in zip(params, runs[0][1]))


def test_tilted_target_takes_a_zero_dim_beta():
    X = np.random.default_rng(0).normal(size=(4, 2))
    tr = rsft.RSFTTrainer(rsft.SoftmaxPolicy(2, 3), lambda X_, a, g: a.astype(float),
                          rsft.TopK(1), X, epochs=0)
    a, b = tr.tilted_target(np.array(0.5)), tr.tilted_target(0.5)
    assert np.array_equal(a["probs"], b["probs"])
