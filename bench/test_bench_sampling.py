"""Benchmarks of rsft's rejection sampler against the alternatives a user has.

Four workloads, each one pytest-benchmark group ("W1".."W4"), N accepted samples each
(N = $RSFT_BENCH_N, default 1_000_000):

  W1  target Normal(2, 1), proposal Normal(0, 2), log M = log 2 + 2/3 computed by rsft.
  W2  target Beta(2, 5), proposal Uniform(0, 1), M = max Beta(2, 5) density = 2.4576.
  W3  the W1 target as a vectorised numpy callable (normalised), log M = log 2 + 2/3 given.
  W4  a target that changes every call: 1000 targets Normal(mu_i, 1), mu_i = linspace(-1, 1, 1000),
      proposal Normal(0, 2), N/1000 samples each; the per-target set-up is timed.

Per workload:
  rsft_cython / rsft_numpy  rsft.RejectionSampler(..., backend=...).sample(N, rng)
  python_loop               the per-sample accept/reject loop of the source article (math.exp),
                            on N/1000 samples; extra_info["scale"] scales its time to N samples
  rng_floor                 drawing the proposals and uniforms alone: k = ceil(N*M) of each
  scipy_pinv(_setup)        scipy.stats.sampling.NumericalInversePolynomial (set-up timed apart,
                            except in W4 where it is part of the workload); skipped without scipy
  numba                     the python loop under numba @njit (compiled before timing);
                            skipped without numba

Every benchmark checks the result it timed (sample mean and variance within 5 standard errors of
the truth, plus rsft's log M and proposal count where it has them), stores the outcome in
extra_info["check_ok"] / extra_info["checks"], and asserts it.
"""
from __future__ import annotations

import math
import os

import numpy as np
import pytest

import rsft
from _timing import seed_for, time_with_fresh_rng

# --------------------------------------------------------------------------------------------
# Sizes and bench settings
# --------------------------------------------------------------------------------------------
N = int(float(os.environ.get("RSFT_BENCH_N", "1000000")))
if N < 1000:
    raise ValueError(f"RSFT_BENCH_N must be >= 1000, got {N}")

ROUNDS = 15          # fast benchmarks (tens of ms at N = 1e6); many rounds: a shared VM is noisy
ROUNDS_SLOW = 3      # benchmarks of a second or more at N = 1e6
WARMUP = 1
Z = 5.0              # tolerance of the statistical checks, in standard errors

