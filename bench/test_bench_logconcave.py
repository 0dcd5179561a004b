"""Benchmarks of rsft.LogConcaveSampler against scipy.stats.sampling's automatic samplers.

Groups (N = $RSFT_BENCH_N accepted samples, default 1_000_000):

  LC1  Normal(0, 1)                      (rsft: the built-in; scipy: pdf and dpdf in Python)
  LC2  Gamma(3)                          (on (0, inf))
  LC3  the unnormalised callable -x**4   (rsft: a vectorised numpy callable)
  LC4  1000 changing targets Normal(mu_i, 1), mu_i = linspace(-1, 1, 1000), N/1000 samples
       each: every method builds its sampler per target inside the timed call (the W4 of
       test_bench_sampling.py, with automatic envelopes)

Per group: ``lcs_cython`` / ``lcs_numpy`` (``sample_with_stats(N)`` of a built sampler;
extra_info records the logpdf evaluations while sampling and at construction),
``lcs_setup`` (the construction), ``scipy_tdr`` / ``scipy_tdr_setup``
(``TransformedDensityRejection``) and ``scipy_pinv`` / ``scipy_pinv_setup``
(``NumericalInversePolynomial``); the scipy rows are skipped without scipy. Every benchmark
checks the result it timed (mean and variance within 5 standard errors of the truth) and
asserts it. ``report_logconcave.py`` prints the ratios and checks the targets.
"""
from __future__ import annotations

import math
import os

import numpy as np
import pytest

import rsft
from _timing import seed_for, time_with_fresh_rng

N = int(float(os.environ.get("RSFT_BENCH_N", "1000000")))
if N < 1000:
    raise ValueError(f"RSFT_BENCH_N must be >= 1000, got {N}")
ROUNDS = 9
ROUNDS_SETUP = 30
ROUNDS_SLOW = 3
WARMUP = 1
Z = 5.0

N_TARGETS = 1000
N_PER = N // N_TARGETS
MUS = np.linspace(-1.0, 1.0, N_TARGETS)
X4_VAR = math.gamma(0.75) / math.gamma(0.25)     # E x^2 under exp(-x^4)
X4_M4 = 0.25                                      # E x^4


def minus_x4(x):
    return -x ** 4


# group -> (rsft target, LogConcaveSampler keywords, mean, variance, scipy dist factory, center,
# domain)
class _NormalPy:
    def pdf(self, x):
        return math.exp(-0.5 * x * x)

    def dpdf(self, x):
        return -x * math.exp(-0.5 * x * x)


class _ShiftedNormalPy(_NormalPy):
    def __init__(self, mu):
        self.mu = mu

    def pdf(self, x):
        return super().pdf(x - self.mu)

    def dpdf(self, x):
        return super().dpdf(x - self.mu)


class _Gamma3Py:
    def pdf(self, x):
        return x * x * math.exp(-x)

    def dpdf(self, x):
        return (2.0 * x - x * x) * math.exp(-x)


class _MinusX4Py:
    def pdf(self, x):
        return math.exp(-x ** 4)

    def dpdf(self, x):
        return -4.0 * x ** 3 * math.exp(-x ** 4)


GROUPS = {
    "LC1": (lambda: rsft.Normal(0.0, 1.0), {}, 0.0, 1.0, _NormalPy, 0.0, None),
    "LC2": (lambda: rsft.Gamma(3.0), {}, 3.0, 3.0, _Gamma3Py, 2.0, (0.0, math.inf)),
    "LC3": (lambda: minus_x4, {"support": (-math.inf, math.inf)}, 0.0, X4_VAR, _MinusX4Py,
            0.0, None),
}



def _run(benchmark, fn, seed, *, rounds=ROUNDS):
    return time_with_fresh_rng(benchmark, fn, seed, rounds=rounds, warmup_rounds=WARMUP)


def moment_checks(x, mean, var):
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    r = x - mean
    m = float(r.mean())
    c = r - m
    v = float((c * c).mean())
    se_m = math.sqrt(var / n)
    se_v = math.sqrt(max(float((c ** 4).mean()) - v * v, 1e-300) / n)
    return {"n_ok": x.shape == (n,) and n > 1, "finite_ok": bool(np.all(np.isfinite(x))),
            "mean_z": round(m / se_m, 3), "mean_ok": abs(m) <= Z * se_m,
            "var_z": round((v - var) / se_v, 3), "var_ok": abs(v - var) <= Z * se_v}


def record(benchmark, *, kind, n_accepted, checks, **extra):
    ok = all(bool(v) for k, v in checks.items() if k.endswith("_ok"))
    benchmark.extra_info.update(kind=kind, n_accepted=int(n_accepted), check_ok=bool(ok),
                                checks={k: (bool(v) if isinstance(v, (bool, np.bool_)) else v)
                                        for k, v in checks.items()}, **extra)
    assert ok, f"{benchmark.group}/{kind}: result check failed: {checks}"


