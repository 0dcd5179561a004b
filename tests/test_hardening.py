"""Regression tests of the hardening issue's reproducers: odd numbers get the right answer or a
clear ValueError/TypeError at construction, the same on both backends; hopeless budgets fail at
once; what `numpy.random.default_rng` accepts works as `rng`."""

import contextlib
import math
import pickle
import signal
import threading
import time
import warnings

import numpy as np
import pytest

import rsft
from rsft import _backend, _core
from rsft._reference import (acceptors as reference_acceptors, losses as reference_losses,
                             optim as reference_optim)

BACKENDS = ["cython", "numpy"]


@pytest.mark.parametrize("make", [
    lambda: rsft.Normal(0, 1e-170),
    lambda: rsft.StudentT(2, 0, 1e-170),
    lambda: rsft.TruncatedNormal(0, 1e-170, -1, 1),
    lambda: rsft.Laplace(0, 1e-310),
    lambda: rsft.Exponential(1e-310),
    lambda: rsft.Gamma(2.0, 1e-200),
    lambda: rsft.Normal(0, 1e200),
], ids=["normal", "student", "truncnorm", "laplace", "exponential", "gamma", "normal-huge"])
def test_scales_outside_the_float64_range_are_refused(make):
    with pytest.raises(ValueError, match=r"scale must be in \[1e-150, 1e\+150\]"):
        make()


def test_scales_at_the_ends_of_the_range_work():
    for scale in (1e-150, 1e150):
        x = rsft.Normal(0, scale).sample(5, rng=0)
        assert np.all(np.isfinite(x)) and np.isfinite(rsft.Normal(0, scale).logpdf(0.0))
    s = rsft.RejectionSampler(rsft.Normal(0, 1e-150), rsft.Laplace(0, 1e-150))
    assert math.isfinite(s.log_M)


def test_student_t_degrees_of_freedom_range():
    with pytest.raises(ValueError, match=r"df must be in \[1e-100, 1e\+100\]"):
        rsft.StudentT(1e300, 0, 1e5)
    with pytest.raises(ValueError, match=r"df must be in \[1e-100, 1e\+100\]"):
        rsft.StudentT(5e-324)         # "math domain error" from lgamma before (make fuzz)
    s = rsft.RejectionSampler(rsft.StudentT(1e100, 0, 2.0), rsft.StudentT(1e100, 0, 2.0))
    assert abs(s.log_M) < 1e-9


def test_truncated_normal_far_from_its_interval_is_refused_clearly():
    with pytest.raises(ValueError, match=r"has probability exp\(-inf\)"):
        rsft.TruncatedNormal(7.18e16, 0.05, -1.5, 0.05)


def test_mixture_with_huge_weights_normalises_them():
    m = rsft.Mixture([rsft.Normal(0, 1), rsft.Normal(3, 1)], [1e308, 1e308])
    assert np.array_equal(m.weights, [0.5, 0.5])
    s = rsft.RejectionSampler(m, rsft.Normal(1.5, 3))
    assert s.sample(10, rng=0).shape == (10,)


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_proposals_above_the_limit_is_refused_on_both_backends(backend):
    with pytest.raises(ValueError, match=r"max_proposals must be <= 4611686018427387904"):
        rsft.RejectionSampler(rsft.Normal(2, 1), rsft.Normal(0, 2), max_proposals=2 ** 63,
                              backend=backend)
    s = rsft.RejectionSampler(rsft.Normal(2, 1), rsft.Normal(0, 2), max_proposals=2 ** 62,
                              backend=backend)
    assert s.sample(3, rng=0).shape == (3,)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kw", [{}, {"block_size": 4}])
def test_hopeless_budget_fails_at_once_without_drawing(backend, kw):
    s = rsft.RejectionSampler(rsft.Laplace(0, 1e-100), rsft.Laplace(0, 1), backend=backend)
    rng = np.random.default_rng(0)
    before = rng.bit_generator.state
    with pytest.raises(rsft.ProposalBudgetExceeded, match=r"need [14]e\+10[01] proposals on "
                       "average") as err:
        s.sample(10, rng=rng, **kw)
    assert err.value.n_proposed == 0 and err.value.expected_proposals > 1e99
    assert rng.bit_generator.state == before       # nothing was drawn
    assert rng.bit_generator.seed_seq.n_children_spawned == 0
    again = pickle.loads(pickle.dumps(err.value))
    assert str(again) == str(err.value) and again.expected_proposals == err.value.expected_proposals


