"""Benchmarks of rsft's reward acceptors (one ``accept`` call per round).

Three pytest-benchmark groups (float64 rewards):

  accept-rect     rewards of shape (1e5, 64), one group per row: every acceptor on both
                  backends, beside the plain numpy a user would write for the same decision
                  (``r >= tau``; ``argpartition`` top-k without random ties;
                  ``rng.random(r.shape) < exp((r - r_max) / beta)``; ``r >= quantile``).
  accept-grouped  1e7 candidates in 1e6 groups of sizes 1..19, labels shuffled (unsorted):
                  every acceptor on both backends (``groups=``), failed candidates included.
  accept-loop     RSO as a per-group Python loop in the style of the published code (group
                  the candidates with a dict, then the paper's Algorithm 1 per group, one
                  ``rng.random()`` and one ``math.exp`` per examined candidate) on the first
                  1e4 groups; report_acceptors.py scales it to 1e6 groups.

Every benchmark checks what it timed (the masks are consistent with the rule: counts,
thresholds, no failed candidate accepted) and stores the outcome in extra_info["check_ok"].
``report_acceptors.py`` prints ns per candidate and the ratios, and asserts the targets.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import rsft

RECT_SHAPE = (100_000, 64)
N_GROUPS = 1_000_000
LOOP_GROUPS = 10_000
BETA = 1.0
K = 4
ROUNDS = 5
SLOW_ROUNDS = 1          # the numpy backend on 1e7 grouped candidates takes seconds per call


def _rect():
    return np.random.default_rng(0).standard_normal(RECT_SHAPE)


def _grouped():
    g = np.random.default_rng(1)
    sizes = g.integers(1, 20, N_GROUPS)
    labels = g.permutation(np.repeat(np.arange(N_GROUPS, dtype=np.int64), sizes))
    r = g.standard_normal(labels.size)
    r[g.random(labels.size) < 0.05] = -np.inf
    return r, labels, sizes


RECT = _rect()
R_MAX = RECT.max(axis=1)
GROUPED_R, GROUPED_LABELS, GROUP_SIZES = _grouped()


def _acceptor(name):
    return {"threshold": rsft.Threshold(0.5), "quantile": rsft.Quantile(0.75),
            "topk": rsft.TopK(K), "statistical_rs": rsft.StatisticalRS(BETA, r_max=R_MAX),
            "statistical_rs_grouped": rsft.StatisticalRS(BETA),
            "rso": rsft.RSO(BETA, K)}[name]


def record(benchmark, *, kind, n_candidates, ok, **extra):
    benchmark.extra_info.update(kind=kind, n_candidates=int(n_candidates), check_ok=bool(ok),
                                **extra)
    assert ok, f"{benchmark.group}/{kind}: result check failed"


def _counts_ok(mask, r, k=None):
    """No failed candidate accepted; with k, exactly min(k, valid) per row."""
    ok = not mask[r == -np.inf].any()
    if k is not None:
        ok &= np.array_equal(mask.sum(axis=1), np.minimum(k, np.isfinite(r).sum(axis=1)))
    return bool(ok)


# ---------------------------------------------------------------------------------------------
# accept-rect
# ---------------------------------------------------------------------------------------------

RECT_ACCEPTORS = ["threshold", "quantile", "topk", "statistical_rs", "rso"]


@pytest.mark.benchmark(group="accept-rect")
@pytest.mark.parametrize("backend", ["cython", "numpy"])
@pytest.mark.parametrize("name", RECT_ACCEPTORS)
def test_rect_rsft(benchmark, name, backend):
    acc = _acceptor(name)
    acc.backend = backend
    rng = np.random.default_rng(2)
    rounds = ROUNDS if backend == "cython" or name in ("threshold", "statistical_rs") else 1
    res = benchmark.pedantic(lambda: acc.accept(RECT, rng), rounds=rounds, iterations=1,
                             warmup_rounds=1 if rounds > 1 else 0)
    k = K if name in ("topk", "rso") else None
    record(benchmark, kind=f"rsft_{backend}", acceptor=name, backend=backend,
           n_candidates=RECT.size, ok=_counts_ok(res.mask, RECT, k))


def _user_threshold(rng):
    return RECT >= 0.5


def _user_quantile(rng):
    return RECT >= np.quantile(RECT, 0.75, axis=1, keepdims=True)


def _user_topk(rng):
    top = np.argpartition(-RECT, K - 1, axis=1)[:, :K]
    mask = np.zeros(RECT.shape, bool)
    np.put_along_axis(mask, top, True, axis=1)
    return mask


def _user_statistical_rs(rng):
    return rng.random(RECT.shape) < np.exp((RECT - R_MAX[:, None]) / BETA)


USER = {"threshold": _user_threshold, "quantile": _user_quantile, "topk": _user_topk,
        "statistical_rs": _user_statistical_rs}


@pytest.mark.benchmark(group="accept-rect")
@pytest.mark.parametrize("name", list(USER))
def test_rect_plain_numpy(benchmark, name):
    rng = np.random.default_rng(2)
    mask = benchmark.pedantic(lambda: USER[name](rng), rounds=ROUNDS, iterations=1,
                              warmup_rounds=1)
    record(benchmark, kind="user_numpy", acceptor=name, backend="numpy",
           n_candidates=RECT.size, ok=_counts_ok(mask, RECT, K if name == "topk" else None))


# ---------------------------------------------------------------------------------------------
# accept-grouped
# ---------------------------------------------------------------------------------------------

GROUPED_ACCEPTORS = ["threshold", "quantile", "topk", "statistical_rs_grouped", "rso"]


@pytest.mark.benchmark(group="accept-grouped")
@pytest.mark.parametrize("backend", ["cython", "numpy"])
@pytest.mark.parametrize("name", GROUPED_ACCEPTORS)
def test_grouped_rsft(benchmark, name, backend):
    acc = _acceptor(name)
    acc.backend = backend
    rng = np.random.default_rng(3)
    rounds = 3 if backend == "cython" else SLOW_ROUNDS
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rsft.ApproximateTiltWarning)
        res = benchmark.pedantic(lambda: acc.accept(GROUPED_R, rng, groups=GROUPED_LABELS),
                                 rounds=rounds, iterations=1, warmup_rounds=0)
    st = res.group_stats
    ok = (not res.mask[GROUPED_R == -np.inf].any() and len(st) == N_GROUPS
          and int(st.n_accepted.sum()) == res.n_accepted)
    if name in ("topk", "rso"):
        ok &= np.array_equal(st.n_accepted, np.minimum(K, st.n_valid))
    record(benchmark, kind=f"rsft_{backend}", acceptor=name, backend=backend,
           n_candidates=GROUPED_R.size, n_groups=N_GROUPS, ok=ok)


# ---------------------------------------------------------------------------------------------
# accept-loop: the published style, per group in Python
# ---------------------------------------------------------------------------------------------

def _published_rso(rewards, num_samples, beta, rng):
    """Algorithm 1 as published (with the empty-pool guard the published code lacks)."""
    candidates = dict(rewards)
    accepted = []
    while len(accepted) < num_samples and candidates:
        max_reward = max(candidates.values())
        to_remove = []
        for c, r in candidates.items():
            u = rng.random()
            if u >= math.exp((r - max_reward) / beta):
                continue
            accepted.append(c)
            to_remove.append(c)
            if len(accepted) == num_samples:
                break
        for c in to_remove:
            candidates.pop(c)
    return accepted


def _python_loop(r, labels, rng):
    groups = {}
    for i, (lab, reward) in enumerate(zip(labels.tolist(), r.tolist())):
        if reward != -math.inf:
            groups.setdefault(lab, []).append((i, reward))
    accepted = []
    for lab in sorted(groups):
        accepted.extend(_published_rso(groups[lab], K, BETA, rng))
    return accepted


@pytest.mark.benchmark(group="accept-loop")
def test_rso_python_loop(benchmark):
    n = int(GROUP_SIZES[:LOOP_GROUPS].sum())
    keep = GROUPED_LABELS < LOOP_GROUPS
    r, labels = GROUPED_R[keep], GROUPED_LABELS[keep]
    rng = np.random.default_rng(4)
    accepted = benchmark.pedantic(lambda: _python_loop(r, labels, rng), rounds=3,
                                  iterations=1, warmup_rounds=0)
    want = sum(min(K, int(np.isfinite(r[labels == g]).sum())) for g in range(0, LOOP_GROUPS, 97))
    got = sum(1 for i in accepted if labels[i] % 97 == 0)
    record(benchmark, kind="python_loop", acceptor="rso", backend="python", n_candidates=n,
           n_groups=LOOP_GROUPS, scale=N_GROUPS / LOOP_GROUPS, ok=got == want)
