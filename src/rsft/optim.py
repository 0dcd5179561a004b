"""Optimizers with torch.optim's update rules, updating numpy arrays in place.

Each step is one fused pass per parameter array in the compiled backend (float32 and float64,
GIL released, optionally split over threads), bit-identical to the numpy reference
(:mod:`rsft._reference.optim`, which spells out every update in its operation order).

Example::

    w = np.zeros(3)
    opt = rsft.optim.Adam(w, lr=0.1)
    for _ in range(100):
        opt.step(2 * (w - target))          # gradient of |w - target|^2
"""

import math
import numbers

import numpy as np

from . import _backend, _validate
from .schedules import ConstantLR, CosineLR, InverseTimeLR, LRSchedule, StepLR

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop",
           "LRSchedule", "ConstantLR", "StepLR", "CosineLR", "InverseTimeLR"]

#: arrays smaller than this are updated on one thread whatever ``n_threads`` says (starting
#: threads costs more than the pass); results do not depend on it.
PARALLEL_MIN_SIZE = 1 << 15


# ---------------------------------------------------------------------------------------------
# Validation helpers (the checks shared with other modules are in rsft._validate)
# ---------------------------------------------------------------------------------------------

def _nonneg(x, name):
    return _validate.real(x, name, lo=0.0)


def _flags(hp, *names):
    return {name: _validate.flag(hp[name], name) for name in names}


def _lr(lr):
    """A learning rate (finite, >= 0) or a schedule (any callable t -> float)."""
    if callable(lr) and not isinstance(lr, numbers.Real):
        return lr
    return _nonneg(lr, "learning rate lr")


def _betas(betas):
    try:
        b1, b2 = betas
    except (TypeError, ValueError):
        raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}") from None
    return (_validate.real(b1, "beta1 (betas[0])", lo=0.0, hi=1.0, hi_open=True),
            _validate.real(b2, "beta2 (betas[1])", lo=0.0, hi=1.0, hi_open=True))


def _check_params(params):
    params = _validate.array_list(params, "params")
    if not params:
        raise ValueError("params is empty: give at least one array to optimize")
    for i, p in enumerate(params):
        where = f"params[{i}]"
        if not isinstance(p, np.ndarray):
            raise TypeError(f"{where} must be a numpy array (it is updated in place), got "
                            f"{type(p).__name__}")
        if p.dtype not in _validate.FLOATS:
            raise TypeError(f"{where} has dtype {p.dtype}; optimizers update float32 or float64 "
                            "arrays (native byte order) in place and never copy or cast them: "
                            "create the parameters with a floating dtype")
        if not p.flags.writeable:
            raise ValueError(f"{where} is read-only; the optimizer updates it in place")
        if not (p.flags.c_contiguous or p.flags.f_contiguous) or not p.flags.aligned:
            raise ValueError(f"{where} is not a contiguous aligned array (strides {p.strides}); "
                             "it cannot be updated in place without a copy: keep your "
                             "parameters in np.ascontiguousarray(...) arrays")
    for i in range(len(params)):
        for j in range(i):
            if np.may_share_memory(params[i], params[j]):
                raise ValueError(f"params[{j}] and params[{i}] share memory; each parameter "
                                 "must be a separate array")
    return params


def _order(a):
    """Memory order in which a contiguous array is flattened without a copy."""
    return "F" if (a.flags.f_contiguous and not a.flags.c_contiguous) else "C"


def _flat_view(a):
    """1-D view of a contiguous array in memory order (never a copy)."""
    v = (a.T if _order(a) == "F" else a).view()
    v.shape = (-1,)
    return v


# ---------------------------------------------------------------------------------------------
# Base class
# ---------------------------------------------------------------------------------------------