def test_a_budget_that_suffices_on_average_still_samples():
    # M = 100: 10 samples need 1000 proposals on average, within a budget of 5000
    s = rsft.RejectionSampler(rsft.Laplace(0, 0.01), rsft.Laplace(0, 1), max_proposals=5000)
    assert s.sample(10, rng=1).shape == (10,)
    with pytest.raises(rsft.ProposalBudgetExceeded, match="nothing was drawn"):
        rsft.RejectionSampler(rsft.Laplace(0, 0.01), rsft.Laplace(0, 1),
                              max_proposals=999).sample(10, rng=1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_rng_accepts_a_sequence_of_seeds_like_default_rng(backend):
    s = rsft.RejectionSampler(rsft.Normal(2, 1), rsft.Normal(0, 2), backend=backend)
    got = s.sample(50, rng=[1, 2])
    assert np.array_equal(got, s.sample(50, rng=np.random.default_rng([1, 2])))
    assert np.array_equal(got, s.sample(50, rng=(1, 2)))
    assert np.array_equal(got, s.sample(50, rng=np.array([1, 2], dtype=np.uint32)))
    for bad, exc in [([], TypeError), ([1.5], TypeError), ([[1, 2]], TypeError),
                     ([-1, 2], ValueError), ([True], TypeError), ("12", TypeError)]:
        with pytest.raises(exc, match="rng"):
            s.sample(3, rng=bad)


def test_float32_models_refuse_inputs_that_overflow_their_dtype():
    pol = rsft.SoftmaxPolicy(1, 2, dtype=np.float32)
    with pytest.raises(ValueError,
                       match=r"X\[0, 0\] = 1e\+39 overflows float32 .* model's dtype is float32"):
        pol.probs(np.array([[1e39]]))
    assert np.all(np.isfinite(pol.probs(np.array([[3e38]]))))
    assert np.array_equal(rsft.SoftmaxPolicy(1, 2).probs(np.array([[1e39]])), [[0.5, 0.5]])


def test_ragged_lists_get_a_message_naming_the_argument():
    with pytest.raises(ValueError, match="rewards must be a rectangular array"):
        rsft.TopK(1).accept([[1.0, 2.0], [3.0]])


def test_fit_refuses_an_optimizer_over_other_arrays():
    model = rsft.LinearRegression(1)
    other = rsft.SGD([np.zeros(1), np.zeros(1)], lr=0.1)
    X, y = np.arange(4.0)[:, None], np.arange(4.0)
    with pytest.raises(ValueError, match="built over the model's own parameter arrays"):
        rsft.fit(model, X, y, rsft.MSE(), other, epochs=1)
    h = rsft.fit(model, X, y, rsft.MSE(), rsft.SGD(model.params, lr=0.1), epochs=3)
    assert h.shape == (3,) and model.coef[0] != 0.0


def _density_trainer(objective, **kw):
    sampler = rsft.RejectionSampler(rsft.Normal(2, 1), rsft.Normal(0, 2))
    x = np.zeros(1)
    return x, rsft.DensityTrainer(sampler, [x], objective, rsft.SGD([x], lr=0.1),
                                  batch_size=10, **kw)


def _nan_gradient_in_round_2(params, s):
    bad = np.nan if len(s) and _nan_gradient_in_round_2.calls == 2 else 0.0
    _nan_gradient_in_round_2.calls += 1
    return 0.0, [np.array([1.0 + bad])]


def test_trainers_refuse_non_finite_gradients_naming_the_round():
    _nan_gradient_in_round_2.calls = 0
    x, tr = _density_trainer(_nan_gradient_in_round_2)
    with pytest.raises(ValueError, match=r"round 2: the objective's gradient\[0\] is not finite"):
        tr.fit(5, rng=0)
    assert x[0] == pytest.approx(-0.2) and len(tr.history) == 2   # two good steps, then none
    _nan_gradient_in_round_2.calls = 0
    x, tr = _density_trainer(_nan_gradient_in_round_2, check_finite=False)
    tr.fit(5, rng=0)
    assert np.isnan(x[0])                                          # what the check prevents
    with pytest.raises(TypeError, match="check_finite must be True or False"):
        _density_trainer(_nan_gradient_in_round_2, check_finite="yes")


def test_rsft_trainer_refuses_parameters_that_became_non_finite():
    from rsft import _demos
    tr = _demos.bandit_trainer(1.0)
    tr.optimizer.param_groups[0]["lr"] = 1e308                     # diverges at once
    # the policy's own check (inside the round) or the trainer's after it
    with pytest.raises(ValueError, match=r"NaN or infinity|round 0: params\[\d\] is not finite"):
        with np.errstate(all="ignore"):
            tr.fit(3, rng=0)


@pytest.mark.parametrize("steps", [10 ** 400, 2 ** 63, -1])
def test_load_state_dict_refuses_step_counts_beyond_the_counters(steps):
    opt = rsft.Adam([np.zeros(2)], lr=0.1)
    opt.step([np.ones(2)])
    state = opt.state_dict()
    state["step"] = steps
    with pytest.raises(ValueError, match="invalid step count"):
        opt.load_state_dict(state)
    opt.step([np.ones(2)])              # nothing changed: it still steps
    assert opt.n_steps == 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_adam_with_eps_zero_matches_torch_nan_on_zero_gradients(backend):
    # documented: eps=0 and a coordinate whose gradients were all zero give 0/0 = NaN, as torch
    p = np.zeros(2)
    opt = rsft.Adam([p], lr=0.1, eps=0.0, backend=backend)
    with np.errstate(invalid="ignore"):
        opt.step([np.array([0.0, 1.0])])
    assert np.isnan(p[0]) and p[1] == pytest.approx(-0.1)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Lion"])
def test_nan_gradients_with_maximize_give_the_same_bits_on_both_backends(name):
    out = []
    for backend in BACKENDS:
        p = np.zeros(4)
        opt = getattr(rsft, name)([p], lr=0.1, maximize=True, backend=backend)
        with np.errstate(all="ignore"):
            opt.step([np.array([np.nan, 1.0, -np.nan, -2.0])])
        out.append(p.view(np.uint64).copy())
    assert np.array_equal(out[0], out[1])


@pytest.mark.parametrize("dtype, bits", [(np.float32, np.uint32), (np.float64, np.uint64)])
@pytest.mark.parametrize("maximize", [False, True])
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
@pytest.mark.parametrize("betas", [(0.0, 0.0), (0.9, 0.99)])
def test_lion_nan_gradients_give_the_same_bits_on_both_backends(dtype, bits, maximize,
                                                               weight_decay, betas):
    # found by make fuzz (float32): m = -inf then a +NaN gradient makes c = 0*(-inf) + NaN, a
    # sum of two NaNs of opposite signs; numpy returned the first's (-NaN), the compiled loop
    # (its operands commuted by the C compiler) the second's (+NaN). Every NaN an optimizer
    # stores is now the positive quiet NaN on both backends.
    nan, inf = np.nan, np.inf
    negative_nan = np.array(np.nan, dtype=dtype)
    negative_nan.view(bits)[...] |= bits(1) << bits(8 * negative_nan.itemsize - 1)
    grads = [np.array([-inf, inf, 1.0, -inf, 0.0, -0.0, 2.0, 5.0], dtype=dtype),
             np.array([nan, negative_nan, nan, 3.0, negative_nan, inf, -inf, 1.0], dtype=dtype),
             np.array([negative_nan, nan, -1.0, nan, nan, -inf, inf, -2.0], dtype=dtype)]
    out = []
    for backend in BACKENDS:
        p = np.array([0.5, -0.5, 1.0, -1.0, 0.0, negative_nan, 2.0, -3.0], dtype=dtype)
        short = p[:2].copy()        # the compiled loop's scalar code (the above: its SIMD code)
        opt = rsft.Lion([p, short], lr=0.1, betas=betas, weight_decay=weight_decay,
                        maximize=maximize, backend=backend)
        for g in grads:
            with np.errstate(all="ignore"):
                opt.step([g, g[:2].copy()])
            for q, st in zip((p, short), opt.state_dict()["state"]):
                m = np.asarray(st["exp_avg"], dtype=dtype)
                out.append((q.view(bits).copy(), m.view(bits).copy()))
    half = len(out) // 2
    for (pc, mc), (pn, mn) in zip(out[:half], out[half:]):
        assert np.array_equal(pc, pn), [hex(v) for v in pc ^ pn]
        assert np.array_equal(mc, mn), [hex(v) for v in mc ^ mn]
    p_last, m_last = out[half - 2]
    canonical = np.array(np.nan, dtype=dtype).view(bits)
    for a in (p_last, m_last):
        nan = np.isnan(a.view(dtype))
        assert nan.sum() >= 3 and np.all(a[nan] == canonical)


@pytest.mark.parametrize("dtype, bits", [(np.float32, np.uint32), (np.float64, np.uint64)])
@pytest.mark.parametrize("name, hp", [
    ("SGD", {"momentum": 0.5}), ("SGD", {"momentum": 0.5, "nesterov": True}),
    ("Adam", {"betas": (0.0, 0.0)}), ("Adam", {"betas": (0.0, 0.0), "amsgrad": True}),
    ("AdamW", {"betas": (0.0, 0.0), "weight_decay": 0.1}),
    ("RMSprop", {"momentum": 0.5, "centered": True}), ("RMSprop", {"alpha": 0.0}),
    ("Adagrad", {"weight_decay": 0.1}), ("Lion", {"betas": (0.0, 0.0)})])
def test_every_nan_an_optimizer_stores_is_the_positive_quiet_nan(name, hp, dtype, bits):
    # found by the property suite once it fed Lion NaNs again: Adam with betas (0, 0), a -inf
    # gradient then a +NaN one stored exp_avg = 0*(-inf) + NaN as -NaN on cython and +NaN on
    # numpy (float64). Both backends now store np.nan for every NaN.
    nan, inf = np.nan, np.inf
    steps = [[-inf, inf, 1.0, -inf, 0.0, 2.0, -1.0, 3.0],
             [nan, -nan, nan, 3.0, -nan, inf, 1.0, 2.0],
             [-nan, nan, -1.0, nan, nan, -inf, inf, -2.0]]
    out = []
    for backend in BACKENDS:
        params = [np.array([0.5, -0.5, 1.0, -1.0, 0.0, -nan, 2.0, -3.0], dtype=dtype),
                  np.array([0.5, -0.5], dtype=dtype)]      # SIMD code and scalar code
        opt = getattr(rsft, name)(params, lr=0.1, backend=backend, **hp)
        for g in steps:
            with np.errstate(all="ignore"):
                opt.step([np.array(g, dtype=dtype), np.array(g[:2], dtype=dtype)])
        state = [np.asarray(a, dtype=dtype) for st in opt.state_dict()["state"]
                 for a in st.values()]
        out.append([a.view(bits).copy() for a in params + state])
    canonical = np.array(np.nan, dtype=dtype).view(bits)
    for c, p in zip(*out):
        assert np.array_equal(c, p), [hex(v) for v in c ^ p]
        assert np.all(c[np.isnan(c.view(dtype))] == canonical)


# Found by the property suite (tests/test_properties.py)

@pytest.mark.parametrize("make", [lambda: rsft.Normal(10 ** 400, 1.0),
                                  lambda: rsft.Threshold(-10 ** 400),
                                  lambda: rsft.Adam([np.zeros(2)], lr=10 ** 400)],
                         ids=["normal-loc", "threshold-tau", "adam-lr"])
def test_integers_beyond_the_float64_range_are_refused_clearly(make):
    # float(10**400) raised a bare OverflowError ("int too large to convert to float")
    with pytest.raises(ValueError, match=r"in the float64 range .*got an integer of 401 digits"):
        make()


def test_log_concave_hat_figures_are_floats_on_both_backends():
    # the numpy twin of hat_table returned numpy floats: efficiency was np.float64 there
    for backend in BACKENDS:
        s = rsft.LogConcaveSampler(rsft.Beta(1, 2), backend=backend)
        for name in ("efficiency", "hat_area", "squeeze_area"):
            assert type(getattr(s, name)) is float, (backend, name)


@pytest.mark.parametrize("backend", BACKENDS)
def test_log_concave_max_proposals_limit_is_the_rejection_samplers(backend):
    # 2**63 gave OverflowError on cython and sampled on numpy
    with pytest.raises(ValueError, match=r"max_proposals must be <= 4611686018427387904"):
        rsft.LogConcaveSampler(rsft.Normal(0, 1), max_proposals=2 ** 63, backend=backend)
    s = rsft.LogConcaveSampler(rsft.Normal(0, 1), max_proposals=2 ** 62, backend=backend)
    assert s.sample(3, rng=0).shape == (3,)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("make", [lambda k: rsft.TopK(k), lambda k: rsft.RSO(0.5, k),
                                  lambda k: rsft.Threshold(1.0, min_per_group=k)],
                         ids=["topk-k", "rso-k", "min_per_group"])
def test_acceptor_counts_beyond_int64_are_refused(make, backend):
    # 2**63 gave OverflowError, with a different message on each backend
    with pytest.raises(ValueError, match=r"must be <= 9223372036854775807"):
        make(2 ** 63)
    r = np.array([0.5, 1.0, -np.inf, 2.0, 0.0, 1.0])
    res = make(2 ** 63 - 1).accept(r, rng=0, groups=[0, 0, 0, 1, 1, 1], backend=backend)
    assert np.array_equal(res.mask, np.isfinite(r))      # every valid candidate kept


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("loss", [rsft.MSE, rsft.BCEWithLogits])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_zero_weight_terms_are_exactly_zero(loss, reduction, backend):
    # (1e200 - 0)^2 * 0 was 0 * inf = NaN (issue 13, item 6); BCE: 1e308 - 2 * 1e308
    pred, target = np.array([1e200, 1e308, 1.0]), np.array([0.0, 2.0, 0.5])
    w = np.array([0.0, 0.0, 1.0])
    value, grad = loss(reduction=reduction, backend=backend).value_and_grad(pred, target, w)
    ref, ref_grad = loss(reduction="none", backend=backend).value_and_grad(
        pred[2:], target[2:])
    assert np.array_equal(grad[:2], [0.0, 0.0]) and np.all(np.isfinite(grad))
    if reduction == "none":
        assert np.array_equal(value, [0.0, 0.0, ref[0]])
    else:
        assert value == pytest.approx(ref[0] / 3 if reduction == "mean" else ref[0], rel=1e-15)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_zero_weight_rows_of_softmax_cross_entropy_are_exactly_zero(reduction, backend):
    # a logit gap of 2e308 overflows the row's loss to inf; times weight 0 it was NaN
    z = np.array([[1e308, -1e308], [0.5, 0.2]])
    ce = rsft.SoftmaxCrossEntropy(reduction=reduction, backend=backend)
    for target in (np.array([1, 0]), np.array([[0.0, 1.0], [1.0, 0.0]])):
        value, grad = ce.value_and_grad(z, target, np.array([0.0, 1.0]))
        ref, _ = rsft.SoftmaxCrossEntropy(reduction="none", backend=backend).value_and_grad(
            z[1:], target[1:])
        assert np.array_equal(grad[0], [0.0, 0.0]) and np.all(np.isfinite(grad))
        if reduction == "none":
            assert np.array_equal(value, [0.0, ref[0]])
        else:       # mean: over the weights with labels, over the rows with probabilities
            mean_of = 1.0 if target.ndim == 1 else 2.0
            assert value == pytest.approx(ref[0] / (mean_of if reduction == "mean" else 1.0),
                                          rel=1e-15)


@pytest.mark.parametrize("make", [lambda: rsft.Beta(1e308, 3.0), lambda: rsft.Beta(2.0, 1e101),
                                  lambda: rsft.Gamma(1e308)], ids=["beta-a", "beta-b", "gamma"])
def test_shape_parameters_whose_lgamma_overflows_are_refused(make):
    # Beta(1e308, 3) and Gamma(1e308) raised OverflowError 'math range error' (lgamma)
    with pytest.raises(ValueError, match=r"must be in \(0, 1e\+100\]"):
        make()
    assert np.all(np.isfinite(rsft.Gamma(1e100).sample(2, rng=0)))


# ---------------------------------------------------------------------------------------------
# Found by the property suite's second round (schedules, find_log_M, rsft.dask)
# ---------------------------------------------------------------------------------------------
#: sup over z of log N(z) - log Cauchy(z) = log(pi / sqrt(2 pi)) + log 2 - 1/2, at z = +-1
NORMAL_OVER_CAUCHY = math.log(math.pi / math.sqrt(2 * math.pi)) + math.log(2.0) - 0.5


@pytest.mark.parametrize("scale", [1.0, 1e-100, 1e-150, 1e150])
def test_exact_log_m_is_scale_free(scale):
    """log M of a pair depends on the ratio of its scales only; at 1e-100 the stationary
    polynomial's coefficients overflowed and log M was the value at x = 0 (0.2258)."""
    s = rsft.RejectionSampler(rsft.Normal(0, scale), rsft.StudentT(1, 0, scale))
    assert s.log_M == pytest.approx(NORMAL_OVER_CAUCHY, rel=1e-9)
    log_m, x = rsft.find_log_M(rsft.Normal(0, scale), rsft.StudentT(1, 0, scale))
    assert log_m == pytest.approx(NORMAL_OVER_CAUCHY, rel=1e-5)
    assert abs(x) == pytest.approx(scale, rel=1e-3)


def test_exact_log_m_of_a_narrow_target_far_from_the_proposal():
    """Coefficients 1e10 and 1e-312 in one stationary polynomial: LinAlgError before; now the
    bound at the target's mode (the ratio peaks there, up to the margin)."""
    target, proposal = rsft.Normal(-1e6, 1e-150), rsft.StudentT(2.0, 0.0, 3.0)
    at_mode = float(target.logpdf(np.array([-1e6]))[0] - proposal.logpdf(np.array([-1e6]))[0])
    log_m = rsft.RejectionSampler(target, proposal).log_M
    assert at_mode <= log_m <= at_mode + 2e-10 * (1 + abs(at_mode))


def test_find_log_m_refuses_an_infinite_ratio():
    with pytest.raises(rsft.NoEnvelopeError, match=r"\+inf at x = 1.0"):
        rsft.find_log_M(rsft.Beta(1, 0.5), rsft.StudentT(1, 0.666667, 0.298142))


def test_find_log_m_on_the_whole_double_range_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        log_m, x = rsft.find_log_M(lambda x: -0.5 * x * x, rsft.Normal(0, 2),
                                   bounds=(-1e308, 1e308))
    exact = math.log(2.0) + 0.5 * math.log(2 * math.pi)
    assert x == 0.0 and log_m == pytest.approx(exact + 1e-6 * (1 + exact), rel=1e-12)


@pytest.mark.parametrize("make", [
    lambda: rsft.CosineLR(0.1, 10 ** 400),
    lambda: rsft.StepLR(0.1, 2 ** 62 + 1),
    lambda: rsft.WarmupCosine(0.1, 10 ** 30, 10 ** 31),
    lambda: rsft.StepLR(0.1, 2)(10 ** 400),
], ids=["cosine-t-max", "step-size", "warmup", "t"])
def test_schedule_step_counts_beyond_2_62_are_refused(make):
    """OverflowError 'int too large to convert to float' before."""
    with pytest.raises(ValueError, match=r"2\*\*62|4611686018427387904"):
        make()


def test_dask_sample_array_refuses_a_hopeless_budget_as_one_process_does():
    """The first (longest) block decides, before any child is spawned, not whichever failing
    block a scheduler ran first."""
    rdask = pytest.importorskip("rsft.dask")
    s = rsft.RejectionSampler(rsft.Gamma(1.13, 1e150), rsft.StudentT(2.0, 0.0, 3.0))
    with pytest.raises(rsft.ProposalBudgetExceeded) as one:
        s.sample(265, 3, block_size=93)
    with pytest.raises(rsft.ProposalBudgetExceeded) as graph:
        rdask.sample_array(s, 265, 93, 3)
    assert str(graph.value) == str(one.value)


def test_dask_map_trainings_names_a_make_trainer_that_returns_no_trainer():
    rdask = pytest.importorskip("rsft.dask")
    with pytest.raises(TypeError, match="must return an rsft trainer"):
        rdask.map_trainings(_not_a_trainer, [0.1], 1, 0, scheduler="sync")


def _not_a_trainer(setting):
    return setting

@pytest.mark.parametrize("make, width", [
    (lambda: rsft.Laplace(1, 1e-50), "scale"),
    (lambda: rsft.Laplace(1, 1e-100), "scale"),
    (lambda: rsft.Normal(1e6, 1e-11), "scale"),
    (lambda: rsft.Exponential(1e-150), None),
    (lambda: rsft.Uniform(1.0, 1.0 + 8 * 2.0 ** -52), r"\(high - low\) / 2"),
    (lambda: rsft.TruncatedNormal(1.0, 1e-15, 0.0, 2.0), r"min\(scale, \(high - low\) / 4\)"),
    (lambda: rsft.Gamma(1e40), "its standard deviation sqrt"),
    (lambda: rsft.Beta(1e40, 1e40), "its standard deviation"),
], ids=["laplace-1e-50", "laplace-1e-100", "normal-far", "exponential-tiny", "uniform",
        "truncnorm", "gamma-huge-shape", "beta-huge"])
def test_log_concave_builtins_narrower_than_the_float64_grid_are_refused_alike(make, width):
    # Laplace(1, 1e-50) built a hat with hat_area 2e-50 < squeeze_area 1 (efficiency 5e49);
    # Laplace(1, 1e-100) gave inf areas on cython and OverflowError 'math range error' on numpy
    target = make()
    outcomes = []
    for backend in BACKENDS:
        if width is None:       # as wide as the grid allows: a valid hat, the same bits
            s = rsft.LogConcaveSampler(target, backend=backend)
            assert s.squeeze_area <= 1.0 + 1e-12 <= s.hat_area + 2e-12, (backend, s)
            assert 0.99 <= s.efficiency <= 1.0
            outcomes.append((s._hat.pieces.tobytes(), s.sample(50, rng=3).tobytes()))
            continue
        with pytest.raises(ValueError, match=(
                rf"too narrow for LogConcaveSampler: its width \({width}.* is below 16 "
                r"float64 spacings at its centre.*The range that works: ")) as info:
            rsft.LogConcaveSampler(target, backend=backend)
        outcomes.append(str(info.value))
    assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize("backend", BACKENDS)
def test_log_concave_width_limit_is_16_float64_spacings_at_the_centre(backend):
    for loc in (1.0, -3.0e6, 2.0 ** 40):
        limit = 16 * math.ulp(loc)
        s = rsft.LogConcaveSampler(rsft.Normal(loc, limit), backend=backend)
        assert 0.99 <= s.efficiency <= 1.0 and s.squeeze_area <= 1.0 <= s.hat_area
        x = s.sample(2000, rng=0)
        assert abs(np.mean(x) - loc) < 0.2 * limit and 0.9 < np.std(x) / limit < 1.1
        with pytest.raises(ValueError, match=r"here >= " + f"{limit:.6g}"):
            rsft.LogConcaveSampler(rsft.Normal(loc, math.nextafter(limit, 0.0)),
                                   backend=backend)


def test_log_concave_callable_narrower_than_the_float64_grid_is_refused_alike():
    # the same density as a callable: its chords were rounding (efficiency 2.0, squeeze area
    # twice the hat's); now refused at construction with one message on both backends
    msgs = []
    for backend in BACKENDS:
        with pytest.raises(ValueError, match=r"cannot build a valid hat: on \[.*the squeeze.*"
                                             r"more area.*than the hat") as info:
            rsft.LogConcaveSampler(lambda x: -np.abs(x - 1.0) * 1e100,
                                   support=(-np.inf, np.inf), mode=1.0, backend=backend)
        msgs.append(str(info.value))
    assert msgs[0] == msgs[1]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("make", [lambda s: rsft.Exponential(s), lambda s: rsft.Gamma(1.0, s),
                                  lambda s: rsft.Gamma(2.5, s), lambda s: rsft.Laplace(0.0, s),
                                  lambda s: rsft.Normal(0.0, s)],
                         ids=["exponential", "gamma-1", "gamma-2.5", "laplace", "normal"])
def test_log_concave_hat_brackets_the_mass_of_builtins_at_any_scale(make, backend):
    # Exponential(1e-5) had squeeze area 1 > hat area 0.99931 (efficiency 1.0007): two start
    # points a few ulps apart (scale - scale*9/12 and scale/4) made a chord of pure rounding
    for scale in (1e-150, 1e-60, 1e-5, 0.3, 1.0, 7.0, 1e6, 1e150):
        target = make(scale)
        s = rsft.LogConcaveSampler(target, backend=backend)
        assert s.squeeze_area <= 1.0 + 1e-12 and s.hat_area >= 1.0 - 1e-12, (target, s)
        assert 0.99 <= s.efficiency <= 1.0 + 1e-12, (target, s.efficiency)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("loss", [rsft.MSE, rsft.BCEWithLogits])
def test_float32_losses_refuse_targets_and_weights_that_overflow_float32(loss, backend):
    """A float64 target of 1e39 became inf in the cast to pred's float32 (with a
    RuntimeWarning), then an infinite loss."""
    pred = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match=r"target\[1\] = 1e\+39 overflows float32"):
        loss(backend=backend).value(pred, np.array([0.0, 1e39, 0.0]))
    with pytest.raises(ValueError, match=r"weights\[2\] = -1e\+40 overflows float32"):
        loss(backend=backend).value(pred, np.zeros(3), weights=np.array([1.0, 1.0, -1e40]))


