"""Benchmarks of rsft's optimizer steps against numpy and torch.optim.

One pytest-benchmark group per (optimizer, dtype, N): ``optim/<name>/<dtype>/N=<n>``, with
optimizers Adam, AdamW, SGD (momentum 0.9), RMSprop, Adagrad and Lion (weight decay 1e-2),
dtypes float32 and float64 and N = 1e3, 1e5, 1e6, 1e7 parameters in one array. Each benchmark
times one ``step(grad)`` through the public API (validation included), on a warm optimizer (a
few steps taken before timing):

  rsft_cython_1t / rsft_cython_2t   rsft.optim.<Opt>(..., backend="cython", n_threads=1 / 2)
  rsft_numpy                        rsft.optim.<Opt>(..., backend="numpy")
  memory_floor                      (Adam float64 only) rsft._core._memory_floor: a plain compiled
                                    loop with the step's memory traffic (read p, g, m, v; write
                                    p, m, v) and one addition per array: what no exact Adam step
                                    can beat once the arrays exceed the caches.
  torch_1t / torch_2t               torch.optim.<Opt>(..., fused=True) with
                                    torch.set_num_threads(1 / 2); where torch has no fused CPU
                                    kernel (RMSprop; Adagrad in older torch) its torch rows use
                                    foreach=True, and extra_info["fused"] says which. torch has
                                    no Lion: no torch rows for it. Skipped when torch is not
                                    importable (it is never a dependency of rsft).
  numpy_lion                        Lion as a user would write it with numpy array operations
                                    (NumpyLion below), the peer of Lion's rsft rows. The
                                    report's tables do not list this kind: it is in
                                    pytest-benchmark's own table of each Lion group.

Every benchmark checks what it timed: after timing, a fresh optimizer of the same kind takes 3
steps from fixed data and its parameters are compared with rsft's numpy reference after the
same 3 steps: bit-identical for rsft rows (extra_info["check"] = "equal"), and within
16 ulps of max |p| for torch (its rounding order differs and it uses FMA; the count of
elements whose bits differ is recorded).

Run (about 5 minutes)::

    cd bench && python -m pytest -q -p no:cacheprovider --benchmark-only \
        --benchmark-json=../.bench_optim.json test_bench_optim.py
    python report_optim.py ../.bench_optim.json
"""
from __future__ import annotations

import numpy as np
import pytest

from rsft import _core
from rsft import optim as O

try:
    import torch
except ImportError:  # torch rows are skipped
    torch = None

SIZES = [10 ** 3, 10 ** 5, 10 ** 6, 10 ** 7]
DTYPES = ["float32", "float64"]
OPTIMIZERS = ["Adam", "AdamW", "SGD", "RMSprop", "Adagrad", "Lion"]
#: the optimizers torch.optim has (rows torch_1t / torch_2t)
TORCH_OPTIMIZERS = ["Adam", "AdamW", "SGD", "RMSprop", "Adagrad"]
WARM_STEPS = 3
CHECK_STEPS = 3

# (rounds, iterations per round) by size: each round a few ms at least, whole file ~3 min.
PEDANTIC = {10 ** 3: (30, 200), 10 ** 5: (20, 10), 10 ** 6: (15, 1), 10 ** 7: (5, 1)}

KW = {
    "Adam": dict(lr=1e-3),
    "AdamW": dict(lr=1e-3, weight_decay=1e-2),
    "SGD": dict(lr=1e-2, momentum=0.9),
    "RMSprop": dict(lr=1e-2),
    "Adagrad": dict(lr=1e-2),
    "Lion": dict(lr=1e-4, weight_decay=1e-2),
}


