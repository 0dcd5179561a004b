"""Benchmarks of rsft's losses: value and gradient in one call.

Three pytest-benchmark groups (float64):

  loss-mse-linear   LinearRegression(d=100).loss_and_grad(X, y, MSE()) with n = 1e5: the model
                    computes pred = X @ w + b *inside* the timed call, the loss kernel gives value
                    and dL/dpred, then dL/dw = X.T @ G and dL/db = sum G (numpy BLAS on both
                    backends, so the loss kernel is a small part of this workload).
  loss-mse          MSE().value_and_grad(pred, y) alone on n = 1e5 predictions (pred given).
  loss-softmax-ce   SoftmaxCrossEntropy().value_and_grad(logits, labels), n = 1e5, k = 10.

Per group: rsft_cython and rsft_numpy (``backend=``), and torch CPU (forward + backward with
autograd, ``torch.set_num_threads(1)``; the rsft kernels are single-threaded too) when PyTorch is
importable (never a dependency of rsft). Every benchmark checks the result it timed against an
independent float64 oracle (closed form / scipy.special.logsumexp) and stores the outcome in
extra_info["check_ok"] / extra_info["checks"], and asserts it. Ratios: compare the groups' means
in one run (target: softmax cross-entropy, cython >= 2x numpy).
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp

from rsft.losses import MSE, SoftmaxCrossEntropy
from rsft.models import LinearRegression
from _timing import seed_for

N = 100_000
D = 100
K = 10
ROUNDS = 20
WARMUP = 2
BACKENDS = ["cython", "numpy"]
TOL = 1e-12          # relative tolerance of the value and gradient checks (float64)


def _run(benchmark, fn, rounds=ROUNDS):
    return benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=WARMUP)


def record(benchmark, *, kind, backend, checks, **extra):
    ok = all(bool(v) for k, v in checks.items() if k.endswith("_ok"))
    benchmark.extra_info.update(kind=kind, backend=backend, n=N, check_ok=bool(ok),
                                checks={k: (bool(v) if isinstance(v, (bool, np.bool_)) else v)
                                        for k, v in checks.items()}, **extra)
    assert ok, f"{benchmark.group}/{kind}: result check failed: {checks}"


def rel_checks(value, grad, value_ref, grad_ref, prefix=""):
    verr = abs(float(value) - value_ref) / abs(value_ref)
    gerr = float(np.abs(np.asarray(grad) - grad_ref).max() / np.abs(grad_ref).max())
    return {prefix + "value_rel_err": verr, prefix + "value_ok": verr <= TOL,
            prefix + "grad_rel_err": gerr, prefix + "grad_ok": gerr <= TOL}


@pytest.fixture(scope="module")
def torch_mod():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    return torch


# --------------------------------------------------------------------------------------------
# Data and oracles (module scope: built once)
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def linear_data():
    rng = np.random.default_rng(seed_for("linear"))
    X = rng.normal(size=(N, D))
    w = rng.normal(size=D)
    b = 0.5
    y = X @ w + b + rng.normal(size=N)
    w0 = w + 0.1 * rng.normal(size=D)     # the parameters the gradient is taken at
    pred = X @ w0 + b
    G = 2.0 * (pred - y) / N
    ref = {"value": float(np.mean((pred - y) ** 2)), "gw": X.T @ G, "gb": np.array([G.sum()]),
           "G": G}
    return X, y, w0, b, pred, ref


@pytest.fixture(scope="module")
def ce_data():
    rng = np.random.default_rng(seed_for("ce"))
    z = 3.0 * rng.normal(size=(N, K))
    y = rng.integers(0, K, N)
    lse = logsumexp(z, axis=1)
    rows = np.arange(N)
    p = np.exp(z - lse[:, None])
    p[rows, y] -= 1.0
    ref = {"value": float(np.mean(lse - z[rows, y])), "grad": p / N}
    return z, y, ref


# --------------------------------------------------------------------------------------------
# MSE for a linear model (pred computed inside)
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_mse_linear_rsft(benchmark, linear_data, backend):
    benchmark.group = "loss-mse-linear"
    X, y, w0, b, _, ref = linear_data
    model = LinearRegression(D)
    model.params[0][:] = w0
    model.params[1][:] = b
    loss = MSE(backend=backend)
    value, grads = _run(benchmark, lambda: model.loss_and_grad(X, y, loss))
    checks = rel_checks(value, grads[0], ref["value"], ref["gw"])
    checks["gb_ok"] = abs(grads[1][0] - ref["gb"][0]) <= 1e-9 * max(1.0, abs(ref["gb"][0]))
    record(benchmark, kind=f"rsft_{backend}", backend=backend, checks=checks, d=D,
           pred="computed inside the timed call (X @ w + b)")


def test_mse_linear_torch(benchmark, linear_data, torch_mod):
    torch = torch_mod
    benchmark.group = "loss-mse-linear"
    X, y, w0, b, _, ref = linear_data
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    w = torch.tensor(w0, requires_grad=True)
    bt = torch.tensor([b], dtype=torch.float64, requires_grad=True)

    def fn():
        w.grad = None
        bt.grad = None
        loss = torch.nn.functional.mse_loss(Xt @ w + bt, yt)
        loss.backward()
        return loss.item(), w.grad

    value, gw = _run(benchmark, fn)
    checks = rel_checks(value, gw.numpy(), ref["value"], ref["gw"])
    record(benchmark, kind="torch", backend=f"torch {torch.__version__}", checks=checks, d=D,
           pred="computed inside the timed call (X @ w + b), autograd backward")


# --------------------------------------------------------------------------------------------
# MSE alone on given predictions
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_mse_rsft(benchmark, linear_data, backend):
    benchmark.group = "loss-mse"
    _, y, _, _, pred, ref = linear_data
    loss = MSE(backend=backend)
    value, grad = _run(benchmark, lambda: loss.value_and_grad(pred, y))
    record(benchmark, kind=f"rsft_{backend}", backend=backend,
           checks=rel_checks(value, grad, ref["value"], ref["G"]), pred="given")


def test_mse_torch(benchmark, linear_data, torch_mod):
    torch = torch_mod
    benchmark.group = "loss-mse"
    _, y, _, _, pred, ref = linear_data
    yt = torch.from_numpy(y)
    pt = torch.from_numpy(pred.copy()).requires_grad_(True)

    def fn():
        pt.grad = None
        loss = torch.nn.functional.mse_loss(pt, yt)
        loss.backward()
        return loss.item(), pt.grad

    value, grad = _run(benchmark, fn)
    record(benchmark, kind="torch", backend=f"torch {torch.__version__}",
           checks=rel_checks(value, grad.numpy(), ref["value"], ref["G"]), pred="given")


# --------------------------------------------------------------------------------------------
# Softmax cross-entropy with integer labels
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_softmax_ce_rsft(benchmark, ce_data, backend):
    benchmark.group = "loss-softmax-ce"
    z, y, ref = ce_data
    loss = SoftmaxCrossEntropy(backend=backend)
    value, grad = _run(benchmark, lambda: loss.value_and_grad(z, y))
    record(benchmark, kind=f"rsft_{backend}", backend=backend,
           checks=rel_checks(value, grad, ref["value"], ref["grad"]), k=K)


def test_softmax_ce_torch(benchmark, ce_data, torch_mod):
    torch = torch_mod
    benchmark.group = "loss-softmax-ce"
    z, y, ref = ce_data
    yt = torch.from_numpy(y)
    zt = torch.from_numpy(z.copy()).requires_grad_(True)

    def fn():
        zt.grad = None
        loss = torch.nn.functional.cross_entropy(zt, yt)
        loss.backward()
        return loss.item(), zt.grad

    value, grad = _run(benchmark, fn)
    record(benchmark, kind="torch", backend=f"torch {torch.__version__}",
           checks=rel_checks(value, grad.numpy(), ref["value"], ref["grad"]), k=K)
