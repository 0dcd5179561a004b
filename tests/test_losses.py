"""rsft.losses: backend parity, closed forms (scipy.special), finite-difference gradients,
extreme logits, reductions, weights, float32, bad input."""
import decimal

import numpy as np
import pytest
from scipy.special import expit, log_softmax, logsumexp

from rsft import _core, _reference, losses
from rsft.losses import MSE, BCEWithLogits, SoftmaxCrossEntropy

REDUCTIONS = ["mean", "sum", "none"]
DTYPES = [np.float64, np.float32]


def _data(kind, dtype, n=37, k=5, seed=0, weighted=False):
    """(pred, target, weights) for one loss kind; ``k`` classes/columns."""
    rng = np.random.default_rng(seed)
    if kind == "mse":
        pred = rng.normal(size=(n, k))
        target = rng.normal(size=(n, k))
    elif kind == "bce":
        pred = 3 * rng.normal(size=(n, k))
        target = rng.random((n, k))
    elif kind == "ce_labels":
        pred = 2 * rng.normal(size=(n, k))
        target = rng.integers(0, k, n)
    else:  # ce_probs
        pred = 2 * rng.normal(size=(n, k))
        target = rng.dirichlet(np.ones(k), n)
    w = rng.uniform(0.2, 2.0, n) if weighted else None
    pred = pred.astype(dtype)
    if target.dtype.kind == "f":
        target = target.astype(dtype)
    return pred, target, None if w is None else w.astype(dtype)


def _loss(kind, reduction="mean", backend=None, n_threads=1):
    cls = {"mse": MSE, "bce": BCEWithLogits, "ce_labels": SoftmaxCrossEntropy,
           "ce_probs": SoftmaxCrossEntropy}[kind]
    return cls(reduction=reduction, backend=backend, n_threads=n_threads)


KINDS = ["mse", "bce", "ce_labels", "ce_probs"]


# ---------------------------------------------------------------------------------------------
# Parity between backends
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_backend_parity(kind, dtype, reduction, weighted, n_threads, monkeypatch):
    monkeypatch.setattr(losses, "PARALLEL_MIN_SIZE", 0)   # the threaded path on small arrays
    pred, target, w = _data(kind, dtype, weighted=weighted)
    vc, gc = _loss(kind, reduction, "cython", n_threads).value_and_grad(pred, target, w)
    vn, gn = _loss(kind, reduction, "numpy", n_threads).value_and_grad(pred, target, w)
    assert gc.dtype == gn.dtype == dtype and gc.shape == pred.shape
    if dtype == np.float64:
        rtol = 1e-12
    else:  # softmax: the same exponentials, row sums in another order: a rare one-ulp flip
        rtol = 2 ** -23
    np.testing.assert_allclose(gc, gn, rtol=rtol, atol=rtol * np.abs(gn).max())
    if reduction == "none":
        assert vc.dtype == vn.dtype == dtype
        np.testing.assert_allclose(vc, vn, rtol=rtol)
    else:
        assert isinstance(vc, float) and isinstance(vn, float)
        # totals: the same element losses (double sums of them in float32) added in another order
        assert vc == pytest.approx(vn, rel=1e-12)
    if kind in ("mse", "bce"):
        # the same operations in the same order (BCE: the kernels' own exp and log1p
        # polynomials on both backends, no libm call): identical bits in both dtypes
        assert np.array_equal(gc, gn)
        if reduction == "none":
            assert np.array_equal(vc, vn)


@pytest.mark.parametrize("kind", KINDS)
def test_value_matches_value_and_grad(kind, backend):
    pred, target, w = _data(kind, np.float64, weighted=True)
    loss = _loss(kind, "sum", backend)
    assert loss.value(pred, target, w) == loss.value_and_grad(pred, target, w)[0]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_loss_is_callable_like_a_torch_module(kind, reduction, backend):
    """``loss(pred, target, weights)`` is ``loss.value(pred, target, weights)``."""
    for weighted in [False, True]:
        pred, target, w = _data(kind, np.float64, weighted=weighted)
        loss = _loss(kind, reduction, backend)
        want = loss.value(pred, target, w)
        got = loss(pred, target, w) if weighted else loss(pred, target)
        assert np.array_equal(got, want) and type(got) is type(want)
        if weighted:
            assert np.array_equal(loss(pred, target, weights=w), want)
    with pytest.raises(ValueError, match="shape"):
        loss(pred, target[:3])


