"""RejectionSampler and backend selection under bad input.

* The first source article's pair (target N(2,1), proposal N(0,1)): p/q = exp(2x - 2) is
  unbounded, so log_M=None must be refused, and the article's M = 2 must be detected as a
  violated envelope (raise, or warn with on_violation="warn").
* Other pairs without a finite envelope (heavier-tailed or wider targets, proposals that do not
  cover the target's support, unbounded target densities).
* Wrong types / values for target, proposal, rng, n, n_threads, block_size, log_M,
  max_proposals, on_violation, backend; the proposal budget; user callables that raise or
  return garbage.
* rsft.set_backend / get_backend round trip (the process default is restored afterwards).

Every sampling test runs on every available backend.
"""
from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest

import rsft

BACKENDS = rsft.available_backends()
LOG2 = math.log(2.0)


def _article_pair(**kw):
    return rsft.RejectionSampler(rsft.Normal(2.0, 1.0), rsft.Normal(0.0, 1.0), **kw)


def _good_sampler(**kw):
    # valid pair from DESIGN.md: N(2,1) target, N(0, 2^2) proposal, M = 2 e^{2/3}
    return rsft.RejectionSampler(rsft.Normal(2.0, 1.0), rsft.Normal(0.0, 2.0), **kw)


# ---------------------------------------------------------------------------------------------
# the source article's pair
# ---------------------------------------------------------------------------------------------
def test_article_pair_without_log_M_is_refused():
    with pytest.raises(ValueError) as ei:
        _article_pair()
    msg = str(ei.value).lower()
    assert re.search(r"unbounded|no finite envelope|not bounded|infinite", msg), msg


@pytest.mark.parametrize("backend", BACKENDS)
def test_article_pair_with_M_2_raises_violation(backend):
    s = _article_pair(log_M=LOG2, backend=backend)
    with pytest.raises(rsft.EnvelopeViolationError) as ei:
        s.sample(2000, rng=11)
    e = ei.value
    assert isinstance(e, ValueError)
    x = float(e.x)
    # log p(x) - log q(x) = 2x - 2 exactly for this pair, so the reported ratio is checkable
    assert e.log_ratio > 0.0
    assert e.log_ratio == pytest.approx(2.0 * x - 2.0 - LOG2, rel=1e-9, abs=1e-12)
    assert x > 1.0 + LOG2 / 2.0  # where exp(2x - 2) > 2
    assert e.suggested_log_M > LOG2
    assert e.suggested_log_M >= 2.0 * x - 2.0  # covers the offending proposal


@pytest.mark.parametrize("backend", BACKENDS)
def test_article_pair_warn_mode_returns_samples(backend):
    s = _article_pair(log_M=LOG2, on_violation="warn", backend=backend)
    with pytest.warns(rsft.EnvelopeViolationWarning):
        x, st = s.sample_with_stats(2000, rng=12)
    assert issubclass(rsft.EnvelopeViolationWarning, RuntimeWarning)
    assert x.shape == (2000,) and x.dtype == np.float64 and np.all(np.isfinite(x))
    assert st.n_accepted == 2000
    assert st.max_log_ratio > 0.0
    # plain sample() warns too
    with pytest.warns(rsft.EnvelopeViolationWarning):
        y = s.sample(500, rng=13)
    assert y.shape == (500,)


@pytest.mark.parametrize("backend", BACKENDS)
def test_valid_envelope_does_not_warn(backend):
    s = _good_sampler(on_violation="warn", backend=backend)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = s.sample(5000, rng=14)
    assert x.shape == (5000,)


@pytest.mark.parametrize("backend", BACKENDS)
def test_callable_with_too_small_log_M_raises_violation(backend):
    # unnormalised N(2,1) with proposal N(0,1): log p~ - log q = 2x - 2 + log(2pi)/2 ... unbounded
    s = rsft.RejectionSampler(lambda x: -0.5 * (x - 2.0) ** 2, rsft.Normal(0.0, 1.0), log_M=1.0,
                              backend=backend)
    with pytest.raises(rsft.EnvelopeViolationError) as ei:
        s.sample(2000, rng=15)
    x = float(ei.value.x)
    want = -0.5 * (x - 2.0) ** 2 + 0.5 * x * x + 0.5 * math.log(2.0 * math.pi) - 1.0
    assert ei.value.log_ratio == pytest.approx(want, rel=1e-9, abs=1e-12)
    assert ei.value.log_ratio > 0.0