N_PY = max(100, N // 1000)        # samples drawn by the pure-python loop (>= 100 to check)
N_TARGETS = 1000                  # W4
N_PER = N // N_TARGETS            # W4 samples per target
N_PY_PER = max(1, N_PER // 1000)  # W4 python-loop samples per target
MUS = np.linspace(-1.0, 1.0, N_TARGETS)

SQRT2PI = math.sqrt(2.0 * math.pi)
LOG_M_W1 = math.log(2.0) + 2.0 / 3.0
M_W1 = math.exp(LOG_M_W1)
BETA_A, BETA_B = 2.0, 5.0
BETA_NORM = 30.0                       # 1 / B(2, 5)
M_W2 = BETA_NORM * 0.2 * 0.8 ** 4      # density at the mode 0.2 = 2.4576
LOG_M_W2 = math.log(M_W2)
BETA_MEAN = BETA_A / (BETA_A + BETA_B)
BETA_VAR = BETA_A * BETA_B / ((BETA_A + BETA_B) ** 2 * (BETA_A + BETA_B + 1.0))


def w3_target(x):
    """The W1 target, Normal(2, 1), as the numpy callable a user would write."""
    return -0.5 * (x - 2.0) ** 2 - 0.5 * np.log(2 * np.pi)


def w4_log_m(mu: float) -> float:
    """Exact log M of target Normal(mu, 1) over proposal Normal(0, 2): log 2 + mu^2 / 6."""
    return math.log(2.0) + mu * mu / 6.0


M_W4 = np.exp(np.array([w4_log_m(m) for m in MUS]))



def _run(benchmark, fn, seed, *, rounds=ROUNDS):
    return time_with_fresh_rng(benchmark, fn, seed, rounds=rounds, warmup_rounds=WARMUP)


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------
def moment_checks(x, mean, var, prefix=""):
    """Mean and variance of x (residuals allowed: mean may be an array) within Z SE of the truth."""
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    out = {}
    if n < 2 or not np.all(np.isfinite(x)):
        out[prefix + "finite"] = bool(n >= 2 and np.all(np.isfinite(x)))
        return out
    r = x - mean
    m = float(r.mean())
    se_m = math.sqrt(var / n)
    c = r - m
    v = float((c * c).mean())
    m4 = float((c ** 4).mean())
    se_v = math.sqrt(max(m4 - v * v, 1e-300) / n)
    out[prefix + "mean_z"] = round(m / se_m, 3)
    out[prefix + "var_z"] = round((v - var) / se_v, 3)
    out[prefix + "mean_ok"] = abs(m) <= Z * se_m
    out[prefix + "var_ok"] = abs(v - var) <= Z * se_v
    return out


def support_check(x, lo, hi):
    x = np.asarray(x)
    return {"in_support": bool(x.size == 0 or (x.min() >= lo and x.max() <= hi))}


def record(benchmark, *, kind, backend, n_accepted, checks, scale=1.0, **extra):
    ok = all(bool(v) for k, v in checks.items() if k.endswith("_ok") or k in ("in_support", "finite"))
    benchmark.extra_info.update(kind=kind, backend=backend, n_accepted=int(n_accepted),
                                scale=float(scale), n_target=N, check_ok=bool(ok),
                                checks={k: (bool(v) if isinstance(v, (bool, np.bool_)) else v)
                                        for k, v in checks.items()},
                                **extra)
    assert ok, f"{benchmark.group}/{kind}: result check failed: {checks}"


def proposals_check(n_proposed, n, M):
    """n_proposed ~ NegBinomial: mean n*M, variance n*(1-p)/p^2 with p = 1/M."""
    p = 1.0 / M
    mean = n / p
    sd = math.sqrt(n * (1.0 - p)) / p
    return {"n_proposed": int(n_proposed), "n_proposed_z": round((n_proposed - mean) / sd, 3),
            "n_proposed_ok": abs(n_proposed - mean) <= Z * sd}


# --------------------------------------------------------------------------------------------
# Workload definitions
# --------------------------------------------------------------------------------------------
def rsft_sampler(wl, backend):
    if wl == "W1":
        return rsft.RejectionSampler(rsft.Normal(2.0, 1.0), rsft.Normal(0.0, 2.0), backend=backend)
    if wl == "W2":
        return rsft.RejectionSampler(rsft.Beta(BETA_A, BETA_B), rsft.Uniform(0.0, 1.0),
                                     backend=backend)
    if wl == "W3":
        return rsft.RejectionSampler(w3_target, rsft.Normal(0.0, 2.0), log_M=LOG_M_W1,
                                     backend=backend)
    raise ValueError(wl)


# Truth per workload: (mean, variance, support, M, log_M)
TRUTH = {
    "W1": (2.0, 1.0, (-math.inf, math.inf), M_W1, LOG_M_W1),
    "W2": (BETA_MEAN, BETA_VAR, (0.0, 1.0), M_W2, LOG_M_W2),
    "W3": (2.0, 1.0, (-math.inf, math.inf), M_W1, LOG_M_W1),
}


def sample_checks(wl, x, n_expected):
    x = np.asarray(x)
    checks = {"n_ok": x.shape == (n_expected,), "dtype_ok": x.dtype == np.float64}
    if wl == "W4":
        per = n_expected // N_TARGETS
        checks.update(moment_checks(x, np.repeat(MUS, per), 1.0))
    else:
        mean, var, (lo, hi), _, _ = TRUTH[wl]
        checks.update(moment_checks(x, mean, var))
        checks.update(support_check(x, lo, hi))
    return checks


# ---- pure python, per sample (the source article's loop) -----------------------------------
def py_loop_normal(n, rng, mu=2.0, M=M_W1):
    """Target Normal(mu, 1), proposal Normal(0, 2)."""
    out = []
    proposed = 0
    while len(out) < n:
        x = rng.normal(0.0, 2.0)
        u = rng.random()
        proposed += 1
        q = math.exp(-x * x / 8.0) / (2.0 * SQRT2PI)
        p = math.exp(-0.5 * (x - mu) ** 2) / SQRT2PI
        if u * M * q <= p:
            out.append(x)
    return out, proposed


def py_loop_beta(n, rng, M=M_W2):
    out = []
    proposed = 0
    while len(out) < n:
        x = rng.random()
        u = rng.random()
        proposed += 1
        p = BETA_NORM * x * (1.0 - x) ** 4
        if u * M * 1.0 <= p:
            out.append(x)
    return out, proposed


def py_loop_callable(n, rng, M=M_W1):
    """Same loop, the target density being the numpy callable (called on one float)."""
    out = []
    proposed = 0
    while len(out) < n:
        x = rng.normal(0.0, 2.0)
        u = rng.random()
        proposed += 1
        q = math.exp(-x * x / 8.0) / (2.0 * SQRT2PI)
        p = math.exp(w3_target(x))
        if u * M * q <= p:
            out.append(x)
    return out, proposed


# --------------------------------------------------------------------------------------------
# rsft
# --------------------------------------------------------------------------------------------
BACKENDS = ["cython", "numpy"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("wl", ["W1", "W2", "W3"])
def test_rsft(benchmark, wl, backend):
    benchmark.group = wl
    sampler = rsft_sampler(wl, backend)

    def fn(rng):
        return sampler.sample(N, rng)

    seed = seed_for(wl, "rsft")  # same seed for both backends: same samples expected
    x = _run(benchmark, fn, seed)
    checks = sample_checks(wl, x, N)
    _, _, _, M, log_m = TRUTH[wl]
    checks["log_M"] = float(sampler.log_M)
    checks["log_M_ok"] = abs(float(sampler.log_M) - log_m) <= 1e-6
    # proposal count from an untimed run with the same seed
    x2, stats = sampler.sample_with_stats(N, np.random.default_rng(seed))
    checks.update(proposals_check(stats.n_proposed, N, M))
    checks["stats_n_accepted_ok"] = stats.n_accepted == N
    # informational (not required by the API): sample() and sample_with_stats() agree
    checks["stats_same_samples"] = bool(np.array_equal(x, x2))
    record(benchmark, kind=f"rsft_{backend}", backend=backend, n_accepted=len(x), checks=checks,
           acceptance_rate=float(stats.acceptance_rate))


@pytest.mark.parametrize("backend", BACKENDS)
def test_rsft_w4(benchmark, backend):
    benchmark.group = "W4"
    proposal = rsft.Normal(0.0, 2.0)
    mus = [float(m) for m in MUS]

    def fn(rng):
        out = np.empty(N_PER * N_TARGETS)
        for i, mu in enumerate(mus):
            s = rsft.RejectionSampler(rsft.Normal(mu, 1.0), proposal, backend=backend)
            out[i * N_PER:(i + 1) * N_PER] = s.sample(N_PER, rng)
        return out

    x = _run(benchmark, fn, seed_for("W4", "rsft"))
    checks = sample_checks("W4", x, N_PER * N_TARGETS)
    # log M of the per-target samplers, untimed (extremes and middle)
    bad = []
    for mu in (mus[0], mus[N_TARGETS // 2], mus[-1]):
        s = rsft.RejectionSampler(rsft.Normal(mu, 1.0), proposal, backend=backend)
        if abs(float(s.log_M) - w4_log_m(mu)) > 1e-6:
            bad.append((mu, float(s.log_M), w4_log_m(mu)))
    checks["log_M_ok"] = not bad
    if bad:
        checks["log_M_bad"] = bad
    record(benchmark, kind=f"rsft_{backend}", backend=backend, n_accepted=len(x), checks=checks)


# --------------------------------------------------------------------------------------------
# Pure-python per-sample loop
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("wl", ["W1", "W2", "W3"])
def test_python_loop(benchmark, wl):
    benchmark.group = wl
    loop = {"W1": py_loop_normal, "W2": py_loop_beta, "W3": py_loop_callable}[wl]

    def fn(rng):
        return loop(N_PY, rng)

    out, proposed = _run(benchmark, fn, seed_for(wl, "py"))
    x = np.asarray(out, dtype=np.float64)
    checks = sample_checks(wl, x, N_PY)
    record(benchmark, kind="python_loop", backend="python", n_accepted=len(x), checks=checks,
           scale=N / N_PY, n_proposed=proposed)


def test_python_loop_w4(benchmark):
    benchmark.group = "W4"
    mus = [float(m) for m in MUS]
    Ms = [float(m) for m in M_W4]

    def fn(rng):
        out = []
        for mu, M in zip(mus, Ms):
            xs, _ = py_loop_normal(N_PY_PER, rng, mu=mu, M=M)
            out.extend(xs)
        return out

    x = np.asarray(_run(benchmark, fn, seed_for("W4", "py")), dtype=np.float64)
    checks = sample_checks("W4", x, N_PY_PER * N_TARGETS)
    record(benchmark, kind="python_loop", backend="python", n_accepted=len(x), checks=checks,
           scale=N_PER / N_PY_PER)


# --------------------------------------------------------------------------------------------
# RNG floor: the proposals and uniforms alone, k = ceil(N * M) of each
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("wl", ["W1", "W2", "W3", "W4"])
def test_rng_floor(benchmark, wl):
    benchmark.group = wl
    if wl == "W4":
        k = math.ceil(N_PER * float(M_W4.sum()))
    else:
        k = math.ceil(N * TRUTH[wl][3])

    if wl == "W2":
        def fn(rng):
            return rng.random(k), rng.random(k)
    else:
        def fn(rng):
            return rng.standard_normal(k), rng.random(k)

    a, u = _run(benchmark, fn, seed_for(wl, "floor"))
    checks = {"n_ok": a.shape == (k,) and u.shape == (k,)}
    if wl == "W2":
        checks.update(moment_checks(a, 0.5, 1.0 / 12.0, "prop_"))
    else:
        checks.update(moment_checks(a, 0.0, 1.0, "prop_"))
    checks.update(moment_checks(u, 0.5, 1.0 / 12.0, "unif_"))
    record(benchmark, kind="rng_floor", backend="numpy.random", n_accepted=N_PER * N_TARGETS
           if wl == "W4" else N, checks=checks, n_draws=k)


# --------------------------------------------------------------------------------------------
# scipy.stats.sampling.NumericalInversePolynomial (optional peer)
# --------------------------------------------------------------------------------------------
class _NormalDist:
    def __init__(self, mu):
        self.mu = mu

    def pdf(self, x):
        return math.exp(-0.5 * (x - self.mu) ** 2)

    def logpdf(self, x):
        return -0.5 * (x - self.mu) ** 2


class _BetaDist:
    def pdf(self, x):
        return x * (1.0 - x) ** 4

    def support(self):
        return 0.0, 1.0


class _CallableDist:
    """W3: the density handed over as the user's numpy callable."""

    def pdf(self, x):
        return math.exp(w3_target(x))

    def logpdf(self, x):
        return float(w3_target(x))


@pytest.fixture(scope="module")
def pinv_cls():
    mod = pytest.importorskip("scipy.stats.sampling")
    return mod.NumericalInversePolynomial


def _pinv_make(cls, wl, rng, mu=2.0):
    if wl == "W2":
        return cls(_BetaDist(), center=0.2, domain=(0.0, 1.0), random_state=rng)
    if wl == "W3":
        return cls(_CallableDist(), center=2.0, random_state=rng)
    return cls(_NormalDist(mu), center=mu, random_state=rng)


@pytest.mark.parametrize("wl", ["W1", "W2", "W3"])
def test_scipy_pinv_setup(benchmark, pinv_cls, wl):
    benchmark.group = wl

    def fn(rng):
        return _pinv_make(pinv_cls, wl, rng)

    gen = _run(benchmark, fn, seed_for(wl, "pinv-setup"))
    x = gen.rvs(10_000)
    checks = sample_checks(wl, x, 10_000)
    record(benchmark, kind="scipy_pinv_setup", backend="scipy", n_accepted=0, checks=checks)


@pytest.mark.parametrize("wl", ["W1", "W2", "W3"])
def test_scipy_pinv(benchmark, pinv_cls, wl):
    benchmark.group = wl
    gen = _pinv_make(pinv_cls, wl, np.random.default_rng(seed_for(wl, "pinv")))

    def fn(rng):
        return gen.rvs(N, random_state=rng)

    x = _run(benchmark, fn, seed_for(wl, "pinv"))
    checks = sample_checks(wl, x, N)
    record(benchmark, kind="scipy_pinv", backend="scipy", n_accepted=len(x), checks=checks)


def test_scipy_pinv_w4(benchmark, pinv_cls):
    benchmark.group = "W4"
    mus = [float(m) for m in MUS]

    def fn(rng):
        out = np.empty(N_PER * N_TARGETS)
        for i, mu in enumerate(mus):
            gen = _pinv_make(pinv_cls, "W4", rng, mu=mu)
            out[i * N_PER:(i + 1) * N_PER] = gen.rvs(N_PER)
        return out

    x = _run(benchmark, fn, seed_for("W4", "pinv"), rounds=ROUNDS_SLOW)
    checks = sample_checks("W4", x, N_PER * N_TARGETS)
    record(benchmark, kind="scipy_pinv", backend="scipy", n_accepted=len(x), checks=checks,
           setup_included=True)


# --------------------------------------------------------------------------------------------
# numba @njit accept/reject loop (optional peer)
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def nb_kernels():
    numba = pytest.importorskip("numba")
    njit = numba.njit

    @njit(cache=False)
    def loop_normal(n, rng, mu, M, out):
        i = 0
        proposed = 0
        while i < n:
            x = rng.normal(0.0, 2.0)
            u = rng.random()
            proposed += 1
            q = math.exp(-x * x / 8.0) / (2.0 * SQRT2PI)
            p = math.exp(-0.5 * (x - mu) ** 2) / SQRT2PI
            if u * M * q <= p:
                out[i] = x
                i += 1
        return proposed

    @njit(cache=False)
    def loop_beta(n, rng, M, out):
        i = 0
        proposed = 0
        while i < n:
            x = rng.random()
            u = rng.random()
            proposed += 1
            p = BETA_NORM * x * (1.0 - x) ** 4
            if u * M * 1.0 <= p:
                out[i] = x
                i += 1
        return proposed

    nb_target = njit(w3_target)  # the user's numpy callable, compiled

    @njit(cache=False)
    def loop_callable(n, rng, M, out):
        i = 0
        proposed = 0
        while i < n:
            x = rng.normal(0.0, 2.0)
            u = rng.random()
            proposed += 1
            q = math.exp(-x * x / 8.0) / (2.0 * SQRT2PI)
            p = math.exp(nb_target(x))
            if u * M * q <= p:
                out[i] = x
                i += 1
        return proposed

    # compile outside any timing
    buf = np.empty(4)
    rng = np.random.default_rng(0)
    loop_normal(4, rng, 2.0, M_W1, buf)
    loop_beta(4, rng, M_W2, buf)
    loop_callable(4, rng, M_W1, buf)
    return {"normal": loop_normal, "beta": loop_beta, "callable": loop_callable}


@pytest.mark.parametrize("wl", ["W1", "W2", "W3"])
def test_numba(benchmark, nb_kernels, wl):
    benchmark.group = wl
    if wl == "W1":
        k = nb_kernels["normal"]

        def fn(rng):
            out = np.empty(N)
            return out, k(N, rng, 2.0, M_W1, out)
    elif wl == "W2":
        k = nb_kernels["beta"]

        def fn(rng):
            out = np.empty(N)
            return out, k(N, rng, M_W2, out)
    else:
        k = nb_kernels["callable"]

        def fn(rng):
            out = np.empty(N)
            return out, k(N, rng, M_W1, out)

    x, proposed = _run(benchmark, fn, seed_for(wl, "numba"))
    checks = sample_checks(wl, x, N)
    checks.update(proposals_check(proposed, N, TRUTH[wl][3]))
    record(benchmark, kind="numba", backend="numba", n_accepted=len(x), checks=checks)


def test_numba_w4(benchmark, nb_kernels):
    benchmark.group = "W4"
    k = nb_kernels["normal"]
    mus = [float(m) for m in MUS]
    Ms = [float(m) for m in M_W4]

    def fn(rng):
        out = np.empty(N_PER * N_TARGETS)
        for i, (mu, M) in enumerate(zip(mus, Ms)):
            k(N_PER, rng, mu, M, out[i * N_PER:(i + 1) * N_PER])
        return out

    x = _run(benchmark, fn, seed_for("W4", "numba"))
    checks = sample_checks("W4", x, N_PER * N_TARGETS)
    record(benchmark, kind="numba", backend="numba", n_accepted=len(x), checks=checks)
