"""Reference (numpy) loss kernels; twin of ``_kernels/losses.pxi``.

Conventions shared by both backends (kernels do arithmetic only; :mod:`rsft.losses` validates):

* ``pred``/``logits`` and targets are C-contiguous 2-D arrays of one dtype (float32 or float64),
  rows are samples. Arithmetic is done in float64 whatever the storage dtype: float32 inputs are
  widened, results rounded to float32 when stored.
* An argument of length 0 means "absent": ``weights`` (unit weights), ``loss_out`` (per-sample
  losses not written), ``grad_out`` (gradient not written).
* ``grad_scale`` multiplies the gradient (1/count for a mean, 1 for a sum). Every loss kernel
  returns ``total = sum_i w_i * l_i`` (a Python float) and writes ``w_i * l_i`` into ``loss_out``
  and ``grad_scale * w_i * dl_i/dpred`` into ``grad_out``. ``n_threads`` is how many threads
  the compiled kernel may use (its results do not depend on it); this backend runs on one.

Formulas, in the order of operations both backends use (``d``, ``e``, ... are float64):

* MSE: ``d = p - t``, ``l = d*d`` (then ``w*l``), ``g = (2*grad_scale*w) * d``.
* BCE with logits: ``e = exp(-|z|)``, ``l = (max(z, 0) - z*y) + log1p(e)``,
  ``sigmoid = 1/(1+e)`` if ``z >= 0`` else ``e * (1/(1+e))``, ``g = (grad_scale*w) * (sigmoid - y)``.
* Softmax cross-entropy, per row: ``m = max z``, ``e_j = exp(z_j - m)``, ``s = sum_j e_j``,
  ``p_j = e_j * (1/s)``;
  labels: ``l = log(s) - (z_y - m)``, ``g_j = (grad_scale*w) * (p_j - [j == y])``;
  probabilities ``t``: ``T = sum_j t_j``, ``l = sum_j t_j * (log(s) - (z_j - m))``,
  ``g_j = (grad_scale*w) * (p_j*T - t_j)`` (the gradient of the formula for any ``t``).

Element-wise results are bit-identical between backends except where ``exp``/``log``/``log1p``
differ by an ulp between numpy and the C library; sums are taken in a different order (numpy's
pairwise sum here, a left-to-right double sum in C), so totals agree to ~1e-15 relative.

Categorical sampling (:func:`categorical_inverse_cdf`) is exact on both backends: a left-to-right
double cumulative sum (``np.cumsum`` is sequential) and comparisons only.
"""

import functools

import numpy as np

__all__ = [
    "mse_loss", "bce_with_logits_loss", "softmax_xent_labels", "softmax_xent_probs",
    "sigmoid", "softmax", "log_softmax", "categorical_inverse_cdf",
]

_F64 = np.float64


def _quiet(fn):
    """Like the C kernels, no floating-point warnings (invalid inputs show in the total)."""
    @functools.wraps(fn)
    def wrapper(*args):
        with np.errstate(all="ignore"):
            return fn(*args)
    return wrapper


def _wide(a):
    return np.asarray(a, dtype=_F64)


def _finish(per, w, loss_out, grad, grad_out):
    """Weight per-sample losses, store the optional outputs and return the total."""
    if w.shape[0] != 0:
        per = _wide(w).reshape((-1,) + (1,) * (per.ndim - 1)) * per
    if loss_out.shape[0] != 0:
        loss_out[...] = per
    if grad_out.shape[0] != 0:
        grad_out[...] = grad()
    return float(np.sum(per))


def _row_scale(grad_scale, w):
    """``grad_scale * w_i`` as a column (or the scalar ``grad_scale`` without weights)."""
    if w.shape[0] == 0:
        return grad_scale
    return (grad_scale * _wide(w)).reshape(-1, 1)


