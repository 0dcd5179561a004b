"""rsft.optim: bit parity between backends, closed-form oracles, convergence, state round trips,
schedules, parameter groups, gradient clipping, doctests and input checks."""
import copy
import doctest
import itertools
import math
import pickle

import numpy as np
import pytest

import rsft
from rsft import _backend
from rsft._reference import optim as reference_optim
from rsft import optim as O
from rsft import schedules
from rsft.schedules import ConstantLR, CosineLR, InverseTimeLR, StepLR

try:  # an optional second oracle: its cases are added to the parametrisations when installed
    import torch
except ImportError:
    torch = None

HAVE_CYTHON = "cython" in _backend.available_backends()
needs_cython = pytest.mark.skipif(not HAVE_CYTHON, reason="compiled extension not built")
DTYPES = [np.float32, np.float64]


# ---------------------------------------------------------------------------------------------
# Option grids: every valid combination of the options of each optimizer
# ---------------------------------------------------------------------------------------------
def _sgd_options():
    out = []
    for mom, damp, nest, wd, mx in itertools.product([0.0, 0.9], [0.0, 0.3], [False, True],
                                                     [0.0, 0.05], [False, True]):
        if nest and (mom == 0 or damp != 0) or (mom == 0 and damp != 0):
            continue
        out.append(dict(lr=0.05, momentum=mom, dampening=damp, nesterov=nest,
                        weight_decay=wd, maximize=mx))
    return out


def _adam_options(wds):
    return [dict(lr=0.01, betas=(0.9, 0.99), eps=1e-6, weight_decay=wd, amsgrad=ams,
                 maximize=mx)
            for wd, ams, mx in itertools.product(wds, [False, True], [False, True])]


def _rmsprop_options():
    return [dict(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=wd, momentum=mom, centered=c,
                 maximize=mx)
            for wd, mom, c, mx in itertools.product([0.0, 0.05], [0.0, 0.5], [False, True],
                                                    [False, True])]


def _adagrad_options():
    return [dict(lr=0.05, lr_decay=decay, weight_decay=wd, initial_accumulator_value=init,
                 eps=1e-10, maximize=mx)
            for decay, wd, init, mx in itertools.product([0.0, 0.01], [0.0, 0.05], [0.0, 0.1],
                                                          [False, True])]


def _lion_options():
    return [dict(lr=1e-3, betas=betas, weight_decay=wd, maximize=mx)
            for betas, wd, mx in itertools.product([(0.9, 0.99), (0.95, 0.98)], [0.0, 0.1],
                                                   [False, True])]


CASES = ([(O.SGD, kw) for kw in _sgd_options()]
         + [(O.Adam, kw) for kw in _adam_options([0.0, 0.1])]
         + [(O.AdamW, kw) for kw in _adam_options([0.0, 0.1])]
         + [(O.RMSprop, kw) for kw in _rmsprop_options()])
#: the optimizers added after the cases above (kept apart so that index-picked cases stay)
NEW_CASES = ([(O.Adagrad, kw) for kw in _adagrad_options()]
             + [(O.Lion, kw) for kw in _lion_options()])


def _case_id(case):
    cls, kw = case
    opts = ",".join(f"{k}={v}" for k, v in kw.items()
                    if k not in ("lr", "eps", "alpha") and v not in (0.0, False)
                    and not (k == "betas" and cls is not O.Lion))
    return f"{cls.__name__}[{opts}]"


SHAPES = [(), (7,), (33, 5), (1001,)]


def _make_params(dtype, rng):
    ps = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    ps = [np.ascontiguousarray(p) if p.ndim == 0 else p for p in ps]
    ps.append(np.asfortranarray(rng.standard_normal((4, 6)).astype(dtype)))  # F order
    return ps


def _grads(params, rng):
    out = []
    for p in params:
        g = rng.standard_normal(p.shape).astype(p.dtype)
        if g.size > 3:
            g.reshape(-1)[::5] = 0.0  # exact zeros (v stays 0 there early on)
        out.append(g)
    return out


def _run(cls, kw, dtype, backend, n_threads, n_steps=50, seed=0):
    rng = np.random.default_rng(seed)
    params = _make_params(dtype, rng)
    opt = cls(params, backend=backend, n_threads=n_threads, **kw)
    for _ in range(n_steps):
        opt.step(_grads(params, rng))
    return params, opt


@needs_cython
@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES + NEW_CASES, ids=_case_id)
def test_parity_50_steps(case, dtype, n_threads, monkeypatch):
    monkeypatch.setattr(O, "PARALLEL_MIN_SIZE", 0)  # use the threaded path on small arrays
    cls, kw = case
    pn, on = _run(cls, kw, dtype, "numpy", 1)
    pc, oc = _run(cls, kw, dtype, "cython", n_threads)
    for a, b in zip(pn, pc):
        assert a.dtype == b.dtype == dtype
        assert np.array_equal(a, b)
        assert np.all(np.isfinite(a))
    sn, sc = on.state_dict(), oc.state_dict()
    assert sn["step"] == sc["step"] == 50
    for dn, dc in zip(sn["state"], sc["state"]):
        assert dn.keys() == dc.keys()
        for k in dn:
            assert dn[k].dtype == dtype
            assert np.array_equal(dn[k], dc[k]), k


@needs_cython
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("n", [0, 1, 17, 100_003])
def test_kernels_direct_threads(dtype, n):
    """The kernels themselves: odd sizes, block splits of 1..3 threads, bit-identical."""
    from rsft import _core
    rng = np.random.default_rng(n)
    p0 = rng.standard_normal(n).astype(dtype)
    gs = [rng.standard_normal(n).astype(dtype) for _ in range(5)]
    outs = []
    for mod, nt in [(reference_optim, 1), (_core, 1), (_core, 2), (_core, 3)]:
        p = p0.copy()
        m, v, vm = np.zeros(n, dtype), np.zeros(n, dtype), np.zeros(n, dtype)
        sq, ga, b = np.zeros(n, dtype), np.zeros(n, dtype), np.zeros(n, dtype)
        for t, g in enumerate(gs, 1):
            mod.adam_step(p, g, m, v, vm, 0.9, 0.1, 0.999, 1 - 0.999, 1e-3 / (1 - 0.9 ** t),
                          math.sqrt(1 - 0.999 ** t), 1e-8, 0.01, 0.999, True, t % 2 == 0, nt)
            mod.adam_step(p, g, m, v, vm[:0], 0.9, 0.1, 0.999, 1 - 0.999,
                          1e-3 / (1 - 0.9 ** t), math.sqrt(1 - 0.999 ** t), 1e-8, 0.0, 1.0,
                          False, False, nt)
            mod.rmsprop_step(p, g, sq, ga, b, 0.01, 0.99, 0.01, 1e-8, 0.1, 0.9, True, False, nt)
            mod.sgd_step(p, g, b, 0.1, 0.9, 0.9, 0.01, False, True, t == 1, nt)
        outs.append([p, m, v, vm, sq, ga, b])
    for o in outs[1:]:
        for a, b in zip(outs[0], o):
            assert np.array_equal(a, b)