class Optimizer:
    """Base class: parameter and gradient checks, state, ``state_dict`` and the step loop.

    Parameters
    ----------
    params : ndarray or sequence of ndarray
        Arrays updated in place: float32 or float64, any shape, writeable, C- or F-contiguous,
        not overlapping each other. Anything else raises (never a silent copy).
    backend : {"cython", "numpy"}, optional
        Kernel backend; default: the process default (:func:`rsft.get_backend`). Both give
        the same bits.
    n_threads : int, default 1
        Threads of the compiled pass over arrays of at least ``PARALLEL_MIN_SIZE`` elements.
        The result does not depend on it.
    """

    _state_names = ()

    def __init__(self, params, hyperparams, *, backend=None, n_threads=1):
        self._params = _check_params(params)
        self.backend = _validate.backend(backend)
        self.n_threads = _validate.count(n_threads, "n_threads", minimum=1)
        self._hp = self._validate(dict(hyperparams))
        self._step = 0
        self._flat_params = [_flat_view(p) for p in self._params]
        self._state = []
        self._flat_state = []
        for p in self._params:
            st = {name: np.zeros_like(p) if self._uses(name) else np.zeros(0, p.dtype)
                  for name in self._state_names}
            self._state.append(st)
            self._flat_state.append({k: _flat_view(a) for k, a in st.items()})

    # -- subclass hooks -------------------------------------------------------------------
    @classmethod
    def _validate(cls, hp):  # pragma: no cover - abstract
        raise NotImplementedError

    def _uses(self, name):  # pragma: no cover - abstract
        raise NotImplementedError

    def _update(self, kern, p, g, st, lr, t, n_threads):  # pragma: no cover - abstract
        raise NotImplementedError

    # -- public API -------------------------------------------------------------------------
    @property
    def params(self):
        """The parameter arrays (the caller's own arrays, updated in place)."""
        return list(self._params)

    @property
    def hyperparams(self):
        """A copy of the hyper-parameters (``lr`` may be a schedule)."""
        return dict(self._hp)

    @property
    def n_steps(self):
        """Number of steps taken so far."""
        return self._step

    @property
    def state(self):
        """Per parameter, a dict of the state arrays in use (live arrays, not copies)."""
        return [{k: a for k, a in st.items() if self._uses(k)} for st in self._state]

    def lr_at(self, t):
        """Learning rate of the step taken after ``t`` completed steps (checked)."""
        lr = self._hp["lr"]
        if not callable(lr):
            return lr
        v = lr(t)
        return _nonneg(v, f"the lr schedule's value (lr={v} at t={t})")

    def _check_grads(self, grads):
        grads = _validate.array_list(grads, "grads")
        if len(grads) != len(self._params):
            raise ValueError(f"got {len(grads)} gradient arrays for {len(self._params)} "
                             "parameter arrays; give one gradient per parameter, in order")
        flat = []
        for i, (g, p) in enumerate(zip(grads, self._params)):
            if not isinstance(g, np.ndarray):
                raise TypeError(f"grads[{i}] must be a numpy array, got {type(g).__name__}")
            if g.dtype != p.dtype:
                raise TypeError(f"grads[{i}] has dtype {g.dtype} but params[{i}] has {p.dtype}; "
                                f"gradients are not cast silently (use .astype({p.dtype}))")
            if g.shape != p.shape:
                raise ValueError(f"grads[{i}] has shape {g.shape} but params[{i}] has shape "
                                 f"{p.shape}")
            if np.may_share_memory(g, p):
                raise ValueError(f"grads[{i}] shares memory with params[{i}], which is updated "
                                 "in place; pass a separate gradient array")
            flat.append(np.ravel(g, order=_order(p)))
        return flat

    def step(self, grads):
        """Update every parameter in place from its gradient.

        Parameters
        ----------
        grads : ndarray or sequence of ndarray
            One array per parameter, in order, of the same shape and dtype (any layout; it
            is only read).
        """
        flat = self._check_grads(grads)
        lr = self.lr_at(self._step)
        kern = _backend.kernels(self.backend)
        t = self._step + 1
        for p, g, st in zip(self._flat_params, flat, self._flat_state):
            nt = self.n_threads if p.shape[0] >= PARALLEL_MIN_SIZE else 1
            self._update(kern, p, g, st, lr, t, nt)
        self._step = t

    def state_dict(self):
        """A snapshot: optimizer name, step count, hyper-parameters and copies of the state.

        Returns
        -------
        dict
            ``{"optimizer": name, "step": int, "hyperparams": dict, "state": [dict, ...]}``
            with one dict of arrays per parameter (only the state the options use).
        """
        return {
            "optimizer": type(self).__name__,
            "step": self._step,
            "hyperparams": dict(self._hp),
            "state": [{k: a.copy(order="K") for k, a in st.items()} for st in self.state],
        }

    def load_state_dict(self, state_dict):
        """Restore a :meth:`state_dict` snapshot (checked; arrays are copied in).

        Parameters
        ----------
        state_dict : dict
            From ``state_dict()`` of the same optimizer class over parameters of the same
            shapes and dtypes.
        """
        try:
            name, step, hp, states = (state_dict["optimizer"], state_dict["step"],
                                      state_dict["hyperparams"], state_dict["state"])
        except (TypeError, KeyError) as exc:
            raise ValueError(f"not an optimizer state_dict (missing {exc})") from None
        if name != type(self).__name__:
            raise ValueError(f"state_dict is of a {name} optimizer, not {type(self).__name__}")
        try:
            step = _validate.count(step, "step")
        except (TypeError, ValueError):
            raise ValueError(f"invalid step count {step!r} in state_dict") from None
        hp = self._validate(dict(hp))
        old_hp = self._hp
        self._hp = hp
        try:
            if len(states) != len(self._params):
                raise ValueError(f"state_dict has state for {len(states)} parameters, this "
                                 f"optimizer has {len(self._params)}")
            for i, (st, p) in enumerate(zip(states, self._params)):
                want = {k for k in self._state_names if self._uses(k)}
                if set(st) != want:
                    raise ValueError(f"state[{i}] has arrays {sorted(st)}, expected "
                                     f"{sorted(want)} for these hyper-parameters")
                for k, a in st.items():
                    a = np.asarray(a)
                    if a.shape != p.shape or a.dtype != p.dtype:
                        raise ValueError(f"state[{i}][{k!r}] has shape {a.shape} and dtype "
                                         f"{a.dtype}; expected {p.shape} and {p.dtype}")
        except Exception:
            self._hp = old_hp
            raise
        for i, (st, p) in enumerate(zip(states, self._params)):
            for k in self._state_names:
                if self._uses(k):
                    if self._state[i][k].shape != p.shape:
                        self._state[i][k] = np.zeros_like(p)
                        self._flat_state[i][k] = _flat_view(self._state[i][k])
                    np.copyto(self._state[i][k], st[k], casting="no")
                else:
                    self._state[i][k] = np.zeros(0, p.dtype)
                    self._flat_state[i][k] = self._state[i][k]
        self._step = int(step)

    def __repr__(self):
        hp = ", ".join(f"{k}={v!r}" for k, v in self._hp.items())
        return f"{type(self).__name__}({len(self._params)} arrays, {hp})"