# ---------------------------------------------------------------------------------------------
# Item 9: Ctrl-C reaches the optimizer, loss and acceptor kernels
# ---------------------------------------------------------------------------------------------
# A SIGALRM handler raising _Interrupted stands for Ctrl-C's KeyboardInterrupt, sent once the
# call is seen at work (or by a timer, for calls that last seconds). Each test
# interrupts one kernel call over a moderate array and checks that the call stopped part way:
# the first piece of the output is written and the last one is not (a call that ran to the end
# and raised afterwards, or that was interrupted before any work, fails). No latency is
# asserted (bench/signals.py measures it). To keep the arrays moderate, the compiled backend's
# signal budget is set to 0 (a check between every two pieces instead of every 0.1 s) and the
# numpy backend's blocks are made small; neither changes a result.

class _Interrupted(Exception):
    pass


@pytest.fixture
def interrupt_soon(backend, monkeypatch):
    """``interrupt_soon(started=None)``: a context in which SIGALRM raises _Interrupted, with
    short signal budgets / blocks for ``backend``. With ``started`` (a predicate on the call's
    output), a watcher thread sends SIGALRM to the calling thread as soon as it sees the call
    has begun its work: no race between a timer and the start of the call on a loaded
    machine. Without it, a timer fires after a short delay (for calls that last seconds)."""
    if backend == "cython":
        previous = _core._set_signal_check_seconds(0.0)
    else:
        monkeypatch.setattr(reference_optim, "_BLOCK_ELEMENTS", 1 << 14)
        monkeypatch.setattr(reference_losses, "_PASS_ELEMENTS", 1 << 14)
        monkeypatch.setattr(reference_acceptors, "BLOCK_CANDIDATES", 1 << 12)

    def raise_interrupted(signum, frame):
        raise _Interrupted

    @contextlib.contextmanager
    def interrupt(started=None):
        handler = signal.signal(signal.SIGALRM, raise_interrupted)
        caller, done = threading.get_ident(), threading.Event()

        def watch():
            while not done.is_set():
                if started():
                    signal.pthread_kill(caller, signal.SIGALRM)
                    return
                time.sleep(1e-4)

        watcher = threading.Thread(target=watch) if started is not None else None
        try:
            if watcher is None:
                signal.setitimer(signal.ITIMER_REAL, 0.05)
            else:
                watcher.start()
            with pytest.raises(_Interrupted):
                yield
        finally:
            done.set()
            if watcher is not None:
                watcher.join()
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, handler)

    yield interrupt
    if backend == "cython":
        _core._set_signal_check_seconds(previous)


