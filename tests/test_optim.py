"""rsft.optim: bit parity between backends, closed-form oracles, convergence, state round trips,
schedules and input checks."""
import itertools
import math

import numpy as np
import pytest

from rsft import _backend
from rsft._reference import optim as reference_optim
from rsft import optim as O
from rsft.schedules import ConstantLR, CosineLR, InverseTimeLR, StepLR

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


CASES = ([(O.SGD, kw) for kw in _sgd_options()]
         + [(O.Adam, kw) for kw in _adam_options([0.0, 0.1])]
         + [(O.AdamW, kw) for kw in _adam_options([0.0, 0.1])]
         + [(O.RMSprop, kw) for kw in _rmsprop_options()])


def _case_id(case):
    cls, kw = case
    opts = ",".join(f"{k}={v}" for k, v in kw.items()
                    if k not in ("lr", "betas", "eps", "alpha") and v not in (0.0, False))
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
@pytest.mark.parametrize("case", CASES, ids=_case_id)
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


def _oracle_for(cls, kw, p0, grads):
    kw = dict(kw)
    if cls is O.SGD:
        return oracle_sgd(p0, grads, **kw)
    if cls is O.RMSprop:
        return oracle_rmsprop(p0, grads, **kw)
    b1, b2 = kw.pop("betas")
    return oracle_adam(p0, grads, beta1=b1, beta2=b2, decoupled=cls is O.AdamW, **kw)


@pytest.mark.parametrize("case", CASES[::3] + [CASES[-1]], ids=_case_id)
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
], ids=["sgd-momentum", "sgd-nesterov", "adam", "adamw", "rmsprop", "rmsprop-centered"])
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
@pytest.mark.parametrize("case", [CASES[i] for i in (7, 15, 20, 31, 47)], ids=_case_id)
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
])
def test_bad_hyperparameters(make, match):
    with pytest.raises(ValueError, match=match):
        make(np.zeros(3))


@pytest.mark.parametrize("make", [
    lambda p: O.Adam(p, betas=0.9), lambda p: O.Adam(p, lr="0.1"),
    lambda p: O.Adam(p, amsgrad=1), lambda p: O.SGD(p, lr=True),
])
def test_bad_hyperparameter_types(make):
    with pytest.raises(TypeError):
        make(np.zeros(3))