# ---------------------------------------------------------------------------------------------
# Independent oracles: float64 scalar formulas (torch.optim's documented algorithms)
# ---------------------------------------------------------------------------------------------
def oracle_sgd(p, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
               maximize=False):
    p = [float(x) for x in p]
    buf = [None] * len(p)
    for g in grads:
        for i, gi in enumerate(g):
            gi = -gi if maximize else gi
            gi += weight_decay * p[i]
            if momentum:
                buf[i] = gi if buf[i] is None else momentum * buf[i] + (1 - dampening) * gi
                gi = gi + momentum * buf[i] if nesterov else buf[i]
            p[i] -= lr * gi
    return np.array(p)


def oracle_adam(p, grads, lr, beta1, beta2, eps, weight_decay=0.0, amsgrad=False,
                maximize=False, decoupled=False):
    p = [float(x) for x in p]
    m = [0.0] * len(p)
    v = [0.0] * len(p)
    vmax = [0.0] * len(p)
    for t, g in enumerate(grads, 1):
        for i, gi in enumerate(g):
            gi = -gi if maximize else gi
            if decoupled:
                p[i] *= 1 - lr * weight_decay
            else:
                gi += weight_decay * p[i]
            m[i] = beta1 * m[i] + (1 - beta1) * gi
            v[i] = beta2 * v[i] + (1 - beta2) * gi * gi
            vmax[i] = max(vmax[i], v[i])
            m_hat = m[i] / (1 - beta1 ** t)
            v_hat = (vmax[i] if amsgrad else v[i]) / (1 - beta2 ** t)
            p[i] -= lr * m_hat / (math.sqrt(v_hat) + eps)   # sqrt of v_hat (Kingma & Ba)
    return np.array(p)


def oracle_rmsprop(p, grads, lr, alpha, eps, weight_decay=0.0, momentum=0.0, centered=False,
                   maximize=False):
    p = [float(x) for x in p]
    n = len(p)
    v, a, b = [0.0] * n, [0.0] * n, [0.0] * n
    for g in grads:
        for i, gi in enumerate(g):
            gi = -gi if maximize else gi
            gi += weight_decay * p[i]
            v[i] = alpha * v[i] + (1 - alpha) * gi * gi
            if centered:
                a[i] = alpha * a[i] + (1 - alpha) * gi
                den = math.sqrt(v[i] - a[i] ** 2) + eps
            else:
                den = math.sqrt(v[i]) + eps
            if momentum:
                b[i] = momentum * b[i] + gi / den
                p[i] -= lr * b[i]
            else:
                p[i] -= lr * gi / den
    return np.array(p)


def oracle_adagrad(p, grads, lr, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0,
                   eps=1e-10, maximize=False):
    """torch.optim.Adagrad's documented algorithm."""
    p = [float(x) for x in p]
    state_sum = [initial_accumulator_value] * len(p)
    for t, g in enumerate(grads, 1):
        clr = lr / (1 + (t - 1) * lr_decay)
        for i, gi in enumerate(g):
            gi = -gi if maximize else gi
            gi += weight_decay * p[i]
            state_sum[i] += gi * gi
            p[i] -= clr * gi / (math.sqrt(state_sum[i]) + eps)
    return np.array(p)


def oracle_lion(p, grads, lr, betas, weight_decay=0.0, maximize=False):
    """Lion as Algorithm 2 of Chen et al. (2023) writes it: the decay is added to the signed
    update, ``p -= lr * (sign(c) + wd * p)``."""
    beta1, beta2 = betas
    p = [float(x) for x in p]
    m = [0.0] * len(p)
    for g in grads:
        for i, gi in enumerate(g):
            gi = -float(gi) if maximize else float(gi)
            c = beta1 * m[i] + (1 - beta1) * gi
            update = (c > 0) - (c < 0) + weight_decay * p[i]
            p[i] -= lr * update
            m[i] = beta2 * m[i] + (1 - beta2) * gi
    return np.array(p)


def _oracle_for(cls, kw, p0, grads):
    kw = dict(kw)
    if cls is O.SGD:
        return oracle_sgd(p0, grads, **kw)
    if cls is O.RMSprop:
        return oracle_rmsprop(p0, grads, **kw)
    if cls is O.Adagrad:
        return oracle_adagrad(p0, grads, **kw)
    if cls is O.Lion:
        return oracle_lion(p0, grads, **kw)
    b1, b2 = kw.pop("betas")
    return oracle_adam(p0, grads, beta1=b1, beta2=b2, decoupled=cls is O.AdamW, **kw)


@pytest.mark.parametrize("case", CASES[::3] + [CASES[-1]] + NEW_CASES, ids=_case_id)
def test_against_float64_oracle(case, backend):
    cls, kw = case
    rng = np.random.default_rng(3)
    p = rng.standard_normal(6)
    p0 = p.copy()
    grads = [rng.standard_normal(6) for _ in range(5)]
    opt = cls(p, backend=backend, **kw)
    for g in grads:
        opt.step(g)
    np.testing.assert_allclose(p, _oracle_for(cls, kw, p0, grads), rtol=1e-12, atol=1e-14)


def test_adam_first_step_is_lr_times_sign(backend):
    """Closed form: with eps = 0, m_hat = g and v_hat = g^2 at t = 1, so p moves by lr*sign(g)
    whatever the gradient's scale (it would be lr/|g| without the square root of v_hat)."""
    g = np.array([1e-3, -2.0, 5e4, -7e-6])
    p = np.zeros(4)
    O.Adam(p, lr=0.1, eps=0.0, backend=backend).step(g)
    np.testing.assert_allclose(p, -0.1 * np.sign(g), rtol=1e-15)


def test_adamw_decay_only(backend):
    """Zero gradients: Adam's m and v stay 0, so AdamW only shrinks p by (1 - lr*wd)^t."""
    p = np.array([1.0, -2.0, 3.0])
    opt = O.AdamW(p, lr=0.1, weight_decay=0.5, backend=backend)
    for _ in range(3):
        opt.step(np.zeros(3))
    np.testing.assert_allclose(p, np.array([1.0, -2.0, 3.0]) * 0.95 ** 3, rtol=1e-15)


def test_schedule_lr_used_per_step(backend):
    """SGD with a schedule: p after 4 steps of g = 1 is -sum of the schedule's lrs."""
    p = np.zeros(1)
    sched = InverseTimeLR(0.5, k=1.0)
    opt = O.SGD(p, lr=sched, backend=backend)
    for _ in range(4):
        opt.step(np.ones(1))
    assert p[0] == pytest.approx(-(0.5 + 0.25 + 0.5 / 3 + 0.125), rel=1e-15)
    assert opt.lr_at(4) == 0.1