#: the numpy backend runs on one thread: n_threads=2 is a compiled-backend case only
BACKEND_THREADS = [("cython", 1), ("cython", 2), ("numpy", 1)]
SIGNAL_N = 1 << 25       # float32 elements (128 MB per array); a pass takes ~50 ms or more
EDGE = 1 << 14           # the first and last elements checked


@pytest.mark.parametrize("backend, n_threads", BACKEND_THREADS)
@pytest.mark.parametrize("name, kw", [
    ("SGD", {"momentum": 0.9}), ("Adam", {}), ("AdamW", {"amsgrad": True, "maximize": True}),
    ("RMSprop", {"centered": True, "momentum": 0.5}), ("Adagrad", {}), ("Lion", {})])
def test_optimizer_step_stops_at_ctrl_c(name, kw, n_threads, backend, interrupt_soon):
    p = np.zeros(SIGNAL_N, np.float32)
    g = np.ones(SIGNAL_N, np.float32)
    opt = getattr(rsft, name)([p], lr=0.1, backend=backend, n_threads=n_threads, **kw)
    with interrupt_soon(started=lambda: p[0] != 0):
        opt.step([g])
    arrays = [p] + list(opt.state[0].values())
    assert all(np.all(a[:EDGE] != 0) for a in arrays)      # the first piece was updated
    assert all(np.all(a[-EDGE:] == 0) for a in arrays)     # the last one never was
    assert opt.n_steps == 0                                # the step is not counted
    opt.step([g])                                          # and the optimizer still works
    assert opt.n_steps == 1 and np.all(p[-EDGE:] != 0)


