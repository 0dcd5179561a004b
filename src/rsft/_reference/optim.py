"""Reference (numpy) optimizer kernels; twin of ``_kernels/optim.pxi.tp``.

This module is the specification of the compiled optimizer updates: the Cython loops perform,
per element, exactly the operations written here, in the same order, so both backends give the
same bits (IEEE + - * / and sqrt are correctly rounded in both; the C code is built without
fused multiply-adds).

Conventions shared by every kernel:

* ``param`` and the state arrays are 1-D, C-contiguous, of one dtype (float32 or float64) and
  are updated in place; ``grad`` has the same dtype and length and is only read. A state array
  an option does not use is passed with length 0.
* Every per-step scalar (learning rate of this step, bias corrections, ``1 - beta``...) is
  computed by :mod:`rsft.optim` as a Python float; a kernel first casts each to the array dtype
  (``dtype.type(x)`` here, ``<floating>x`` in C: both round to nearest) and uses only those.
* An option whose cast coefficient is exactly 0 (weight decay, momentum) or whose decay factor
  is exactly 1 is skipped, as torch.optim does: that matters only for inf/NaN parameters.
* ``maximize`` multiplies the gradient by -1 (exact; a NaN keeps its sign bit, as in the
  compiled loops, where ``np.negative`` would flip it).
* Every NaN a kernel stores (parameter and state) is the positive quiet NaN ``np.nan``
  (``_nan_to_canonical`` here, ``f_nan_to_canonical`` on every store in C). A sum or product
  of two NaNs (``beta*m + (1-beta)*g`` with a NaN momentum and a NaN gradient) returns one
  operand's NaN, and which one the C compiler chooses (it may commute the operands, and
  differently in its vector and scalar code), so the bits of a NaN could not otherwise match.
* ``n_threads`` is ignored here; the compiled kernels split the pass into blocks, which never
  changes the result.
* A pass over more than ``_BLOCK_ELEMENTS`` elements runs block by block on slices of every
  array (:func:`_in_blocks`): numpy runs each ufunc over its whole operand without letting
  Python run a signal handler, so without blocks Ctrl-C would wait for the whole pass (seconds
  on 1e9 elements); between blocks of ~1 ms it gets through. Elements are independent: the same
  bits. An interrupted step leaves the blocks before the interruption updated.
"""

import functools

import numpy as np

__all__ = ["sgd_step", "adam_step", "rmsprop_step", "adagrad_step", "lion_step"]

#: elements per block of a long pass (a few ms of numpy calls per block at most)
_BLOCK_ELEMENTS = 1 << 20


def _in_blocks(step):
    """Run ``step(param, *args)`` on consecutive slices of ``_BLOCK_ELEMENTS`` elements of
    ``param`` and of every array argument (the gradient and the state; a state array of length 0,
    absent, stays empty when sliced), so that Python's signal handlers run between blocks."""
    @functools.wraps(step)
    def in_blocks(param, *args):
        n = param.shape[0]
        if n <= _BLOCK_ELEMENTS:
            return step(param, *args)
        for lo in range(0, n, _BLOCK_ELEMENTS):
            hi = lo + _BLOCK_ELEMENTS
            step(param[lo:hi], *(a[lo:hi] if isinstance(a, np.ndarray) else a for a in args))
    return in_blocks


@_in_blocks
def sgd_step(param, grad, momentum_buffer, lr, momentum, one_minus_dampening, weight_decay,
             nesterov, maximize, first, n_threads):
    """One SGD step (torch.optim.SGD), in place. Per element::

        g = sign * grad                         (sign = -1 if maximize else 1)
        if wd != 0:        g = g + wd * p
        if momentum != 0:
            b = g  if first  else  momentum * b + (1 - dampening) * g
            g = g + momentum * b  if nesterov  else  b
        p = p - lr * g
    """
    t = param.dtype.type
    lr, mom, omd, wd = t(lr), t(momentum), t(one_minus_dampening), t(weight_decay)
    g = np.multiply(t(-1 if maximize else 1), grad)
    if wd != 0:
        g += wd * param
    if mom != 0:
        b = momentum_buffer
        if first:
            b[...] = g
        else:
            b *= mom
            b += omd * g
        if nesterov:
            g += mom * b
        else:
            g = b
    param -= lr * g
    _nan_to_canonical(param, momentum_buffer)


@_in_blocks
def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, beta1, one_minus_beta1, beta2,
              one_minus_beta2, step_size, bias_correction2_sqrt, eps, weight_decay, decay,
              amsgrad, maximize, n_threads):
    """One Adam / AdamW step (torch.optim.Adam / AdamW), in place. Per element::

        g = sign * grad
        if wd != 0:      g = g + wd * p              (Adam's L2 decay; 0 for AdamW)
        if decay != 1:   p = p * decay               (AdamW: decay = 1 - lr * weight_decay)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * (g * g)
        if amsgrad:      v_max = maximum(v_max, v); use v_max instead of v below
        denom = sqrt(v) / bias_correction2_sqrt + eps
        p = p - step_size * (m / denom)

    with ``step_size = lr / (1 - beta1**t)`` and ``bias_correction2_sqrt = sqrt(1 - beta2**t)``.
    """
    t = param.dtype.type
    b1, omb1, b2, omb2 = t(beta1), t(one_minus_beta1), t(beta2), t(one_minus_beta2)
    ss, bc2s, eps, wd, decay = (t(step_size), t(bias_correction2_sqrt), t(eps), t(weight_decay),
                                t(decay))
    g = grad
    if maximize:
        g = np.multiply(t(-1), grad)    # not np.negative: -1 * NaN keeps the NaN's sign bit,
                                        # as the compiled loop's multiplication does
    if wd != 0:
        g = g + wd * param
    if decay != 1:
        param *= decay
    exp_avg *= b1
    exp_avg += omb1 * g
    exp_avg_sq *= b2
    exp_avg_sq += omb2 * (g * g)
    v = exp_avg_sq
    if amsgrad:
        np.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        v = max_exp_avg_sq
    denom = np.sqrt(v)
    denom /= bc2s
    denom += eps
    upd = np.divide(exp_avg, denom, out=denom)
    upd *= ss
    param -= upd
    _nan_to_canonical(param, exp_avg, exp_avg_sq, max_exp_avg_sq)


