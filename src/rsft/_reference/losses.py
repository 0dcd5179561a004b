"""Reference (numpy) loss kernels; twin of ``_kernels/losses.pxi``.

Conventions shared by both backends (kernels do arithmetic only; :mod:`rsft.losses` validates):

* ``pred``/``logits`` and targets are C-contiguous 2-D arrays of one dtype (float32 or float64),
  rows are samples. MSE and the softmax cross-entropy's sums and logarithms are done in float64
  whatever the storage dtype (float32 inputs widened, results rounded to float32 when stored);
  BCE with logits and every exponential are computed in the storage dtype (float32 in float32).
* An argument of length 0 means "absent": ``weights`` (unit weights), ``loss_out`` (per-sample
  losses not written), ``grad_out`` (gradient not written).
* ``grad_scale`` multiplies the gradient (1/count for a mean, 1 for a sum). Every loss kernel
  returns ``total = sum_i w_i * l_i`` (a Python float) and writes ``w_i * l_i`` into ``loss_out``
  and ``grad_scale * w_i * dl_i/dpred`` into ``grad_out``. ``n_threads`` is how many threads
  the compiled kernel may use (its results do not depend on it); this backend runs on one.

Formulas, in the order of operations both backends use (``d``, ``e``, ... are float64):

* MSE: ``d = p - t``, ``l = d*d`` (then ``w*l``), ``g = (2*grad_scale*w) * d``.
* ``exp`` is :func:`exp_nonpositive_values` and ``log1p`` is :func:`log1p_unit_values` (branch-free
  polynomials, the kernels' own, written here with the same operations in the same order).
* BCE with logits, in the storage dtype: ``e = exp(-|z|)``, ``l = w * ((max(z, 0) - z*y) +
  log1p(e))`` (``w = 1`` without weights), ``sigmoid = 1/(1+e)`` if ``z >= 0`` else
  ``e * (1/(1+e))``, ``g = c * (sigmoid - y)`` with ``c = grad_scale*w`` computed in float64 and
  rounded to the storage dtype.
* Softmax cross-entropy, per row: ``m = max z``, ``e_j = exp(z_j - m)`` (the difference taken in
  float64, rounded to the storage dtype, exponentiated there, widened), ``s = sum_j e_j``,
  ``p_j = e_j * (1/s)``;
  labels: ``l = log(s) - (z_y - m)``, ``g_j = (grad_scale*w) * (p_j - [j == y])``;
  probabilities ``t``: ``T = sum_j t_j``, ``l = sum_j t_j * (log(s) - (z_j - m))``,
  ``g_j = (grad_scale*w) * (p_j*T - t_j)`` (the gradient of the formula for any ``t``).

Element-wise results are bit-identical between backends for MSE, BCE and the sigmoid (the same
operations in the same order, IEEE arithmetic, no fused multiply-add), and for the softmax
losses except where numpy's ``log`` and the C library's differ by an ulp (one ``log`` per row);
sums are taken in a different order (numpy's pairwise sum here, a fixed order of partial sums in
C), so totals agree to ~1e-15 relative in float64 and ~1e-7 in float32 (its losses round to
float32 before they are added).

Categorical sampling (:func:`categorical_inverse_cdf`) is exact on both backends: a left-to-right
double cumulative sum (``np.cumsum`` is sequential) and comparisons only.

Long inputs run in blocks of rows (:func:`_row_blocks`, about ``_PASS_ELEMENTS`` elements
each): numpy runs each ufunc over its whole operand without letting Python run a signal
handler, so between blocks Ctrl-C gets through. Every result is computed row by row (row sums
included: numpy's sum along a row does not depend on the other rows), and each total is still
one ``np.sum`` over all the per-element losses, so blocks never change a bit.
"""

import functools
import math

import numpy as np