@pytest.mark.parametrize("backend, n_threads", BACKEND_THREADS)
@pytest.mark.parametrize("kernel", ["mse_loss", "bce_with_logits_loss", "softmax_xent_labels",
                                    "softmax_xent_probs"])
def test_loss_kernel_stops_at_ctrl_c(kernel, n_threads, backend, interrupt_soon):
    rows, k = SIGNAL_N // 16, 16
    z = np.random.default_rng(0).standard_normal((rows, k)).astype(np.float32)
    no_weights = np.empty(0, np.float32)
    grad = np.full((rows, k), np.nan, np.float32)
    if kernel.startswith("softmax"):
        target = (np.arange(rows) % k if kernel.endswith("labels")
                  else np.full((rows, k), 1 / k, np.float32))
        args = (z, target, no_weights, 1.0, np.empty(0, np.float32), grad, n_threads)
    else:
        args = (z, np.ones_like(z), no_weights, 1.0, np.empty((0, 0), np.float32), grad,
                n_threads)
    flat = grad.reshape(-1)
    with interrupt_soon(started=lambda: not np.isnan(flat[0])):
        getattr(_backend.kernels(backend), kernel)(*args)
    assert not np.isnan(flat[:EDGE]).any() and np.isnan(flat[-EDGE:]).all()