def _data(n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.standard_normal(n).astype(dtype)
    g = rng.standard_normal(n).astype(dtype)
    return p, g


_REF = {}


def _reference_result(name, n, dtype):
    """rsft numpy backend after CHECK_STEPS steps from the check data (cached per config)."""
    key = (name, n, dtype)
    if key not in _REF:
        _REF.clear()  # one configuration at a time (1e7 float64 is 80 MB)
        p, g = _data(n, dtype, seed=1)
        opt = getattr(O, name)(p, backend="numpy", **KW[name])
        for _ in range(CHECK_STEPS):
            opt.step(g)
        _REF[key] = p
    return _REF[key]


def _rsft_after_check_steps(name, n, dtype, backend, n_threads):
    p, g = _data(n, dtype, seed=1)
    opt = getattr(O, name)(p, backend=backend, n_threads=n_threads, **KW[name])
    for _ in range(CHECK_STEPS):
        opt.step(g)
    return p


_TORCH_FUSED = {}


def _torch_has_fused(name):
    """Whether torch.optim.<name>(fused=True) steps on CPU in this torch (cached)."""
    if name not in _TORCH_FUSED:
        t = torch.zeros(4, dtype=torch.float64)
        t.grad = torch.ones(4, dtype=torch.float64)
        try:
            getattr(torch.optim, name)([t], fused=True, **KW[name]).step()
            _TORCH_FUSED[name] = True
        except (RuntimeError, TypeError, ValueError):
            _TORCH_FUSED[name] = False
    return _TORCH_FUSED[name]


def _torch_opt(name, t):
    """torch.optim.<name>(fused=True) where torch has a fused CPU kernel, else foreach."""
    kw = dict(KW[name])
    if _torch_has_fused(name):
        kw["fused"] = True
    else:
        kw["foreach"] = True
    return getattr(torch.optim, name)([t], **kw)


class NumpyLion:
    """Lion (Chen et al. 2023) with numpy array operations, as a user would write it: the
    peer of rsft's Lion rows."""

    def __init__(self, p, lr, betas=(0.9, 0.99), weight_decay=0.0):
        self.p, self.lr, (self.beta1, self.beta2) = p, lr, betas
        self.weight_decay = weight_decay
        self.exp_avg = np.zeros_like(p)

    def step(self, g):
        update = self.beta1 * self.exp_avg + (1 - self.beta1) * g
        self.p *= 1 - self.lr * self.weight_decay
        self.p -= self.lr * np.sign(update)
        self.exp_avg *= self.beta2
        self.exp_avg += (1 - self.beta2) * g


def _torch_after_check_steps(name, n, dtype):
    p, g = _data(n, dtype, seed=1)
    t = torch.from_numpy(p)
    t.grad = torch.from_numpy(g)
    opt = _torch_opt(name, t)
    for _ in range(CHECK_STEPS):
        opt.step()
    return t.numpy()


def _time(benchmark, fn, n):
    rounds, iterations = PEDANTIC[n]
    benchmark.pedantic(fn, rounds=rounds, iterations=iterations, warmup_rounds=1)


def _record(benchmark, *, kind, backend, name, n, dtype, n_threads, check, ok, **extra):
    benchmark.extra_info.update(kind=kind, backend=backend, optimizer=name, n=n, dtype=dtype,
                                n_threads=n_threads, check=check, check_ok=bool(ok), **extra)
    assert ok, f"{benchmark.group}/{kind}: result check failed ({check})"


def _params(names=OPTIMIZERS):
    return [pytest.param(name, dtype, n, id=f"{name}-{dtype}-{n:.0e}")
            for name in names for dtype in DTYPES for n in SIZES]


def _tolerance_check(got, ref, dtype):
    """16 ulps of max |p|: (description, ok, extra_info) for a peer's result."""
    tol = 16 * np.finfo(dtype).eps * max(1.0, float(np.max(np.abs(ref))))
    err = float(np.max(np.abs(got - ref)))
    return (f"max abs diff <= {tol:.3g}", err <= tol,
            dict(max_abs_err=err, n_bits_differ=int(np.count_nonzero(got != ref))))


@pytest.mark.parametrize("backend, n_threads", [("cython", 1), ("cython", 2), ("numpy", 1)],
                         ids=["cython1", "cython2", "numpy"])
@pytest.mark.parametrize("name, dtype, n", _params())
def test_rsft(benchmark, name, dtype, n, backend, n_threads):
    benchmark.group = f"optim/{name}/{dtype}/N={n:.0e}"
    p, g = _data(n, dtype)
    opt = getattr(O, name)(p, backend=backend, n_threads=n_threads, **KW[name])
    for _ in range(WARM_STEPS):
        opt.step(g)
    _time(benchmark, lambda: opt.step(g), n)
    got = _rsft_after_check_steps(name, n, dtype, backend, n_threads)
    ok = np.array_equal(got, _reference_result(name, n, dtype))
    kind = f"rsft_{backend}" + (f"_{n_threads}t" if backend == "cython" else "")
    _record(benchmark, kind=kind, backend=backend, name=name, n=n, dtype=dtype,
            n_threads=n_threads, check="equal", ok=ok)


@pytest.mark.parametrize("n_threads", [1, 2], ids=["1t", "2t"])
@pytest.mark.parametrize("name, dtype, n", _params(TORCH_OPTIMIZERS))
def test_torch(benchmark, name, dtype, n, n_threads):
    if torch is None:
        pytest.skip("torch is not installed")
    benchmark.group = f"optim/{name}/{dtype}/N={n:.0e}"
    old = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        p, g = _data(n, dtype)
        t = torch.from_numpy(p)
        t.grad = torch.from_numpy(g)
        opt = _torch_opt(name, t)
        for _ in range(WARM_STEPS):
            opt.step()
        _time(benchmark, opt.step, n)
        got = _torch_after_check_steps(name, n, dtype)
    finally:
        torch.set_num_threads(old)
    check, ok, extra = _tolerance_check(got, _reference_result(name, n, dtype), dtype)
    _record(benchmark, kind=f"torch_{n_threads}t", backend="torch", name=name, n=n,
            dtype=dtype, n_threads=n_threads, check=check, ok=ok, **extra,
            fused=_torch_has_fused(name), torch=torch.__version__)


@pytest.mark.parametrize("n", SIZES, ids=[f"{n:.0e}" for n in SIZES])
def test_memory_floor(benchmark, n):
    benchmark.group = f"optim/Adam/float64/N={n:.0e}"
    p, g = _data(n, "float64")
    m, v = np.zeros(n), np.zeros(n)
    _time(benchmark, lambda: _core._memory_floor(p, g, m, v), n)
    ok = bool(np.array_equal(m, v) and np.all((m != 0) | (g == 0)))   # the loop ran on all
    _record(benchmark, kind="memory_floor", backend="cython", name="Adam", n=n,
            dtype="float64", n_threads=1, check="m == v, both moved", ok=ok)


@pytest.mark.parametrize("name, dtype, n", _params(["Lion"]))
def test_numpy_lion(benchmark, name, dtype, n):
    benchmark.group = f"optim/{name}/{dtype}/N={n:.0e}"
    p, g = _data(n, dtype)
    opt = NumpyLion(p, **KW[name])
    for _ in range(WARM_STEPS):
        opt.step(g)
    _time(benchmark, lambda: opt.step(g), n)
    p, g = _data(n, dtype, seed=1)
    opt = NumpyLion(p, **KW[name])
    for _ in range(CHECK_STEPS):
        opt.step(g)
    check, ok, extra = _tolerance_check(p, _reference_result(name, n, dtype), dtype)
    _record(benchmark, kind="numpy_lion", backend="numpy-peer", name=name, n=n, dtype=dtype,
            n_threads=1, check=check, ok=ok, **extra)
