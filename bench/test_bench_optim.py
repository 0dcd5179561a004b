"""Benchmarks of rsft's optimizer steps against numpy and torch.optim.

One pytest-benchmark group per (optimizer, dtype, N): ``optim/<name>/<dtype>/N=<n>``, with
optimizers Adam, AdamW, SGD (momentum 0.9) and RMSprop, dtypes float32 and float64 and
N = 1e3, 1e5, 1e6, 1e7 parameters in one array. Each benchmark times one ``step(grad)``
through the public API (validation included), on a warm optimizer (a few steps taken before
timing):

  rsft_cython_1t / rsft_cython_2t   rsft.optim.<Opt>(..., backend="cython", n_threads=1 / 2)
  rsft_numpy                        rsft.optim.<Opt>(..., backend="numpy")
  memory_floor                      (Adam float64 only) rsft._core._memory_floor: a plain compiled
                                    loop with the step's memory traffic (read p, g, m, v; write
                                    p, m, v) and one addition per array: what no exact Adam step
                                    can beat once the arrays exceed the caches.
  torch_1t / torch_2t               torch.optim.<Opt>(..., fused=True) with
                                    torch.set_num_threads(1 / 2); RMSprop has no fused kernel
                                    in torch, so its torch rows use the default implementation.
                                    Skipped when torch is not importable (it is never a
                                    dependency of rsft).

Every benchmark checks what it timed: after timing, a fresh optimizer of the same kind takes 3
steps from fixed data and its parameters are compared with rsft's numpy reference after the
same 3 steps: bit-identical for rsft rows (extra_info["check"] = "equal"), and within
16 ulps of max |p| for torch (its rounding order differs and it uses FMA; the count of
elements whose bits differ is recorded).

Run (about 3 minutes)::

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
OPTIMIZERS = ["Adam", "AdamW", "SGD", "RMSprop"]
WARM_STEPS = 3
CHECK_STEPS = 3

# (rounds, iterations per round) by size: each round a few ms at least, whole file ~3 min.
PEDANTIC = {10 ** 3: (30, 200), 10 ** 5: (20, 10), 10 ** 6: (15, 1), 10 ** 7: (5, 1)}

KW = {
    "Adam": dict(lr=1e-3),
    "AdamW": dict(lr=1e-3, weight_decay=1e-2),
    "SGD": dict(lr=1e-2, momentum=0.9),
    "RMSprop": dict(lr=1e-2),
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


def _torch_opt(name, t):
    cls = getattr(torch.optim, name)
    kw = dict(KW[name])
    if name != "RMSprop":
        kw["fused"] = True
    return cls([t], **kw)


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


def _params():
    return [pytest.param(name, dtype, n, id=f"{name}-{dtype}-{n:.0e}")
            for name in OPTIMIZERS for dtype in DTYPES for n in SIZES]


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
@pytest.mark.parametrize("name, dtype, n", _params())
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
    ref = _reference_result(name, n, dtype)
    tol = 16 * np.finfo(dtype).eps * max(1.0, float(np.max(np.abs(ref))))
    err = float(np.max(np.abs(got - ref)))
    _record(benchmark, kind=f"torch_{n_threads}t", backend="torch", name=name, n=n,
            dtype=dtype, n_threads=n_threads, check=f"max abs diff <= {tol:.3g}",
            ok=err <= tol, max_abs_err=err, n_bits_differ=int(np.count_nonzero(got != ref)),
            fused=name != "RMSprop", torch=torch.__version__)


@pytest.mark.parametrize("n", SIZES, ids=[f"{n:.0e}" for n in SIZES])
def test_memory_floor(benchmark, n):
    benchmark.group = f"optim/Adam/float64/N={n:.0e}"
    p, g = _data(n, "float64")
    m, v = np.zeros(n), np.zeros(n)
    _time(benchmark, lambda: _core._memory_floor(p, g, m, v), n)
    ok = bool(np.array_equal(m, v) and np.all((m != 0) | (g == 0)))   # the loop ran on all
    _record(benchmark, kind="memory_floor", backend="cython", name="Adam", n=n,
            dtype="float64", n_threads=1, check="m == v, both moved", ok=ok)
