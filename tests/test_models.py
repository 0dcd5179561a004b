"""rsft.models and rsft.models.fit: training to the least-squares solution, finite-difference
gradients, backend parity, SoftmaxPolicy sampling (bit-identical, chi-square), bad input."""
import numpy as np
import pytest
from scipy import stats
from scipy.special import expit, log_softmax

import rsft
from rsft.losses import MSE, BCEWithLogits, SoftmaxCrossEntropy
from rsft.optim import SGD, Adam
from rsft.models import (GaussianPolicy, LinearRegression, LogisticRegression, SoftmaxPolicy,
                         fit)


def line_data(seed=0, n=100):
    """y = 2x + 3 + U(0, 1) noise, x ~ U(0, 2): 100 points, fixed seed."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 2.0, n)
    y = 2.0 * x + 3.0 + rng.random(n)
    return x[:, None], y


def lstsq_line(X, y):
    A = np.column_stack([X[:, 0], np.ones(len(y))])
    return np.linalg.lstsq(A, y, rcond=None)[0]  # (slope, intercept)


# ---------------------------------------------------------------------------------------------
# LinearRegression trained by gradient descent reaches np.linalg.lstsq's solution
# ---------------------------------------------------------------------------------------------
def test_linear_regression_gd_reaches_lstsq(backend):
    X, y = line_data()
    slope, intercept = lstsq_line(X, y)
    assert slope == pytest.approx(2.0, abs=0.2) and intercept == pytest.approx(3.5, abs=0.2)
    model = LinearRegression(1)
    history = fit(model, X, y, MSE(backend=backend), SGD(model.params, lr=0.4), epochs=500)
    assert history.shape == (500,) and history.dtype == np.float64
    assert np.all(np.diff(history) <= 1e-15)  # full-batch GD on a convex quadratic, lr < 2/L
    assert abs(model.coef[0] - slope) < 1e-6 and abs(model.intercept[0] - intercept) < 1e-6
    # the last recorded loss is the least-squares residual mean square
    resid = y - (slope * X[:, 0] + intercept)
    assert history[-1] == pytest.approx(np.mean(resid ** 2), rel=1e-9)


def test_linear_regression_adam_reaches_lstsq(backend):
    """Adam (Kingma & Ba, with the square root) with a decaying rate reaches lstsq to 1e-6."""
    from rsft.schedules import InverseTimeLR
    X, y = line_data()
    slope, intercept = lstsq_line(X, y)
    model = LinearRegression(1)
    opt = Adam(model.params, lr=InverseTimeLR(0.1, 0.001), backend=backend)
    fit(model, X, y, MSE(backend=backend), opt, epochs=3000)
    assert abs(model.coef[0] - slope) < 1e-6 and abs(model.intercept[0] - intercept) < 1e-6


def test_linear_regression_float32():
    X, y = line_data()
    slope, intercept = lstsq_line(X, y)
    model = LinearRegression(1, dtype=np.float32)
    assert all(p.dtype == np.float32 and p.flags.c_contiguous for p in model.params)
    fit(model, X, y, MSE(), SGD(model.params, lr=0.4), epochs=300)
    assert model.coef.dtype == np.float32
    assert abs(model.coef[0] - slope) < 1e-4 and abs(model.intercept[0] - intercept) < 1e-4


def test_linear_regression_without_intercept():
    X, y = line_data()
    model = LinearRegression(1, fit_intercept=False)
    assert len(model.params) == 1 and model.intercept is None
    fit(model, X, y, MSE(), SGD(model.params, lr=0.3), epochs=200)
    w = np.linalg.lstsq(X, y, rcond=None)[0]
    assert model.coef[0] == pytest.approx(w[0], abs=1e-9)


def test_fit_minibatch():
    X, y = line_data()
    slope, intercept = lstsq_line(X, y)
    runs = []
    for _ in range(2):
        model = LinearRegression(1)
        h = fit(model, X, y, MSE(), SGD(model.params, lr=0.05), epochs=200, batch_size=16,
                rng=np.random.default_rng(7))
        runs.append((h, [p.copy() for p in model.params]))
    (h, params), (h2, params2) = runs
    assert np.array_equal(h, h2) and all(np.array_equal(a, b) for a, b in zip(params, params2))
    assert h[-1] < 0.1 * h[0]
    # constant-step SGD hovers around the minimiser; the epoch loss is near the optimum's
    resid = y - (slope * X[:, 0] + intercept)
    assert h[-1] == pytest.approx(np.mean(resid ** 2), rel=0.05)
    assert params[0][0] == pytest.approx(slope, abs=0.05)
    assert params[1][0] == pytest.approx(intercept, abs=0.05)


def test_fit_minibatch_order_is_rng_permutation():
    """Batches are taken in the order of rng.permutation(n), one permutation per epoch."""
    X, y = line_data(n=10)
    model = LinearRegression(1)
    fit(model, X, y, MSE("sum"), SGD(model.params, lr=0.01), epochs=2, batch_size=4, rng=3)
    manual = LinearRegression(1)
    opt = SGD(manual.params, lr=0.01)
    gen = np.random.default_rng(3)
    for _ in range(2):
        order = gen.permutation(10)
        for s in range(0, 10, 4):
            idx = order[s:s + 4]
            opt.step(manual.loss_and_grad(X[idx], y[idx], MSE("sum"))[1])
    assert all(np.array_equal(a, b) for a, b in zip(model.params, manual.params))


def test_fit_weights_and_sum_history():
    X, y = line_data(n=20)
    w = np.linspace(0.5, 1.5, 20)
    model = LinearRegression(1)
    h = fit(model, X, y, MSE("sum"), SGD(model.params, lr=0.001), epochs=3, batch_size=7,
            rng=0, weights=w)
    assert h.shape == (3,) and np.all(np.isfinite(h))
    # weighted least squares solution is reached by full-batch GD
    model = LinearRegression(1)
    fit(model, X, y, MSE(), SGD(model.params, lr=0.3), epochs=1500, weights=w)
    A = np.column_stack([X[:, 0], np.ones(20)]) * np.sqrt(w)[:, None]
    sol = np.linalg.lstsq(A, y * np.sqrt(w), rcond=None)[0]
    assert model.coef[0] == pytest.approx(sol[0], abs=1e-6)
    assert model.intercept[0] == pytest.approx(sol[1], abs=1e-6)


# ---------------------------------------------------------------------------------------------
# Gradients against 4th-order finite differences (with respect to every parameter)
# ---------------------------------------------------------------------------------------------
def fd4_params(model, f, h=1e-4):
    grads = []
    for p in model.params:
        g = np.empty_like(p)
        for idx in np.ndindex(p.shape):
            old = p[idx]
            vals = []
            for step in (2 * h, h, -h, -2 * h):
                p[idx] = old + step
                vals.append(f())
            p[idx] = old
            g[idx] = (-vals[0] + 8 * vals[1] - 8 * vals[2] + vals[3]) / (12 * h)
        grads.append(g)
    return grads


def _randomise(model, rng):
    for p in model.params:
        p[...] = rng.normal(size=p.shape)


def _cases():
    rng = np.random.default_rng(11)
    X = rng.normal(size=(15, 3))
    w = rng.uniform(0.5, 2.0, 15)
    yield "linear-mse", LinearRegression(3), X, rng.normal(size=15), MSE(), w
    yield "logistic-bce", LogisticRegression(3), X, (rng.random(15) < 0.5).astype(float), \
        BCEWithLogits(), w
    yield "softmax-ce", SoftmaxPolicy(3, 4), X, rng.integers(0, 4, 15), \
        SoftmaxCrossEntropy(), w
    yield "softmax-ce-probs", SoftmaxPolicy(3, 4), X, rng.dirichlet(np.ones(4), 15), \
        SoftmaxCrossEntropy("sum"), w
    yield "gaussian-mse", GaussianPolicy(3, 2, 0.7), X, rng.normal(size=(15, 2)), \
        MSE("sum"), w


@pytest.mark.parametrize("case", list(_cases()), ids=lambda c: c[0])
@pytest.mark.parametrize("weighted", [False, True])
def test_model_gradients_finite_differences(case, weighted, backend):
    _, model, X, y, loss, w = case
    loss.backend = backend
    _randomise(model, np.random.default_rng(2))
    w = w if weighted else None
    value, grads = model.loss_and_grad(X, y, loss, w)
    assert [g.shape for g in grads] == [p.shape for p in model.params]
    assert all(g.dtype == np.float64 for g in grads)
    fd = fd4_params(model, lambda: model.loss_and_grad(X, y, loss, w)[0])
    for g, g_fd in zip(grads, fd):
        np.testing.assert_allclose(g, g_fd, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("case", list(_cases()), ids=lambda c: c[0])
def test_model_backend_parity(case):
    _, model, X, y, loss, w = case
    _randomise(model, np.random.default_rng(4))
    out = []
    for b in ("cython", "numpy"):
        loss.backend = b
        out.append(model.loss_and_grad(X, y, loss, w))
    (vc, gc), (vn, gn) = out
    assert vc == pytest.approx(vn, rel=1e-12)
    for a, b in zip(gc, gn):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_logistic_predict_and_fit(backend):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(200, 2))
    y = (rng.random(200) < expit(X @ [1.5, -1.0] + 0.3)).astype(float)
    model = LogisticRegression(2, backend=backend)
    fit(model, X, y, BCEWithLogits(backend=backend), SGD(model.params, lr=1.0), epochs=400)
    _, grads = model.loss_and_grad(X, y, BCEWithLogits())
    assert max(np.abs(g).max() for g in grads) < 1e-6  # at the maximum-likelihood estimate
    p = model.predict(X)
    np.testing.assert_allclose(p, expit(X @ model.coef + model.intercept[0]), rtol=1e-14)


# ---------------------------------------------------------------------------------------------
# SoftmaxPolicy: probabilities, log-probabilities, sampling
# ---------------------------------------------------------------------------------------------
def _policy(backend=None, dtype=np.float64, seed=0, d=3, k=5):
    pol = SoftmaxPolicy(d, k, dtype=dtype, backend=backend)
    _randomise(pol, np.random.default_rng(seed))
    return pol


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_policy_probs_and_log_prob(dtype, backend):
    pol = _policy(backend, dtype)
    X = np.random.default_rng(1).normal(size=(8, 3))
    z = X.astype(dtype) @ pol.params[0] + pol.params[1]
    p = pol.probs(X)
    assert p.dtype == dtype and p.shape == (8, 5)
    tol = 1e-14 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(p, np.exp(log_softmax(z.astype(np.float64), axis=1)), rtol=tol)
    a = np.random.default_rng(2).integers(0, 5, (8, 4))
    lp = pol.log_prob(X, a)
    assert lp.shape == (8, 4)
    ref = np.take_along_axis(log_softmax(z.astype(np.float64), axis=1), a, axis=1)
    np.testing.assert_allclose(lp, ref, rtol=tol, atol=tol)
    np.testing.assert_allclose(pol.log_prob(X, a[:, 0]), ref[:, 0], rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_softmax_policy_sample_bit_identical(dtype, seed):
    X = np.random.default_rng(seed).normal(size=(50, 3)) * 3
    out = []
    for b in ("cython", "numpy"):
        rng = np.random.default_rng(seed)
        out.append((_policy(b, dtype, seed).sample(X, 200, rng), rng.bit_generator.state))
    (ac, sc), (an, sn) = out
    assert ac.dtype == np.int64 and ac.shape == (50, 200)
    assert np.array_equal(ac, an) and sc == sn


def test_softmax_policy_sample_stream():
    """One rng.random((n, m)) call; a sample is the first category with cumsum > u * total."""
    pol = _policy()
    X = np.random.default_rng(3).normal(size=(6, 3))
    a = pol.sample(X, 7, np.random.default_rng(9))
    u = np.random.default_rng(9).random((6, 7))
    c = np.cumsum(pol.probs(X), axis=1)
    expect = np.array([[np.searchsorted(c[i], u[i, r] * c[i, -1], side="right")
                        for r in range(7)] for i in range(6)])
    assert np.array_equal(a, expect)


def test_softmax_policy_sample_distribution(backend):
    """Chi-square goodness of fit per row, alpha = 1e-3 per row (fixed seed)."""
    pol = _policy(backend, seed=6)
    X = np.random.default_rng(8).normal(size=(4, 3))
    n_draws = 20_000
    a = pol.sample(X, n_draws, rng=123)
    p = pol.probs(X)
    for i in range(4):
        counts = np.bincount(a[i], minlength=5)
        _, pval = stats.chisquare(counts, n_draws * p[i])
        assert pval > 1e-3, (i, counts, n_draws * p[i])


def test_softmax_policy_never_samples_probability_zero(backend):
    pol = SoftmaxPolicy(1, 4, backend=backend)
    pol.params[1][:] = [0.0, -1e4, 0.0, -1e4]  # actions 1 and 3 have probability exp(-1e4) = 0
    a = pol.sample(np.zeros((3, 1)), 10_000, rng=0)
    assert set(np.unique(a)) == {0, 2}


# ---------------------------------------------------------------------------------------------
# GaussianPolicy
# ---------------------------------------------------------------------------------------------
def test_gaussian_policy(backend):
    pol = GaussianPolicy(2, 3, sigma=[0.5, 1.0, 2.0], backend=backend)
    _randomise(pol, np.random.default_rng(0))
    X = np.random.default_rng(1).normal(size=(4, 2))
    mu = X @ pol.params[0] + pol.params[1]
    np.testing.assert_allclose(pol.predict(X), mu, rtol=1e-15)
    a = pol.sample(X, 5000, rng=2)
    assert a.shape == (4, 5000, 3)
    eps = np.random.default_rng(2).standard_normal((4, 5000, 3))
    np.testing.assert_allclose(a, mu[:, None, :] + [0.5, 1.0, 2.0] * eps, rtol=1e-15)
    z = (a - mu[:, None, :]) / [0.5, 1.0, 2.0]
    assert np.abs(z.mean(axis=1)).max() < 5 / np.sqrt(5000)
    lp = pol.log_prob(X, a[:, :3])
    ref = stats.norm.logpdf(a[:, :3], mu[:, None, :], [0.5, 1.0, 2.0]).sum(axis=-1)
    np.testing.assert_allclose(lp, ref, rtol=1e-13)
    np.testing.assert_allclose(pol.log_prob(X, a[:, 0]), ref[:, 0], rtol=1e-13)


def test_gaussian_policy_fit_mean():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(300, 2))
    W = np.array([[1.0, -2.0], [0.5, 0.0]])
    A = X @ W + [0.3, -0.1] + 0.5 * rng.normal(size=(300, 2))
    pol = GaussianPolicy(2, 2, 0.5)
    fit(pol, X, A, MSE(), SGD(pol.params, lr=0.5), epochs=500)
    sol = np.linalg.lstsq(np.column_stack([X, np.ones(300)]), A, rcond=None)[0]
    np.testing.assert_allclose(pol.params[0], sol[:2], atol=1e-8)
    np.testing.assert_allclose(pol.params[1], sol[2], atol=1e-8)


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------
def test_bad_model_arguments():
    with pytest.raises(ValueError, match="n_features must be >= 1"):
        LinearRegression(0)
    with pytest.raises(TypeError, match="n_features"):
        LinearRegression(2.5)
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        LinearRegression(2, dtype=np.int64)
    with pytest.raises(ValueError, match="n_actions must be >= 1"):
        SoftmaxPolicy(2, 0)
    with pytest.raises(ValueError, match="sigma must be positive"):
        GaussianPolicy(2, 2, sigma=0.0)
    with pytest.raises(ValueError, match="sigma must be a float or have shape"):
        GaussianPolicy(2, 2, sigma=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="unknown backend"):
        SoftmaxPolicy(2, 2, backend="jax")


def test_bad_model_inputs():
    m = LinearRegression(2)
    with pytest.raises(ValueError, match=r"X must have shape \(n, 2\)"):
        m.predict(np.zeros((3, 3)))
    with pytest.raises(TypeError, match="X must be real"):
        m.predict(np.array([["a", "b"]]))
    with pytest.raises(ValueError, match="target must have pred's shape"):
        m.loss_and_grad(np.zeros((3, 2)), np.zeros(4), MSE())
    with pytest.raises(ValueError, match="scalar loss"):
        m.loss_and_grad(np.zeros((3, 2)), np.zeros(3), MSE("none"))
    with pytest.raises(TypeError, match="loss must be an rsft loss"):
        m.loss_and_grad(np.zeros((3, 2)), np.zeros(3), "mse")
    with pytest.raises(ValueError, match="X contains NaN"):
        m.loss_and_grad(np.array([[np.nan, 0.0]]), np.zeros(1), MSE())
    m.params[0][0] = np.inf
    with pytest.raises(ValueError, match="parameters contain NaN or infinity"):
        m.loss_and_grad(np.ones((1, 2)), np.zeros(1), MSE())
    pol = SoftmaxPolicy(2, 3)
    with pytest.raises(ValueError, match=r"actions must be in \[0, 3\)"):
        pol.log_prob(np.zeros((2, 2)), [0, 3])
    with pytest.raises(TypeError, match="actions must be integers"):
        pol.log_prob(np.zeros((2, 2)), [0.0, 1.0])
    with pytest.raises(ValueError, match="n_per_row must be >= 0"):
        pol.sample(np.zeros((2, 2)), -1, rng=0)
    with pytest.raises(ValueError, match="labels must be in"):
        pol.loss_and_grad(np.zeros((2, 2)), [0, 5], SoftmaxCrossEntropy())


def test_bad_fit_arguments():
    X, y = line_data(n=10)
    m = LinearRegression(1)
    opt = SGD(m.params, lr=0.1)
    with pytest.raises(ValueError, match="batch_size must be None or a positive integer"):
        fit(m, X, y, MSE(), opt, 1, batch_size=0)
    with pytest.raises(ValueError, match="same number of rows"):
        fit(m, X, y[:5], MSE(), opt, 1)
    with pytest.raises(TypeError, match="optimizer must have a step"):
        fit(m, X, y, MSE(), object(), 1)
    with pytest.raises(ValueError, match="epochs must be >= 0"):
        fit(m, X, y, MSE(), opt, -1)
    with pytest.raises(ValueError, match="scalar loss"):
        fit(m, X, y, MSE("none"), opt, 1)
    with pytest.raises(ValueError, match="weights must have shape"):
        fit(m, X, y, MSE(), opt, 1, weights=np.ones(3))
    assert fit(m, X, y, MSE(), opt, 0).shape == (0,)


def test_softmax_policy_refuses_non_finite_logits(backend):
    p = rsft.SoftmaxPolicy(2, 4)
    p.backend = backend
    with pytest.raises(ValueError, match="not all finite"):
        p.sample(np.array([[np.nan, 0.0], [0.0, 0.0]]), 5, 0)
    p.params[0][0, 0] = np.inf
    with pytest.raises(ValueError, match="not all finite"):
        p.sample(np.ones((1, 2)), 5, 0)