def test_kernels_have_the_same_names():
    from rsft._reference import losses as reference_losses
    for name in reference_losses.__all__:
        assert callable(getattr(_core, name)) and callable(getattr(_reference, name))


# ---------------------------------------------------------------------------------------------
# Closed forms / scipy.special oracles
# ---------------------------------------------------------------------------------------------
def test_mse_closed_form(backend):
    pred, target, w = _data("mse", np.float64, weighted=True)
    d = pred - target
    v, g = MSE(backend=backend).value_and_grad(pred, target)
    assert v == pytest.approx(np.mean(d * d), rel=1e-13)
    np.testing.assert_allclose(g, 2 * d / d.size, rtol=1e-15)
    v, g = MSE("sum", backend=backend).value_and_grad(pred, target, w)
    assert v == pytest.approx(np.sum(w[:, None] * d * d), rel=1e-13)
    np.testing.assert_allclose(g, 2 * w[:, None] * d, rtol=1e-15)


def test_mse_1d_and_nd_shapes(backend):
    rng = np.random.default_rng(1)
    p = rng.normal(size=(4, 3, 2))
    t = rng.normal(size=(4, 3, 2))
    w = rng.random(4)
    v, g = MSE("none", backend=backend).value_and_grad(p, t, w)
    assert v.shape == g.shape == p.shape
    np.testing.assert_allclose(v, w[:, None, None] * (p - t) ** 2, rtol=1e-15)
    v1, g1 = MSE(backend=backend).value_and_grad(p[:, 0, 0], t[:, 0, 0])
    assert g1.shape == (4,)
    assert v1 == pytest.approx(np.mean((p[:, 0, 0] - t[:, 0, 0]) ** 2), rel=1e-14)


def test_bce_closed_form(backend):
    pred, target, w = _data("bce", np.float64, weighted=True)
    ref = np.logaddexp(0.0, pred) - pred * target  # softplus(z) - z*y
    v, g = BCEWithLogits("none", backend=backend).value_and_grad(pred, target, w)
    np.testing.assert_allclose(v, w[:, None] * ref, rtol=1e-13)
    np.testing.assert_allclose(g, w[:, None] * (expit(pred) - target), rtol=1e-13, atol=1e-16)
    # against the textbook form where it is accurate
    p = expit(pred)
    textbook = -(target * np.log(p) + (1 - target) * np.log1p(-p))
    v = BCEWithLogits(backend=backend).value(pred, target)
    assert v == pytest.approx(textbook.mean(), rel=1e-10)


@pytest.mark.parametrize("weighted", [False, True])
def test_bce_float32_accuracy(weighted, backend):
    """float32 is computed in float32: against the float64 closed form of the same (exactly
    widened) inputs, each loss is within 4 float32 epsilons of |z| + l (the scale of the terms
    max(z, 0) - z*y and log1p, which may cancel), each gradient within 4 epsilons of 1 + |y|
    (sigmoid - y), times the weight."""
    rng = np.random.default_rng(11)
    z = np.concatenate([3 * rng.normal(size=20_000), rng.uniform(-90, 90, 5_000),
                        [0.0, 1e-8, -1e-8, 1e4, -1e4]]).astype(np.float32)
    y = rng.random(z.size).astype(np.float32)
    w = rng.uniform(0.2, 2.0, z.size).astype(np.float32) if weighted else None
    v, g = BCEWithLogits("none", backend=backend).value_and_grad(z, y, w)
    assert v.dtype == g.dtype == np.float32
    z64, y64 = z.astype(np.float64), y.astype(np.float64)
    w64 = np.ones(z.size) if w is None else w.astype(np.float64)
    ref = np.logaddexp(0.0, z64) - z64 * y64
    eps = np.finfo(np.float32).eps
    assert np.all(np.abs(v - w64 * ref) <= 4 * eps * w64 * (np.abs(z64) + ref))
    assert np.all(np.abs(g - w64 * (expit(z64) - y64)) <= 4 * eps * w64 * (1 + y64))