# ---------------------------------------------------------------------------------------------
# Optimizers
# ---------------------------------------------------------------------------------------------

class SGD(Optimizer):
    """Stochastic gradient descent with momentum, dampening, Nesterov and weight decay.

    torch.optim.SGD's update, per element, with ``g`` the gradient::

        g = -g if maximize
        g = g + weight_decay * p                          (if weight_decay != 0)
        b = g (first step) or momentum * b + (1 - dampening) * g   (if momentum != 0)
        g = g + momentum * b if nesterov else b           (if momentum != 0)
        p = p - lr * g

    Parameters
    ----------
    params : ndarray or sequence of ndarray
        Arrays updated in place (see :class:`Optimizer`).
    lr : float or callable
        Learning rate (finite, ``>= 0``) or a schedule ``lr(t)`` (see :mod:`rsft.schedules`).
    momentum : float, default 0
        Momentum factor, ``>= 0``.
    dampening : float, default 0
        Dampening of the momentum, finite.
    weight_decay : float, default 0
        L2 penalty coefficient, ``>= 0``.
    nesterov : bool, default False
        Nesterov momentum; needs ``momentum > 0`` and ``dampening == 0``.
    maximize : bool, default False
        Ascend the objective instead.
    backend, n_threads
        See :class:`Optimizer`.
    """

    _state_names = ("momentum_buffer",)

    def __init__(self, params, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, maximize=False, *, backend=None, n_threads=1):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize),
                         backend=backend, n_threads=n_threads)

    @classmethod
    def _validate(cls, hp):
        out = dict(lr=_lr(hp["lr"]), momentum=_nonneg(hp["momentum"], "momentum"),
                   dampening=_validate.real(hp["dampening"], "dampening"),
                   weight_decay=_nonneg(hp["weight_decay"], "weight_decay"),
                   **_flags(hp, "nesterov", "maximize"))
        if out["nesterov"] and (out["momentum"] <= 0 or out["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum > 0 and zero dampening")
        return out

    def _uses(self, name):
        return self._hp["momentum"] != 0

    def _update(self, kern, p, g, st, lr, t, n_threads):
        hp = self._hp
        kern.sgd_step(p, g, st["momentum_buffer"], lr, hp["momentum"], 1.0 - hp["dampening"],
                      hp["weight_decay"], hp["nesterov"], hp["maximize"], t == 1, n_threads)


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with bias correction; ``weight_decay`` is an L2 term.

    torch.optim.Adam's update, per element, at step ``t = 1, 2, ...``::

        g = -g if maximize
        g = g + weight_decay * p                     (if weight_decay != 0)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        v_max = maximum(v_max, v); use v_max for v   (if amsgrad)
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    i.e. ``p -= lr * m_hat / (sqrt(v_hat) + eps)`` with ``m_hat = m / (1 - beta1**t)`` and
    ``v_hat = v / (1 - beta2**t)``. The square root of ``v_hat`` belongs there: the source
    article's formula omitted it, which makes the step scale like ``1/|g|`` instead of being
    invariant to the gradient's scale.

    Parameters
    ----------
    params : ndarray or sequence of ndarray
        Arrays updated in place (see :class:`Optimizer`).
    lr : float or callable, default 1e-3
        Learning rate (finite, ``>= 0``) or a schedule ``lr(t)``.
    betas : (float, float), default (0.9, 0.999)
        Decay rates of the first and second moment estimates, each in ``[0, 1)``.
    eps : float, default 1e-8
        Added to the denominator, finite and ``>= 0``.
    weight_decay : float, default 0
        L2 penalty added to the gradient, ``>= 0``.
    amsgrad : bool, default False
        Use the running maximum of ``v`` (Reddi et al., 2018).
    maximize : bool, default False
        Ascend the objective instead.
    backend, n_threads
        See :class:`Optimizer`.
    """

    _state_names = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, maximize=False, *, backend=None, n_threads=1):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize),
                         backend=backend, n_threads=n_threads)

    @classmethod
    def _validate(cls, hp):
        return dict(lr=_lr(hp["lr"]), betas=_betas(hp["betas"]), eps=_nonneg(hp["eps"], "eps"),
                    weight_decay=_nonneg(hp["weight_decay"], "weight_decay"),
                    **_flags(hp, "amsgrad", "maximize"))

    def _uses(self, name):
        return name != "max_exp_avg_sq" or self._hp["amsgrad"]

    def _update(self, kern, p, g, st, lr, t, n_threads):
        hp = self._hp
        beta1, beta2 = hp["betas"]
        bias_correction1 = 1.0 - beta1 ** t
        bias_correction2 = 1.0 - beta2 ** t
        step_size = lr / bias_correction1
        bc2_sqrt = math.sqrt(bias_correction2)
        if self._decoupled:
            l2, decay = 0.0, 1.0 - lr * hp["weight_decay"]
        else:
            l2, decay = hp["weight_decay"], 1.0
        kern.adam_step(p, g, st["exp_avg"], st["exp_avg_sq"], st["max_exp_avg_sq"], beta1,
                       1.0 - beta1, beta2, 1.0 - beta2, step_size, bc2_sqrt, hp["eps"], l2,
                       decay, hp["amsgrad"], hp["maximize"], n_threads)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019), as torch.optim.AdamW.

    Each step first shrinks the parameters, ``p = p * (1 - lr * weight_decay)``, then applies
    the :class:`Adam` update without any L2 term in the gradient.

    Parameters
    ----------
    params, lr, betas, eps, amsgrad, maximize, backend, n_threads
        As for :class:`Adam`.
    weight_decay : float, default 1e-2
        Decoupled decay coefficient, ``>= 0`` (note the default, unlike Adam's 0).
    """

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, maximize=False, *, backend=None, n_threads=1):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize, backend=backend,
                         n_threads=n_threads)