# ---------------------------------------------------------------------------------------------
# Convergence on a convex quadratic f(x) = 1/2 (x - c)^T A (x - c), A diagonal in [1, 10]
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda p, b: O.SGD(p, lr=0.05, momentum=0.9, backend=b),
    lambda p, b: O.SGD(p, lr=0.05, momentum=0.9, nesterov=True, backend=b),
    lambda p, b: O.Adam(p, lr=CosineLR(0.1, 1500, 1e-4), backend=b),
    lambda p, b: O.AdamW(p, lr=CosineLR(0.1, 1500, 1e-4), weight_decay=0.0, backend=b),
    lambda p, b: O.RMSprop(p, lr=InverseTimeLR(0.02, 0.01), backend=b),
    lambda p, b: O.RMSprop(p, lr=InverseTimeLR(0.02, 0.01), momentum=0.5, centered=True,
                           backend=b),
    lambda p, b: O.Adagrad(p, lr=1.0, backend=b),
    lambda p, b: O.Adagrad(p, lr=2.0, lr_decay=1e-3, initial_accumulator_value=0.1, backend=b),
    lambda p, b: O.Lion(p, lr=CosineLR(0.02, 1500), backend=b),
    lambda p, b: O.Lion(p, lr=schedules.WarmupCosine(0.02, 50, 1500), betas=(0.95, 0.98),
                        backend=b),
], ids=["sgd-momentum", "sgd-nesterov", "adam", "adamw", "rmsprop", "rmsprop-centered",
        "adagrad", "adagrad-decay", "lion", "lion-warmup"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_converges_on_quadratic(make, dtype, backend):
    a = np.linspace(1.0, 10.0, 20).astype(dtype)
    c = np.linspace(-3.0, 3.0, 20).astype(dtype)
    x = np.zeros(20, dtype)
    opt = make(x, backend)
    for _ in range(1500):
        opt.step(a * (x - c))
    tol = 1e-2 if dtype == np.float32 else 1e-3
    assert np.max(np.abs(x - c)) < tol


def test_maximize_ascends(backend):
    x = np.zeros(3)
    opt = O.Adam(x, lr=0.05, maximize=True, backend=backend)
    for _ in range(500):
        opt.step(-(x - 1.0))  # gradient of -|x - 1|^2 / 2, maximum at 1
    np.testing.assert_allclose(x, 1.0, atol=1e-2)


# ---------------------------------------------------------------------------------------------
# state_dict round trip
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", [CASES[i] for i in (7, 15, 20, 31, 47)]
                         + [NEW_CASES[i] for i in (0, 15, 16, 23)], ids=_case_id)
def test_state_dict_round_trip(case, backend):
    cls, kw = case
    rng = np.random.default_rng(5)
    params = _make_params(np.float64, rng)
    opt = cls(params, backend=backend, **kw)
    for _ in range(10):
        opt.step(_grads(params, rng))
    sd = opt.state_dict()
    saved = [p.copy() for p in params]
    more = [_grads(params, rng) for _ in range(10)]
    for g in more:
        opt.step(g)
    # state_dict holds copies: the steps above did not change it
    sd2 = opt.state_dict()
    assert sd["step"] == 10 and sd2["step"] == 20
    # a fresh optimizer over the saved parameters, with the saved state, continues identically
    other = cls(saved, backend=backend, **{**kw, "lr": 123.0})
    other.load_state_dict(sd)
    assert other.hyperparams == opt.hyperparams and other.n_steps == 10
    for g in more:
        other.step(g)
    for a, b in zip(params, saved):
        assert np.array_equal(a, b)
    for da, db in zip(sd2["state"], other.state_dict()["state"]):
        assert da.keys() == db.keys()
        assert all(np.array_equal(da[k], db[k]) for k in da)


def test_load_state_dict_rejects_mismatch():
    p = np.zeros(3)
    sd = O.Adam(np.zeros(4)).state_dict()
    with pytest.raises(ValueError, match="shape"):
        O.Adam(p).load_state_dict(sd)
    with pytest.raises(ValueError, match="Adam optimizer, not SGD"):
        O.SGD(p, lr=0.1).load_state_dict(O.Adam(p.copy()).state_dict())
    with pytest.raises(ValueError, match="not an optimizer state_dict"):
        O.Adam(p).load_state_dict({"step": 1})
    opt = O.Adam(p, lr=0.1)
    bad = O.Adam(p.copy(), lr=0.2).state_dict()
    bad["state"] = bad["state"] * 2
    with pytest.raises(ValueError, match="state for 2 parameters"):
        opt.load_state_dict(bad)
    assert opt.hyperparams["lr"] == 0.1  # unchanged after a failed load


# ---------------------------------------------------------------------------------------------
# Schedules
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------
def test_bad_params():
    with pytest.raises(TypeError, match="dtype int64"):
        O.SGD(np.zeros(3, dtype=np.int64), lr=0.1)
    with pytest.raises(TypeError, match="numpy array"):
        O.SGD([[1.0, 2.0]], lr=0.1)
    ro = np.zeros(3)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        O.Adam(ro)
    with pytest.raises(ValueError, match="contiguous"):
        O.Adam(np.zeros(10)[::2])
    with pytest.raises(TypeError, match="dtype >f8"):
        O.Adam(np.zeros(3, dtype=">f8"))
    with pytest.raises(ValueError, match="empty"):
        O.Adam([])
    base = np.zeros(10)
    with pytest.raises(ValueError, match="share memory"):
        O.Adam([base[:6], base[4:]])
    with pytest.raises(ValueError, match="n_threads"):
        O.Adam(np.zeros(3), n_threads=0)
    with pytest.raises(ValueError, match="unknown backend"):
        O.Adam(np.zeros(3), backend="torch")


def test_bad_grads():
    p, q = np.zeros((2, 3)), np.zeros(4, dtype=np.float32)
    opt = O.Adam([p, q])
    with pytest.raises(ValueError, match="got 1 gradient arrays for 2"):
        opt.step([np.zeros((2, 3))])
    with pytest.raises(ValueError, match=r"shape \(3, 2\)"):
        opt.step([np.zeros((3, 2)), np.zeros(4, np.float32)])
    with pytest.raises(TypeError, match="dtype float64 but params\\[1\\] has float32"):
        opt.step([np.zeros((2, 3)), np.zeros(4)])
    with pytest.raises(TypeError, match="numpy array"):
        opt.step([[0.0] * 3, np.zeros(4, np.float32)])
    with pytest.raises(ValueError, match="shares memory"):
        opt.step([p, np.zeros(4, np.float32)])
    assert opt.n_steps == 0 and not p.any()
    # strided and read-only gradients are fine (they are only read)
    g = np.ones((2, 6))[:, ::2]
    g.flags.writeable = False
    opt.step([g, np.ones(4, np.float32)])
    assert opt.n_steps == 1