@_in_blocks
def rmsprop_step(param, grad, square_avg, grad_avg, momentum_buffer, lr, alpha, one_minus_alpha,
                 eps, weight_decay, momentum, centered, maximize, n_threads):
    """One RMSprop step (torch.optim.RMSprop), in place. Per element::

        g = sign * grad
        if wd != 0:        g = g + wd * p
        v = alpha * v + (1 - alpha) * (g * g)
        if centered:
            a = alpha * a + (1 - alpha) * g
            avg = sqrt(max(v - a * a, 0)) + eps     (NaN stays NaN)
        else:
            avg = sqrt(v) + eps
        if momentum != 0:
            b = momentum * b + g / avg
            p = p - lr * b
        else:
            p = p - lr * (g / avg)
    """
    t = param.dtype.type
    lr, alpha, oma, eps, wd, mom = (t(lr), t(alpha), t(one_minus_alpha), t(eps),
                                    t(weight_decay), t(momentum))
    g = grad
    if maximize:
        g = np.multiply(t(-1), grad)    # not np.negative: -1 * NaN keeps the NaN's sign bit,
                                        # as the compiled loop's multiplication does
    if wd != 0:
        g = g + wd * param
    square_avg *= alpha
    square_avg += oma * (g * g)
    if centered:
        grad_avg *= alpha
        grad_avg += oma * g
        avg = np.subtract(square_avg, grad_avg * grad_avg)
        avg[avg < 0] = 0        # rounding below 0 (a variance): clamped, as the kernel does
        np.sqrt(avg, out=avg)
    else:
        avg = np.sqrt(square_avg)
    avg += eps
    q = np.divide(g, avg, out=avg)
    if mom != 0:
        momentum_buffer *= mom
        momentum_buffer += q
        param -= lr * momentum_buffer
    else:
        param -= lr * q
    _nan_to_canonical(param, square_avg, grad_avg, momentum_buffer)


@_in_blocks
def adagrad_step(param, grad, state_sum, clr, eps, weight_decay, maximize, n_threads):
    """One Adagrad step (torch.optim.Adagrad), in place. Per element::

        g = sign * grad
        if wd != 0:      g = g + wd * p
        s = s + g * g
        std = sqrt(s) + eps
        p = p - (clr * g) / std

    with ``clr = lr / (1 + (t - 1) * lr_decay)`` at step ``t`` (torch's ``addcdiv_`` with
    ``value=-clr`` multiplies before it divides; negating ``clr`` is exact).
    """
    t = param.dtype.type
    clr, eps, wd = t(clr), t(eps), t(weight_decay)
    g = np.multiply(t(-1 if maximize else 1), grad)
    if wd != 0:
        g += wd * param
    state_sum += g * g
    std = np.sqrt(state_sum)
    std += eps
    g *= clr
    g /= std
    param -= g
    _nan_to_canonical(param, state_sum)


@_in_blocks
def lion_step(param, grad, exp_avg, lr, beta1, one_minus_beta1, beta2, one_minus_beta2, decay,
              maximize, n_threads):
    """One Lion step (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms",
    Algorithm 2), in place. Per element::

        g = sign * grad
        c = beta1 * m + (1 - beta1) * g
        if decay != 1:   p = p * decay            (decoupled: decay = 1 - lr * weight_decay)
        p = p - lr * np.sign(c)
        m = beta2 * m + (1 - beta2) * g

    ``np.sign`` gives 1 or -1, +0.0 for a zero of either sign, NaN for NaN (the compiled
    ``f_sign``); the NaNs stored are ``np.nan`` (module docstring): ``c = 0 * (-inf) + nan``
    was ``-nan`` here and ``+nan`` in the compiled loop before.
    """
    t = param.dtype.type
    lr, decay = t(lr), t(decay)
    beta1, one_minus_beta1 = t(beta1), t(one_minus_beta1)
    beta2, one_minus_beta2 = t(beta2), t(one_minus_beta2)
    g = np.multiply(t(-1), grad) if maximize else grad
    c = beta1 * exp_avg
    c += one_minus_beta1 * g
    if decay != 1:
        param *= decay
    update = np.sign(c)    # not in place: numpy's np.sign(c, out=c) takes a loop 5x slower
    update *= lr
    param -= update
    exp_avg *= beta2
    exp_avg += one_minus_beta2 * g
    _nan_to_canonical(param, exp_avg)


def _nan_to_canonical(*arrays):
    """Every NaN of each array made the positive quiet NaN ``np.nan``, in place (the compiled
    ``f_nan_to_canonical``; see the module docstring)."""
    for a in arrays:
        nan = np.isnan(a)
        if nan.any():
            a[nan] = np.nan
