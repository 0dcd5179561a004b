"""Regression tests for defects found in review (each failed before its fix)."""
import numpy as np
import pytest

import rsft
from rsft.finetune import RSFTTrainer


def test_softmax_policy_refuses_non_finite_logits(backend):
    p = rsft.SoftmaxPolicy(2, 4)
    p.backend = backend
    with pytest.raises(ValueError, match="not all finite"):
        p.sample(np.array([[np.nan, 0.0], [0.0, 0.0]]), 5, 0)
    p.params[0][0, 0] = np.inf
    with pytest.raises(ValueError, match="not all finite"):
        p.sample(np.ones((1, 2)), 5, 0)


def test_reference_sharing_the_policy_is_refused():
    pol = rsft.SoftmaxPolicy(3, 5)
    X = np.random.default_rng(0).normal(size=(4, 3))

    def reward(X_, a, rng):
        return a.astype(float)

    with pytest.raises(ValueError, match="shares parameter arrays"):
        RSFTTrainer(pol, reward, rsft.StatisticalRS(0.5, r_max=4.0), X, reference=pol,
                    proposal="reference")


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


def test_zero_dim_array_parameters_of_acceptors():
    r = np.array([[1.0, 2.0, 3.0]])
    a = rsft.StatisticalRS(1.0, r_max=np.array(20.0)).accept(r, rng=0)
    b = rsft.StatisticalRS(1.0, r_max=20.0).accept(r, rng=0)
    assert np.array_equal(a.mask, b.mask)
    t = rsft.Threshold(np.array(2.0)).accept(r)
    assert t.mask.tolist() == [[False, True, True]]
