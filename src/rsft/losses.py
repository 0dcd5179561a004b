"""Losses with exact gradients, value and gradient in one pass: MSE, BCE with logits, softmax
cross-entropy with logits.

Each loss is a small object: ``loss.value(pred, target, weights=None)`` (also
``loss(pred, target, weights=None)``, as with torch's loss modules) and
``loss.value_and_grad(pred, target, weights=None) -> (value, grad)``, where ``grad`` has the shape
and dtype of ``pred``. ``reduction`` has torch's meaning:

* ``"none"``: the value is the array of (weighted) per-element losses (per-row for softmax
  cross-entropy) and the gradient is that of their sum, element by element;
* ``"sum"``: their sum (a float) and its gradient;
* ``"mean"``: their mean (a float) and its gradient, where *mean* follows torch per loss:

  ============================  ======================================  ========================
  loss                          mean without weights                    mean with weights ``w``
  ============================  ======================================  ========================
  ``MSE``                       ``sum l / numel``                       ``sum w_i l_ij / numel``
  ``BCEWithLogits``             ``sum l / numel``                       ``sum w_i l_ij / numel``
  ``SoftmaxCrossEntropy``       ``sum l_i / n``                         labels: ``sum w_i l_i /
                                                                        sum w_i``; probability
                                                                        targets: ``sum w_i l_i /
                                                                        n``
  ============================  ======================================  ========================

  ``BCEWithLogitsLoss(weight=...)`` rescales each element and divides by the number of elements,
  and MSE (which has no weight in torch) follows the same element-wise convention.
  ``CrossEntropyLoss(weight=...)`` with class-index targets divides by the sum of the weights of
  the targets, with probability targets by the batch size; rsft's per-sample weights do the same
  with ``w_i`` in place of ``weight[y_i]``.

Per-sample weights ``w`` have shape ``(n,)`` (``n = pred.shape[0]``) and scale every element of
row ``i``. They may be any finite reals (torch does not restrict them either).

Inputs: ``pred`` is float32 or float64 (kept; lists become float64). ``target`` (and ``weights``)
are cast to ``pred``'s dtype; for softmax cross-entropy a 1-D integer ``target`` holds class labels
in ``[0, k)`` and a 2-D ``target`` of ``pred``'s shape holds probabilities (not required to sum
to 1; the gradient is that of the formula). NaN or infinity in any input raises ``ValueError``
(detected from the computed total, so finite inputs pay no extra pass), with one exception
kept from torch: ``SoftmaxCrossEntropy`` with labels accepts ``-inf`` logits (a masked class,
probability 0) as long as the labelled class's logit is finite. Logits as large as
``±1e4`` (or ``±1e300``) give finite values and gradients: log1pexp is evaluated piecewise and
log-sum-exp with the row maximum subtracted.

``backend`` (``"cython"`` or ``"numpy"``, default: the process default at call time) picks the
kernel. MSE and BCE give the same gradients and per-element losses on both, bit for bit (the
same operations in the same order; BCE's exp and log1p are rsft's own branch-free polynomials,
within 1.5 and 1 ulp); softmax cross-entropy agrees to ~1e-15 relative in float64 and an ulp
in float32. BCE with logits is computed in float32 for float32 inputs (MSE and the softmax
losses in float64, rounded on store); totals are always accumulated in float64.

``n_threads`` (keyword, default 1, an integer in ``[1, 256]``): threads of the compiled kernel
for inputs of at least ``PARALLEL_MIN_SIZE`` (262144) elements. The rows are cut into blocks
of about 16384 elements that depend only on the shape; blocks run on up to ``n_threads``
threads and the total adds the blocks' partial sums in block order, so the value and the
gradient are the same bits for every ``n_threads``.
"""

import math

import numpy as np

from . import _backend, _blocks, _validate

__all__ = ["Loss", "MSE", "BCEWithLogits", "SoftmaxCrossEntropy"]

