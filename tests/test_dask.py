"""rsft.dask: Dask results equal the in-process blocked results, whatever the scheduler."""

import numpy as np
import pytest

# dask and distributed are in the test extra: a missing one is an error, not a skip.
import dask
import dask.array
from distributed import Client, LocalCluster

import rsft
import rsft.dask as rdask
from rsft import _demos
from rsft.distributions import Normal


BACKENDS = ["cython", "numpy"]


@pytest.fixture(scope="module")
def cluster_client():
    """A two-process LocalCluster on the loopback interface, no dashboard, bounded in time."""
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, worker_dashboard_address=None,
                      silence_logs=40) as cluster, Client(cluster, timeout=60) as client:
        yield client


def _sampler(backend):
    return rsft.RejectionSampler(Normal(2.0, 1.0), Normal(0.0, 2.0), backend=backend)


def _mixture_logpdf(x):
    """A module-level callable target (a two-bump unnormalised density)."""
    return np.logaddexp(-0.5 * (x - 1.0) ** 2, -0.5 * (x + 1.0) ** 2 - 1.0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("scheduler", ["sync", "threads"])
@pytest.mark.parametrize("n,chunks", [(10_000, 3000), (5, 7), (4096, 4096), (0, 5)])
def test_sample_array_equals_blocked_stream(backend, scheduler, n, chunks):
    s = _sampler(backend)
    arr = rdask.sample_array(s, n, chunks, rng=7)
    assert arr.shape == (n,) and arr.dtype == np.float64
    got = arr.compute(scheduler=scheduler)
    want = s.sample(n, rng=7, n_threads=1, block_size=chunks)
    assert np.array_equal(got, want)


def test_sample_array_callable_target_and_generator_state():
    # sup log p - log q = log(2 sqrt(2 pi) (e^(1/6) + e^(-5/6))) = 2.092 (at x = +-4/3)
    s = rsft.RejectionSampler(_mixture_logpdf, Normal(0.0, 2.0), log_M=2.1)
    g1, g2 = np.random.default_rng(3), np.random.default_rng(3)
    got = rdask.sample_array(s, 2500, 1000, rng=g1).compute(scheduler="sync")
    want = s.sample(2500, rng=g2, block_size=1000)
    assert np.array_equal(got, want)
    # both spawned three children: the next draws agree
    assert g1.bit_generator.state == g2.bit_generator.state
    assert np.array_equal(g1.spawn(1)[0].random(4), g2.spawn(1)[0].random(4))


def test_sample_array_on_a_local_cluster(cluster_client):
    s = _sampler("cython")
    got = rdask.sample_array(s, 20_000, 4096, rng=11).compute()
    assert np.array_equal(got, s.sample(20_000, rng=11, n_threads=2, block_size=4096))


@pytest.mark.parametrize("scheduler", ["sync", "threads"])
def test_dask_arrays_give_the_same_values_every_compute(scheduler):
    # a Dask array is a recipe: computing it twice (or computing a reduction of it) must not
    # depend on what was computed before, so a task may not advance a Generator of the graph
    arr = rdask.sample_array(_sampler("cython"), 1000, 300, rng=7)
    first = arr.compute(scheduler=scheduler)
    assert np.array_equal(arr.compute(scheduler=scheduler), first)
    assert arr.sum().compute(scheduler=scheduler) == first.sum()
    r = np.random.default_rng(0).normal(size=(40, 6))
    mask = rdask.accept(rsft.StatisticalRS(1.0, r_max=4.0),
                        dask.array.from_array(r, chunks=(16, 6)), rng=1)
    first = mask.compute(scheduler=scheduler)
    assert 0 < first.sum() < first.size
    assert np.array_equal(mask.compute(scheduler=scheduler), first)


def test_map_trainings_equals_serial_runs(cluster_client):
    grid = [0.5, 1.0, 2.0]
    histories = rdask.map_trainings(_demos.bandit_trainer, grid, 2, rng=5)
    children = np.random.default_rng(5).spawn(len(grid))
    serial = [_demos.bandit_trainer(b).fit(2, rng=c) for b, c in zip(grid, children)]
    assert [h.as_dict() for h in histories] == [h.as_dict() for h in serial]


def _acceptors():
    return [rsft.Threshold(0.5), rsft.Quantile(0.75, min_per_group=1), rsft.TopK(2),
            rsft.StatisticalRS(1.0, r_max=4.0), rsft.RSO(0.5, 2)]


@pytest.mark.parametrize("scheduler", ["sync", "threads"])
@pytest.mark.parametrize("rows, chunk", [(1000, 300), (64, 64), (5, 2)])
def test_accept_equals_blocked_acceptance(scheduler, rows, chunk):
    g = np.random.default_rng(rows)
    r = np.round(g.normal(size=(rows, 12)), 1)        # ties
    r[g.random(r.shape) < 0.1] = -np.inf              # failed candidates
    keys = g.integers(0, 8, r.shape)                  # duplicates
    for acc in _acceptors():
        g1, g2 = np.random.default_rng(3), np.random.default_rng(3)
        got = rdask.accept(acc, dask.array.from_array(r, chunks=(chunk, 5)), rng=g1,
                           keys=keys).compute(scheduler=scheduler)
        want = acc.accept(r, g2, keys=keys, block_size=chunk).mask
        assert got.dtype == bool and np.array_equal(got, want), acc
        assert g1.bit_generator.seed_seq.n_children_spawned == \
            g2.bit_generator.seed_seq.n_children_spawned


@pytest.mark.parametrize("grouped", [False, True])
def test_accept_with_one_bound_per_group(grouped):
    # StatisticalRS(r_max=one bound per group): block b uses the bounds of its own groups, as
    # the in-process blocked acceptance does
    g = np.random.default_rng(4)
    r = g.normal(size=(10, 6))
    acc = rsft.StatisticalRS(1.0, r_max=np.linspace(3.0, 4.8, 10))
    want = acc.accept(r, 5, block_size=3).mask
    if grouped:
        labels = np.repeat(np.arange(10), 6)
        cuts = (18, 18, 18, 6)
        got = rdask.accept(acc, dask.array.from_array(r.ravel(), chunks=(cuts,)), rng=5,
                           groups=dask.array.from_array(labels, chunks=(cuts,)))
        got = got.compute(scheduler="sync").reshape(r.shape)
    else:
        got = rdask.accept(acc, dask.array.from_array(r, chunks=(3, 6)), rng=5)
        got = got.compute(scheduler="sync")
    assert np.array_equal(got, want)


@pytest.mark.parametrize("scheduler", ["sync", "threads"])
def test_grouped_accept_equals_blocked_acceptance(scheduler):
    g = np.random.default_rng(1)
    sizes = g.integers(1, 15, 50)                     # 50 groups, ragged
    labels = np.repeat(np.sort(g.choice(1000, 50, replace=False)), sizes)
    r = np.round(g.normal(size=labels.size), 1)
    r[g.random(r.size) < 0.1] = -np.inf
    keys = g.integers(0, 5, r.size)
    ends = np.cumsum(sizes)
    cuts = tuple(np.diff(np.r_[0, ends[9::10]]))       # partitions of 10 whole groups each
    assert sum(cuts) == r.size
    perm = np.concatenate([g.permutation(np.arange(a, b))   # any order inside a partition
                           for a, b in zip(np.r_[0, np.cumsum(cuts)[:-1]], np.cumsum(cuts))])
    r, labels, keys = r[perm], labels[perm], keys[perm]
    for acc in _acceptors():
        got = rdask.accept(acc, dask.array.from_array(r, chunks=(cuts,)), rng=6,
                           groups=dask.array.from_array(labels, chunks=(cuts,)),
                           keys=keys).compute(scheduler=scheduler)
        want = acc.accept(r, 6, groups=labels, keys=keys, block_size=10).mask
        assert np.array_equal(got, want), acc
    # partitions that split a group, or are out of label order, are refused
    bad = dask.array.from_array(labels, chunks=(cuts[0] + 1, labels.size - cuts[0] - 1))
    with pytest.raises(ValueError, match="partitioned by group"):
        rdask.accept(rsft.TopK(1), dask.array.from_array(r, chunks=bad.chunks), groups=bad)
    swapped = np.r_[labels[cuts[0]:], labels[:cuts[0]]]
    with pytest.raises(ValueError, match="ascending label order"):
        rdask.accept(rsft.TopK(1), dask.array.from_array(r, chunks=(labels.size - cuts[0],
                                                                     cuts[0])),
                     groups=dask.array.from_array(swapped, chunks=(labels.size - cuts[0],
                                                                   cuts[0])))


def test_accept_on_a_local_cluster(cluster_client):
    r = np.random.default_rng(0).normal(size=(5000, 16))
    acc = rsft.StatisticalRS(0.5, r_max=6.0)
    got = rdask.accept(acc, dask.array.from_array(r, chunks=(1024, 16)), rng=8).compute()
    assert np.array_equal(got, acc.accept(r, 8, n_threads=2, block_size=1024).mask)
    assert 0 < got.sum() < got.size


@pytest.mark.parametrize("scheduler", ["sync", "threads"])
def test_map_trainings_schedulers(scheduler):
    grid = [1.0, 4.0]
    a = rdask.map_trainings(_demos.bandit_trainer, grid, 1, rng=9, scheduler=scheduler)
    b = rdask.map_trainings(_demos.bandit_trainer, grid, 1, rng=9, scheduler="sync")
    assert [h.as_dict() for h in a] == [h.as_dict() for h in b]
    assert a[0].as_dict() != a[1].as_dict()   # different betas train differently
    assert rdask.map_trainings(_demos.bandit_trainer, [], 1, rng=0) == []


def test_everything_sent_pickles():
    # a lambda target: a clear error saying to use a module-level function
    s = rsft.RejectionSampler(lambda x: -0.5 * x * x, Normal(0.0, 2.0), log_M=2.0)
    with pytest.raises(TypeError, match="module level"):
        rdask.sample_array(s, 10, 5, rng=0)
    with pytest.raises(TypeError, match="module level"):
        rdask.map_trainings(lambda b: _demos.bandit_trainer(b), [1.0], 1, rng=0)
    with pytest.raises(TypeError, match="module level"):
        rdask.accept(rsft.Threshold(lambda t: 0.1 * t), dask.array.zeros((4, 3)), rng=0)


@pytest.mark.parametrize("call, exc, match", [
    (lambda: rdask.sample_array(_sampler("numpy"), -1, 5), ValueError, "n must be"),
    (lambda: rdask.sample_array(_sampler("numpy"), 10, 0), ValueError, "chunks must be"),
    (lambda: rdask.sample_array(_sampler("numpy"), 10, 2.5), TypeError, "chunks must be"),
    (lambda: rdask.sample_array(object(), 10, 5), TypeError, "sampler must be"),
    (lambda: rdask.sample_array(_sampler("numpy"), 10, 5, rng="x"), TypeError, "rng"),
    (lambda: rdask.map_trainings(3, [1.0], 1), TypeError, "make_trainer must be callable"),
    (lambda: rdask.accept(object(), dask.array.zeros((4, 3))), TypeError, "acceptor must be"),
    (lambda: rdask.accept(rsft.TopK(1), np.zeros((4, 3))), TypeError, "dask.array.Array"),
    (lambda: rdask.accept(rsft.TopK(1), dask.array.zeros(4)), ValueError, "must be 2-D"),
    (lambda: rdask.accept(rsft.TopK(1), dask.array.zeros((4, 2)), groups=np.zeros(8, int)),
     ValueError, "rewards must be 1-D"),
    (lambda: rdask.accept(rsft.TopK(1), dask.array.zeros(4), groups=np.zeros(3, int)),
     ValueError, "groups must have"),
    (lambda: rdask.accept(rsft.TopK(1), dask.array.zeros((9, 3), chunks=((2, 4, 3), 3))),
     ValueError, "chunks of one length"),
    (lambda: rdask.accept(rsft.TopK(1), dask.array.zeros((4, 3)), keys=np.zeros((4, 2), int)),
     ValueError, "keys must have"),
    (lambda: rdask.accept(rsft.TopK(1), dask.array.zeros((4, 3)), round=-1), ValueError,
     "round must be"),
    (lambda: rdask.map_trainings(_demos.bandit_trainer, 5, 1), TypeError, "grid must be"),
    (lambda: rdask.map_trainings(_demos.bandit_trainer, [1.0], 0), ValueError, "rounds must"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_dask_is_not_imported_by_rsft():
    import subprocess
    import sys
    code = "import sys, rsft; print('dask' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
    assert dask.__version__