@pytest.mark.parametrize("make, match", [
    (lambda p: O.SGD(p, lr=float("nan")), "lr"),
    (lambda p: O.SGD(p, lr=-0.1), "lr"),
    (lambda p: O.SGD(p, lr=float("inf")), "lr"),
    (lambda p: O.SGD(p, lr=0.1, momentum=-0.5), "momentum"),
    (lambda p: O.SGD(p, lr=0.1, nesterov=True), "Nesterov"),
    (lambda p: O.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "Nesterov"),
    (lambda p: O.SGD(p, lr=0.1, weight_decay=-1e-3), "weight_decay"),
    (lambda p: O.Adam(p, eps=-1e-8), "eps"),
    (lambda p: O.Adam(p, betas=(1.0, 0.999)), "beta1"),
    (lambda p: O.Adam(p, betas=(0.9, -0.1)), "beta2"),
    (lambda p: O.Adam(p, betas=(0.9, float("nan"))), "beta2"),
    (lambda p: O.AdamW(p, weight_decay=-0.01), "weight_decay"),
    (lambda p: O.RMSprop(p, alpha=1.5), "alpha"),
    (lambda p: O.RMSprop(p, momentum=float("nan")), "momentum"),
    (lambda p: O.Adagrad(p, lr=-1.0), "lr"),
    (lambda p: O.Adagrad(p, lr_decay=-0.1), "lr_decay"),
    (lambda p: O.Adagrad(p, weight_decay=float("inf")), "weight_decay"),
    (lambda p: O.Adagrad(p, initial_accumulator_value=-1.0), "initial_accumulator_value"),
    (lambda p: O.Adagrad(p, eps=float("nan")), "eps"),
    (lambda p: O.Lion(p, lr=float("nan")), "lr"),
    (lambda p: O.Lion(p, betas=(1.5, 0.99)), "beta1"),
    (lambda p: O.Lion(p, betas=(0.9, -0.01)), "beta2"),
    (lambda p: O.Lion(p, weight_decay=-0.1), "weight_decay"),
])
def test_bad_hyperparameters(make, match):
    with pytest.raises(ValueError, match=match):
        make(np.zeros(3))


@pytest.mark.parametrize("make", [
    lambda p: O.Adam(p, betas=0.9), lambda p: O.Adam(p, lr="0.1"),
    lambda p: O.Adam(p, amsgrad=1), lambda p: O.SGD(p, lr=True),
    lambda p: O.Adagrad(p, maximize="yes"), lambda p: O.Adagrad(p, lr_decay=None),
    lambda p: O.Lion(p, betas=(0.9,)), lambda p: O.Lion(p, weight_decay="0"),
])
def test_bad_hyperparameter_types(make):
    with pytest.raises(TypeError):
        make(np.zeros(3))


# ---------------------------------------------------------------------------------------------
# Adagrad and Lion: torch when installed, special values, NaN and signed-zero bits
# ---------------------------------------------------------------------------------------------
def _f32_or_f64_tolerance(dtype):
    return dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)


def _twenty_steps(cls, kw, dtype, backend, seed):
    """Parameters after 20 steps from random data: (p, p0, grads)."""
    rng = np.random.default_rng(seed)
    p0 = rng.standard_normal(257).astype(dtype)
    grads = [rng.standard_normal(257).astype(dtype) for _ in range(20)]
    p = p0.copy()
    opt = cls(p, backend=backend, **kw)
    for g in grads:
        opt.step(g)
    return p, p0, grads


def _adagrad_float64_transcription(p0, grads, kw):
    return oracle_adagrad(p0.astype(np.float64), [g.astype(np.float64) for g in grads], **kw)


def _adagrad_torch(p0, grads, kw):
    t = torch.from_numpy(p0.copy())
    opt = torch.optim.Adagrad([t], **kw)
    for g in grads:
        t.grad = torch.from_numpy(g.copy())
        opt.step()
    return t.numpy()


ADAGRAD_REFERENCES = [_adagrad_float64_transcription] + ([_adagrad_torch] if torch else [])