_REDUCTIONS = ("mean", "sum", "none")
#: fewer elements than this run on one thread whatever ``n_threads`` says (see
#: rsft._blocks.PARALLEL_MIN_ELEMENTS); results do not depend on it
PARALLEL_MIN_SIZE = _blocks.PARALLEL_MIN_ELEMENTS
_EMPTY = {dt: (np.empty(0, dt), np.empty((0, 0), dt)) for dt in _validate.FLOATS}


def _as_pred(pred, name="pred"):
    """C-contiguous float32/float64 array; lists and scalars become float64."""
    if not isinstance(pred, np.ndarray):
        try:
            pred = np.asarray(pred, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must be a real floating array, got {type(pred).__name__}: "
                            f"{exc}") from None
    if pred.dtype not in _validate.FLOATS:
        raise TypeError(f"{name} must have dtype float32 or float64, got {pred.dtype}; "
                        f"convert it with np.asarray({name}, dtype=np.float64)")
    if pred.ndim == 0:
        raise ValueError(f"{name} must have at least one dimension (samples along axis 0), "
                         "got a 0-d array")
    if pred.size == 0:
        raise ValueError(f"{name} is empty (shape {pred.shape}); a loss needs at least one "
                         "element")
    return np.ascontiguousarray(pred)


def _as_real(a, dtype, name):
    """``a`` cast to ``dtype`` (bool, integer or floating input), C-contiguous; a finite value
    beyond ``dtype``'s range is refused."""
    arr = _validate.cast_floats(_validate.real_array(a, name), dtype, name,
                                "the loss computes in pred's dtype; pass float64 pred")
    return np.ascontiguousarray(arr)


def _as_weights(weights, n, dtype):
    if weights is None:
        return _EMPTY[dtype][0]
    w = _as_real(weights, dtype, "weights")
    if w.shape != (n,):
        raise ValueError(f"weights must have shape ({n},) (one per sample, pred.shape[0]), "
                         f"got {w.shape}")
    return w


def _zero_weight_rows_cleared(w, *arrays):
    """Copies of ``arrays`` (None stays None) with the rows of zero weight set to 0, or None
    when no weight is 0. A finite input whose term overflows (``(1e200)^2``, a logit gap of
    2e308) times a zero weight is ``0 * inf = NaN``; a zero-weight term is exactly 0, and with
    zero rows the kernels give exactly that (called only when a total is not finite)."""
    zero = w == 0.0
    if not zero.any():
        return None
    out = []
    for a in arrays:
        if a is not None:
            a = a.copy()
            a[zero] = 0.0
        out.append(a)
    return out


def _check_finite(**arrays):
    """Raise for the first array holding NaN or infinity (called when a total is not finite)."""
    for name, a in arrays.items():
        if a is not None and a.dtype.kind == "f" and a.size and not np.isfinite(a).all():
            bad = "NaN" if np.isnan(a).any() else "infinity"
            raise ValueError(f"{name} contains {bad}; losses need finite inputs")


class Loss:
    """Base class: reduction and backend handling shared by the losses."""

    def __init__(self, reduction="mean", backend=None, *, n_threads=1):
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.reduction = reduction
        self.backend = _validate.backend(backend)
        self.n_threads = _validate.n_threads(n_threads)

    def __repr__(self):
        return f"{type(self).__name__}(reduction={self.reduction!r})"

    def value(self, pred, target, weights=None):
        """The loss (a float, or an ndarray for ``reduction="none"``)."""
        return self._run(pred, target, weights, False)[0]

    def __call__(self, pred, target, weights=None):
        """``loss(pred, target, weights=None)`` is :meth:`value` (as with torch's losses)."""
        return self.value(pred, target, weights)

    def value_and_grad(self, pred, target, weights=None):
        """``(value, grad)``: the loss and its gradient with respect to ``pred``."""
        return self._run(pred, target, weights, True)

    def _threads_for(self, size):
        """``n_threads``, or 1 below ``PARALLEL_MIN_SIZE`` elements (the same bits either way)."""
        return self.n_threads if size >= PARALLEL_MIN_SIZE else 1

    def _run(self, pred, target, weights, want_grad):  # pragma: no cover - abstract
        raise NotImplementedError

    def _reduced(self, total, per, denom):
        """The loss value: ``per`` (the per-element losses), ``total / denom`` or ``total``."""
        if self.reduction == "none":
            return per
        return total / denom if self.reduction == "mean" else total


