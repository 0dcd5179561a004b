"""Benchmarks of rsft.dask on a two-worker LocalCluster (figures, no targets).

Groups (each one run, min over rounds):

  dask-sample      4e6 samples of N(2, 1) from N(0, 2) in 16 chunks of 262144:
                   in-process blocked stream on 1 and 2 threads, and
                   ``rsft.dask.sample_array(...).compute()`` on the cluster (the result brought
                   back to the client). The per-chunk overhead is (cluster - in-process 1 thread
                   / 2 workers) / chunks.
  dask-trainings   16 bandit trainings (demo 4, statistical RS, beta x seed sweep, 3 rounds):
                   serial in-process, and ``rsft.dask.map_trainings`` on the cluster.

Every benchmark checks that the cluster's result equals the in-process one.
"""
from __future__ import annotations

import numpy as np
import pytest
from distributed import Client, LocalCluster

import rsft
import rsft.dask as rdask
from rsft import _demos
from rsft.distributions import Normal

N, CHUNK = 4_000_000, 262_144
GRID = [b for b in (0.5, 1.0, 2.0, 4.0) for _ in range(4)]
ROUNDS = 3


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, silence_logs=40) as cluster, \
            Client(cluster) as c:
        yield c


def _sampler():
    return rsft.RejectionSampler(Normal(2.0, 1.0), Normal(0.0, 2.0))


@pytest.mark.benchmark(group="dask-sample")
@pytest.mark.parametrize("kind", ["in_process_1t", "in_process_2t", "cluster_2_workers"])
def test_sample(benchmark, client, kind):
    s = _sampler()
    if kind == "cluster_2_workers":
        fn = lambda: rdask.sample_array(s, N, CHUNK, rng=1).compute()  # noqa: E731
    else:
        nt = 1 if kind == "in_process_1t" else 2
        fn = lambda: s.sample(N, rng=1, n_threads=nt, block_size=CHUNK)  # noqa: E731
    got = benchmark.pedantic(fn, rounds=5, iterations=1, warmup_rounds=1)
    benchmark.extra_info.update(kind=kind, n=N, chunks=-(-N // CHUNK))
    assert np.array_equal(got, s.sample(N, rng=1, n_threads=1, block_size=CHUNK))


@pytest.mark.benchmark(group="dask-trainings")
@pytest.mark.parametrize("kind", ["serial", "cluster_2_workers"])
def test_trainings(benchmark, client, kind):
    if kind == "serial":
        def fn():
            children = np.random.default_rng(2).spawn(len(GRID))
            return [_demos.bandit_trainer(b).fit(ROUNDS, rng=c) for b, c in zip(GRID, children)]
    else:
        def fn():
            return rdask.map_trainings(_demos.bandit_trainer, GRID, ROUNDS, rng=2)
    got = benchmark.pedantic(fn, rounds=3, iterations=1, warmup_rounds=1)
    benchmark.extra_info.update(kind=kind, n_trainings=len(GRID), rounds=ROUNDS)
    children = np.random.default_rng(2).spawn(len(GRID))
    want = _demos.bandit_trainer(GRID[0]).fit(ROUNDS, rng=children[0])
    assert got[0].as_dict() == want.as_dict()