__all__ = [
    "mse_loss", "bce_with_logits_loss", "softmax_xent_labels", "softmax_xent_probs",
    "sigmoid", "softmax", "log_softmax", "categorical_inverse_cdf", "exp_nonpositive_values",
    "log1p_unit_values",
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


#: elements per block of rows of a long pass (at least one row per block)
_PASS_ELEMENTS = 1 << 20


def _row_blocks(a):
    """``[(start, stop), ...]``: consecutive ranges of the rows of ``a`` (axis 0), about
    ``_PASS_ELEMENTS`` elements each (one block for a short input; ``[(0, 0)]`` for none)."""
    n = a.shape[0]
    rows = max(1, _PASS_ELEMENTS // max(1, math.prod(a.shape[1:])))
    return [(r, min(n, r + rows)) for r in range(0, n, rows)] or [(0, 0)]


def _blocked_total(x, shape, w, loss_out, grad_out, block):
    """Run ``block(a, b) -> (per, grad)`` (the float64 losses of rows ``[a, b)`` of the input
    ``x`` before weighting, of shape ``shape`` for all rows, and a callable giving their
    gradient) on every block of rows; weight the losses, store the optional outputs and return
    the total: one ``np.sum`` over all the weighted losses, in the order it has without blocks."""
    weighted = np.empty(shape, _F64)
    for a, b in _row_blocks(x):
        per, grad = block(a, b)
        if w.shape[0] != 0:
            per = _wide(w[a:b]).reshape((-1,) + (1,) * (per.ndim - 1)) * per
        weighted[a:b] = per
        if loss_out.shape[0] != 0:
            loss_out[a:b] = per
        if grad_out.shape[0] != 0:
            grad_out[a:b] = grad()
    return float(np.sum(weighted))


def _row_scale(grad_scale, w):
    """``grad_scale * w_i`` as a column (or the scalar ``grad_scale`` without weights)."""
    if w.shape[0] == 0:
        return grad_scale
    return (grad_scale * _wide(w)).reshape(-1, 1)


@_quiet
def mse_loss(pred, target, weights, grad_scale, loss_out, grad_out, n_threads):
    """Weighted squared error: returns ``sum w_i (p_ij - t_ij)^2``; gradient ``2 w_i d_ij``."""
    c = _row_scale(2.0 * grad_scale, weights)

    def block(a, b):
        d = _wide(pred[a:b]) - _wide(target[a:b])
        return d * d, lambda: (c if np.ndim(c) == 0 else c[a:b]) * d

    return _blocked_total(pred, pred.shape, weights, loss_out, grad_out, block)


# -- exp on (-inf, 0] and log1p on [0, 1]: the kernels' polynomials (see _kernels/losses.pxi
#    for the reduction, the polynomials and their error bounds); constants per dtype, in the
#    dtype, so every operation below rounds exactly as the compiled one.
class _ExpConstants:
    def __init__(self, dt, low, magic, magic_bits, bias, ln2_hi, ln2_lo, exp_terms, log_terms):
        self.dt, self.int = dt, np.dtype(np.uint64 if dt == np.float64 else np.uint32)
        c = dt.type
        self.low, self.magic, self.log2e = c(low), c(magic), c(1.4426950408889634)
        self.magic_bits, self.bias = self.int.type(magic_bits), self.int.type(bias)
        self.shift = self.int.type(52 if dt == np.float64 else 23)
        self.ln2_hi, self.ln2_lo = c(ln2_hi), c(ln2_lo)
        # Taylor coefficients of exp, highest degree first: 1/n!, n = exp_terms .. 0
        self.exp_coef = [c(1.0 / math.factorial(n)) for n in range(exp_terms, -1, -1)]
        # 2/(2n+1) of 2 atanh(s) - 2s, highest first: n = log_terms .. 1
        self.log_coef = [c(2.0 / (2 * n + 1)) for n in range(log_terms, 0, -1)]
        self.one, self.half, self.two, self.zero = c(1.0), c(0.5), c(2.0), c(0.0)
        self.sqrt2 = c(1.4142135623730951)


_CONST = {
    np.dtype(np.float64): _ExpConstants(np.dtype(np.float64), -708.39, 6755399441055744.0,
                                        0x4338000000000000, 1023, 6.93147180369123816490e-01,
                                        1.90821492927058770002e-10, 13, 10),
    np.dtype(np.float32): _ExpConstants(np.dtype(np.float32), -87.33, 12582912.0, 0x4B400000, 127,
                                        0.693145751953125, 1.4286068202862268e-06, 7, 4),
}


def _exp_nonpositive(x):
    """exp(x) for x <= 0 in x's dtype: k = rint(x/ln 2) by ROUND_MAGIC, r = x - k ln 2 (Cody and
    Waite), a Taylor polynomial of exp(r) in Horner form, times 2**k built in the exponent bits;
    0 below the dtype's low limit."""
    C = _CONST[x.dtype]
    under = x < C.low
    xc = np.where(under, C.low, x)
    t = xc * C.log2e
    t += C.magic
    k = t - C.magic
    r = xc - k * C.ln2_hi
    k *= C.ln2_lo
    r -= k
    p = r * C.exp_coef[0]        # Horner in place: p = coef + r * p, the same roundings
    for coef in C.exp_coef[1:-1]:
        p += coef
        p *= r
    p += C.exp_coef[-1]
    pow2 = t.view(C.int)
    pow2 -= C.magic_bits
    pow2 += C.bias
    pow2 <<= C.shift
    p *= pow2.view(C.dt)
    p[under] = C.zero
    return p


def _log1p_unit(e):
    """log(1 + e) for e in [0, 1] in e's dtype: the rounding of u = 1 + e corrected by c, u split
    as 2**j (1 + f), log(1 + f) = f - f*f/2 + s*(f*f/2 + R(s*s)), s = f/(2 + f) (fdlibm's form)."""
    C = _CONST[e.dtype]
    u = C.one + e
    c = (e - (u - C.one)) / u
    big = u > C.sqrt2
    f = np.where(big, C.half * u - C.one, u - C.one)
    big_hi = np.where(big, C.ln2_hi, C.zero)
    big_lo = np.where(big, C.ln2_lo, C.zero)
    hfsq = C.half * f * f
    s = f / (C.two + f)
    z = s * s
    R = C.log_coef[0]
    for coef in C.log_coef[1:]:
        R = coef + z * R
    R = z * R
    return big_hi - ((hfsq - (s * (hfsq + R) + (big_lo + c))) - f)


def _bce_parts(z):
    """``(e, sigmoid)`` in z's dtype: ``e = exp(-|z|)``, the sigmoid from it."""
    e = _exp_nonpositive(-np.abs(z))
    inv = 1 / (1 + e)
    sig = np.where(z >= 0, inv, e * inv)
    return e, sig


@_quiet
def bce_with_logits_loss(pred, target, weights, grad_scale, loss_out, grad_out, n_threads):
    """Weighted BCE with logits: ``max(z,0) - z*y + log1p(exp(-|z|))``; gradient ``sigmoid(z)-y``."""
    dt = pred.dtype.type
    per_all = np.empty(pred.shape, pred.dtype)
    for a, b in _row_blocks(pred):
        z = np.asarray(pred[a:b])
        y = np.asarray(target[a:b])
        e, sig = _bce_parts(z)
        per = (np.maximum(z, dt(0)) - z * y) + _log1p_unit(e)
        if weights.shape[0] == 0:
            c = dt(grad_scale)
        else:
            w = np.asarray(weights[a:b]).reshape(-1, 1)
            per = w * per
            c = (grad_scale * _wide(w)).astype(z.dtype)
        per_all[a:b] = per
        if loss_out.shape[0] != 0:
            loss_out[a:b] = per
        if grad_out.shape[0] != 0:
            grad_out[a:b] = c * (sig - y)
    return float(np.sum(per_all, dtype=_F64))


def _shifted_exp(logits):
    """``(z - m, e = exp(z - m), s = sum e)`` per row, float64."""
    z = _wide(logits)
    shifted = z - z.max(axis=1, keepdims=True)
    e = _wide(_exp_nonpositive(shifted.astype(logits.dtype)))
    return shifted, e, e.sum(axis=1)


@_quiet
def softmax_xent_labels(logits, labels, weights, grad_scale, loss_out, grad_out, n_threads):
    """Softmax cross-entropy with integer labels: ``log(s) - (z_y - m)`` per row."""
    scale = _row_scale(grad_scale, weights)

    def block(a, b):
        shifted, e, s = _shifted_exp(logits[a:b])
        rows, y = np.arange(b - a), labels[a:b]
        per = np.log(s) - shifted[rows, y]

        def grad():
            p = e * (1.0 / s)[:, None]
            p[rows, y] -= 1.0
            return (scale if np.ndim(scale) == 0 else scale[a:b]) * p

        return per, grad

    return _blocked_total(logits, logits.shape[:1], weights, loss_out, grad_out, block)


@_quiet
def softmax_xent_probs(logits, targets, weights, grad_scale, loss_out, grad_out, n_threads):
    """Softmax cross-entropy with probability targets: ``sum_j t_j (log(s) - (z_j - m))``."""
    scale = _row_scale(grad_scale, weights)

    def block(a, b):
        shifted, e, s = _shifted_exp(logits[a:b])
        t = _wide(targets[a:b])
        per = (t * (np.log(s)[:, None] - shifted)).sum(axis=1)

        def grad():
            p = e * (1.0 / s)[:, None]
            return (scale if np.ndim(scale) == 0 else scale[a:b]) * (p * t.sum(axis=1)[:, None]
                                                                      - t)

        return per, grad

    return _blocked_total(logits, logits.shape[:1], weights, loss_out, grad_out, block)


@_quiet
def sigmoid(z, out):
    """Logistic function in z's dtype, as in the BCE kernel."""
    for a, b in _row_blocks(z):
        out[a:b] = _bce_parts(np.asarray(z[a:b]))[1]


@_quiet
def exp_nonpositive_values(x, out):
    """exp(x) for x <= 0 element-wise, the loss kernels' polynomial (a test hook)."""
    out[...] = _exp_nonpositive(np.asarray(x))


@_quiet
def log1p_unit_values(e, out):
    """log(1 + e) for e in [0, 1] element-wise, the BCE kernel's polynomial (a test hook)."""
    out[...] = _log1p_unit(np.asarray(e))


@_quiet
def softmax(logits, out):
    """Row-wise softmax probabilities ``e_j * (1/s)``."""
    for a, b in _row_blocks(logits):
        _, e, s = _shifted_exp(logits[a:b])
        out[a:b] = e * (1.0 / s)[:, None]


@_quiet
def log_softmax(logits, out):
    """Row-wise log-softmax ``(z_j - m) - log(s)``."""
    for a, b in _row_blocks(logits):
        shifted, _, s = _shifted_exp(logits[a:b])
        out[a:b] = shifted - np.log(s)[:, None]


#: rows per block of the vectorised search (bounds its n*m*k temporary; and Ctrl-C gets
#: through between blocks)
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
    rows = max(1, _BLOCK_ELEMENTS // max(1, m * k))
    for a in range(0, n, rows):
        b = min(n, a + rows)
        c = np.cumsum(_wide(probs[a:b]), axis=1)
        v = u[a:b] * c[:, k - 1:k]
        out[a:b] = (c[:, None, :k - 1] <= v[:, :, None]).sum(axis=2)