@pytest.mark.parametrize("reference", ADAGRAD_REFERENCES, ids=lambda f: f.__name__[9:])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("kw", _adagrad_options()[::3], ids=str)
def test_adagrad_against_references(kw, dtype, reference, backend):
    """torch.optim.Adagrad's algorithm: its float64 transcription, and torch itself when it is
    installed (its rounding differs: it fuses multiply-adds and orders some products
    differently, so both are compared within a tolerance)."""
    p, p0, grads = _twenty_steps(O.Adagrad, kw, dtype, backend, seed=11)
    np.testing.assert_allclose(p, reference(p0, grads, kw), **_f32_or_f64_tolerance(dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("kw", _lion_options()[::3], ids=str)
def test_lion_against_paper_transcription(kw, dtype, backend):
    p, p0, grads = _twenty_steps(O.Lion, kw, dtype, backend, seed=12)
    expected = oracle_lion(p0.astype(np.float64), [g.astype(np.float64) for g in grads], **kw)
    np.testing.assert_allclose(p, expected, **_f32_or_f64_tolerance(dtype))


def test_adagrad_closed_forms(backend):
    """A constant gradient g: state_sum = init + t g^2, so with eps = 0 the t-th step moves by
    clr_t * g / sqrt(init + t g^2) with clr_t = lr / (1 + (t - 1) lr_decay)."""
    p = np.zeros(2)
    g = np.array([2.0, -0.5])
    opt = O.Adagrad(p, lr=0.3, lr_decay=0.5, initial_accumulator_value=1.0, eps=0.0,
                    backend=backend)
    expected = np.zeros(2)
    for t in range(1, 5):
        opt.step(g)
        expected -= 0.3 / (1 + (t - 1) * 0.5) * g / np.sqrt(1.0 + t * g * g)
        np.testing.assert_allclose(p, expected, rtol=1e-14)
    np.testing.assert_allclose(opt.state[0]["sum"], 1.0 + 4 * g * g, rtol=1e-15)


def test_lion_moves_by_lr_times_sign(backend):
    """Whatever the gradient's scale, each element moves by exactly lr (0 where c = 0), and
    the decoupled decay scales p first."""
    p = np.array([1.0, -2.0, 3.0, 4.0])
    opt = O.Lion(p, lr=0.125, weight_decay=0.5, backend=backend)
    g = np.array([1e-12, -7e8, 0.0, -0.0])
    opt.step(g)
    assert p.tolist() == [1.0 * 0.9375 - 0.125, -2.0 * 0.9375 + 0.125, 3.0 * 0.9375,
                          4.0 * 0.9375]
    np.testing.assert_array_equal(opt.state[0]["exp_avg"], (1 - 0.99) * g)


SPECIALS = [0.0, -0.0, math.nan, -math.nan, math.inf, -math.inf, 1e-310, -1e-310, 1.0, -1.0]


@needs_cython
@pytest.mark.parametrize("decay", [1.0, 0.99], ids=["no-decay", "decay"])
@pytest.mark.parametrize("maximize", [False, True], ids=["min", "max"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_new_kernels_same_bits_on_special_values(dtype, maximize, decay):
    """NaN (either sign), +-0, +-inf and subnormals in the parameters, the gradients and the
    state: the compiled kernels give the reference's bits (np.sign's NaN and zero included),
    on 1 to 3 threads."""
    from rsft import _core
    n = 1013
    rng = np.random.default_rng(13)
    specials = np.array(SPECIALS, dtype)
    p0 = rng.standard_normal(n).astype(dtype)
    p0[:len(specials)] = specials
    grads = [rng.standard_normal(n).astype(dtype) for _ in range(4)]
    grads[0][20:20 + len(specials)] = specials
    grads[1][40:40 + len(specials)] = specials
    grads[2][::7] = 0.0
    results = []
    with np.errstate(all="ignore"):
        for module, n_threads in [(reference_optim, 1), (_core, 1), (_core, 2), (_core, 3)]:
            p, m = p0.copy(), np.zeros(n, dtype)
            m[60:60 + len(specials)] = specials
            state_sum = np.full(n, 0.5, dtype)
            q = p0.copy()
            for g in grads:
                module.lion_step(p, g, m, 1e-3, 0.9, 0.1, 0.99, 0.01, decay, maximize,
                                 n_threads)
                module.adagrad_step(q, g, state_sum, 0.01, 1e-10, 1.0 - decay, maximize,
                                    n_threads)
            results.append([a.view(f"u{a.itemsize}") for a in (p, m, q, state_sum)])
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_lion_sign_of_zero_and_nan(dtype, backend):
    """c = +-0 moves nothing (np.sign(+-0) = +0, and p - lr * 0 keeps p's bits, -0 too); a NaN
    c makes p NaN."""
    p = np.array([-0.0, 0.0, 2.0, 2.0], dtype)
    opt = O.Lion(p, lr=0.5, backend=backend)
    opt.step(np.array([-0.0, 0.0, 0.0, np.nan], dtype))
    assert np.signbit(p[0]) and p[0] == 0 and not np.signbit(p[1]) and p[1] == 0
    assert p[2] == 2.0 and np.isnan(p[3])


# ---------------------------------------------------------------------------------------------
# Parameter groups
# ---------------------------------------------------------------------------------------------
GROUP_CASES = [
    (O.SGD, dict(lr=0.05, momentum=0.9), dict(lr=0.2, nesterov=True)),
    (O.Adam, dict(lr=0.01, weight_decay=0.01), dict(betas=(0.8, 0.9), weight_decay=0.0)),
    (O.AdamW, dict(lr=0.01), dict(lr=0.03, amsgrad=True)),
    (O.RMSprop, dict(lr=0.01), dict(centered=True, momentum=0.5)),
    (O.Adagrad, dict(lr=0.1, lr_decay=0.01), dict(initial_accumulator_value=0.3, maximize=True)),
    (O.Lion, dict(lr=1e-3), dict(lr=3e-3, betas=(0.95, 0.98), weight_decay=0.1)),
]


def _group_id(case):
    return case[0].__name__


def _two_groups(dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((5, 3)).astype(dtype)
    b = rng.standard_normal(3).astype(dtype)
    c = np.asfortranarray(rng.standard_normal((2, 4)).astype(dtype))
    return [W, b, c]


def _assert_same_steps(opt, other, rng, n_steps):
    """Both optimizers take the same n_steps random steps; their parameters stay equal."""
    for _ in range(n_steps):
        grads = _grads(opt.params, rng)
        opt.step(grads)
        other.step(grads)
    for a, b in zip(opt.params, other.params):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("case", GROUP_CASES, ids=_group_id)
def test_groups_step_like_separate_optimizers(case, backend):
    """Two groups: the first takes the defaults, the second its own values; each group updates
    its arrays exactly as an optimizer of its own with those values would."""
    cls, defaults, own = case
    params = _two_groups()
    first, second = [p.copy() for p in params[:1]], [p.copy() for p in params[1:]]
    opt = cls([{"params": params[:1]}, {"params": params[1:], **own}], backend=backend,
              **defaults)
    alone = [cls(first, backend=backend, **defaults),
             cls(second, backend=backend, **{**defaults, **own})]
    assert opt.params == params and len(opt.param_groups) == 2
    assert opt.param_groups[1]["params"] == params[1:]
    assert set(opt.param_groups[0]) == set(opt.param_groups[1]) == {"params", *opt.hyperparams}
    rng = np.random.default_rng(1)
    for _ in range(7):
        grads = _grads(params, rng)
        opt.step(grads)
        alone[0].step(grads[:1])
        alone[1].step(grads[1:])
    for a, b in zip(params, first + second):
        assert np.array_equal(a, b)


def test_plain_arrays_are_one_group():
    p, q = np.zeros(3), np.zeros(2)
    for params in (p, [p], (p, q)):
        opt = O.Adam(params, lr=0.1)
        assert len(opt.param_groups) == 1
        group = opt.param_groups[0]
        assert group["params"] == opt.params and group["lr"] == 0.1
        assert group["betas"] == (0.9, 0.999) and group["amsgrad"] is False
    assert dict(opt.hyperparams) == {k: v for k, v in group.items() if k != "params"}


def test_gradients_follow_the_order_of_the_groups(backend):
    a, b, c = np.zeros(1), np.zeros(2), np.zeros(3)
    opt = O.SGD([{"params": [c]}, {"params": [a, b], "lr": 2.0}], lr=1.0, backend=backend)
    assert [x is y for x, y in zip(opt.params, [c, a, b])] == [True] * 3
    opt.step([np.full(3, 1.0), np.full(1, 2.0), np.full(2, 3.0)])
    assert c.tolist() == [-1.0] * 3 and a.tolist() == [-4.0] and b.tolist() == [-6.0] * 2


@pytest.mark.parametrize("case, edits", [
    (GROUP_CASES[0], dict(lr=0.01, momentum=0.5, dampening=0.1, weight_decay=0.1)),
    (GROUP_CASES[1], dict(lr=0.02, betas=(0.5, 0.6), eps=1e-3, maximize=True)),
    (GROUP_CASES[2], dict(weight_decay=0.5, amsgrad=True)),
    (GROUP_CASES[3], dict(alpha=0.5, centered=True, momentum=0.9)),
    (GROUP_CASES[4], dict(lr=0.5, lr_decay=0.1, weight_decay=0.2, eps=1e-3)),
    (GROUP_CASES[5], dict(lr=0.01, betas=(0.5, 0.7), weight_decay=0.3, maximize=True)),
], ids=[_group_id(case) for case in GROUP_CASES])
def test_group_edits_take_effect_at_the_next_step(case, edits, backend):
    """Editing param_groups between steps gives the same bits as loading a snapshot taken
    there with the edited values into a fresh optimizer; options switched on start their
    state then (zeros, or torch's buffer = g for SGD's momentum)."""
    cls, defaults, own = case
    params = _two_groups()
    copies = [p.copy() for p in params]
    opt = cls([{"params": params[:2]}, {"params": params[2:], **own}], backend=backend,
              **defaults)
    rng = np.random.default_rng(2)
    for _ in range(3):
        opt.step(_grads(params, rng))
    snapshot = opt.state_dict()
    for p, q in zip(copies, params):
        p[...] = q
    opt.param_groups[0].update(edits)
    snapshot["param_groups"][0].update(edits)
    other = cls([{"params": copies[:2]}, {"params": copies[2:], **own}], backend=backend,
                **defaults)
    other.load_state_dict(snapshot)
    assert other.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    _assert_same_steps(opt, other, rng, 4)


def test_lr_edit_is_used_at_the_next_step(backend):
    p = np.zeros(2)
    opt = O.SGD(p, lr=0.1, backend=backend)
    opt.step(np.ones(2))
    opt.param_groups[0]["lr"] = 0.25
    opt.step(np.ones(2))
    assert p.tolist() == [-0.35, -0.35] and opt.hyperparams["lr"] == 0.25
    opt.param_groups[0]["lr"] = InverseTimeLR(1.0, k=1.0)   # a schedule of the group's steps
    opt.step(np.ones(2))
    assert p.tolist() == [-0.35 - 1.0 / 3.0] * 2


def test_momentum_switched_on_later_starts_its_buffer_with_the_gradient(backend):
    """torch keeps no buffer until momentum is used: its first step with momentum sets b = g."""
    p = np.zeros(1)
    opt = O.SGD(p, lr=1.0, backend=backend)
    opt.step(np.ones(1))
    assert opt.state == [{}]
    opt.param_groups[0]["momentum"] = 0.5
    opt.step(np.full(1, 2.0))          # b = 2
    opt.step(np.full(1, 2.0))          # b = 0.5 * 2 + 2 = 3
    assert p.tolist() == [-6.0] and opt.state[0]["momentum_buffer"].tolist() == [3.0]


@pytest.mark.parametrize("key, value, error, match", [
    ("lr", -1.0, ValueError, r"param_groups\[1\]\['lr'\] must be finite and >= 0"),
    ("lr", "fast", TypeError, r"param_groups\[1\]\['lr'\] must be a real number or a schedule"),
    ("betas", (0.9, 1.0), ValueError, r"beta2 \(param_groups\[1\]\['betas'\]\[1\]\)"),
    ("betas", 0.9, TypeError, r"param_groups\[1\]\['betas'\] must be a pair"),
    ("eps", math.nan, ValueError, r"param_groups\[1\]\['eps'\]"),
    ("amsgrad", 1, TypeError, r"param_groups\[1\]\['amsgrad'\] must be True or False"),
    ("weight_decay", -0.1, ValueError, r"param_groups\[1\]\['weight_decay'\]"),
    ("momentum", 0.9, ValueError, r"param_groups\[1\] has an unknown key 'momentum'"),
])
def test_bad_group_edit_raises_and_the_step_changes_nothing(key, value, error, match):
    params = _two_groups()
    opt = O.Adam([{"params": params[:1]}, {"params": params[1:], "lr": 0.1}], lr=0.01)
    opt.step(_grads(params, np.random.default_rng(0)))
    before = [p.copy() for p in params]
    state = [{k: a.copy() for k, a in st.items()} for st in opt.state]
    opt.param_groups[1][key] = value
    with pytest.raises(error, match=match):
        opt.step(_grads(params, np.random.default_rng(1)))
    with pytest.raises(error, match=match):
        opt.state_dict()
    assert opt.n_steps == 1
    assert all(np.array_equal(a, b) for a, b in zip(params, before))
    assert all(np.array_equal(st[k], s2[k]) for st, s2 in zip(state, opt.state) for k in st)
    del opt.param_groups[1][key]
    if key != "momentum":
        with pytest.raises(ValueError, match=rf"param_groups\[1\] has no '{key}'"):
            opt.step(_grads(params, np.random.default_rng(1)))
        opt.param_groups[1][key] = O.Adam(np.zeros(1)).param_groups[0][key]
    opt.step(_grads(params, np.random.default_rng(1)))
    assert opt.n_steps == 2


def test_bad_schedule_in_one_group_changes_nothing():
    params = _two_groups()
    opt = O.SGD([{"params": params[:1]}, {"params": params[1:],
                                            "lr": lambda t: 0.1 if t == 0 else -1.0}], lr=0.1)
    opt.step(_grads(params, np.random.default_rng(0)))
    before = [p.copy() for p in params]
    with pytest.raises(ValueError, match=r"param_groups\[1\] \(lr=-1.0 at t=1\)"):
        opt.step(_grads(params, np.random.default_rng(1)))
    assert all(np.array_equal(a, b) for a, b in zip(params, before)) and opt.n_steps == 1


def test_group_structure_is_fixed_outside_add_param_group():
    params = _two_groups()
    opt = O.Adam([{"params": params[:1]}, {"params": params[1:]}])
    grads = _grads(params, np.random.default_rng(0))
    opt.param_groups[0]["params"].append(np.zeros(2))
    with pytest.raises(ValueError, match=r"param_groups\[0\]\['params'\] is not the list"):
        opt.step(grads)
    opt.param_groups[0]["params"].pop()
    opt.param_groups.append({"params": [np.zeros(2)]})
    with pytest.raises(ValueError, match="add_param_group"):
        opt.step(grads)
    opt.param_groups.pop()
    opt.param_groups[1] = {**opt.param_groups[1], "lr": 0.5}   # a new dict, the same arrays
    opt.step(grads)
    assert opt.param_groups[1]["lr"] == 0.5 and opt.n_steps == 1


def test_add_param_group(backend):
    """torch's semantics: defaults filled in, the dict itself kept, a parameter in one group
    only; the new group counts its steps from 0 (bias corrections start again)."""
    W, b = np.ones((2, 2)), np.ones(3)
    opt = O.Adam(W, lr=0.1, betas=(0.8, 0.9), backend=backend)
    rng = np.random.default_rng(4)
    for _ in range(5):
        opt.step(rng.standard_normal((2, 2)))
    group = {"params": b, "lr": 0.01}
    opt.add_param_group(group)
    assert opt.param_groups[1] is group and group["params"] == [b]
    assert group["betas"] == (0.8, 0.9) and group["lr"] == 0.01
    assert opt.params[1] is b and len(opt.state) == 2
    alone_b = np.ones(3)
    alone = O.Adam(alone_b, lr=0.01, betas=(0.8, 0.9), backend=backend)
    for _ in range(3):
        g = rng.standard_normal(3)
        opt.step([rng.standard_normal((2, 2)), g])
        alone.step(g)
    assert np.array_equal(b, alone_b)
    assert opt.state_dict()["group_steps"] == [8, 3] and opt.n_steps == 8
    with pytest.raises(ValueError, match="in one group only"):
        opt.add_param_group({"params": [b]})
    with pytest.raises(ValueError, match="shares memory with opt.params"):
        opt.add_param_group({"params": [W[0]]})
    with pytest.raises(ValueError, match="unknown key 'momentum'"):
        opt.add_param_group({"params": [np.zeros(1)], "momentum": 0.9})
    with pytest.raises(ValueError, match=r"param_groups\[2\]\['lr'\]"):
        opt.add_param_group({"params": [np.zeros(1)], "lr": -1.0})
    with pytest.raises(ValueError, match="no 'params'"):
        opt.add_param_group({"lr": 0.1})
    with pytest.raises(TypeError, match="must be a dict"):
        opt.add_param_group([np.zeros(1)])
    with pytest.raises(TypeError, match="not a set"):
        opt.add_param_group({"params": {np.zeros(1).tobytes()}})
    assert len(opt.param_groups) == 2 and len(opt.params) == 2   # failed adds added nothing


@pytest.mark.parametrize("params, error, match", [
    ([{"params": [np.zeros(1)]}, np.zeros(1)], TypeError, "mixes parameter groups"),
    ({"params": [np.zeros(1)]}, TypeError, "one dict"),
    ({np.float64(1.0)}, TypeError, "not a set"),
    ([{"params": [np.zeros(1)], "lr": 0.1, "lr_decay": 0.1}], ValueError, "unknown key"),
    ([{"params": [np.zeros(2, np.int32)]}], TypeError, r"param_groups\[0\]\['params'\]\[0\]"),
])
def test_bad_groups(params, error, match):
    with pytest.raises(error, match=match):
        O.Adam(params)


def test_attribute_writes_are_refused_not_ignored():
    opt = O.Adam([np.zeros(2)], lr=0.1)
    for name in ("lr", "betas", "eps", "weight_decay"):
        with pytest.raises(AttributeError, match=rf"opt.param_groups\[i\]\['{name}'\]"):
            setattr(opt, name, 0.001)
    with pytest.raises(AttributeError, match="no attribute 'learning_rate'"):
        opt.learning_rate = 0.001
    for name in ("params", "param_groups", "hyperparams", "n_steps", "state", "state_dict"):
        with pytest.raises(AttributeError, match="read-only"):
            setattr(opt, name, None)
    with pytest.raises(TypeError):
        opt.hyperparams["lr"] = 0.001      # a read-only view of group 0
    with pytest.raises(AttributeError):
        del opt.backend
    assert opt.param_groups[0]["lr"] == 0.1 and opt.hyperparams["lr"] == 0.1
    opt.param_groups[0]["lr"] = 0.5
    assert opt.hyperparams["lr"] == 0.5     # live
    opt.n_threads = 2
    opt.backend = "numpy"
    assert opt.n_threads == 2 and opt.backend == "numpy"
    with pytest.raises(ValueError, match="n_threads"):
        opt.n_threads = 0
    with pytest.raises(ValueError, match="unknown backend"):
        opt.backend = "torch"
    assert opt.n_threads == 2 and opt.backend == "numpy"


@pytest.mark.parametrize("case", GROUP_CASES, ids=_group_id)
def test_state_dict_round_trip_with_groups(case, backend):
    cls, defaults, own = case
    params = _two_groups(np.float32)
    opt = cls([{"params": params[:2]}, {"params": params[2:], **own}], backend=backend,
              **defaults)
    rng = np.random.default_rng(6)
    for _ in range(4):
        opt.step(_grads(params, rng))
    opt.add_param_group({"params": [np.ones(4, np.float32)], "lr": 0.003})
    params = opt.params
    for _ in range(2):
        opt.step(_grads(params, rng))
    sd = opt.state_dict()
    assert sd["group_steps"] == [6, 6, 2] and sd["step"] == 6
    assert [g["params"] for g in sd["param_groups"]] == [[0, 1], [2], [3]]
    copies = [p.copy() for p in params]
    other = cls([{"params": copies[:2]}, {"params": copies[2:3], "lr": 0.7}], backend=backend,
                **defaults)
    other.add_param_group({"params": copies[3:]})
    other.load_state_dict(sd)
    assert [dict(g, params=None) for g in other.param_groups] == \
        [dict(g, params=None) for g in opt.param_groups]
    assert other.param_groups[1]["params"][0] is copies[2]
    _assert_same_steps(opt, other, rng, 3)


@pytest.mark.parametrize("duplicate", [copy.deepcopy, lambda o: pickle.loads(pickle.dumps(o))],
                         ids=["deepcopy", "pickle"])
def test_copies_update_their_own_arrays(duplicate, backend):
    """A deep copy (or an unpickled one) steps its own copies of the parameters and state."""
    params = _two_groups()
    opt = O.Adam([{"params": params[:2]}, {"params": params[2:], "amsgrad": True}],
                 backend=backend)
    rng = np.random.default_rng(8)
    opt.step(_grads(params, rng))
    other = duplicate(opt)
    assert other.param_groups[0]["params"][0] is other.params[0] is not params[0]
    _assert_same_steps(opt, other, rng, 3)
    assert other.n_steps == opt.n_steps == 4


def test_load_state_dict_checks_the_groups():
    params = _two_groups()
    opt = O.Adam([{"params": params[:2]}, {"params": params[2:], "lr": 0.1}], lr=0.01)
    sd = opt.state_dict()
    one = O.Adam([p.copy() for p in params], lr=0.01)
    with pytest.raises(ValueError, match="2 parameter groups, this optimizer has 1"):
        one.load_state_dict(sd)
    regrouped = O.Adam([{"params": [p.copy() for p in params[:1]]},
                        {"params": [p.copy() for p in params[1:]]}])
    with pytest.raises(ValueError, match=r"does not hold 1 parameters, as param_groups\[0\]"):
        regrouped.load_state_dict(sd)
    bad = opt.state_dict()
    bad["param_groups"][1]["lr"] = -1.0
    with pytest.raises(ValueError, match=r"state_dict\['param_groups'\]\[1\]\['lr'\]"):
        opt.load_state_dict(bad)
    bad = opt.state_dict()
    del bad["param_groups"][0]["eps"]
    with pytest.raises(ValueError, match="has no 'eps'"):
        opt.load_state_dict(bad)
    assert opt.param_groups[1]["lr"] == 0.1 and "eps" in opt.param_groups[0]   # unchanged


def test_load_state_dict_reads_the_one_group_format():
    """Snapshots written before parameter groups ("hyperparams" and "state") still load."""
    p = np.zeros(3)
    opt = O.Adam(p, lr=0.1)
    opt.step(np.ones(3))
    sd = opt.state_dict()
    old = {"optimizer": "Adam", "step": 1, "hyperparams": sd["param_groups"][0],
           "state": sd["state"]}
    del old["hyperparams"]["params"]
    other = O.Adam(np.zeros(3), lr=0.5)
    other.load_state_dict(old)
    assert other.hyperparams == opt.hyperparams and other.state_dict()["group_steps"] == [1]


def test_adagrad_initial_accumulator_value_cannot_change_after_creation():
    opt = O.Adagrad(np.zeros(2), lr=0.1, initial_accumulator_value=0.5)
    assert opt.state[0]["sum"].tolist() == [0.5, 0.5]
    opt.param_groups[0]["initial_accumulator_value"] = 1.0
    with pytest.raises(ValueError, match="read only when the state is created"):
        opt.step(np.ones(2))
    opt.param_groups[0]["initial_accumulator_value"] = 0.5
    opt.step(np.ones(2))
    opt.add_param_group({"params": [np.zeros(1)], "initial_accumulator_value": 2.0})
    assert opt.state[1]["sum"].tolist() == [2.0]


def test_finetune_style_use_keeps_working():
    """finetune.py, models.py and the demos build Adam(params, lr=...) and SGD(...), step
    with gradient lists and reload a state_dict taken at construction."""
    W, b = np.zeros((2, 2)), np.zeros(2)
    opt = O.Adam([W, b], lr=0.05)
    initial = opt.state_dict()
    opt.step([np.ones((2, 2)), np.ones(2)])
    opt.load_state_dict(initial)
    assert opt.n_steps == 0 and all(not a.any() for st in opt.state for a in st.values())
    assert opt.params[0] is W and opt.hyperparams["lr"] == 0.05


# ---------------------------------------------------------------------------------------------
# Gradient clipping
# ---------------------------------------------------------------------------------------------
def _clip_norm_transcription(grads, max_norm, norm_type):
    """torch.nn.utils.clip_grad_norm_'s documented algorithm in plain numpy: the norm of the
    per-array norms, then every gradient times min(max_norm / (total + 1e-6), 1)."""
    norms = [np.linalg.norm(g.ravel().astype(np.float64), norm_type) for g in grads]
    total = np.linalg.norm(np.array(norms), norm_type)
    coef = min(max_norm / (total + 1e-6), 1.0)
    return total, [g * coef for g in grads]


def _clip_norm_torch(grads, max_norm, norm_type):
    tensors = []
    for g in grads:
        t = torch.zeros(g.shape, dtype=getattr(torch, str(g.dtype)), requires_grad=True)
        t.grad = torch.from_numpy(g.copy())
        tensors.append(t)
    total = torch.nn.utils.clip_grad_norm_(tensors, max_norm, norm_type=norm_type)
    return total.item(), [t.grad.numpy() for t in tensors]


CLIP_REFERENCES = [_clip_norm_transcription] + ([_clip_norm_torch] if torch else [])


def _clip_inputs(dtype, scale, seed=0):
    rng = np.random.default_rng(seed)
    return [scale * rng.standard_normal(s).astype(dtype) for s in [(1000,), (33, 5), (7,)]]


@pytest.mark.parametrize("reference", CLIP_REFERENCES, ids=lambda f: f.__name__[11:])
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_clip_grad_norm_against_references(dtype, norm_type, reference):
    grads = _clip_inputs(dtype, 1.0)
    expected_total, expected = reference([g.copy() for g in grads], 1.0, norm_type)
    total = O.clip_grad_norm(grads, 1.0, norm_type=norm_type)
    assert total.dtype == dtype
    tol = dict(rtol=1e-5, atol=0) if dtype == np.float32 else dict(rtol=1e-13, atol=0)
    np.testing.assert_allclose(total, expected_total, **tol)
    for g, e in zip(grads, expected):
        assert g.dtype == dtype
        np.testing.assert_allclose(g, e, **tol)
        if reference is not _clip_norm_transcription and norm_type == math.inf:
            assert np.array_equal(g, e)     # a maximum: torch's bits exactly


def test_clip_grad_norm_below_max_norm_changes_nothing():
    grads = _clip_inputs(np.float32, 1e-3)
    before = [g.copy() for g in grads]
    total = O.clip_grad_norm(grads, max_norm=10.0)
    assert 0 < total < 10
    for a, b in zip(grads, before):
        assert np.array_equal(a.view(np.uint32), b.view(np.uint32))


def test_clip_grad_norm_closed_form_and_mixed_dtypes():
    grads = [np.array([3.0, 0.0], np.float32), np.array([[0.0], [4.0]])]
    total = O.clip_grad_norm(grads, 2.5)
    assert total.dtype == np.float64 and total == 5.0
    scale = (1.0 / (5.0 + 1e-6)) * 2.5
    assert grads[0].tolist() == [np.float32(3.0) * np.float32(scale), 0.0]
    assert grads[1][1, 0] == 4.0 * scale
    assert O.clip_grad_norm([], 1.0) == 0.0
    assert O.clip_grad_norm(np.array([0.5, -2.0]), 1.0, norm_type="inf") == 2.0


def test_clip_grad_norm_nonfinite():
    grads = [np.array([1.0, np.nan]), np.array([2.0])]
    with pytest.raises(ValueError, match="total norm of order 2.0 of the gradients is nan"):
        O.clip_grad_norm(grads, 1.0, error_if_nonfinite=True)
    assert grads[0][0] == 1.0 and grads[1][0] == 2.0        # nothing changed
    assert np.isnan(O.clip_grad_norm(grads, 1.0))
    assert np.isnan(grads[1][0])                             # torch: NaN scales everything
    grads = [np.array([1.0, np.inf])]
    assert O.clip_grad_norm(grads, 1.0, norm_type=math.inf) == np.inf
    assert grads[0][0] == 0.0 and np.isnan(grads[0][1])     # scale 0: inf * 0 is NaN


@pytest.mark.parametrize("call, error, match", [
    (lambda: O.clip_grad_norm([np.zeros(2, np.int64)], 1.0), TypeError, "dtype int64"),
    (lambda: O.clip_grad_norm([[1.0, 2.0]], 1.0), TypeError, "numpy array"),
    (lambda: O.clip_grad_norm(np.zeros(3), -1.0), ValueError, "max_norm"),
    (lambda: O.clip_grad_norm(np.zeros(3), math.nan), ValueError, "max_norm"),
    (lambda: O.clip_grad_norm(np.zeros(3), 1.0, norm_type=0), ValueError, "norm_type"),
    (lambda: O.clip_grad_norm(np.zeros(3), 1.0, norm_type="two"), TypeError, "norm_type"),
    (lambda: O.clip_grad_norm(np.zeros(3), 1.0, error_if_nonfinite=1), TypeError,
     "error_if_nonfinite"),
    (lambda: O.clip_grad_value(np.zeros(3), -0.5), ValueError, "clip_value"),
    (lambda: O.clip_grad_value(np.zeros(3), "1"), TypeError, "clip_value"),
])
def test_clip_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_clip_refuses_read_only_and_shared_gradients():
    g = np.zeros(4)
    with pytest.raises(ValueError, match="share memory"):
        O.clip_grad_norm([g[:2], g[1:]], 1.0)
    g.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        O.clip_grad_value([g], 1.0)


def _clip_value_torch(grads, clip_value):
    tensors = [torch.from_numpy(g.copy()) for g in grads]
    for t in tensors:
        t.requires_grad_(False)
    params = []
    for t in tensors:
        p = torch.zeros(t.shape, dtype=t.dtype, requires_grad=True)
        p.grad = t
        params.append(p)
    torch.nn.utils.clip_grad_value_(params, clip_value)
    return [p.grad.numpy() for p in params]


def _clip_value_transcription(grads, clip_value):
    return [np.minimum(np.maximum(g, -clip_value), clip_value).astype(g.dtype) for g in grads]


@pytest.mark.parametrize("reference", [_clip_value_transcription]
                         + ([_clip_value_torch] if torch else []), ids=lambda f: f.__name__[12:])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_clip_grad_value_against_references(dtype, reference):
    grads = _clip_inputs(dtype, 2.0)
    grads[0][:6] = [np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0]
    expected = reference([g.copy() for g in grads], 0.7)
    assert O.clip_grad_value(grads, 0.7) is None
    for g, e in zip(grads, expected):
        assert np.array_equal(g.view(f"u{g.itemsize}"), e.view(f"u{e.itemsize}"))


# ---------------------------------------------------------------------------------------------
# Docs: the examples in the docstrings run, and the names are exported
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("module", [O, schedules], ids=["optim", "schedules"])
def test_docstring_examples_run(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0


def test_every_optimizer_and_schedule_has_examples():
    classes = [O.Optimizer, O.SGD, O.Adam, O.AdamW, O.RMSprop, O.Adagrad, O.Lion,
               ConstantLR, StepLR, CosineLR, InverseTimeLR, schedules.LinearWarmup,
               schedules.WarmupCosine]
    for obj in classes + [O.clip_grad_norm, O.clip_grad_value]:
        assert "Examples\n" in obj.__doc__ and ">>> " in obj.__doc__, obj.__name__


def test_exports():
    for name in ("Adagrad", "Lion", "LinearWarmup", "WarmupCosine"):
        assert name in rsft.__all__ and getattr(rsft, name) is getattr(O, name)
    assert {"Adagrad", "Lion", "clip_grad_norm", "clip_grad_value"} <= set(O.__all__)
    assert {"LinearWarmup", "WarmupCosine"} <= set(schedules.__all__)