class RMSprop(Optimizer):
    """RMSprop (Hinton), as torch.optim.RMSprop (no bias correction).

    Per element::

        g = -g if maximize
        g = g + weight_decay * p                     (if weight_decay != 0)
        v = alpha * v + (1 - alpha) * g * g
        a = alpha * a + (1 - alpha) * g              (if centered)
        avg = sqrt(v - a * a) + eps if centered else sqrt(v) + eps
        b = momentum * b + g / avg; p = p - lr * b   (if momentum != 0)
        p = p - lr * g / avg                         (otherwise)

    Parameters
    ----------
    params : ndarray or sequence of ndarray
        The arrays it updates in place, as for every :class:`Optimizer`.
    lr : float or callable, default 1e-2
        Learning rate (finite, ``>= 0``) or a schedule ``lr(t)``.
    alpha : float, default 0.99
        Smoothing constant, in ``[0, 1]``.
    eps : float, default 1e-8
        Added to the denominator, finite and ``>= 0``.
    weight_decay : float, default 0
        L2 penalty added to the gradient, ``>= 0``.
    momentum : float, default 0
        Momentum factor, ``>= 0``.
    centered : bool, default False
        Normalise by the estimated variance of the gradient instead of its second moment.
    maximize : bool, default False
        Ascend the objective instead.
    backend, n_threads
        See :class:`Optimizer`.
    """

    _state_names = ("square_avg", "grad_avg", "momentum_buffer")

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False, maximize=False, *, backend=None, n_threads=1):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize),
                         backend=backend, n_threads=n_threads)

    @classmethod
    def _validate(cls, hp):
        return dict(lr=_lr(hp["lr"]),
                    alpha=_validate.real(hp["alpha"], "alpha", lo=0.0, hi=1.0),
                    eps=_nonneg(hp["eps"], "eps"),
                    weight_decay=_nonneg(hp["weight_decay"], "weight_decay"),
                    momentum=_nonneg(hp["momentum"], "momentum"),
                    **_flags(hp, "centered", "maximize"))

    def _uses(self, name):
        if name == "grad_avg":
            return self._hp["centered"]
        if name == "momentum_buffer":
            return self._hp["momentum"] != 0
        return True

    def _update(self, kern, p, g, st, lr, t, n_threads):
        hp = self._hp
        kern.rmsprop_step(p, g, st["square_avg"], st["grad_avg"], st["momentum_buffer"], lr,
                          hp["alpha"], 1.0 - hp["alpha"], hp["eps"], hp["weight_decay"],
                          hp["momentum"], hp["centered"], hp["maximize"], n_threads)