class _Elementwise(Loss):
    """Losses of one prediction element and its target (MSE, BCE)."""

    _kernel_name = None

    def _run(self, pred, target, weights, want_grad):
        pred = _as_pred(pred)
        dt = pred.dtype
        target = _as_real(target, dt, "target")
        if target.shape != pred.shape:
            raise ValueError(f"target must have pred's shape {pred.shape}, got {target.shape}")
        n = pred.shape[0]
        w = _as_weights(weights, n, dt)
        p2 = pred.reshape(n, -1)
        t2 = target.reshape(n, -1)
        count = p2.size
        scale = 1.0 / count if self.reduction == "mean" else 1.0
        empty2 = _EMPTY[dt][1]
        per = np.empty(pred.shape, dt) if self.reduction == "none" else None
        grad = np.empty(pred.shape, dt) if want_grad else None
        kernel = getattr(_backend.kernels(self.backend), self._kernel_name)

        def run(p2, t2):
            return kernel(p2, t2, w, scale, empty2 if per is None else per.reshape(n, -1),
                          empty2 if grad is None else grad.reshape(n, -1),
                          self._threads_for(p2.size))

        total = run(p2, t2)
        if not math.isfinite(total):
            _check_finite(pred=pred, target=target, weights=w)
            cleared = _zero_weight_rows_cleared(w, p2, t2)
            if cleared is not None:
                total = run(*cleared)
        return self._reduced(total, per, count), grad


class MSE(_Elementwise):
    """Mean squared error ``w_i (pred - target)^2`` (torch's ``MSELoss``, plus weights).

    Gradient ``2 w_i (pred - target)`` (divided by the number of elements for ``"mean"``).
    ``pred`` may have any shape with samples along axis 0; ``target`` has the same shape.

    Examples
    --------
    >>> import numpy as np
    >>> value, grad = MSE().value_and_grad(np.array([1.0, 2.0, 4.0]), np.array([1.0, 3.0, 2.0]))
    >>> round(value, 4)                        # (0 + 1 + 4) / 3
    1.6667
    >>> grad.round(4)                          # 2 (pred - target) / 3
    array([ 0.    , -0.6667,  1.3333])
    >>> MSE()(np.array([1.0, 2.0]), np.zeros(2), weights=[1.0, 0.5])   # (1 + 0.5 * 4) / 2
    1.5
    """

    _kernel_name = "mse_loss"


class BCEWithLogits(_Elementwise):
    """Binary cross-entropy on logits ``z`` (torch's ``BCEWithLogitsLoss``, weights per sample).

    ``l = max(z, 0) - z*y + log1p(exp(-|z|))``, gradient ``sigmoid(z) - y``; targets ``y`` are
    usually in ``[0, 1]`` (soft labels allowed; like torch, the range is not checked).

    Examples
    --------
    >>> import numpy as np
    >>> z, y = np.array([0.0, 2.0, -1e4]), np.array([1.0, 1.0, 0.0])
    >>> BCEWithLogits(reduction="none")(z, y).round(4)   # log 2, log(1 + e^-2), 0
    array([0.6931, 0.1269, 0.    ])
    >>> value, grad = BCEWithLogits().value_and_grad(z, y)
    >>> round(value, 4)
    0.2734
    >>> grad.round(4)                                    # (sigmoid(z) - y) / 3
    array([-0.1667, -0.0397,  0.    ])
    """

    _kernel_name = "bce_with_logits_loss"