# --------------------------------------------------------------------------------------------
# rsft
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["cython", "numpy"])
@pytest.mark.parametrize("group", sorted(GROUPS))
def test_lcs(benchmark, group, backend):
    if backend not in rsft.available_backends():
        pytest.skip("the compiled backend is not built")
    benchmark.group = group
    make, kw, mean, var, *_ = GROUPS[group]
    s = rsft.LogConcaveSampler(make(), backend=backend, **kw)

    def fn(rng):
        return s.sample_with_stats(N, rng)

    x, st = _run(benchmark, fn, seed_for(group, "lcs"),
                 rounds=ROUNDS if backend == "cython" else ROUNDS_SLOW)
    checks = moment_checks(x, mean, var)
    checks["evaluations_ok"] = st.n_evaluated <= (1.0 - s.requested_efficiency) * 1.5 * N + 1000
    record(benchmark, kind=f"lcs_{backend}", n_accepted=st.n_accepted, checks=checks,
           n_evaluated=st.n_evaluated, n_setup_evaluations=s.n_setup_evaluations,
           n_pieces=s.n_pieces, efficiency=s.efficiency)


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_lcs_setup(benchmark, group):
    benchmark.group = group
    make, kw, mean, var, *_ = GROUPS[group]
    target = make()

    def fn(rng):
        return rsft.LogConcaveSampler(target, **kw)

    s = _run(benchmark, fn, seed_for(group, "lcs-setup"), rounds=ROUNDS_SETUP)
    checks = moment_checks(s.sample(20_000, rng=1), mean, var)
    record(benchmark, kind="lcs_setup", n_accepted=0, checks=checks,
           n_setup_evaluations=s.n_setup_evaluations)


def test_lcs_w4(benchmark):
    benchmark.group = "LC4"
    mus = [float(m) for m in MUS]

    def fn(rng):
        out = np.empty(N_PER * N_TARGETS)
        n_eval = 0
        for i, mu in enumerate(mus):
            s = rsft.LogConcaveSampler(rsft.Normal(mu, 1.0))
            out[i * N_PER:(i + 1) * N_PER], st = s.sample_with_stats(N_PER, rng)
            n_eval += st.n_evaluated + s.n_setup_evaluations
        return out, n_eval

    x, n_eval = _run(benchmark, fn, seed_for("LC4", "lcs"), rounds=ROUNDS_SLOW)
    checks = moment_checks(x - np.repeat(MUS, N_PER), 0.0, 1.0)
    record(benchmark, kind="lcs_cython", n_accepted=x.size, checks=checks,
           n_evaluated=n_eval, setup_included=True)


# --------------------------------------------------------------------------------------------
# scipy.stats.sampling (optional peers)
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sampling():
    return pytest.importorskip("scipy.stats.sampling")


def _scipy_make(sampling, method, group, rng):
    cls = {"tdr": sampling.TransformedDensityRejection,
           "pinv": sampling.NumericalInversePolynomial}[method]
    *_, dist, center, domain = GROUPS[group]
    return cls(dist(), center=center, domain=domain, random_state=rng)


@pytest.mark.parametrize("method", ["tdr", "pinv"])
@pytest.mark.parametrize("group", sorted(GROUPS))
def test_scipy(benchmark, sampling, group, method):
    benchmark.group = group
    _, _, mean, var, *_ = GROUPS[group]
    gen = _scipy_make(sampling, method, group, np.random.default_rng(0))

    def fn(rng):
        return gen.rvs(N, random_state=rng)

    x = _run(benchmark, fn, seed_for(group, method))
    record(benchmark, kind=f"scipy_{method}", n_accepted=x.size,
           checks=moment_checks(x, mean, var))


@pytest.mark.parametrize("method", ["tdr", "pinv"])
@pytest.mark.parametrize("group", sorted(GROUPS))
def test_scipy_setup(benchmark, sampling, group, method):
    benchmark.group = group
    _, _, mean, var, *_ = GROUPS[group]

    def fn(rng):
        return _scipy_make(sampling, method, group, rng)

    gen = _run(benchmark, fn, seed_for(group, method, "setup"), rounds=ROUNDS_SETUP)
    record(benchmark, kind=f"scipy_{method}_setup", n_accepted=0,
           checks=moment_checks(gen.rvs(20_000), mean, var))


@pytest.mark.parametrize("method", ["tdr", "pinv"])
def test_scipy_w4(benchmark, sampling, method):
    benchmark.group = "LC4"
    cls = {"tdr": sampling.TransformedDensityRejection,
           "pinv": sampling.NumericalInversePolynomial}[method]
    mus = [float(m) for m in MUS]

    def fn(rng):
        out = np.empty(N_PER * N_TARGETS)
        for i, mu in enumerate(mus):
            gen = cls(_ShiftedNormalPy(mu), center=mu, random_state=rng)
            out[i * N_PER:(i + 1) * N_PER] = gen.rvs(N_PER)
        return out

    x = _run(benchmark, fn, seed_for("LC4", method), rounds=ROUNDS_SLOW)
    record(benchmark, kind=f"scipy_{method}", n_accepted=x.size,
           checks=moment_checks(x - np.repeat(MUS, N_PER), 0.0, 1.0), setup_included=True)
