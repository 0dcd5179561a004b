"""The inline PCG64 path of the compiled kernels (see src/rsft/_kernels/draws.h).

On an exact ``numpy.random.PCG64`` the compiled fills step the generator inline (and product
mode draws its proposals and uniforms beside the scan); any other bit generator, a PCG64
subclass included, goes through ``bitgen_t``'s function pointers. Both must give numpy's own
streams, the numpy backend's samples and the same final state, for every length.
"""
import math
import os
import platform
import subprocess
import sys

import numpy as np
import pytest

import rsft
from rsft import _core
from rsft._program import Proposal, Row


class SlowPCG64(np.random.PCG64):
    """A PCG64 subclass: same stream, but the kernels must take the generic path."""


def _gen(seed, slow=False):
    return np.random.Generator((SlowPCG64 if slow else np.random.PCG64)(seed))


def _state(rng):
    """The generator's state without the class name (SlowPCG64 vs PCG64)."""
    st = dict(rng.bit_generator.state)
    del st["bit_generator"]
    return st


def test_fast_path_is_on_where_it_can_be():
    """On 64-bit gcc/clang platforms the fast path must not switch itself off silently."""
    if os.environ.get("RSFT_PCG64_FAST", "1") == "0":
        assert _core.PCG64_INLINE is False
    elif platform.machine().lower() in ("x86_64", "amd64", "aarch64", "arm64"):
        assert _core.PCG64_INLINE is True
    assert _core._probe_pcg64_fast() is _core.PCG64_INLINE


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 255, 256, 257, 1000, 65537])
@pytest.mark.parametrize("code,method", [
    (Proposal.NORMAL, lambda r, n: r.standard_normal(n)),
    (Proposal.UNIFORM, lambda r, n: r.random(n)),
])
def test_fills_of_every_length_are_numpys(n, code, method):
    params = np.array([0.0, 1.0, 0.0, 0.0])
    ref = _gen(n)
    expected = method(ref, n)
    for slow in (False, True):
        rng = _gen(n, slow)
        out = np.empty(n)
        _core.draw_proposals(rng, code, params, out)
        assert np.array_equal(out, expected)
        assert _state(rng) == _state(ref)


def _sample(target, proposal, backend, rng, n, **kw):
    s = rsft.RejectionSampler(target, proposal, backend=backend, **kw)
    x, stats = s.sample_with_stats(n, rng)
    return x, (stats.n_proposed, stats.n_accepted), _state(rng)


PAIRS = [
    (rsft.Normal(2, 1), rsft.Normal(0, 2)),          # normal fill, quadratic two-pass loop
    (rsft.Beta(2, 5), rsft.Uniform(0, 1)),           # product mode, fused draws
    (rsft.Beta(3, 1), rsft.Uniform(0, 1)),           # product mode, one exponent zero
    (rsft.Beta(2, 5), rsft.Uniform(-0.5, 1.5)),      # product mode, proposal beyond the support
    (rsft.Beta(2.5, 3.5), rsft.Uniform(0, 1)),       # log mode with a uniform proposal
]


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: f"{p[0]!r}/{p[1]!r}")
@pytest.mark.parametrize("n", [1, 2, 5, 63, 64, 255, 256, 257, 1000, 70000])
def test_fast_generic_and_numpy_agree(pair, n):
    """n spans one proposal, partial and whole blocks (256) and several chunks (65536)."""
    seed = 1000 + n
    runs = [_sample(*pair, "cython", _gen(seed), n),
            _sample(*pair, "cython", _gen(seed, slow=True), n),
            _sample(*pair, "numpy", _gen(seed), n)]
    for x, counts, state in runs[1:]:
        assert np.array_equal(x, runs[0][0])
        assert counts == runs[0][1]
        assert state == runs[0][2]


def test_product_mode_is_what_the_fused_path_runs():
    s = rsft.RejectionSampler(rsft.Beta(2, 5), rsft.Uniform(0, 1))
    assert s._prog.shape[0] == 1 and s._prog[0, Row.PRODUCT_MODE] == 1.0
    s = rsft.RejectionSampler(rsft.Beta(2, 5), rsft.Uniform(-0.5, 1.5))
    assert s._prog[0, Row.PRODUCT_MODE] == 1.0