#: significant digits of the exact oracle (decimal's exp and ln are correctly rounded there)
ORACLE_DIGITS = 60


def _exact(fn, a):
    """``exp(a)`` or ``log1p(a)`` of the float ``a`` as a Decimal of ``ORACLE_DIGITS`` digits
    (the float converts exactly); ``log1p`` by ``a - a**2/2`` below 1e-20 (the next term is
    below 1e-60 of it), where ``1 + a`` would round ``a`` away."""
    ctx = decimal.Context(prec=ORACLE_DIGITS)
    d = decimal.Decimal(a)
    if fn == "exp":
        return ctx.exp(d)
    if d < decimal.Decimal("1e-20"):
        return ctx.subtract(d, ctx.multiply(d, d) / 2)
    return ctx.ln(ctx.add(1, d))


def _exact_ulps(fn, args, got, dtype):
    """``|got - fn(args)|`` per element in units in the last place of the exact value rounded
    to ``dtype`` (its spacing above), with the exact value from :func:`_exact`."""
    out = []
    for a, g in zip(args.tolist(), got.tolist()):
        exact = _exact(fn, a)
        spacing = float(np.spacing(dtype(abs(float(exact)))))
        out.append(float(abs(decimal.Decimal(g) - exact) / decimal.Decimal(spacing)))
    return np.array(out)


def _checked_points(args, got, dtype, fn, rng, worst=400, sample=600):
    """The points the exact oracle checks: the ``worst`` ones by a cheap oracle (numpy at long
    double precision, which may be float64 itself: good enough to rank errors of about an
    ulp), ``sample`` more at random, and the first and last few (the given special points)."""
    wide = args.astype(np.longdouble)
    cheap = np.exp(wide) if fn == "exp" else np.log1p(wide)
    err = np.abs(got.astype(np.longdouble) - cheap) / np.spacing(np.abs(cheap).astype(dtype))
    pick = np.concatenate([np.argsort(err)[-worst:], rng.choice(args.size, sample),
                           np.arange(4), np.arange(args.size - 4, args.size)])
    return np.unique(pick)


@pytest.mark.parametrize("dtype", DTYPES)
def test_exp_and_log1p_polynomials(dtype, backend):
    """The kernels' branch-free exp (on (-inf, 0]) and log1p (on [0, 1]) against an exact
    oracle (decimal at 60 digits, on the worst 400 of 400,000 points by a cheap oracle and 600
    more): exp within 1.5 ulp (1.17 measured), log1p within 1 ulp (0.86 measured), in both
    dtypes; below the dtype's smallest normal exponent exp gives 0 (absolute error < 2.3e-308
    float64, 1.2e-38 float32); NaN gives NaN; and both backends give the same bits."""
    from rsft import _backend
    kern = _backend.kernels(backend)
    rng = np.random.default_rng(7)
    low = -708.39 if dtype == np.float64 else np.float32(-87.33)
    x = -np.concatenate([[0.0, 1e-30, 1e-300, 5e-324], rng.uniform(0, 1, 200_000),
                         rng.uniform(0, -low, 200_000), [-low]]).astype(dtype)
    out = np.empty_like(x)
    kern.exp_nonpositive_values(x, out)
    at = _checked_points(x, out, dtype, "exp", rng)
    assert _exact_ulps("exp", x[at], out[at], dtype).max() <= 1.5
    below = np.array([low * 1.0001, -1e4, -np.inf, np.nan], dtype=dtype)
    tail = np.empty_like(below)
    kern.exp_nonpositive_values(below, tail)
    assert np.all(tail[:3] == 0) and np.isnan(tail[3])
    assert float(_exact("exp", float(below[0]))) < np.finfo(dtype).tiny
    e = np.concatenate([[1.0, np.finfo(dtype).tiny, np.finfo(dtype).eps, 1e-30],
                        rng.uniform(0, 1, 200_000), np.exp(-rng.uniform(0, 60, 200_000)),
                        [0.0]]).astype(dtype)
    got = np.empty_like(e)
    kern.log1p_unit_values(e, got)
    assert got[-1] == 0.0
    at = _checked_points(e[:-1], got[:-1], dtype, "log1p", rng)
    assert _exact_ulps("log1p", e[at], got[at], dtype).max() <= 1.0
    for name, arg in (("exp_nonpositive_values", x), ("log1p_unit_values", e)):
        a, b = np.empty_like(arg), np.empty_like(arg)
        getattr(_core, name)(arg, a)
        getattr(_reference, name)(arg, b)
        assert np.array_equal(a, b), name