# ---------------------------------------------------------------------------------------------
# other pairs with no finite envelope
# ---------------------------------------------------------------------------------------------
NO_ENVELOPE = [
    ("wider-normal", lambda: rsft.Normal(0.0, 2.0), lambda: rsft.Normal(0.0, 1.0)),
    ("shifted-same-scale-normal", lambda: rsft.Normal(1.0, 1.0), lambda: rsft.Normal(0.0, 1.0)),
    ("studentt/normal", lambda: rsft.StudentT(3.0), lambda: rsft.Normal(0.0, 1.0)),
    ("studentt/heavier-studentt", lambda: rsft.StudentT(3.0), lambda: rsft.StudentT(5.0)),
    ("laplace/normal", lambda: rsft.Laplace(0.0, 1.0), lambda: rsft.Normal(0.0, 5.0)),
    ("laplace/narrower-laplace", lambda: rsft.Laplace(0.0, 2.0), lambda: rsft.Laplace(0.0, 1.0)),
    ("exponential/faster-exponential", lambda: rsft.Exponential(2.0),
     lambda: rsft.Exponential(1.0)),
    ("uniform/uniform-not-covering", lambda: rsft.Uniform(0.0, 1.0),
     lambda: rsft.Uniform(0.5, 2.0)),
    ("normal/uniform", lambda: rsft.Normal(0.0, 1.0), lambda: rsft.Uniform(-5.0, 5.0)),
    ("normal/exponential", lambda: rsft.Normal(0.0, 1.0), lambda: rsft.Exponential(1.0)),
    ("beta-unbounded-density/uniform", lambda: rsft.Beta(0.5, 0.5), lambda: rsft.Uniform(0.0, 1.0)),
    ("mixture-with-wide-component/normal",
     lambda: rsft.Mixture([rsft.Normal(0.0, 1.0), rsft.Normal(0.0, 3.0)], [0.9, 0.1]),
     lambda: rsft.Normal(0.0, 2.0)),
]


@pytest.mark.parametrize("target, proposal", [c[1:] for c in NO_ENVELOPE],
                         ids=[c[0] for c in NO_ENVELOPE])
def test_pairs_without_finite_envelope_are_refused(target, proposal):
    with pytest.raises(ValueError):
        rsft.RejectionSampler(target(), proposal())


# ---------------------------------------------------------------------------------------------
# wrong types and values
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("target", [3, "normal", None, [0.0, 1.0]],
                         ids=["int", "str", "none", "list"])
def test_bad_target_type(target):
    with pytest.raises(TypeError):
        rsft.RejectionSampler(target, rsft.Normal(0.0, 2.0), log_M=1.0)


@pytest.mark.parametrize("proposal", [lambda x: -0.5 * x * x, 3, None, "normal"],
                         ids=["callable", "int", "none", "str"])
def test_bad_proposal_type(proposal):
    with pytest.raises(TypeError):
        rsft.RejectionSampler(rsft.Normal(2.0, 1.0), proposal, log_M=2.0)


@pytest.mark.parametrize("proposal", [
    lambda: rsft.Beta(2.0, 2.0),
    lambda: rsft.TruncatedNormal(0.0, 1.0, -1.0, 1.0),
    lambda: rsft.Mixture([rsft.Normal(), rsft.Normal(1.0)], [0.5, 0.5]),
], ids=["beta", "truncnorm", "mixture"])
def test_non_proposal_families_refused_as_proposal(proposal):
    # only Normal, Uniform, Exponential, Laplace, StudentT can be proposals
    with pytest.raises((TypeError, ValueError)):
        rsft.RejectionSampler(rsft.Uniform(0.0, 0.5), proposal(), log_M=3.0)


def test_callable_target_requires_log_M():
    with pytest.raises(ValueError):
        rsft.RejectionSampler(lambda x: -0.5 * x * x, rsft.Normal(0.0, 2.0))