def test_fused_violation_and_budget_match_numpy():
    t, q = rsft.Beta(2, 5), rsft.Uniform(0, 1)
    log_M = math.log(2.0)                      # the true M is 2.4576: violated
    res = []
    for backend, slow in (("cython", False), ("cython", True), ("numpy", False)):
        rng = _gen(8, slow)
        with pytest.raises(rsft.EnvelopeViolationError) as ei:
            rsft.RejectionSampler(t, q, log_M=log_M, backend=backend).sample(5000, rng)
        viol = (ei.value.x, _state(rng))
        rng = _gen(8, slow)
        with pytest.warns(rsft.EnvelopeViolationWarning):
            x = rsft.RejectionSampler(t, q, log_M=log_M, on_violation="warn",
                                      backend=backend).sample(5000, rng)
        warned = (x, _state(rng))
        rng = _gen(8, slow)
        with pytest.raises(rsft.ProposalBudgetExceeded) as eb:   # 5000 M = 12288 on average:
            rsft.RejectionSampler(t, q, max_proposals=12_300,    # seed 8 runs out
                                  backend=backend).sample(5000, rng)
        budget = (eb.value.n_proposed, eb.value.n_accepted, _state(rng))
        res.append((viol, warned, budget))
    for viol, warned, budget in res[1:]:
        assert viol == res[0][0]
        assert np.array_equal(warned[0], res[0][1][0]) and warned[1] == res[0][1][1]
        assert budget == res[0][2]
    assert res[0][2][0] == 12_300


def test_buffered_half_word_and_advanced_state_are_respected():
    """PCG64 keeps a buffered 32-bit half (has_uint32); the inline path must leave it alone."""
    states = []
    for backend in ("cython", "numpy"):
        rng = _gen(3)
        rng.bit_generator.advance(12345)
        rng.integers(0, 2**32, dtype=np.uint32)          # leaves half a word buffered
        assert rng.bit_generator.state["has_uint32"] == 1
        x = rsft.RejectionSampler(rsft.Beta(2, 5), rsft.Uniform(0, 1),
                                  backend=backend).sample(777, rng)
        y = rng.integers(0, 2**32, dtype=np.uint32)      # consumes the buffered half
        states.append((x, y, rng.bit_generator.state))
    assert np.array_equal(states[0][0], states[1][0])
    assert states[0][1] == states[1][1] and states[0][2] == states[1][2]


@pytest.mark.parametrize("make", [lambda b: rsft.TopK(3, backend=b),
                                  lambda b: rsft.StatisticalRS(0.5, 3.0, backend=b)],
                         ids=["TopK", "StatisticalRS"])
def test_acceptor_uniforms_fast_and_generic_agree(make):
    r = np.random.default_rng(0).uniform(0, 3, size=(37, 11))
    runs = []
    for backend, slow in (("cython", False), ("cython", True), ("numpy", False)):
        rng = _gen(21, slow)
        runs.append((make(backend).accept(r, rng=rng).mask, _state(rng)))
    for mask, st in runs[1:]:
        assert np.array_equal(mask, runs[0][0])
        assert st == runs[0][1]


def test_env_variable_turns_the_fast_path_off():
    code = ("import numpy as np, rsft; from rsft import _core; "
            "x = rsft.RejectionSampler(rsft.Beta(2, 5), rsft.Uniform(0, 1), backend='cython')"
            ".sample(1000, np.random.default_rng(5)); "
            "print(_core.PCG64_INLINE, float(x.sum()).hex())")
    env = dict(os.environ, RSFT_PCG64_FAST="0")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    x = rsft.RejectionSampler(rsft.Beta(2, 5), rsft.Uniform(0, 1),
                              backend="numpy").sample(1000, np.random.default_rng(5))
    assert out == ["False", float(x.sum()).hex()]