class SoftmaxCrossEntropy(Loss):
    """Softmax cross-entropy on logits of shape ``(n, k)`` (torch's ``CrossEntropyLoss``).

    ``target`` is either integer class labels of shape ``(n,)`` in ``[0, k)``:
    ``l_i = logsumexp(z_i) - z_i[y_i]``, gradient ``softmax(z_i) - onehot(y_i)``; or probability
    targets of shape ``(n, k)``: ``l_i = -sum_j t_ij log_softmax(z_i)_j``, gradient
    ``softmax(z_i) * sum_j t_ij - t_i``. ``reduction="none"`` gives the ``(n,)`` row losses.

    Examples
    --------
    >>> import numpy as np
    >>> logits = np.array([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    >>> value, grad = SoftmaxCrossEntropy().value_and_grad(logits, np.array([0, 2]))
    >>> round(value, 4)                 # mean of 0.1698 and log 3
    0.6342
    >>> grad.round(3)                   # (softmax(z) - onehot(y)) / 2
    array([[-0.078,  0.057,  0.021],
           [ 0.167,  0.167, -0.333]])
    >>> probs = np.array([[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    >>> SoftmaxCrossEntropy(reduction="none")(logits, probs).round(4)
    array([0.1698, 1.0986])
    """

    def _run(self, pred, target, weights, want_grad):
        z = _as_pred(pred)
        if z.ndim != 2:
            raise ValueError(f"pred must be 2-D logits of shape (n, k), got shape {z.shape}")
        n, k = z.shape
        dt = z.dtype
        tgt = np.asarray(target)
        if tgt.ndim == 1:
            labels = True
            if tgt.dtype.kind not in "iu":
                raise TypeError(f"1-D target must hold integer class labels, got dtype "
                                f"{tgt.dtype}; pass probabilities as an (n, k) array")
            if tgt.shape != (n,):
                raise ValueError(f"labels must have shape ({n},), got {tgt.shape}")
            lo, hi = int(tgt.min()), int(tgt.max())
            if lo < 0 or hi >= k:
                raise ValueError(f"labels must be in [0, {k}) for {k} classes, got values in "
                                 f"[{lo}, {hi}]")
            tgt = np.ascontiguousarray(tgt, dtype=np.int64)
        elif tgt.ndim == 2:
            labels = False
            tgt = _as_real(tgt, dt, "target")
            if tgt.shape != z.shape:
                raise ValueError(f"probability targets must have pred's shape {z.shape}, got "
                                 f"{tgt.shape}")
        else:
            raise ValueError(f"target must be labels (n,) or probabilities (n, k), got shape "
                             f"{tgt.shape}")
        w = _as_weights(weights, n, dt)
        denom = float(n)
        if self.reduction == "mean" and labels and w.shape[0]:
            denom = float(np.sum(w, dtype=np.float64))
            if not math.isfinite(denom):
                _check_finite(weights=w)
            if denom == 0.0:
                raise ValueError("weights sum to 0: the weighted mean of reduction='mean' is "
                                 "undefined (torch returns NaN); use reduction='sum'")
            if 1.0 / denom > float(np.finfo(dt).max):
                # weights summing below 1/max of the dtype (subnormal): 1/denom overflows and
                # the gradient would be w * inf. The weighted mean does not change when every weight
                # is scaled by 2**e, which is exact: scale them so they sum to about 1
                e = 1 - math.frexp(denom)[1]
                w, denom = np.ldexp(w, e).astype(dt, copy=False), math.ldexp(denom, e)
        scale = 1.0 / denom if self.reduction == "mean" else 1.0
        e1, e2 = _EMPTY[dt]
        per = np.empty(n, dt) if self.reduction == "none" else None
        grad = np.empty((n, k), dt) if want_grad else None
        K = _backend.kernels(self.backend)
        fn = K.softmax_xent_labels if labels else K.softmax_xent_probs
        total = fn(z, tgt, w, scale, e1 if per is None else per, e2 if grad is None else grad,
                   self._threads_for(z.size))
        if not math.isfinite(total):
            _check_finite(pred=z, target=None if labels else tgt, weights=w)
            cleared = _zero_weight_rows_cleared(w, z, None if labels else tgt)
            if cleared is not None:
                z, cleared_tgt = cleared
                total = fn(z, tgt if labels else cleared_tgt, w, scale,
                           e1 if per is None else per, e2 if grad is None else grad,
                           self._threads_for(z.size))
        return self._reduced(total, per, denom), grad