@pytest.mark.parametrize("log_M", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("callable_target", [False, True], ids=["builtin", "callable"])
def test_non_finite_log_M(log_M, callable_target):
    target = (lambda x: -0.5 * (x - 2.0) ** 2) if callable_target else rsft.Normal(2.0, 1.0)
    with pytest.raises(ValueError):
        rsft.RejectionSampler(target, rsft.Normal(0.0, 2.0), log_M=log_M).sample(10, rng=0)


@pytest.mark.parametrize("log_M", ["2", [2.0], object()], ids=["str", "list", "object"])
def test_non_numeric_log_M(log_M):
    with pytest.raises(TypeError):
        rsft.RejectionSampler(rsft.Normal(2.0, 1.0), rsft.Normal(0.0, 2.0), log_M=log_M)


@pytest.mark.parametrize("rng", ["abc", 1.5, object(), [1.5, 2.5]],
                         ids=["str", "float", "object", "float-list"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_rng_type(rng, backend):
    with pytest.raises(TypeError):
        _good_sampler(backend=backend).sample(10, rng=rng)


@pytest.mark.parametrize("backend", BACKENDS)
def test_rng_forms_accepted(backend):
    s = _good_sampler(backend=backend)
    a = s.sample(300, rng=21)
    assert np.array_equal(a, s.sample(300, rng=np.random.default_rng(21)))
    assert np.array_equal(a, s.sample(300, rng=np.random.SeedSequence(21)))
    assert s.sample(300).shape == (300,)  # rng=None
    g = np.random.default_rng(21)
    first = s.sample(300, rng=g)
    assert np.array_equal(first, a)
    assert not np.array_equal(s.sample(300, rng=g), a)  # the Generator advanced


@pytest.mark.parametrize("n, exc", [
    (1.5, (TypeError, ValueError)),
    (2.0, (TypeError, ValueError)),
    (True, (TypeError, ValueError)),
    (False, (TypeError, ValueError)),
    (-1, ValueError),
    ("10", TypeError),
    (None, TypeError),
], ids=["float", "integral-float", "true", "false", "negative", "str", "none"])
@pytest.mark.parametrize("method", ["sample", "sample_with_stats"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_n(n, exc, method, backend):
    s = _good_sampler(backend=backend)
    with pytest.raises(exc):
        getattr(s, method)(n, rng=0)


@pytest.mark.parametrize("value, exc, message", [
    (0, ValueError, ">= 1"),
    (-2, ValueError, ">= 0"),
    (257, ValueError, "<= 256"),
    (10**6, ValueError, "<= 256"),
    (2.0, TypeError, "integer"),
    (True, TypeError, "integer"),
    ("2", TypeError, "integer"),
], ids=["zero", "negative", "above-cap", "huge", "float", "bool", "str"])
@pytest.mark.parametrize("method", ["sample", "sample_with_stats"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_n_threads(value, exc, message, method, backend):
    with pytest.raises(exc, match=f"n_threads.*{re.escape(message)}"):
        getattr(_good_sampler(backend=backend), method)(10, rng=0, n_threads=value)


@pytest.mark.parametrize("value, exc", [(0, ValueError), (-1, ValueError), (1.5, TypeError),
                                        (False, TypeError), (None, None)],
                         ids=["zero", "negative", "float", "bool", "none-is-default"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_block_size(value, exc, backend):
    s = _good_sampler(backend=backend)
    if exc is None:       # None means "not given": the one-stream call
        assert np.array_equal(s.sample(10, rng=0, block_size=value), s.sample(10, rng=0))
        return
    with pytest.raises(exc, match="block_size"):
        s.sample(10, rng=0, block_size=value)


def test_n_threads_cap_is_the_same_for_the_optimizers():
    rsft.Adam(np.zeros(3), n_threads=256)
    with pytest.raises(ValueError, match="n_threads must be <= 256"):
        rsft.Adam(np.zeros(3), n_threads=257)


@pytest.mark.parametrize("backend", BACKENDS)
def test_numpy_integer_n_accepted(backend):
    x = _good_sampler(backend=backend).sample(np.int64(7), rng=0)
    assert x.shape == (7,) and x.dtype == np.float64


@pytest.mark.parametrize("callable_target", [False, True], ids=["builtin", "callable"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_n_zero_gives_empty_float64(callable_target, backend):
    calls = []

    def f(x):
        calls.append(1)
        return -0.5 * (x - 2.0) ** 2

    if callable_target:
        s = rsft.RejectionSampler(f, rsft.Normal(0.0, 2.0), log_M=2.5, backend=backend)
    else:
        s = _good_sampler(backend=backend)
    x = s.sample(0, rng=0)
    assert isinstance(x, np.ndarray) and x.shape == (0,) and x.dtype == np.float64
    y, st = s.sample_with_stats(0, rng=0)
    assert y.shape == (0,) and y.dtype == np.float64
    assert st.n_proposed == 0 and st.n_accepted == 0
    assert calls == []


@pytest.mark.parametrize("on_violation", ["ignore", "RAISE", None, 1])
def test_bad_on_violation(on_violation):
    with pytest.raises((ValueError, TypeError)):
        _good_sampler(on_violation=on_violation)


# ---------------------------------------------------------------------------------------------
# proposal budget
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_budget_too_small_raises_with_counts(backend):
    # 39000 proposals, just above the 10000 M = 38955 needed on average: seed 34's stream runs
    # out (so the kernel's running budget is what stops it; a budget below the average fails
    # at once, tests/test_hardening.py)
    s = _good_sampler(max_proposals=39_000, backend=backend)
    with pytest.raises(rsft.ProposalBudgetExceeded) as ei:
        s.sample(10_000, rng=34)
    e = ei.value
    assert isinstance(e, RuntimeError)
    assert e.max_proposals == 39_000 and e.expected_proposals is None
    assert 0 < e.n_proposed <= 39_000
    assert 0 <= e.n_accepted <= e.n_proposed and e.n_accepted < 10_000
    # acceptances so far ~ Binomial(n_proposed, 1/M), 1/M = exp(-(log 2 + 2/3)); within 5 SE
    p = math.exp(-(LOG2 + 2.0 / 3.0))
    se = math.sqrt(e.n_proposed * p * (1.0 - p))
    assert abs(e.n_accepted - e.n_proposed * p) <= 5.0 * se
    # sample_with_stats raises the same way
    with pytest.raises(rsft.ProposalBudgetExceeded):
        s.sample_with_stats(10_000, rng=34)


@pytest.mark.parametrize("backend", BACKENDS)
def test_budget_on_callable_target(backend):
    # the budget also bounds a callable target that never accepts
    s = rsft.RejectionSampler(lambda x: np.full(x.shape, -np.inf), rsft.Normal(0.0, 1.0),
                              log_M=0.0, max_proposals=5000, backend=backend)
    with pytest.raises(rsft.ProposalBudgetExceeded) as ei:
        s.sample(10, rng=32)
    assert ei.value.n_accepted == 0
    assert 0 < ei.value.n_proposed <= 5000
    assert ei.value.max_proposals == 5000


@pytest.mark.parametrize("backend", BACKENDS)
def test_generous_budget_succeeds(backend):
    # expected proposals n*M ~= 3896 for n = 1000, sd = sqrt(n(1-p))/p ~= 107; 20000 is > 100 sd
    x, st = _good_sampler(max_proposals=20_000, backend=backend).sample_with_stats(1000, rng=33)
    assert x.shape == (1000,) and st.n_proposed <= 20_000


@pytest.mark.parametrize("max_proposals, exc", [
    (0, ValueError), (-5, ValueError), (2.5, (TypeError, ValueError)),
    (True, (TypeError, ValueError)), ("100", TypeError),
], ids=["zero", "negative", "float", "bool", "str"])
def test_bad_max_proposals(max_proposals, exc):
    with pytest.raises(exc):
        _good_sampler(max_proposals=max_proposals).sample(10, rng=0)


# ---------------------------------------------------------------------------------------------
# misbehaving callables
# ---------------------------------------------------------------------------------------------
class MyError(Exception):
    pass


@pytest.mark.parametrize("backend", BACKENDS)
def test_callable_exception_propagates_unchanged(backend):
    def boom(x):
        raise MyError("user code failed")

    s = rsft.RejectionSampler(boom, rsft.Normal(0.0, 2.0), log_M=2.5, backend=backend)
    with pytest.raises(MyError, match="user code failed"):
        s.sample(100, rng=41)


@pytest.mark.parametrize("backend", BACKENDS)
def test_callable_exception_on_later_chunk_propagates(backend):
    state = {"calls": 0}

    def flaky(x):
        state["calls"] += 1
        if state["calls"] >= 2:
            raise MyError("second chunk")
        return -0.5 * (x - 2.0) ** 2

    s = rsft.RejectionSampler(flaky, rsft.Normal(0.0, 2.0), log_M=2.5, backend=backend)
    with pytest.raises(MyError):
        s.sample(200_000, rng=42)  # needs more than one chunk
    assert state["calls"] == 2


BAD_RETURNS = [
    ("too-long", lambda x: np.zeros(x.shape[0] + 1), ValueError),
    ("too-short", lambda x: np.zeros(max(x.shape[0] - 1, 0)), ValueError),
    ("column", lambda x: np.zeros((x.shape[0], 1)), ValueError),
    ("2-d", lambda x: np.zeros((x.shape[0], 2)), ValueError),
    ("scalar", lambda x: 0.0, ValueError),
    ("all-nan", lambda x: np.full(x.shape, np.nan), ValueError),
    ("some-nan", lambda x: np.where(x > 0.5, np.nan, -0.5 * x * x), ValueError),
    ("plus-inf", lambda x: np.where(x > 0.5, np.inf, -0.5 * x * x), ValueError),
    ("strings", lambda x: np.array(["a"] * x.shape[0]), (TypeError, ValueError)),
    ("objects", lambda x: np.array([object()] * x.shape[0], dtype=object), (TypeError, ValueError)),
    ("none", lambda x: None, (TypeError, ValueError)),
    ("complex", lambda x: np.zeros(x.shape, dtype=complex), (TypeError, ValueError)),
]


@pytest.mark.parametrize("f, exc", [c[1:] for c in BAD_RETURNS], ids=[c[0] for c in BAD_RETURNS])
@pytest.mark.parametrize("backend", BACKENDS)
def test_callable_bad_return(f, exc, backend):
    s = rsft.RejectionSampler(f, rsft.Normal(0.0, 1.0), log_M=5.0, backend=backend)
    with pytest.raises(exc):
        s.sample(100, rng=43)


@pytest.mark.parametrize("backend", BACKENDS)
def test_callable_integer_return_is_accepted(backend):
    # integer log-densities are numeric: p~ = exp(0) = 1 on [0, 1] with proposal U(0, 1), M = 1
    s = rsft.RejectionSampler(lambda x: np.zeros(x.shape, dtype=np.int64), rsft.Uniform(0.0, 1.0),
                              log_M=0.0, backend=backend)
    x, st = s.sample_with_stats(1000, rng=44)
    assert x.shape == (1000,) and np.all((x >= 0.0) & (x <= 1.0))
    assert st.n_proposed == 1000  # every proposal accepted when p~ = M q exactly


@pytest.mark.parametrize("backend", BACKENDS)
def test_callable_cannot_corrupt_proposals(backend):
    # a callable that writes into its argument must not change the returned samples: either
    # the write fails (read-only input, ValueError) or it is made on a copy
    def vandal(x):
        try:
            x[:] = 1e6
        except ValueError:
            pass
        return -0.5 * (np.asarray(x) - 2.0) ** 2

    s = rsft.RejectionSampler(vandal, rsft.Normal(0.0, 2.0), log_M=3.0, backend=backend)
    x = s.sample(1000, rng=45)
    assert np.all(np.abs(x) < 1e5)


# ---------------------------------------------------------------------------------------------
# backends
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["fortran", "", "cuda"])
def test_unknown_backend_in_sampler(name):
    with pytest.raises(ValueError) as ei:
        _good_sampler(backend=name).sample(10, rng=0)
    msg = str(ei.value)
    assert "cython" in msg and "numpy" in msg, msg


def test_unknown_backend_in_set_backend_keeps_default():
    before = rsft.get_backend()
    with pytest.raises(ValueError) as ei:
        rsft.set_backend("fortran")
    assert "cython" in str(ei.value) and "numpy" in str(ei.value)
    assert rsft.get_backend() == before


def test_available_backends():
    av = rsft.available_backends()
    assert isinstance(av, tuple) and "numpy" in av
    assert set(av) <= {"cython", "numpy"}
    assert rsft.get_backend() in av


def test_set_backend_round_trip():
    original = rsft.get_backend()
    ref = _good_sampler(backend="numpy").sample(200, rng=51)
    try:
        for name in rsft.available_backends():
            rsft.set_backend(name)
            assert rsft.get_backend() == name
            # a sampler without backend= uses the process default; both backends give the same
            # samples for the same seed
            assert np.array_equal(_good_sampler().sample(200, rng=51), ref)
            assert np.array_equal(_good_sampler(backend=name).sample(200, rng=51), ref)
    finally:
        rsft.set_backend(original)
    assert rsft.get_backend() == original


# ---------------------------------------------------------------------------------------------
# LogConcaveSampler, Gamma and find_log_M
# ---------------------------------------------------------------------------------------------
def _minus_x4(x):
    return -x ** 4


@pytest.mark.parametrize("make, exc, match", [
    (lambda: rsft.LogConcaveSampler(3.0), TypeError, "target must be"),
    (lambda: rsft.LogConcaveSampler(_minus_x4), ValueError, "support=.*required"),
    (lambda: rsft.LogConcaveSampler(rsft.Normal(), support=(0, 1)), ValueError,
     "only with a callable"),
    (lambda: rsft.LogConcaveSampler(_minus_x4, support=(1.0,)), TypeError, "pair"),
    (lambda: rsft.LogConcaveSampler(_minus_x4, support=5), TypeError, "pair"),
    (lambda: rsft.LogConcaveSampler(_minus_x4, support=(2.0, 1.0)), ValueError, "low < high"),
    (lambda: rsft.LogConcaveSampler(_minus_x4, support=(1.0, 1.0)), ValueError, "more than one"),
    (lambda: rsft.LogConcaveSampler(_minus_x4, support=(np.nan, 1.0)), ValueError, "NaN"),
    (lambda: rsft.LogConcaveSampler(_minus_x4, support=("a", 1.0)), TypeError, "support"),
    (lambda: rsft.LogConcaveSampler(rsft.Normal(), efficiency=0.0), ValueError, "efficiency"),
    (lambda: rsft.LogConcaveSampler(rsft.Normal(), efficiency=1.0), ValueError, "efficiency"),
    (lambda: rsft.LogConcaveSampler(rsft.Normal(), efficiency=np.nan), ValueError,
     "efficiency"),
    (lambda: rsft.LogConcaveSampler(rsft.Normal(), efficiency="0.9"), TypeError, "efficiency"),
    (lambda: rsft.LogConcaveSampler(rsft.Beta(2, 2), mode=2.0), ValueError, "mode"),
    (lambda: rsft.LogConcaveSampler(rsft.Normal(), mode="0"), TypeError, "mode"),
    (lambda: rsft.LogConcaveSampler(rsft.Normal(), on_violation="ignore"), ValueError,
     "on_violation"),
    (lambda: rsft.LogConcaveSampler(rsft.Normal(), max_proposals=0), ValueError,
     "max_proposals"),
    (lambda: rsft.LogConcaveSampler(rsft.Normal(), backend="fortran"), ValueError, "fortran"),
    (lambda: rsft.LogConcaveSampler(lambda x: np.full(x.shape, np.nan), support=(0, 1)),
     ValueError, "nan"),
    (lambda: rsft.LogConcaveSampler(lambda x: np.zeros(3), support=(0, 1)), ValueError,
     "shape"),
    (lambda: rsft.LogConcaveSampler(lambda x: x.astype(str), support=(0, 1)), TypeError,
     "real numbers"),
    (lambda: rsft.LogConcaveSampler(lambda x: np.full(x.shape, -np.inf), support=(0, 1)),
     ValueError, "-inf at every"),
    (lambda: rsft.LogConcaveSampler(lambda x: 0.0 * x, support=(0, np.inf)), ValueError,
     "does not decay"),
    (lambda: rsft.LogConcaveSampler(lambda x: x, support=(-np.inf, np.inf)), ValueError,
     "does not decay"),
], ids=["target-type", "support-missing", "support-builtin", "support-short", "support-int",
        "support-reversed", "support-one-point", "support-nan", "support-str", "eff-0",
        "eff-1", "eff-nan", "eff-str", "mode-outside", "mode-str", "on-violation",
        "max-proposals", "backend", "logpdf-nan", "logpdf-shape", "logpdf-str",
        "logpdf-all-minus-inf", "flat-half-line", "linear-line"])
def test_log_concave_sampler_bad_input(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


@pytest.mark.parametrize("make, exc", [
    (lambda: rsft.find_log_M(3.0, rsft.Normal()), TypeError),
    (lambda: rsft.find_log_M(_minus_x4, rsft.Beta(2, 2)), TypeError),       # not a proposal
    (lambda: rsft.find_log_M(_minus_x4, "normal"), TypeError),
    (lambda: rsft.find_log_M(_minus_x4, rsft.Normal(), bounds=(1.0, 0.0)), ValueError),
    (lambda: rsft.find_log_M(_minus_x4, rsft.Normal(), bounds=(np.nan, 1.0)), ValueError),
    (lambda: rsft.find_log_M(_minus_x4, rsft.Normal(), bounds=3), TypeError),
    (lambda: rsft.find_log_M(lambda x: np.full(x.shape, np.nan), rsft.Normal()), ValueError),
    (lambda: rsft.find_log_M(lambda x: x[:2], rsft.Normal()), ValueError),
    # no envelope: heavier tails than the proposal, or mass where the proposal has none
    (lambda: rsft.find_log_M(lambda x: -np.abs(x), rsft.Normal()), rsft.NoEnvelopeError),
    (lambda: rsft.find_log_M(_minus_x4, rsft.Exponential()), rsft.NoEnvelopeError),
    (lambda: rsft.find_log_M(lambda x: np.full(x.shape, -np.inf), rsft.Normal()),
     rsft.NoEnvelopeError),
], ids=["target-number", "proposal-beta", "proposal-str", "bounds-reversed", "bounds-nan",
        "bounds-int", "logpdf-nan", "logpdf-shape", "heavier-tail", "outside-support",
        "all-minus-inf"])
def test_find_log_M_bad_input(make, exc):
    with pytest.raises(exc):
        make()


def test_gamma_pairs_without_envelope_are_refused():
    for target, proposal in [(rsft.Gamma(3.0), rsft.Gamma(2.0)),      # log x left over
                             (rsft.Gamma(2.0), rsft.Gamma(3.0)),      # 1/x at 0
                             (rsft.Gamma(0.5), rsft.Exponential(1.0)),
                             (rsft.Gamma(2.0, 2.0), rsft.Exponential(1.0)),
                             (rsft.Normal(), rsft.Gamma(2.0))]:
        with pytest.raises(rsft.NoEnvelopeError):
            rsft.RejectionSampler(target, proposal)


def test_far_too_large_log_M_for_a_builtin_pair_warns():
    with pytest.warns(rsft.LargeLogMWarning, match=r"exact log M = 1\.3598"):
        s = _good_sampler(log_M=30.0)
    assert s.log_M == 30.0 and abs(s.exact_log_M - (LOG2 + 2.0 / 3.0)) < 1e-9
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _good_sampler(log_M=LOG2 + 2.0 / 3.0 + 0.69)     # within log 2: no warning
        _article_pair(log_M=LOG2)                        # no envelope at all: no warning


# ---------------------------------------------------------------------------------------------
# Reward acceptors on grouped rewards: every new entry point, clear messages
# ---------------------------------------------------------------------------------------------

def _every_acceptor():
    return [rsft.Threshold(0.0), rsft.Quantile(0.5), rsft.TopK(1),
            rsft.StatisticalRS(1.0, r_max=5.0), rsft.RSO(1.0, 1)]


GROUPED_BAD = [
    (dict(r=[0.0, np.nan], groups=[0, 0]), ValueError, r"finite; r\[1\] = nan"),
    (dict(r=[0.0, np.inf], groups=[1, 0]), ValueError, r"finite; r\[1\] = inf"),
    (dict(r=[0.0, 1.0], groups=[0.0, 1.0]), TypeError, "groups must be integers"),
    (dict(r=[0.0, 1.0], groups=[True, False]), TypeError, "groups must be integers"),
    (dict(r=[0.0, 1.0], groups=[0, 1, 2]), ValueError,
     r"groups must have the rewards' shape \(2,\), got shape \(3,\)"),
    (dict(r=[[0.0, 1.0]], groups=[0, 1]), ValueError, "with groups=, rewards must be 1-D"),
    (dict(r=[0.0, 1.0], groups=[0, 1], keys=[1.5, 2.0]), TypeError, "keys must be integers"),
    (dict(r=[0.0, 1.0], groups=[0, 1], keys=[[1, 2]]), ValueError,
     "keys must have the rewards' shape"),
    (dict(r=[0.0, 1.0], groups=np.array([0, 2 ** 64 - 1], np.uint64)), ValueError,
     "groups must fit in int64"),
    (dict(r=[[0.0, np.nan]]), ValueError, r"finite; r\[0, 1\] = nan"),
    (dict(r=np.zeros(3)), ValueError, "pass groups="),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case,exc,msg", GROUPED_BAD)
def test_grouped_acceptors_refuse_bad_input(case, exc, msg, backend):
    case = dict(case)
    r = np.asarray(case.pop("r"), dtype=float)
    for acc in _every_acceptor():
        with pytest.raises(exc, match=msg):
            acc.accept(r, rng=0, backend=backend, **case)


def test_new_acceptor_parameters_are_checked():
    for cls in (lambda k: rsft.RSO(1.0, k), lambda k: rsft.TopK(k)):
        with pytest.raises(ValueError, match="k must be >= 1"):
            cls(0)
        with pytest.raises(TypeError, match="k must be a non-negative integer"):
            cls(2.5)
    for beta in (0.0, -1.0, np.nan, np.inf):
        with pytest.raises(ValueError, match="beta must be finite and > 0"):
            rsft.RSO(beta, 1)
    for q in (-0.1, 1.5, np.nan):
        with pytest.raises(ValueError, match=r"q must be in \[0, 1\]"):
            rsft.Quantile(q)
    with pytest.raises(TypeError, match="q must be a real number"):
        rsft.Quantile("high")
    with pytest.raises(ValueError, match=r"q\(3\) \(the schedule's value\) must be in \[0, 1\]"):
        rsft.Quantile(lambda t: 0.5 + 0.2 * t).accept(np.zeros((1, 3)), round=3)
    for acc in (rsft.Threshold, rsft.Quantile):
        with pytest.raises(ValueError, match="min_per_group must be >= 0"):
            acc(0.5, min_per_group=-1)
        with pytest.raises(TypeError, match="min_per_group must be a non-negative integer"):
            acc(0.5, min_per_group=1.5)
    with pytest.raises(ValueError, match=r"r_max has 3 entries but the rewards have 2 groups"):
        rsft.StatisticalRS(1.0, r_max=[1.0, 2.0, 3.0]).accept([0.0, 1.0], rng=0, groups=[4, 5])
    with pytest.raises(ValueError, match=r"reward r\[1\] = 2.0 exceeds r_max = 1.0"):
        rsft.StatisticalRS(1.0, r_max=1.0).accept([0.0, 2.0], rng=0, groups=[4, 5])
    with pytest.raises(TypeError, match="matched_random needs the AcceptResult"):
        rsft.acceptors.matched_random(np.zeros((2, 2), bool), 0)
    with pytest.raises(TypeError, match="rng must be"):
        rsft.RSO(1.0, 1).accept([1.0], rng="seed", groups=[0])
    for acc in _every_acceptor():
        for kw, exc, msg in [({"n_threads": 0}, ValueError, "n_threads"),
                             ({"n_threads": 1000}, ValueError, "n_threads"),
                             ({"n_threads": 2.0}, TypeError, "n_threads"),
                             ({"block_size": 0}, ValueError, "block_size must be >= 1"),
                             ({"block_size": "8"}, TypeError, "block_size")]:
            with pytest.raises(exc, match=msg):
                acc.accept(np.zeros((2, 3)), rng=0, **kw)