@pytest.mark.parametrize("dtype", DTYPES)
def test_exact_oracle_sees_an_ulp(dtype):
    """The oracle of test_exp_and_log1p_polynomials can fail: correctly rounded values are
    within half an ulp, the same moved two ulps are beyond 1.5."""
    x = np.array([-1e-3, -0.5, -3.0, -80.0], dtype=dtype)
    e = np.array([1e-3, 0.25, 0.75, 1e-25], dtype=dtype)
    for fn, args in (("exp", x), ("log1p", e)):
        rounded = np.array([float(_exact(fn, a)) for a in args.tolist()]).astype(dtype)
        assert _exact_ulps(fn, args, rounded, dtype).max() <= 0.5 + 1e-9
        moved = np.nextafter(np.nextafter(rounded, dtype(np.inf)), dtype(np.inf))
        assert _exact_ulps(fn, args, moved, dtype).min() > 1.5


def test_ce_labels_closed_form(backend):
    pred, y, w = _data("ce_labels", np.float64, weighted=True)
    ls = log_softmax(pred, axis=1)
    rows = np.arange(len(y))
    v, g = SoftmaxCrossEntropy("none", backend=backend).value_and_grad(pred, y)
    np.testing.assert_allclose(v, logsumexp(pred, axis=1) - pred[rows, y], rtol=1e-13)
    onehot = np.eye(pred.shape[1])[y]
    np.testing.assert_allclose(g, np.exp(ls) - onehot, rtol=1e-13, atol=1e-16)
    # weighted mean: torch's sum_i w_i l_i / sum_i w_i
    v = SoftmaxCrossEntropy(backend=backend).value(pred, y, w)
    assert v == pytest.approx(np.sum(-w * ls[rows, y]) / np.sum(w), rel=1e-13)


def test_ce_probs_closed_form(backend):
    pred, t, w = _data("ce_probs", np.float64, weighted=True)
    ls = log_softmax(pred, axis=1)
    v, g = SoftmaxCrossEntropy("none", backend=backend).value_and_grad(pred, t)
    np.testing.assert_allclose(v, -(t * ls).sum(axis=1), rtol=1e-13)
    np.testing.assert_allclose(g, np.exp(ls) - t, rtol=1e-12, atol=1e-15)
    # weighted mean with probability targets divides by n (torch)
    v = SoftmaxCrossEntropy(backend=backend).value(pred, t, w)
    assert v == pytest.approx(np.sum(-w * (t * ls).sum(axis=1)) / len(w), rel=1e-13)


def test_ce_probs_equal_labels_for_one_hot(backend):
    pred, y, w = _data("ce_labels", np.float64, weighted=True)
    onehot = np.eye(pred.shape[1])[y]
    vl, gl = SoftmaxCrossEntropy("sum", backend=backend).value_and_grad(pred, y, w)
    vp, gp = SoftmaxCrossEntropy("sum", backend=backend).value_and_grad(pred, onehot, w)
    assert vl == pytest.approx(vp, rel=1e-14)
    np.testing.assert_allclose(gl, gp, rtol=1e-14, atol=1e-17)