@pytest.mark.parametrize("kernel", ["topk_accept", "statistical_rs_accept"])
@pytest.mark.parametrize("backend", ["cython"])
def test_compiled_acceptor_stops_at_ctrl_c_while_drawing(kernel, backend, interrupt_soon):
    # top-k and statistical RS drew their uniforms (one per candidate) in one GIL-free call:
    # the generator then always ended SIGNAL_N draws ahead; now the draw stops part way. (The
    # kernel is called directly, on groups of 4096 candidates, so that nothing but the draw
    # runs before the timer. The numpy backend draws block by block between its decisions:
    # test_numpy_acceptor_stops_at_ctrl_c.)
    starts = np.arange(0, SIGNAL_N + 1, 4096, dtype=np.int64)
    n_groups = starts.size - 1
    per_group = [np.empty(n_groups, np.int64), np.empty(n_groups, np.int64),
                 np.empty(n_groups, np.bool_), np.empty(n_groups, np.bool_)]
    params = ((np.ones(n_groups, np.int64),) if kernel == "topk_accept"
              else (np.full(n_groups, 10.0), False, 0.5))
    rng = np.random.default_rng(0)
    with interrupt_soon():
        getattr(_backend.kernels(backend), kernel)(
            rng, np.zeros(SIGNAL_N), starts, *params, 0, np.empty(SIGNAL_N, np.bool_),
            *per_group)
    finished = np.random.default_rng(0)
    finished.random(SIGNAL_N)
    assert rng.bit_generator.state != finished.bit_generator.state
    assert rng.bit_generator.state != np.random.default_rng(0).bit_generator.state


