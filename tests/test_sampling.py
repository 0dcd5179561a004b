"""rsft.sampling: RejectionSampler against independent oracles (scipy.stats and closed forms).

For every built-in target family (Normal, Uniform, Exponential, Laplace, Beta,
TruncatedNormal incl. one-sided and far-tail, StudentT, Mixture) with a suitable built-in
proposal, on every available backend:

* the accepted samples pass a Kolmogorov-Smirnov test against scipy's cdf of the target
  (n = 20000 samples, fixed seeds, reject at ALPHA = 1e-3) and the sample mean lies within
  5 standard errors of the exact mean;
* the acceptance rate n_accepted / n_proposed lies within 4 standard errors of 1/M
  (see ``_acceptance_se`` for the formula); for exact-M pairs M is the closed form, for every
  pair (mixtures included) M = exp(sampler.log_M), since for a normalised target and ANY valid
  envelope M the acceptance probability per proposal is int q * p/(M q) = 1/M;
(The exactness of ``log_M`` itself is tested in test_envelope.py.)

A callable (unnormalised) target is checked the same way, and the number of times it is called
is counted (it must be called once per chunk, not once per proposal).
"""
from __future__ import annotations

import math
import signal
import zlib

import numpy as np
import pytest
from scipy import stats

import rsft
from _oracle_pairs import EXACT_PAIRS, LOG_2PI, PAIR_IDS, PAIRS, _norm

BACKENDS = rsft.available_backends()

N = 20_000
ALPHA = 1e-3     # KS significance level
ACC_Z = 4.0      # acceptance rate: within 4 standard errors of 1/M
MEAN_Z = 5.0     # sample mean: within 5 standard errors of the exact mean


def _seed(*parts) -> int:
    return zlib.crc32("/".join(map(str, parts)).encode())


def _acceptance_se(p: float, n: int) -> float:
    """Standard error of the acceptance rate r = n / N_proposed at the n-th acceptance.

    N_proposed - n is negative binomial: E N = n/p, Var N = n (1 - p) / p^2. By the delta
    method Var(n/N) ~= (p^2/n)^2 Var N = p^2 (1 - p) / n, so SE = p * sqrt((1 - p) / n) --
    the same as the binomial SE sqrt(p (1 - p) / N) evaluated at N = n / p.
    """
    return p * math.sqrt((1.0 - p) / n)


# (id, target, proposal, scipy target, scipy proposal, exact log M or None for an upper bound)


# Pairs without a handy closed form: log_M (documented as exact for built-in pairs) against
# the numerical supremum of log p - log q from scipy densities (grid + Brent refinement,
# accurate to ~1e-13 here).