# ---------------------------------------------------------------------------------------------
# Gradients against 4th-order central finite differences
# ---------------------------------------------------------------------------------------------
def fd4(f, x, h=1e-3):
    """(-f(x+2h) + 8 f(x+h) - 8 f(x-h) + f(x-2h)) / (12 h), element by element."""
    g = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        def at(delta):
            y = x.copy()
            y[idx] += delta
            return f(y)
        g[idx] = (-at(2 * h) + 8 * at(h) - 8 * at(-h) + at(-2 * h)) / (12 * h)
    return g


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("weighted", [False, True])
def test_gradient_finite_differences(kind, reduction, weighted, backend):
    pred, target, w = _data(kind, np.float64, n=6, k=4, seed=3, weighted=weighted)
    loss = _loss(kind, reduction, backend)
    _, g = loss.value_and_grad(pred, target, w)
    g_fd = fd4(lambda p: loss.value(p, target, w), pred)
    np.testing.assert_allclose(g, g_fd, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("kind", KINDS)
def test_none_gradient_is_gradient_of_the_sum(kind, backend):
    pred, target, w = _data(kind, np.float64, weighted=True)
    _, gn = _loss(kind, "none", backend).value_and_grad(pred, target, w)
    _, gs = _loss(kind, "sum", backend).value_and_grad(pred, target, w)
    assert np.array_equal(gn, gs)


# ---------------------------------------------------------------------------------------------
# Extreme logits
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("big", [1e4, 1e30])
def test_bce_extreme_logits(dtype, big, backend):
    z = np.array([big, -big, big, -big, 0.0], dtype=dtype)
    y = np.array([1.0, 0.0, 0.0, 1.0, 1.0], dtype=dtype)
    v, g = BCEWithLogits("none", backend=backend).value_and_grad(z, y)
    assert np.all(np.isfinite(v)) and np.all(np.isfinite(g))
    np.testing.assert_allclose(v, [0.0, 0.0, big, big, np.log(2)], rtol=1e-6)
    np.testing.assert_allclose(g, [0.0, 0.0, 1.0, -1.0, -0.5], rtol=1e-7)


@pytest.mark.parametrize("dtype", DTYPES)
def test_ce_extreme_logits(dtype, backend):
    z = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [-1e4, -1e4, -1e4]], dtype=dtype)
    y = np.array([1, 0, 2])
    v, g = SoftmaxCrossEntropy("none", backend=backend).value_and_grad(z, y)
    assert np.all(np.isfinite(v)) and np.all(np.isfinite(g))
    np.testing.assert_allclose(v, [2e4, 2e4 + np.log(2), np.log(3)], rtol=1e-6)
    np.testing.assert_allclose(g, [[1, -1, 0], [-1, 0.5, 0.5], [1 / 3, 1 / 3, -2 / 3]],
                               rtol=1e-6, atol=1e-7)
    t = np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0], [1, 0, 0]], dtype=dtype)
    v, g = SoftmaxCrossEntropy("none", backend=backend).value_and_grad(z, t)
    assert np.all(np.isfinite(v)) and np.all(np.isfinite(g))
    np.testing.assert_allclose(v, [1e4, np.log(2), np.log(3)], rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# Reductions and weights
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_reductions_consistent(kind, backend):
    pred, target, w = _data(kind, np.float64, weighted=True)
    none = _loss(kind, "none", backend).value(pred, target, w)
    total = _loss(kind, "sum", backend).value(pred, target, w)
    mean, gm = _loss(kind, "mean", backend).value_and_grad(pred, target, w)
    _, gs = _loss(kind, "sum", backend).value_and_grad(pred, target, w)
    assert total == pytest.approx(none.sum(), rel=1e-13)
    denom = {"mse": pred.size, "bce": pred.size, "ce_labels": w.sum(), "ce_probs": len(w)}[kind]
    assert mean == pytest.approx(total / denom, rel=1e-13)
    np.testing.assert_allclose(gm, gs / denom, rtol=1e-13)


@pytest.mark.parametrize("kind", KINDS)
def test_unit_weights_equal_no_weights(kind, backend):
    pred, target, _ = _data(kind, np.float64)
    ones = np.ones(pred.shape[0])
    for red in REDUCTIONS:
        a = _loss(kind, red, backend).value_and_grad(pred, target)
        b = _loss(kind, red, backend).value_and_grad(pred, target, ones)
        np.testing.assert_allclose(a[0], b[0], rtol=1e-15)
        assert np.array_equal(a[1], b[1])


def test_weighted_softmax_semantics_closed_form(backend):
    """torch's CrossEntropyLoss(weight=...) semantics, from scipy's log_softmax: 'mean' is
    sum_i w_i l_i / sum_i w_i, 'sum' is sum_i w_i l_i, 'none' is w_i l_i."""
    from scipy.special import log_softmax
    rng = np.random.default_rng(5)
    z = rng.normal(size=(20, 4))
    y = rng.integers(0, 4, 20)
    w = rng.uniform(0.5, 2, 4)[y]
    li = -log_softmax(z, axis=1)[np.arange(20), y]
    expected = {"mean": (w * li).sum() / w.sum(), "sum": (w * li).sum(), "none": w * li}
    for red in REDUCTIONS:
        ours = SoftmaxCrossEntropy(red, backend=backend).value(z, y, w)
        np.testing.assert_allclose(ours, expected[red], rtol=1e-12)
    v = SoftmaxCrossEntropy(backend=backend).value([[0.0, 0.0]], [1])
    assert v == pytest.approx(np.log(2))


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("kind,where", [(k, w) for k in KINDS
                                        for w in ("pred", "target", "weights")
                                        if not (k == "ce_labels" and w == "target")])
def test_non_finite_rejected(bad, kind, where, backend):
    pred, target, w = _data(kind, np.float64, weighted=True)
    arr = {"pred": pred, "target": target, "weights": w}[where]
    if where == "pred" and kind == "ce_labels" and bad == -np.inf:
        target[3] = 1  # -inf at the label: infinite loss (elsewhere: a masked class)
    arr[(3,) + (1,) * (arr.ndim - 1)] = bad
    for red in REDUCTIONS:
        with pytest.raises(ValueError, match=f"{where} contains"):
            _loss(kind, red, backend).value_and_grad(pred, target, w)


def test_minus_inf_logit_masks_a_class(backend):
    z = np.array([[0.0, -np.inf, 0.0], [1.0, 2.0, -np.inf]])
    v, g = SoftmaxCrossEntropy("none", backend=backend).value_and_grad(z, [0, 1])
    np.testing.assert_allclose(v, [np.log(2), np.log1p(np.exp(-1.0))], rtol=1e-15)
    assert g[0, 1] == 0.0 and g[1, 2] == 0.0 and np.all(np.isfinite(g))
    with pytest.raises(ValueError, match="pred contains infinity"):
        SoftmaxCrossEntropy(backend=backend).value(z, [1, 1])


def test_shape_mismatch(backend):
    with pytest.raises(ValueError, match="target must have pred's shape"):
        MSE(backend=backend).value(np.zeros((3, 2)), np.zeros((3,)))
    with pytest.raises(ValueError, match="target must have pred's shape"):
        BCEWithLogits(backend=backend).value(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="weights must have shape"):
        MSE(backend=backend).value(np.zeros(3), np.zeros(3), np.ones(2))
    with pytest.raises(ValueError, match=r"labels must have shape \(3,\)"):
        SoftmaxCrossEntropy(backend=backend).value(np.zeros((3, 2)), [0, 1])
    with pytest.raises(ValueError, match="probability targets must have"):
        SoftmaxCrossEntropy(backend=backend).value(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="2-D logits"):
        SoftmaxCrossEntropy(backend=backend).value(np.zeros(3), [0, 1, 0])
    with pytest.raises(ValueError, match="labels .n,. or probabilities"):
        SoftmaxCrossEntropy(backend=backend).value(np.zeros((3, 2)), np.zeros((3, 2, 1)))


def test_labels_out_of_range_and_dtype(backend):
    ce = SoftmaxCrossEntropy(backend=backend)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        ce.value(np.zeros((2, 3)), [0, 3])
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        ce.value(np.zeros((2, 3)), [-1, 0])
    with pytest.raises(TypeError, match="integer class labels"):
        ce.value(np.zeros((2, 3)), [0.0, 1.0])
    with pytest.raises(TypeError, match="integer class labels"):
        ce.value(np.zeros((2, 3)), [True, False])


# ---------------------------------------------------------------------------------------------
# n_threads: the total is ordered by block, so every thread count gives the same bits
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", [(40_003, 1), (9_001, 7)], ids=["n40003xk1", "n9001xk7"])
def test_n_threads_gives_the_same_bits(kind, dtype, reduction, weighted, shape, monkeypatch):
    """Shapes spanning several blocks of 16384 elements (the last one shorter): value and
    gradient on 2 and 4 threads equal 1 thread bit for bit; the numpy backend takes the
    argument and gives its own 1-thread result."""
    n, k = shape
    pred, target, w = _data(kind, dtype, n=n, k=max(k, 2) if kind.startswith("ce") else k,
                            weighted=weighted)
    for backend in ("cython", "numpy"):
        v1, g1 = _loss(kind, reduction, backend).value_and_grad(pred, target, w)
        for n_threads in (2, 4):
            v, g = _loss(kind, reduction, backend, n_threads).value_and_grad(pred, target, w)
            assert np.array_equal(g, g1), (backend, n_threads)
            assert np.array_equal(v, v1), (backend, n_threads)


@pytest.mark.parametrize("kind", KINDS)
def test_n_threads_above_the_parallel_minimum(kind):
    """At PARALLEL_MIN_SIZE elements and above, the threads really run: the same bits."""
    k = 4 if kind.startswith("ce") else 1
    pred, target, w = _data(kind, np.float64, n=losses.PARALLEL_MIN_SIZE // k + 3, k=k,
                            weighted=True)
    v1, g1 = _loss(kind, "sum", "cython").value_and_grad(pred, target, w)
    v2, g2 = _loss(kind, "sum", "cython", n_threads=2).value_and_grad(pred, target, w)
    assert v1 == v2 and np.array_equal(g1, g2)


@pytest.mark.parametrize("value, exc", [(0, ValueError), (257, ValueError), (1.0, TypeError),
                                        (True, TypeError), (None, TypeError)])
@pytest.mark.parametrize("kind", KINDS)
def test_bad_n_threads(value, exc, kind):
    with pytest.raises(exc, match="n_threads"):
        _loss(kind, n_threads=value)


def test_bad_dtypes_and_options(backend):
    with pytest.raises(TypeError, match="float32 or float64"):
        MSE(backend=backend).value(np.arange(3), np.arange(3))
    with pytest.raises(TypeError, match="float32 or float64"):
        MSE(backend=backend).value(np.zeros(3, np.float16), np.zeros(3))
    with pytest.raises(TypeError, match="float32 or float64"):
        MSE(backend=backend).value(np.zeros(3, complex), np.zeros(3))
    with pytest.raises(TypeError, match="target must be real"):
        MSE(backend=backend).value(np.zeros(2), np.array(["a", "b"]))
    with pytest.raises(TypeError, match="weights must be real"):
        MSE(backend=backend).value(np.zeros(2), np.zeros(2), np.zeros(2, complex))
    with pytest.raises(ValueError, match="reduction"):
        MSE(reduction="avg")
    with pytest.raises(ValueError, match="unknown backend"):
        MSE(backend="torch")
    with pytest.raises(ValueError, match="empty"):
        MSE(backend=backend).value(np.zeros(0), np.zeros(0))
    with pytest.raises(ValueError, match="0-d"):
        MSE(backend=backend).value(np.float64(1.0), 1.0)
    with pytest.raises(ValueError, match="weights sum to 0"):
        SoftmaxCrossEntropy(backend=backend).value(np.zeros((2, 2)), [0, 1], [1.0, -1.0])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("k", [1, 3])
def test_negative_and_zero_weights_parity(kind, k):
    pred, target, w = _data(kind, np.float64, n=23, k=max(k, 2) if kind.startswith("ce") else k,
                            weighted=True)
    w[::3] = -w[::3]
    w[1] = 0.0
    vc, gc = _loss(kind, "sum", "cython").value_and_grad(pred, target, w)
    vn, gn = _loss(kind, "sum", "numpy").value_and_grad(pred, target, w)
    assert vc == pytest.approx(vn, rel=1e-12)
    np.testing.assert_allclose(gc, gn, rtol=1e-12, atol=1e-15)
    assert np.all(gc[1] == 0.0)