@pytest.mark.parametrize("grouped", [False, True], ids=["rows", "groups"])
@pytest.mark.parametrize("make", [lambda: rsft.TopK(1, backend="numpy"),
                                  lambda: rsft.StatisticalRS(0.5, backend="numpy")],
                         ids=["TopK", "StatisticalRS"])
@pytest.mark.parametrize("backend", ["numpy"])
@pytest.mark.filterwarnings("ignore::rsft.ApproximateTiltWarning")
def test_numpy_acceptor_stops_at_ctrl_c(make, grouped, backend, interrupt_soon):
    # the reference acceptors run on blocks of whole groups (BLOCK_CANDIDATES, made small
    # here), drawing each block's uniforms before deciding it: interrupted part way, the
    # Generator has drawn more than nothing and less than one uniform per candidate
    n = 1 << 22
    r = np.random.default_rng(1).standard_normal(n)
    args = {"groups": np.arange(n) // 8} if grouped else {}
    acc = make()
    rng = np.random.default_rng(0)
    with interrupt_soon():
        acc.accept(r if grouped else r.reshape(-1, 8), rng, **args)
    finished = np.random.default_rng(0)
    finished.random(n)
    assert rng.bit_generator.state != finished.bit_generator.state
    assert rng.bit_generator.state != np.random.default_rng(0).bit_generator.state


@pytest.mark.parametrize("make", [
    lambda b: rsft.Threshold(0.3, min_per_group=3, backend=b),
    lambda b: rsft.Quantile(0.6, min_per_group=2, backend=b),
    lambda b: rsft.TopK(2, min_per_group=3, backend=b),
    lambda b: rsft.StatisticalRS(0.5, min_per_group=2, backend=b),
    lambda b: rsft.StatisticalRS(0.5, 5.0, backend=b),
    lambda b: rsft.RSO(0.5, 3, min_per_group=4, backend=b)],
    ids=["Threshold", "Quantile", "TopK", "StatisticalRS", "StatisticalRS-r_max", "RSO"])
def test_numpy_acceptor_blocks_change_no_result(make, monkeypatch):
    # small blocks (and, for the unordered labels, group_order's piecewise radix sort) give
    # the compiled backend's decisions and Generator state, as one block does
    monkeypatch.setattr(reference_acceptors, "BLOCK_CANDIDATES", 100)
    monkeypatch.setattr(reference_acceptors, "GROUP_BLOCK", 7)
    monkeypatch.setattr(reference_acceptors, "PIECE", 64)
    g = np.random.default_rng(2)
    n = 5000
    r = np.round(g.standard_normal(n), 1)        # ties
    r[g.random(n) < 0.05] = -np.inf
    labels = g.integers(-(1 << 40), 1 << 40, 300)[g.integers(0, 300, n)]
    keys = g.integers(0, 4, n)
    for args in ({"groups": labels, "keys": keys}, {"groups": np.sort(labels)}, {}):
        x = r if args else r.reshape(-1, 50)
        got = {}
        for b in ("cython", "numpy"):
            rng = np.random.default_rng(3)
            res = make(b).accept(x, rng, **args)
            got[b] = (res.mask, res.n_accepted, rng.bit_generator.state)
        assert np.array_equal(got["cython"][0], got["numpy"][0])
        assert got["cython"][1:] == got["numpy"][1:]


# ---------------------------------------------------------------------------------------------
# Found by make fuzz (1000 examples per entry point)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_centered_rmsprop_clamps_a_variance_rounded_below_zero(dtype, backend):
    """alpha near 0 (2e-16 found by make fuzz; 1e-7 rounds in float32): v = g^2 and a = g up
    to rounding, and v - a*a came out a few ulps below 0 for some g: sqrt gave NaN from finite
    input (torch.optim does the same)."""
    g = np.random.default_rng(5).normal(size=4096).astype(dtype)
    p = np.zeros(4096, dtype)
    alpha = 2e-16 if dtype == np.float64 else 1e-7
    opt = rsft.RMSprop(p, lr=0.1, alpha=alpha, eps=1e-8, centered=True, backend=backend)
    for _ in range(3):
        opt.step(g)
    assert np.all(np.isfinite(p)), np.flatnonzero(~np.isfinite(p))[:5]
    # where v - a*a rounded to a negative, avg is eps: the step is lr * g / eps, finite
    v, a = opt.state[0]["square_avg"], opt.state[0]["grad_avg"]
    assert np.any(v - a * a < 0)           # the case the clamp exists for is reached


def test_centered_rmsprop_keeps_nan_from_nan_gradients(backend):
    p = np.zeros(3)
    rsft.RMSprop(p, lr=0.1, centered=True, backend=backend).step(np.array([np.nan, 1.0, 0.0]))
    assert np.isnan(p[0]) and np.all(np.isfinite(p[1:]))


@pytest.mark.parametrize("df, scale", [(1e100, 1e150), (0.5, 1e-150), (1e100, 1e101)])
def test_student_t_envelope_terms_beyond_float64_are_refused(df, scale):
    """k = 1 / (df scale^2) underflowed to 0 (or overflowed): ZeroDivisionError, or a log M
    computed without the Student t term. The distribution itself still works."""
    t = rsft.StudentT(df, 0.0, scale)
    assert t.support == (-math.inf, math.inf) and np.isfinite(t.logpdf(np.array([0.0]))).all()
    with pytest.raises(ValueError, match=r"df \* scale\*\*2 = .* is outside \[1e-300, 1e300\]"):
        rsft.RejectionSampler(t, rsft.StudentT(1, 0, scale))
    with pytest.raises(ValueError, match=r"df \* scale\*\*2 = .* is outside \[1e-300, 1e300\]"):
        rsft.RejectionSampler(rsft.Normal(0, scale), t)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_mean_with_weights_summing_to_a_subnormal(dtype, backend):
    """1 / sum(w) overflowed to inf: NaN values and gradients from finite input (make fuzz).
    The weighted mean is scale-free: it equals the mean with the weights scaled by 2**100."""
    z = np.random.default_rng(1).normal(size=(4, 3)).astype(dtype)
    y = np.array([0, 2, 1, 0])
    tiny = np.array([0.0, 0.0, 2.2250738585e-311, 1e-312] if dtype == np.float64 else
                    [0.0, 0.0, 1e-45, 1e-44], dtype)
    loss = rsft.SoftmaxCrossEntropy(backend=backend)
    with np.errstate(all="raise"):
        value, grad = loss.value_and_grad(z, y, weights=tiny)
    want_value, want_grad = loss.value_and_grad(z, y, weights=tiny * dtype(2.0 ** 100))
    assert value == want_value and np.array_equal(grad, want_grad)
    assert np.all(np.isfinite(grad)) and np.all(grad[:2] == 0)


@pytest.mark.parametrize("call, what", [
    (lambda: rsft.RejectionSampler(rsft.Normal(0, 1), rsft.Normal(0, 2)).sample(2 ** 62, 0),
     "n = 4611686018427387904 samples"),
    (lambda: rsft.LogConcaveSampler(rsft.Normal(0, 1)).sample(10 ** 30, 0), "n = 10+ samples"),
    (lambda: rsft.LinearRegression(10 ** 30), r"parameters of shape \(10+,\)"),
    (lambda: rsft.SoftmaxPolicy(2, 2 ** 62), r"parameters of shape \(2, 4611686018427387904\)"),
    (lambda: rsft.SoftmaxPolicy(2, 3).sample(np.zeros((5, 2)), 2 ** 62, 0), "n_per_row = "),
    (lambda: rsft.GaussianPolicy(2, 2, 0.5).sample(np.zeros((5, 2)), 2 ** 62, 0),
     "n_per_row = "),
    (lambda: _fit_for(2 ** 62), "epochs = "),
], ids=["sample", "log-concave", "linear", "softmax", "softmax-sample", "gaussian-sample",
        "fit"])
def test_absurd_sizes_are_a_memory_error_naming_the_argument(call, what):
    """numpy's own "array is too big" / "Maximum allowed dimension exceeded" ValueErrors name
    no argument (found by make fuzz, whose model cases then filled 24 GB arrays)."""
    with pytest.raises(MemoryError, match=what + ".* more than this machine can allocate"):
        call()


def _fit_for(epochs):
    model = rsft.LinearRegression(2)
    return rsft.fit(model, np.zeros((5, 2)), np.zeros(5), rsft.MSE(),
                    rsft.SGD(model.params, lr=0.1), epochs)


@pytest.mark.parametrize("make", [lambda: rsft.LinearWarmup(1e308, 4),
                                  lambda: rsft.WarmupCosine(1e308, 4, 10)],
                         ids=["LinearWarmup", "WarmupCosine"])
def test_warmup_of_the_largest_rates_does_not_overflow(make):
    """rate * (t + 1) / W overflowed to inf for rates near 1e308 (make fuzz)."""
    assert make()(3) == 1e308 and make()(0) == 1e308 / 4


def test_dask_sample_array_refuses_a_graph_of_absurdly_many_tasks():
    """n = 2**62 in chunks of 16 built a list of 2.9e17 blocks and ran out of memory."""
    rdask = pytest.importorskip("rsft.dask")
    s = rsft.RejectionSampler(rsft.Normal(0, 1), rsft.Normal(0, 2))
    with pytest.raises(ValueError, match=r"tasks, more than 16777216 \(2\*\*24\)"):
        rdask.sample_array(s, 2 ** 62, 16, 0)