@pytest.mark.parametrize("name, target, proposal, tref, qref, exact", PAIRS, ids=PAIR_IDS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_samples_match_scipy(name, target, proposal, tref, qref, exact, backend):
    s = rsft.RejectionSampler(target(), proposal(), backend=backend)
    ref = tref()
    x, st = s.sample_with_stats(N, rng=_seed(name))
    assert isinstance(x, np.ndarray) and x.shape == (N,) and x.dtype == np.float64
    assert np.all(np.isfinite(x))
    lo, hi = (float(v) for v in ref.support())
    assert np.all((x >= lo) & (x <= hi))

    # KS test at level ALPHA against the target's scipy cdf
    ks = stats.kstest(x, ref.cdf)
    assert ks.pvalue > ALPHA, (ks.statistic, ks.pvalue)
    # mean within MEAN_Z standard errors sigma / sqrt(N) (all targets here have finite variance)
    se_mean = math.sqrt(float(ref.var()) / N)
    assert abs(x.mean() - float(ref.mean())) <= MEAN_Z * se_mean

    # counts
    assert st.n_accepted == N
    assert st.n_proposed >= N
    assert st.acceptance_rate == pytest.approx(st.n_accepted / st.n_proposed, rel=1e-15)
    # no proposal exceeded the envelope
    assert st.max_log_ratio <= 0.0

    # acceptance rate within ACC_Z standard errors of 1/M, M = exp(sampler.log_M) (valid for
    # any envelope of a normalised target) ...
    p = math.exp(-s.log_M)
    assert abs(st.acceptance_rate - p) <= ACC_Z * _acceptance_se(p, N) + 1e-12, (
        st.acceptance_rate, p)
    # ... and, for exact-M pairs, of 1/M with M the closed form
    if exact is not None:
        p_exact = math.exp(-exact)
        assert abs(st.acceptance_rate - p_exact) <= ACC_Z * _acceptance_se(p_exact, N) + 1e-12


# ---------------------------------------------------------------------------------------------
# callable (unnormalised) target
# ---------------------------------------------------------------------------------------------
class CountingLogpdf:
    """Unnormalised N(2, 1) log-density -(x-2)^2/2 that records how it is called."""

    def __init__(self):
        self.calls = 0
        self.sizes = []
        self.bad_args = []

    def __call__(self, x):
        self.calls += 1
        if not (isinstance(x, np.ndarray) and x.ndim == 1 and x.dtype == np.float64):
            self.bad_args.append((type(x), getattr(x, "shape", None), getattr(x, "dtype", None)))
        self.sizes.append(np.size(x))
        return -0.5 * (np.asarray(x) - 2.0) ** 2


# log p~(x) = -(x-2)^2/2 = log N(x; 2, 1) + log sqrt(2 pi), so with proposal N(0, 2):
# sup log p~/q = [log 2 + 2/3] + (1/2) log(2 pi)  (the normalised sup plus log Z, Z = sqrt(2pi)),
# attained at x* = 8/3. A margin of 1e-9 keeps rounding at x* from looking like a violation.
CALLABLE_LOG_Z = 0.5 * LOG_2PI
CALLABLE_LOG_M = math.log(2.0) + 2.0 / 3.0 + CALLABLE_LOG_Z + 1e-9


def test_callable_log_M_derivation():
    # the closed form above really is the sup of log p~ - log q (checked with scipy densities)
    def g(x):
        return -0.5 * (x - 2.0) ** 2 - _norm.logpdf(x, 0.0, 2.0)
    assert g(8.0 / 3.0) == pytest.approx(CALLABLE_LOG_M - 1e-9, rel=1e-14)
    xs = np.linspace(-20.0, 20.0, 400_001)
    assert g(xs).max() <= CALLABLE_LOG_M


@pytest.mark.parametrize("backend", BACKENDS)
def test_callable_target_samples_and_calls(backend):
    f = CountingLogpdf()
    s = rsft.RejectionSampler(f, rsft.Normal(0.0, 2.0), log_M=CALLABLE_LOG_M, backend=backend)
    assert f.calls == 0  # nothing evaluated before sampling
    x, st = s.sample_with_stats(N, rng=_seed("callable", backend))
    assert x.shape == (N,) and x.dtype == np.float64
    ks = stats.kstest(x, _norm(2.0, 1.0).cdf)
    assert ks.pvalue > ALPHA, (ks.statistic, ks.pvalue)
    assert abs(x.mean() - 2.0) <= MEAN_Z * math.sqrt(1.0 / N)

    # called once per chunk with a 1-D float64 array, not once per proposal:
    # fewer than N/100 calls for N = 20000 (~78000 proposals at acceptance 0.2567)
    assert f.bad_args == []
    assert f.calls >= 1 and f.calls < N / 100, f.calls
    # every examined proposal was evaluated (chunks may overshoot the n-th acceptance)
    assert sum(f.sizes) >= st.n_proposed
    assert st.n_accepted == N
    assert st.max_log_ratio <= 0.0

    # unnormalised target: acceptance probability Z / M~ = sqrt(2 pi) / exp(log_M)
    p = math.exp(CALLABLE_LOG_Z - CALLABLE_LOG_M)
    assert p == pytest.approx(1.0 / (2.0 * math.exp(2.0 / 3.0)), rel=1e-8)
    assert abs(st.acceptance_rate - p) <= ACC_Z * _acceptance_se(p, N)


@pytest.mark.parametrize("backend", BACKENDS)
def test_callable_matches_builtin_target_distribution(backend):
    # the same target given as a built-in and as a callable: both pass the KS test against
    # each other (two-sample KS at level ALPHA)
    a = rsft.RejectionSampler(rsft.Normal(2.0, 1.0), rsft.Normal(0.0, 2.0),
                              backend=backend).sample(N, rng=_seed("builtin-vs-callable", 1))
    b = rsft.RejectionSampler(lambda x: -0.5 * (x - 2.0) ** 2, rsft.Normal(0.0, 2.0),
                              log_M=CALLABLE_LOG_M, backend=backend
                              ).sample(N, rng=_seed("builtin-vs-callable", 2))
    assert stats.ks_2samp(a, b).pvalue > ALPHA


@pytest.mark.parametrize("backend", BACKENDS)
def test_user_log_M_looser_than_exact_is_honoured(backend):
    # any M >= sup p/q is a valid envelope: samples stay exact, acceptance drops to 1/M
    log_M = 2.0  # > log 2 + 2/3 ~= 1.3598
    s = rsft.RejectionSampler(rsft.Normal(2.0, 1.0), rsft.Normal(0.0, 2.0), log_M=log_M,
                              backend=backend)
    assert s.log_M == log_M
    x, st = s.sample_with_stats(N, rng=_seed("looser", backend))
    assert stats.kstest(x, _norm(2.0, 1.0).cdf).pvalue > ALPHA
    p = math.exp(-log_M)
    assert abs(st.acceptance_rate - p) <= ACC_Z * _acceptance_se(p, N)
    assert st.max_log_ratio <= 1.3598 - log_M + 1e-3


def test_default_budget_does_not_overflow():
    s = rsft.RejectionSampler(lambda x: -0.5 * x * x, rsft.Normal(0, 1), log_M=700.0)
    assert s._budget(100_000) == 10**9 + 1000 * 100_000


def test_callable_receives_arrays_it_may_keep(backend):
    seen, copies = [], []

    def lp(x):
        seen.append(x)
        copies.append(x.copy())
        return -0.5 * x * x

    rsft.RejectionSampler(lp, rsft.Normal(0, 1), log_M=1.0, backend=backend).sample(100_000, 0)
    assert len(seen) > 1
    assert all(np.array_equal(a, b) for a, b in zip(seen, copies))


def test_help_explains_choosing_a_proposal_and_log_M():
    """help(RejectionSampler) says how to pick q and log M for a custom target, and names
    public objects only (no private module a user cannot rely on)."""
    import pydoc
    import re
    text = pydoc.render_doc(rsft.RejectionSampler, renderer=pydoc.plaintext)
    for phrase in ["tails must be at least as heavy", "Centre it near", "sup_x",
                   "log p(x) - log q(x)", "bound it numerically", "envelope watch",
                   "EnvelopeViolationError", "suggested_log_M", "NoEnvelopeError"]:
        assert phrase in text, phrase
    assert "_reference" not in text
    assert not re.search(r"rsft\._\w", text), re.findall(r"rsft\._\w+", text)


# ---------------------------------------------------------------------------------------------
# The blocked stream: its documented derivation, stats, failures and signals
# ---------------------------------------------------------------------------------------------

BLOCKED_PAIR = (rsft.Normal(2, 1), rsft.Normal(0, 2))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n_threads", [1, 2, 4])
def test_blocked_stream_is_the_documented_derivation(backend, n_threads):
    """Block b is a one-stream call of its length on rng.spawn(n_blocks)[b]; the counts add up
    over the blocks and max_log_ratio is their maximum."""
    s = rsft.RejectionSampler(*BLOCKED_PAIR, backend=backend)
    x, stats = s.sample_with_stats(2500, np.random.default_rng(8), n_threads=n_threads,
                                   block_size=1000)
    children = np.random.default_rng(8).spawn(3)
    parts = [s.sample_with_stats(m, child) for m, child in zip([1000, 1000, 500], children)]
    assert np.array_equal(x, np.concatenate([p[0] for p in parts]))
    assert stats.n_proposed == sum(p[1].n_proposed for p in parts)
    assert stats.n_accepted == 2500
    assert stats.max_log_ratio == max(p[1].max_log_ratio for p in parts)


@pytest.mark.parametrize("backend", BACKENDS)
def test_blocked_default_block_size(backend):
    s = rsft.RejectionSampler(*BLOCKED_PAIR, backend=backend)
    a = s.sample(70_000, rng=4, n_threads=2)
    assert np.array_equal(a, s.sample(70_000, rng=4, block_size=65536))
    first = s.sample(65536, np.random.default_rng(4).spawn(2)[0])
    assert np.array_equal(a[:65536], first)


@pytest.mark.parametrize("backend", BACKENDS)
def test_blocked_stream_leaves_the_generator_state_and_counts_children(backend):
    """Spawning does not draw: the bit generator keeps its state, while the seed sequence
    counts the children, so a second call with the same Generator gets new blocks."""
    s = rsft.RejectionSampler(*BLOCKED_PAIR, backend=backend)
    rng = np.random.default_rng(6)
    state = rng.bit_generator.state
    a = s.sample(300, rng, block_size=100)
    assert rng.bit_generator.state == state
    assert rng.bit_generator.seed_seq.n_children_spawned == 3
    b = s.sample(300, rng, block_size=100)
    assert not np.array_equal(a, b)
    assert np.array_equal(b[:100], s.sample(100, np.random.default_rng(6).spawn(4)[3]))


def _seedless_generator(seed):
    """A Generator whose bit generator has no SeedSequence (legacy MT19937 seeding)."""
    bit_generator = np.random.MT19937()
    bit_generator._legacy_seeding(seed)
    assert bit_generator.seed_seq is None
    return np.random.Generator(bit_generator)


def test_blocked_stream_without_a_seed_sequence():
    """The documented fallback: a SeedSequence seeded from four uint64 draws of rng spawns
    the children; both backends draw them and leave the same state."""
    results = []
    for backend, n_threads in [("numpy", 1), ("cython", 1), ("cython", 2)]:
        if backend not in BACKENDS:
            continue
        rng = _seedless_generator(9)
        s = rsft.RejectionSampler(*BLOCKED_PAIR, backend=backend)
        results.append((s.sample(900, rng, n_threads=n_threads, block_size=400),
                        rng.bit_generator.state))
    reference = _seedless_generator(9)
    seed = np.random.SeedSequence(reference.integers(0, 2**64, size=4, dtype=np.uint64))
    children = [np.random.Generator(np.random.MT19937(c)) for c in seed.spawn(3)]
    s = rsft.RejectionSampler(*BLOCKED_PAIR)
    expected = np.concatenate([s.sample(m, c) for m, c in zip([400, 400, 100], children)])
    for x, state in results:
        assert np.array_equal(x, expected)
        assert _same_state(state, reference.bit_generator.state)


def _same_state(a, b):
    return a["state"]["pos"] == b["state"]["pos"] and np.array_equal(a["state"]["key"],
                                                                     b["state"]["key"])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n_threads", [1, 3])
def test_blocked_violation_reports_the_first_failing_block(backend, n_threads):
    """M = 2 for N(2,1)/N(0,1) is no envelope: the error is the one of the first failing
    block in block order, with the same excess and x on every backend and thread count."""
    s = rsft.RejectionSampler(rsft.Normal(2, 1), rsft.Normal(0, 1), log_M=math.log(2),
                              backend=backend)
    with pytest.raises(rsft.EnvelopeViolationError) as got:
        s.sample(4000, rng=5, n_threads=n_threads, block_size=500)
    first_failing = None
    for child in np.random.default_rng(5).spawn(8):
        try:
            s.sample(500, child)   # one block as a one-stream call
        except rsft.EnvelopeViolationError as err:
            first_failing = err
            break
    assert first_failing is not None
    assert got.value.x == first_failing.x
    # numpy's SIMD log may differ from libm's by an ulp: the excess, not the proposal
    assert got.value.log_ratio == pytest.approx(first_failing.log_ratio, rel=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_blocked_budget_applies_per_block(backend):
    s = rsft.RejectionSampler(*BLOCKED_PAIR, max_proposals=3000, backend=backend)
    x = s.sample(1500, rng=2, n_threads=2, block_size=500)    # ~1950 proposals per block
    assert x.shape == (1500,)
    with pytest.raises(rsft.ProposalBudgetExceeded) as got:
        s.sample(1500, rng=2, n_threads=2, block_size=1500)
    assert got.value.max_proposals == 3000 and got.value.n_requested == 1500


class _Interrupted(Exception):
    pass


def _raise_interrupted(signum, frame):
    raise _Interrupted


@pytest.mark.parametrize("kw", [{}, {"n_threads": 2, "block_size": 50}],
                         ids=["one-stream", "blocked"])
def test_long_compiled_loop_honours_signals(kw):
    """A signal handler's exception (Ctrl-C's KeyboardInterrupt) stops a long GIL-free loop:
    with M = 1e6 the budget of 1e9 proposals would take many seconds; the timer fires at
    0.2 s and the handler's exception propagates instead of ProposalBudgetExceeded."""
    s = rsft.RejectionSampler(rsft.Normal(0, 1e-6), rsft.Normal(0, 1), backend="cython")
    previous = signal.signal(signal.SIGALRM, _raise_interrupted)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(_Interrupted):
            s.sample(1000, rng=0, **kw)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("name, target, proposal, tref, qref, exact", EXACT_PAIRS,
                         ids=[p[0] for p in EXACT_PAIRS])
def test_find_log_M_bounds_the_exact_envelope(name, target, proposal, tref, qref, exact):
    """find_log_M on the target's logpdf as a callable: at least the exact log M, above it
    by no more than the stated margin 1e-6 (1 + |log M|) (and the zoom's last bits)."""
    t, q = target(), proposal()
    log_M, x = rsft.find_log_M(t.logpdf, q)
    margin = 1e-6 * (1.0 + abs(exact))
    assert exact <= log_M <= exact + margin + 1e-9
    assert float(t.logpdf(x) - q.logpdf(x)) == pytest.approx(log_M - margin, abs=1e-9)


def test_find_log_M_on_a_custom_target_is_a_working_envelope():
    logp = lambda x: -x ** 4 + 0.5 * x       # unnormalised, no closed-form sup at hand
    log_M, x0 = rsft.find_log_M(logp, rsft.Normal(0, 1))
    s = rsft.RejectionSampler(logp, rsft.Normal(0, 1), log_M=log_M)
    x, st = s.sample_with_stats(N, rng=_seed("find-log-M"))
    assert st.max_log_ratio <= 0.0                   # the watch saw no proposal above it
    assert abs(4 * x0 ** 3 - 0.5 - x0) < 1e-6         # d/dx (logp + x^2/2) = 0 there
    lo = rsft.LogConcaveSampler(logp, support=(-np.inf, np.inf)).sample(N, rng=1)
    assert stats.ks_2samp(x, lo).pvalue > ALPHA