@_quiet
def mse_loss(pred, target, weights, grad_scale, loss_out, grad_out, n_threads):
    """Weighted squared error: returns ``sum w_i (p_ij - t_ij)^2``; gradient ``2 w_i d_ij``."""
    d = _wide(pred) - _wide(target)
    c = _row_scale(2.0 * grad_scale, weights)
    return _finish(d * d, weights, loss_out, lambda: c * d, grad_out)


def _bce_parts(z):
    e = np.exp(-np.abs(z))
    inv = 1.0 / (1.0 + e)
    sig = np.where(z >= 0.0, inv, e * inv)
    return e, sig


@_quiet
def bce_with_logits_loss(pred, target, weights, grad_scale, loss_out, grad_out, n_threads):
    """Weighted BCE with logits: ``max(z,0) - z*y + log1p(exp(-|z|))``; gradient ``sigmoid(z)-y``."""
    z = _wide(pred)
    y = _wide(target)
    e, sig = _bce_parts(z)
    per = (np.maximum(z, 0.0) - z * y) + np.log1p(e)
    c = _row_scale(grad_scale, weights)
    return _finish(per, weights, loss_out, lambda: c * (sig - y), grad_out)


def _shifted_exp(logits):
    """``(z - m, e = exp(z - m), s = sum e)`` per row, float64."""
    z = _wide(logits)
    shifted = z - z.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return shifted, e, e.sum(axis=1)


@_quiet
def softmax_xent_labels(logits, labels, weights, grad_scale, loss_out, grad_out, n_threads):
    """Softmax cross-entropy with integer labels: ``log(s) - (z_y - m)`` per row."""
    shifted, e, s = _shifted_exp(logits)
    rows = np.arange(shifted.shape[0])
    per = np.log(s) - shifted[rows, labels]

    def grad():
        p = e * (1.0 / s)[:, None]
        p[rows, labels] -= 1.0
        return _row_scale(grad_scale, weights) * p

    return _finish(per, weights, loss_out, grad, grad_out)


@_quiet
def softmax_xent_probs(logits, targets, weights, grad_scale, loss_out, grad_out, n_threads):
    """Softmax cross-entropy with probability targets: ``sum_j t_j (log(s) - (z_j - m))``."""
    shifted, e, s = _shifted_exp(logits)
    t = _wide(targets)
    per = (t * (np.log(s)[:, None] - shifted)).sum(axis=1)

    def grad():
        p = e * (1.0 / s)[:, None]
        return _row_scale(grad_scale, weights) * (p * t.sum(axis=1)[:, None] - t)

    return _finish(per, weights, loss_out, grad, grad_out)


@_quiet
def sigmoid(z, out):
    """Logistic function, piecewise as in the BCE kernel."""
    out[...] = _bce_parts(_wide(z))[1]


@_quiet
def softmax(logits, out):
    """Row-wise softmax probabilities ``e_j * (1/s)``."""
    _, e, s = _shifted_exp(logits)
    out[...] = e * (1.0 / s)[:, None]


@_quiet
def log_softmax(logits, out):
    """Row-wise log-softmax ``(z_j - m) - log(s)``."""
    shifted, _, s = _shifted_exp(logits)
    out[...] = shifted - np.log(s)[:, None]


#: rows per block of the vectorised search (bounds its n*m*k temporary)
_BLOCK_ELEMENTS = 1 << 22


def categorical_inverse_cdf(probs, u, out):
    """``out[i, r] = #{j < k-1 : c_ij <= u[i, r] * c_i,k-1}``, ``c = cumsum(probs)`` in float64.

    The first category whose cumulative weight exceeds ``u * total``; never a category of
    probability 0 (including a trailing one when the cumulative sum rounds below 1).
    """
    n, k = probs.shape
    m = u.shape[1]
    if n == 0 or m == 0:
        return
    c = np.cumsum(_wide(probs), axis=1)
    rows = max(1, _BLOCK_ELEMENTS // max(1, m * k))
    for a in range(0, n, rows):
        b = min(n, a + rows)
        v = u[a:b] * c[a:b, k - 1:k]
        out[a:b] = (c[a:b, None, :k - 1] <= v[:, :, None]).sum(axis=2)
