"""Optimizers with torch.optim's update rules and shape, updating numpy arrays in place.

Each step is one fused pass per parameter array in the compiled backend (float32 and float64,
GIL released, optionally split over threads), bit-identical to the numpy reference
(:mod:`rsft._reference.optim`, which spells out every update in its operation order).

What is as in torch.optim: the update formulas and options of :class:`SGD`, :class:`Adam`,
:class:`AdamW`, :class:`RMSprop` and :class:`Adagrad` (and :class:`Lion`, from its paper);
parameter groups (``Adam([{"params": [W], "lr": 0.1}, {"params": [b]}], lr=1e-3)``, each
group's hyperparameters filling in the defaults); ``opt.param_groups``, a list of dicts whose
edits take effect at the next step; ``add_param_group``; ``state_dict()`` and
``load_state_dict()``; :func:`clip_grad_norm` and :func:`clip_grad_value` (torch's
``clip_grad_norm_`` and ``clip_grad_value_`` on the gradient arrays themselves).

How ``step(grads)`` differs from torch: numpy arrays carry no ``.grad``, so where torch's
``step()`` reads ``p.grad`` of each parameter, ``step(grads)`` takes the gradients: one array
per parameter, in the order of ``opt.params`` (the groups' ``"params"`` one after another), each
of its parameter's shape and dtype. Nothing accumulates, so there is no ``zero_grad()``; every
parameter takes part in every step (torch skips a parameter whose ``.grad`` is None); there is
no ``closure``. A learning-rate schedule is the ``lr`` itself (:mod:`rsft.schedules`: ``lr(t)``
of the group's completed steps), not a separate scheduler object. Hyperparameters are edited
in ``opt.param_groups`` only: writing an attribute such as ``opt.lr`` raises instead of being
ignored. Porting a torch loop::

    opt = torch.optim.Adam(model.parameters(), lr=1e-3)        # torch
    for x, y in batches:
        opt.zero_grad()
        loss_fn(model(x), y).backward()                         # fills each p.grad
        opt.step()

    opt = rsft.Adam(model.params, lr=1e-3)                      # rsft: numpy arrays
    for x, y in batches:
        loss, grads = model.loss_and_grad(x, y, rsft.MSE())     # one array per parameter
        opt.step(grads)
"""

import math
import operator
from collections.abc import Mapping
from functools import partial

import numpy as np

from . import _backend, _blocks, _validate
from .schedules import (ConstantLR, CosineLR, InverseTimeLR, LinearWarmup, LRSchedule, StepLR,
                        WarmupCosine)

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Lion",
           "clip_grad_norm", "clip_grad_value",
           "LRSchedule", "ConstantLR", "StepLR", "CosineLR", "InverseTimeLR", "LinearWarmup",
           "WarmupCosine"]

#: the largest step count a state_dict may carry (a 64-bit counter with room to grow)
MAX_STEPS = _validate.MAX_STEPS

#: arrays smaller than this are updated on one thread whatever ``n_threads`` says (see
#: rsft._blocks.PARALLEL_MIN_ELEMENTS); results do not depend on it.
PARALLEL_MIN_SIZE = _blocks.PARALLEL_MIN_ELEMENTS

#: what a kernel gets for a state array an option does not use (length 0, never written)
_NO_STATE = {dtype: np.zeros(0, dtype) for dtype in _validate.FLOATS}


# ---------------------------------------------------------------------------------------------
# Hyperparameter checks: each takes (value, name) and returns the value the group stores
# (the checks shared with other modules are in rsft._validate)
# ---------------------------------------------------------------------------------------------

def _nonneg(x, name):
    return _validate.real(x, name, lo=0.0)


#: a learning rate (finite, >= 0) or a schedule (any callable t -> float)
_lr = _validate.rate_or_schedule


def _betas(betas, name, *, closed):
    """A pair of decay rates, each in [0, 1) (in [0, 1] when ``closed``), as a tuple."""
    try:
        beta1, beta2 = betas
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a pair (beta1, beta2), got {betas!r}") from None
    return tuple(_validate.real(b, f"beta{k + 1} ({name}[{k}])", lo=0.0, hi=1.0,
                                hi_open=not closed) for k, b in enumerate((beta1, beta2)))


def _key_name(where, key):
    """How a message names hyperparameter ``key``: the argument, or the group's entry."""
    return key if where is None else f"{where}[{key!r}]"


# ---------------------------------------------------------------------------------------------
# Parameters and gradients
# ---------------------------------------------------------------------------------------------

def _array_sequence(arrays, name):
    """A numpy array or an ordered iterable of them, as a list; a set is refused."""
    if isinstance(arrays, (set, frozenset, dict)):
        raise TypeError(f"{name} must be an ordered sequence (a list) of arrays, not a "
                        f"{type(arrays).__name__}: gradients are matched to parameters by "
                        "position")
    return _validate.array_list(arrays, name)


def _check_params(params, name):
    params = _array_sequence(params, name)
    for i, p in enumerate(params):
        where = f"{name}[{i}]"
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
                raise ValueError(f"{name}[{j}] and {name}[{i}] share memory; each parameter "
                                 "must be a separate array")
    return params


def _groups_of(params):
    """The parameter groups ``params`` gives: its dicts, or one group of its arrays."""
    if isinstance(params, dict):
        raise TypeError("params is one dict; give parameter groups as a list of dicts, each "
                        "with a 'params' entry: [{'params': [...], ...}, ...]")
    items = _array_sequence(params, "params")
    if not items:
        raise ValueError("params is empty: give at least one array to optimize")
    n_groups = sum(isinstance(item, dict) for item in items)
    if n_groups == 0:
        return [{"params": items}], "params"
    if n_groups < len(items):
        raise TypeError("params mixes parameter groups (dicts) and arrays: give a list of "
                        "arrays (one group) or a list of dicts, each with a 'params' entry")
    return items, None


def _order(a):
    """Memory order in which a contiguous array is flattened without a copy."""
    return "F" if (a.flags.f_contiguous and not a.flags.c_contiguous) else "C"


def _flat_view(a):
    """1-D view of a contiguous array in memory order (never a copy)."""
    v = (a.T if _order(a) == "F" else a).view()
    v.shape = (-1,)
    return v


class _GroupView(Mapping):
    """A read-only, live view of one parameter group's hyperparameters (all but "params")."""

    __slots__ = ("_optimizer", "_index")

    def __init__(self, optimizer, index):
        self._optimizer, self._index = optimizer, index

    def _group(self):
        return self._optimizer.param_groups[self._index]

    def __getitem__(self, key):
        if key == "params":
            raise KeyError(key)
        return self._group()[key]

    def __iter__(self):
        return (key for key in self._group() if key != "params")

    def __len__(self):
        return sum(1 for _ in self)

    def __repr__(self):
        return repr(dict(self))


# ---------------------------------------------------------------------------------------------
# Base class
# ---------------------------------------------------------------------------------------------

class Optimizer:
    """Base class: parameter groups, their checks, state, ``state_dict`` and the step loop.

    Parameters
    ----------
    params : ndarray, sequence of ndarray, or sequence of dict
        The arrays updated in place (float32 or float64, any shape, writeable, C- or
        F-contiguous, not overlapping each other; anything else raises, never a silent copy),
        as one group, or a list of parameter groups: dicts with a ``"params"`` entry (an array
        or a list of arrays) and any hyperparameters that differ from the defaults (the
        optimizer's keyword arguments), as in torch.optim.
    maximize : bool, default False
        (A keyword of every optimizer here.) Ascend the objective instead: the gradient's sign
        is flipped.
    backend : {"cython", "numpy"}, optional
        Kernel backend; default: the process default (:func:`rsft.get_backend`). Both give
        the same bits.
    n_threads : int, default 1
        Threads of the compiled pass over arrays of at least ``PARALLEL_MIN_SIZE`` elements
        (an integer in ``[1, 256]``, ``rsft._validate.MAX_THREADS``). The result does not
        depend on it.

    Notes
    -----
    ``param_groups`` is the one place of the hyperparameters: a list of dicts, one per group,
    each with ``"params"`` and every hyperparameter. An edit (``lr``, ``betas``, ``momentum``,
    ``weight_decay``, ...) takes effect at the next :meth:`step`, which checks every group
    first: a bad value raises ``ValueError`` or ``TypeError`` naming the group and the key, and
    the step then changes nothing. A group's ``"params"`` are fixed when it is added (use
    :meth:`add_param_group` for more). Writing an attribute the optimizer does not have (say
    ``opt.lr = 0.1``) raises ``AttributeError``; ``backend`` and ``n_threads`` may be set
    (checked). Subclasses keep their own attributes under names starting with ``_``.

    Each group counts its own steps ``t`` (a group added later starts at 0): they drive the
    bias corrections, ``lr`` schedules (``lr(t)`` with ``t`` the group's completed steps) and
    Adagrad's ``lr_decay``, as torch's per-parameter step counts do.

    An optimizer is not thread-safe, like torch's: two threads calling :meth:`step` on the
    same optimizer at once tear each other's updates. Give each thread its own optimizer (and
    parameters), or serialise the calls with a lock. Different optimizers in different threads
    are independent.

    Examples
    --------
    >>> import numpy as np, rsft
    >>> W, b = np.ones((2, 2)), np.zeros(2)
    >>> opt = rsft.SGD([{"params": [W], "lr": 0.5}, {"params": [b]}], lr=0.1)
    >>> [group["lr"] for group in opt.param_groups]
    [0.5, 0.1]
    >>> opt.step([np.ones((2, 2)), np.ones(2)])     # one gradient per parameter, in order
    >>> W[0], b
    (array([0.5, 0.5]), array([-0.1, -0.1]))
    >>> opt.param_groups[1]["lr"] = -1.0            # checked at the next step
    >>> opt.step([np.ones((2, 2)), np.ones(2)])
    Traceback (most recent call last):
    ...
    ValueError: param_groups[1]['lr'] must be finite and >= 0, got -1.0
    >>> opt.param_groups[1]["lr"] = 0.2
    >>> opt.lr = 0.2                                  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    AttributeError: SGD has no attribute 'lr' to set: hyperparameters live in opt.param_groups...
    """

    #: names of the per-parameter state arrays (torch's state keys)
    _state_names = ()
    #: ``(key, check)`` per hyperparameter, in order: a group stores ``check(value, name)``
    _checks = ()
    #: hyperparameters read only when a parameter's state is created (they may not change)
    _read_at_creation = ()

    def __init__(self, params, defaults, *, backend=None, n_threads=1):
        groups, plain_name = _groups_of(params)
        self._backend = _validate.backend(backend)
        self._n_threads = _validate.n_threads(n_threads)
        self._defaults = self._check_hyperparams(defaults, None)
        self._param_groups = []
        self._group_bounds = []     # per group: (first, stop) in the flat lists below
        self._group_arrays = []     # per group: its arrays, as a tuple
        self._group_steps = []      # per group: steps taken
        self._checked = []          # per group: (keys, values, hyperparameters) last checked
        self._created_with = []     # per group: the _read_at_creation values of its state
        self._state_pending = set()  # groups whose state may lack arrays their options use
        self._params, self._flat_params, self._state, self._flat_state = [], [], [], []
        self._orders = []           # per parameter: the memory order of its flat view
        self._step = 0
        for group in groups:
            self._add_group(group, plain_name)

    # -- subclass hooks -------------------------------------------------------------------
    @classmethod
    def _check_combination(cls, hp, where):
        """Checks that involve several hyperparameters of one group (none by default)."""

    def _uses(self, name, hp):  # pragma: no cover - abstract
        """Whether state array ``name`` is used under the group hyperparameters ``hp``."""
        raise NotImplementedError

    def _initial_state(self, name, p, hp):
        """A new state array ``name`` for parameter ``p`` (zeros unless a subclass says)."""
        return np.zeros_like(p)

    def _update(self, kern, p, g, st, hp, lr, t, fresh, n_threads):  # pragma: no cover
        """One kernel call: parameter ``p`` (flat), gradient ``g``, state ``st`` (flat arrays,
        length 0 where unused), group hyperparameters ``hp``, this step's ``lr``, the group's
        step ``t`` (from 1), ``fresh`` when the state was created for this step."""
        raise NotImplementedError

    # -- checks ---------------------------------------------------------------------------
    @classmethod
    def _check_hyperparams(cls, values, where):
        """Every hyperparameter checked (``where`` None: they are arguments; else the group
        or state_dict entry they come from, for the messages)."""
        out = {key: check(values[key], _key_name(where, key)) for key, check in cls._checks}
        cls._check_combination(out, "" if where is None else f"{where}: ")
        return out

    def _check_keys(self, group, where, *, complete):
        """Refuse keys the optimizer does not know (and, if ``complete``, missing ones)."""
        for key in group:
            if key != "params" and key not in self._defaults:
                raise ValueError(f"{where} has an unknown key {key!r}; {type(self).__name__} "
                                 f"groups take 'params' and {', '.join(map(repr, self._defaults))}")
        if complete:
            for key in self._defaults:
                if key not in group:
                    raise ValueError(f"{where} has no {key!r}; every group needs each of "
                                     f"{', '.join(map(repr, self._defaults))}")

    def _check_group(self, i, group):
        """The hyperparameters of ``param_groups[i]`` as edited, checked."""
        where = f"param_groups[{i}]"
        if not isinstance(group, dict):
            raise TypeError(f"{where} must be a dict, got {type(group).__name__}")
        self._check_keys(group, where, complete=True)
        hp = self._check_hyperparams(group, where)
        for key in self._read_at_creation:
            if hp[key] != self._created_with[i][key]:
                raise ValueError(f"{where}[{key!r}] is read only when the state is created "
                                 f"(it was {self._created_with[i][key]!r}, now {hp[key]!r}); "
                                 "build a new optimizer to start from another value")
        return hp

    def _checked_groups(self):
        """Each group's hyperparameters, checked again where they were edited since the last
        check (all groups are checked before any is stored)."""
        groups = self._param_groups
        if len(groups) != len(self._group_bounds):
            raise ValueError(f"param_groups has {len(groups)} groups, the optimizer "
                             f"{len(self._group_bounds)}: add groups with add_param_group(), "
                             "never by editing the list")
        out, edited = [], []
        for i, group in enumerate(groups):
            arrays, registered = group.get("params") if isinstance(group, dict) else None, \
                self._group_arrays[i]
            if (not isinstance(arrays, (list, tuple)) or len(arrays) != len(registered)
                    or not all(map(operator.is_, arrays, registered))):
                raise ValueError(f"param_groups[{i}]['params'] is not the list of arrays the "
                                 "group was created with; a group's parameters are fixed (use "
                                 "add_param_group() for more)")
            keys, values, hp = self._checked[i]
            if tuple(group) != keys or not all(map(operator.is_, group.values(), values)):
                hp = self._check_group(i, group)
                edited.append((i, hp))
            out.append(hp)
        for i, hp in edited:
            self._store_checked(i, hp)
        return out

    def _store_checked(self, i, hp):
        """Write the checked values into group ``i`` and remember them."""
        group = self._param_groups[i]
        group.update(hp)
        self._checked[i] = (tuple(group), tuple(group.values()), hp)
        self._state_pending.add(i)

    # -- groups and state -----------------------------------------------------------------
    def add_param_group(self, param_group):
        """Add a parameter group, as torch.optim's ``add_param_group``.

        Parameters
        ----------
        param_group : dict
            ``"params"`` (an array or a list of arrays, none of them in another group) and any
            hyperparameters; the missing ones are filled in from the optimizer's defaults (its
            constructor arguments). The dict itself becomes ``param_groups[-1]``. Its
            parameters come after all others in ``step(grads)`` and start at step 0.
        """
        self._add_group(param_group, None)

    def _add_group(self, group, plain_name):
        i = len(self._param_groups)
        where = f"param_groups[{i}]"
        if not isinstance(group, dict):
            raise TypeError(f"a parameter group must be a dict with a 'params' entry, got "
                            f"{type(group).__name__}")
        if "params" not in group:
            raise ValueError(f"{where} has no 'params' entry")
        name = plain_name or f"{where}['params']"
        arrays = _check_params(group["params"], name)
        for j, a in enumerate(arrays):
            for k, b in enumerate(self._params):
                if a is b:
                    raise ValueError(f"{name}[{j}] is already optimized (opt.params[{k}]): a "
                                     "parameter may be in one group only")
                if np.may_share_memory(a, b):
                    raise ValueError(f"{name}[{j}] shares memory with opt.params[{k}]; each "
                                     "parameter must be a separate array")
        self._check_keys(group, where, complete=False)
        hp = self._check_hyperparams({**self._defaults, **group}, where)
        group["params"] = list(arrays)
        first = len(self._params)
        for p in arrays:
            self._params.append(p)
            self._flat_params.append(_flat_view(p))
            self._orders.append(_order(p))
            self._state.append({})
            self._flat_state.append({name: _NO_STATE[p.dtype] for name in self._state_names})
        self._param_groups.append(group)
        self._group_bounds.append((first, len(self._params)))
        self._group_arrays.append(tuple(arrays))
        self._group_steps.append(0)
        self._checked.append(None)
        self._created_with.append({key: hp[key] for key in self._read_at_creation})
        self._store_checked(i, hp)
        for j in range(first, len(self._params)):
            self._ensure_state(j, hp)

    def _set_state(self, j, name, array):
        self._state[j][name] = array
        self._flat_state[j][name] = _flat_view(array)

    def _ensure_state(self, j, hp):
        """Create the state arrays that parameter ``j`` needs and lacks; True if any."""
        created = False
        for name in self._state_names:
            if name not in self._state[j] and self._uses(name, hp):
                self._set_state(j, name, self._initial_state(name, self._params[j], hp))
                created = True
        return created

    def _group_of_each_param(self, hps):
        return [hp for hp, (first, stop) in zip(hps, self._group_bounds)
                for _ in range(first, stop)]

    # -- public API -------------------------------------------------------------------------
    @property
    def params(self):
        """The parameter arrays of all groups, in order (the caller's arrays, updated in
        place); ``step(grads)`` takes one gradient per entry."""
        return list(self._params)

    @property
    def param_groups(self):
        """The parameter groups: a list of dicts, each with ``"params"`` and every
        hyperparameter; edit them here (read and checked by the next step)."""
        return self._param_groups

    @property
    def hyperparams(self):
        """A read-only live view of ``param_groups[0]``'s hyperparameters (``lr`` may be a
        schedule). Kept for older code: edit ``param_groups`` instead."""
        return _GroupView(self, 0)

    @property
    def n_steps(self):
        """Number of steps taken so far."""
        return self._step

    @property
    def state(self):
        """Per parameter, a dict of the state arrays in use (live arrays, not copies)."""
        hps = self._group_of_each_param([checked[2] for checked in self._checked])
        return [{k: a for k, a in st.items() if self._uses(k, hp)}
                for st, hp in zip(self._state, hps)]

    @property
    def backend(self):
        """The kernel backend name, or None for the process default (may be set)."""
        return self._backend

    @backend.setter
    def backend(self, name):
        self._backend = _validate.backend(name)

    @property
    def n_threads(self):
        """Threads of the compiled pass (may be set; never changes the result)."""
        return self._n_threads

    @n_threads.setter
    def n_threads(self, n):
        self._n_threads = _validate.n_threads(n)

    def __setattr__(self, name, value):
        if name[0] == "_":
            object.__setattr__(self, name, value)
            return
        attribute = getattr(type(self), name, None)
        if isinstance(attribute, property) and attribute.fset:
            object.__setattr__(self, name, value)
            return
        cls = type(self).__name__
        if isinstance(attribute, property) or callable(attribute):
            raise AttributeError(f"{cls}.{name} is read-only")
        if name in self._defaults:
            raise AttributeError(
                f"{cls} has no attribute {name!r} to set: hyperparameters live in "
                f"opt.param_groups; set opt.param_groups[i][{name!r}] for each group i (the "
                "next step reads and checks it)")
        raise AttributeError(f"{cls} has no attribute {name!r} to set (optimizers take no new "
                             "attributes; hyperparameters are edited in opt.param_groups)")

    def __delattr__(self, name):
        raise AttributeError(f"{type(self).__name__}.{name} cannot be deleted")

    def __getstate__(self):
        """For copy and pickle: the flat views are left out (a copy of a view is no view)."""
        return {k: v for k, v in vars(self).items() if k not in ("_flat_params", "_flat_state")}

    def __setstate__(self, state):
        vars(self).update(state)
        vars(self)["_flat_params"] = [_flat_view(p) for p in self._params]
        vars(self)["_flat_state"] = [
            {k: _flat_view(st[k]) if k in st else _NO_STATE[p.dtype] for k in self._state_names}
            for st, p in zip(self._state, self._params)]

    def lr_at(self, t, group=0):
        """Learning rate of ``param_groups[group]``'s step taken after ``t`` of its completed
        steps (checked)."""
        return self._lr_value(self._checked_groups()[group], t, group)

    @staticmethod
    def _lr_value(hp, t, i):
        lr = hp["lr"]
        if not callable(lr):
            return lr
        v = lr(t)
        return _nonneg(v, f"the lr schedule of param_groups[{i}] (lr={v} at t={t})")

    def _check_grads(self, grads):
        grads = _array_sequence(grads, "grads")
        if len(grads) != len(self._params):
            raise ValueError(f"got {len(grads)} gradient arrays for {len(self._params)} "
                             "parameter arrays; give one gradient per parameter, in order")
        flat = []
        for i, (g, p, order) in enumerate(zip(grads, self._params, self._orders)):
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
            flat.append(g.ravel(order))
        return flat

    def step(self, grads):
        """Update every parameter in place from its gradient.

        Parameters
        ----------
        grads : ndarray or sequence of ndarray
            One array per parameter, in the order of :attr:`params` (the groups one after
            another), of the same shape and dtype (any layout; it is only read).

        Every group's hyperparameters and this step's learning rates are checked before any
        array changes: if anything raises, the step has changed nothing. The kernels run
        without the GIL, inside :func:`rsft._backend.short_gil_waits` (the switch interval at
        0.1 ms for the step, then restored), so a busy Python thread beside the step gives the
        GIL back within 0.1 ms after each kernel instead of 5 ms.

        Ctrl-C (or any exception a signal handler raises) interrupts a step within about
        0.1 s, also on a huge array: the kernels check for signals between pieces. An
        interrupted step is neither done nor undone: the parameters (and their state) before
        the interrupted one are updated, the interrupted one partly (the pieces already done),
        the others not; the step counts (:attr:`n_steps`, and those of the groups not
        finished) are not advanced. The optimizer keeps working, but to resume exactly,
        restore a :meth:`state_dict` taken before the step (and the parameters with it).
        """
        hps = self._checked_groups()
        flat = self._check_grads(grads)
        steps = self._group_steps
        lrs = []
        for i, hp in enumerate(hps):
            lrs.append(self._lr_value(hp, steps[i], i))
        kern = _backend.kernels(self._backend)
        with _backend.short_gil_waits():
            for i, hp in enumerate(hps):
                t = steps[i] + 1
                first, stop = self._group_bounds[i]
                pending = i in self._state_pending
                for j in range(first, stop):
                    fresh = pending and self._ensure_state(j, hp)
                    p = self._flat_params[j]
                    n_threads = self._n_threads if p.shape[0] >= PARALLEL_MIN_SIZE else 1
                    self._update(kern, p, flat[j], self._flat_state[j], hp, lrs[i], t, fresh,
                                 n_threads)
                steps[i] = t
                if pending:
                    self._state_pending.discard(i)
        self._step += 1

    def state_dict(self):
        """A snapshot: optimizer name, step counts, parameter groups and copies of the state.

        Returns
        -------
        dict
            ``{"optimizer": name, "step": int, "param_groups": [dict, ...],
            "group_steps": [int, ...], "state": [dict, ...]}``: ``step`` counts the calls of
            :meth:`step`; each group as in ``param_groups`` (checked), its ``"params"`` given
            as indices into :attr:`params` (as torch does); each group's own step count; one
            dict of array copies per parameter (the state its group's options use).
        """
        hps = self._checked_groups()
        return {
            "optimizer": type(self).__name__,
            "step": self._step,
            "param_groups": [{**hp, "params": list(range(*bounds))}
                             for hp, bounds in zip(hps, self._group_bounds)],
            "group_steps": list(self._group_steps),
            "state": [{k: a.copy(order="K") for k, a in st.items()} for st in self.state],
        }

    def load_state_dict(self, state_dict):
        """Restore a :meth:`state_dict` snapshot (checked; arrays are copied in).

        Parameters
        ----------
        state_dict : dict
            From ``state_dict()`` of the same optimizer class over parameters of the same
            shapes and dtypes, in groups of the same sizes. The groups' hyperparameters are
            replaced by the snapshot's; their ``"params"`` stay this optimizer's arrays. (A
            snapshot of one group with a ``"hyperparams"`` dict, the older format, loads too.)
            Nothing changes if it raises.
        """
        try:
            name, step, states = (state_dict["optimizer"], state_dict["step"],
                                  state_dict["state"])
            if "param_groups" in state_dict or "hyperparams" not in state_dict:
                groups = state_dict["param_groups"]
                group_steps = state_dict.get("group_steps", [step] * len(groups))
            else:   # the older one-group format
                groups = [{**state_dict["hyperparams"], "params": list(range(len(states)))}]
                group_steps = [step]
        except (TypeError, KeyError) as exc:
            raise ValueError(f"not an optimizer state_dict (missing {exc})") from None
        if name != type(self).__name__:
            raise ValueError(f"state_dict is of a {name} optimizer, not {type(self).__name__}")
        try:
            # a step count fits the kernels' 64-bit counters (and ``beta ** t`` stays defined)
            step = _validate.count(step, "step", maximum=MAX_STEPS)
            group_steps = [_validate.count(s, "group step", maximum=MAX_STEPS)
                           for s in group_steps]
        except (TypeError, ValueError):
            raise ValueError(f"invalid step count {step!r} or group steps {group_steps!r} in "
                             "state_dict") from None
        if len(groups) != len(self._param_groups) or len(group_steps) != len(groups):
            raise ValueError(f"state_dict has {len(groups)} parameter groups, this optimizer "
                             f"has {len(self._param_groups)}")
        if len(states) != len(self._params):
            raise ValueError(f"state_dict has state for {len(states)} parameters, this "
                             f"optimizer has {len(self._params)}")
        hps = []
        for i, (group, (first, stop)) in enumerate(zip(groups, self._group_bounds)):
            where = f"state_dict['param_groups'][{i}]"
            if not isinstance(group, dict) or len(group.get("params", ())) != stop - first:
                raise ValueError(f"{where} does not hold {stop - first} parameters, as "
                                 f"param_groups[{i}] does")
            self._check_keys(group, where, complete=True)
            hps.append(self._check_hyperparams(group, where))
        loaded = []
        for j, (st, p, hp) in enumerate(zip(states, self._params,
                                            self._group_of_each_param(hps))):
            if not isinstance(st, Mapping):
                raise ValueError(f"state[{j}] must be a dict of arrays, got {type(st).__name__}")
            for k in st:
                if k not in self._state_names or not self._uses(k, hp):
                    used = [n for n in self._state_names if self._uses(n, hp)]
                    raise ValueError(f"state[{j}] has arrays {sorted(st)}, expected "
                                     f"{sorted(used)} for these hyper-parameters")
            arrays = {k: np.asarray(a) for k, a in st.items()}
            for k, a in arrays.items():
                if a.shape != p.shape or a.dtype != p.dtype:
                    raise ValueError(f"state[{j}][{k!r}] has shape {a.shape} and dtype "
                                     f"{a.dtype}; expected {p.shape} and {p.dtype}")
            loaded.append(arrays)
        for i, hp in enumerate(hps):
            self._created_with[i] = {key: hp[key] for key in self._read_at_creation}
            self._store_checked(i, hp)
        for j, (arrays, p) in enumerate(zip(loaded, self._params)):
            self._state[j] = {}
            self._flat_state[j] = {k: _NO_STATE[p.dtype] for k in self._state_names}
            for k, a in arrays.items():
                self._set_state(j, k, np.array(a, order=_order(p)))
        self._group_steps = group_steps
        self._step = step

    def __repr__(self):
        hps = [checked[2] for checked in self._checked]
        text = ["{" + ", ".join(f"{k}={v!r}" for k, v in hp.items()) + "}" for hp in hps]
        if len(text) == 1:
            return f"{type(self).__name__}({len(self._params)} arrays, {text[0][1:-1]})"
        return (f"{type(self).__name__}({len(self._params)} arrays in {len(text)} groups: "
                f"{', '.join(text)})")


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

    (The first step of the buffer is the group's first, or the first with a momentum after
    the group had none, as torch's buffer starts when first needed.)

    Parameters
    ----------
    params : ndarray, sequence of ndarray, or sequence of dict
        Arrays updated in place, or parameter groups (see :class:`Optimizer`).
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
    maximize, backend, n_threads
        See :class:`Optimizer`.

    Examples
    --------
    Two steps with momentum on ``|p|^2``: the buffer starts at the first gradient.

    >>> from rsft import SGD
    >>> import numpy as np
    >>> p = np.array([1.0, -2.0])
    >>> opt = SGD(p, lr=0.1, momentum=0.9)
    >>> for _ in range(2):
    ...     opt.step(2 * p)                  # the gradient of |p|^2
    >>> p
    array([ 0.46, -0.92])
    >>> opt.state[0]["momentum_buffer"]
    array([ 3.4, -6.8])
    """

    _state_names = ("momentum_buffer",)
    _checks = (("lr", _lr), ("momentum", _nonneg), ("dampening", _validate.real),
               ("weight_decay", _nonneg), ("nesterov", _validate.flag),
               ("maximize", _validate.flag))

    def __init__(self, params, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, maximize=False, *, backend=None, n_threads=1):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize),
                         backend=backend, n_threads=n_threads)

    @classmethod
    def _check_combination(cls, hp, where):
        if hp["nesterov"] and (hp["momentum"] <= 0 or hp["dampening"] != 0):
            raise ValueError(f"{where}Nesterov momentum (nesterov=True) requires a momentum > 0 "
                             "and zero dampening")

    def _uses(self, name, hp):
        return hp["momentum"] != 0

    def _update(self, kern, p, g, st, hp, lr, t, fresh, n_threads):
        kern.sgd_step(p, g, st["momentum_buffer"], lr, hp["momentum"], 1.0 - hp["dampening"],
                      hp["weight_decay"], hp["nesterov"], hp["maximize"], t == 1 or fresh,
                      n_threads)


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
    params : ndarray, sequence of ndarray, or sequence of dict
        Arrays updated in place, or parameter groups (see :class:`Optimizer`).
    lr : float or callable, default 1e-3
        Learning rate (finite, ``>= 0``) or a schedule ``lr(t)``.
    betas : (float, float), default (0.9, 0.999)
        Decay rates of the first and second moment estimates, each in ``[0, 1)``.
    eps : float, default 1e-8
        Added to the denominator, finite and ``>= 0``. With ``eps=0`` a coordinate whose
        gradients have all been zero gives ``0/0 = NaN``, exactly as torch.optim does (so does
        an ``eps`` that rounds to 0 in the parameters' dtype, e.g. ``1e-50`` in float32).
    weight_decay : float, default 0
        L2 penalty added to the gradient, ``>= 0``.
    amsgrad : bool, default False
        Use the running maximum of ``v`` (Reddi et al., 2018).
    maximize, backend, n_threads
        See :class:`Optimizer`.

    Examples
    --------
    With ``eps = 0`` the first step moves each element by ``lr`` against the sign of its
    gradient, whatever the gradient's scale (``m_hat = g``, ``sqrt(v_hat) = |g|``):

    >>> from rsft import Adam
    >>> import numpy as np
    >>> p = np.zeros(3)
    >>> opt = Adam(p, lr=0.1, eps=0.0)
    >>> opt.step(np.array([1e-3, -2.0, 5e4]))
    >>> p
    array([-0.1,  0.1, -0.1])
    """

    _state_names = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    _checks = (("lr", _lr), ("betas", partial(_betas, closed=False)), ("eps", _nonneg),
               ("weight_decay", _nonneg), ("amsgrad", _validate.flag),
               ("maximize", _validate.flag))
    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, maximize=False, *, backend=None, n_threads=1):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize),
                         backend=backend, n_threads=n_threads)

    def _uses(self, name, hp):
        return name != "max_exp_avg_sq" or hp["amsgrad"]

    def _update(self, kern, p, g, st, hp, lr, t, fresh, n_threads):
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

    Examples
    --------
    A zero gradient leaves Adam's moments at 0, so only the decay acts:

    >>> from rsft import AdamW
    >>> import numpy as np
    >>> p = np.array([1.0, -2.0])
    >>> opt = AdamW(p, lr=0.1, weight_decay=0.5)
    >>> opt.step(np.zeros(2))
    >>> p
    array([ 0.95, -1.9 ])
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
        avg = sqrt(max(v - a * a, 0)) + eps if centered else sqrt(v) + eps
        b = momentum * b + g / avg; p = p - lr * b   (if momentum != 0)
        p = p - lr * g / avg                         (otherwise)

    Parameters
    ----------
    params : ndarray, sequence of ndarray, or sequence of dict
        The arrays it updates in place, or parameter groups, as for every :class:`Optimizer`.
    lr : float or callable, default 1e-2
        Learning rate (finite, ``>= 0``) or a schedule ``lr(t)``.
    alpha : float, default 0.99
        Smoothing constant, in ``[0, 1]``.
    eps : float, default 1e-8
        Added to the denominator, finite and ``>= 0``. With ``eps=0`` a coordinate whose
        gradients have all been zero gives ``0/0 = NaN``, exactly as torch.optim does (so does
        an ``eps`` that rounds to 0 in the parameters' dtype, e.g. ``1e-50`` in float32).
    weight_decay : float, default 0
        L2 penalty added to the gradient, ``>= 0``.
    momentum : float, default 0
        Momentum factor, ``>= 0``.
    centered : bool, default False
        Normalise by the estimated variance of the gradient instead of its second moment.
        The variance ``v - a * a`` is clamped at 0: rounding can make it a few ulps negative
        (e.g. ``alpha`` near 0), where torch.optim's ``sqrt`` gives NaN from finite input.
    maximize, backend, n_threads
        See :class:`Optimizer`.

    Examples
    --------
    The first step divides by ``sqrt(1 - alpha) * |g|``: with ``alpha = 0.75``, a move of
    ``2 * lr`` against the sign of the gradient.

    >>> from rsft import RMSprop
    >>> import numpy as np
    >>> p = np.zeros(2)
    >>> opt = RMSprop(p, lr=0.01, alpha=0.75, eps=0.0)
    >>> opt.step(np.array([3.0, -0.5]))
    >>> p
    array([-0.02,  0.02])
    """

    _state_names = ("square_avg", "grad_avg", "momentum_buffer")
    _checks = (("lr", _lr), ("alpha", partial(_validate.real, lo=0.0, hi=1.0)),
               ("eps", _nonneg), ("weight_decay", _nonneg), ("momentum", _nonneg),
               ("centered", _validate.flag), ("maximize", _validate.flag))

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False, maximize=False, *, backend=None, n_threads=1):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize),
                         backend=backend, n_threads=n_threads)

    def _uses(self, name, hp):
        if name == "grad_avg":
            return hp["centered"]
        if name == "momentum_buffer":
            return hp["momentum"] != 0
        return True

    def _update(self, kern, p, g, st, hp, lr, t, fresh, n_threads):
        kern.rmsprop_step(p, g, st["square_avg"], st["grad_avg"], st["momentum_buffer"], lr,
                          hp["alpha"], 1.0 - hp["alpha"], hp["eps"], hp["weight_decay"],
                          hp["momentum"], hp["centered"], hp["maximize"], n_threads)


class Adagrad(Optimizer):
    """Adagrad (Duchi, Hazan & Singer, 2011), as torch.optim.Adagrad.

    Per element, at the group's step ``t = 1, 2, ...``::

        g = -g if maximize
        g = g + weight_decay * p                     (if weight_decay != 0)
        clr = lr / (1 + (t - 1) * lr_decay)
        state_sum = state_sum + g * g
        p = p - clr * g / (sqrt(state_sum) + eps)

    Parameters
    ----------
    params : ndarray, sequence of ndarray, or sequence of dict
        Arrays updated in place, or parameter groups (see :class:`Optimizer`).
    lr : float or callable, default 1e-2
        Learning rate (finite, ``>= 0``) or a schedule ``lr(t)``; ``lr_decay`` applies on top.
    lr_decay : float, default 0
        Inverse-time decay of the learning rate per step, ``>= 0``.
    weight_decay : float, default 0
        L2 penalty added to the gradient, ``>= 0``.
    initial_accumulator_value : float, default 0
        Starting value of ``state_sum``, ``>= 0``. Read when a parameter's state is created;
        a later edit in ``param_groups`` raises at the next step.
    eps : float, default 1e-10
        Added to the denominator, finite and ``>= 0``. With ``eps=0`` a coordinate whose
        gradients have all been zero gives ``0/0 = NaN``, exactly as torch.optim does (so does
        an ``eps`` that rounds to 0 in the parameters' dtype, e.g. ``1e-50`` in float32).
    maximize, backend, n_threads
        See :class:`Optimizer`.

    Examples
    --------
    The accumulated squares make the first step ``lr * sign(g)`` (with ``eps = 0``):

    >>> from rsft import Adagrad
    >>> import numpy as np
    >>> p = np.zeros(2)
    >>> opt = Adagrad(p, lr=0.5, eps=0.0)
    >>> opt.step(np.array([2.0, -4.0]))          # state_sum = g^2
    >>> p
    array([-0.5,  0.5])
    >>> opt.step(np.array([0.0, 3.0]))           # state_sum = [4, 25]: -0.5 * 3 / 5
    >>> p
    array([-0.5,  0.2])
    """

    _state_names = ("sum",)
    _checks = (("lr", _lr), ("lr_decay", _nonneg), ("weight_decay", _nonneg),
               ("initial_accumulator_value", _nonneg), ("eps", _nonneg),
               ("maximize", _validate.flag))
    _read_at_creation = ("initial_accumulator_value",)

    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0,
                 initial_accumulator_value=0.0, eps=1e-10, maximize=False, *, backend=None,
                 n_threads=1):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      eps=eps, maximize=maximize),
                         backend=backend, n_threads=n_threads)

    def _uses(self, name, hp):
        return True

    def _initial_state(self, name, p, hp):
        return np.full_like(p, hp["initial_accumulator_value"])

    def _update(self, kern, p, g, st, hp, lr, t, fresh, n_threads):
        clr = lr / (1 + (t - 1) * hp["lr_decay"])
        kern.adagrad_step(p, g, st["sum"], clr, hp["eps"], hp["weight_decay"], hp["maximize"],
                          n_threads)


class Lion(Optimizer):
    """Lion, EvoLved Sign Momentum (Chen et al. 2023, "Symbolic Discovery of Optimization
    Algorithms", Algorithm 2), with decoupled weight decay.

    Per element::

        g = -g if maximize
        c = beta1 * m + (1 - beta1) * g
        p = p * (1 - lr * weight_decay)              (if weight_decay != 0)
        p = p - lr * sign(c)
        m = beta2 * m + (1 - beta2) * g

    Every element moves by exactly ``lr`` (plus the decay), so Lion wants a learning rate
    several times smaller than AdamW's and a weight decay as many times larger (the paper's
    advice). ``sign`` is numpy's: 0 where ``c`` is 0.

    Parameters
    ----------
    params : ndarray, sequence of ndarray, or sequence of dict
        The arrays Lion moves in place, or parameter groups (see :class:`Optimizer`).
    lr : float or callable, default 1e-4
        How far every element moves per step (finite, ``>= 0``), or a schedule ``lr(t)``.
    betas : (float, float), default (0.9, 0.99)
        Interpolation factor of the update direction and decay rate of the momentum, each in
        ``[0, 1]``.
    weight_decay : float, default 0
        Decoupled decay coefficient, ``>= 0``.
    maximize, backend, n_threads
        See :class:`Optimizer`.

    Examples
    --------
    One step: the decoupled decay, then ``lr`` against the sign of the interpolated momentum
    (0 where it is 0):

    >>> from rsft import Lion
    >>> import numpy as np
    >>> p = np.array([1.0, -2.0, 3.0])
    >>> opt = Lion(p, lr=0.1, weight_decay=0.5)
    >>> opt.step(np.array([3.0, -0.5, 0.0]))     # p * 0.95 - 0.1 * sign(g)
    >>> p
    array([ 0.85, -1.8 ,  2.85])
    >>> opt.state[0]["exp_avg"]
    array([ 0.03 , -0.005,  0.   ])
    """

    _state_names = ("exp_avg",)
    _checks = (("lr", _lr), ("betas", partial(_betas, closed=True)),
               ("weight_decay", _nonneg), ("maximize", _validate.flag))

    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0, maximize=False,
                 *, backend=None, n_threads=1):
        super().__init__(params, dict(lr=lr, betas=betas, weight_decay=weight_decay,
                                      maximize=maximize),
                         backend=backend, n_threads=n_threads)

    def _uses(self, name, hp):
        return True

    def _update(self, kern, p, g, st, hp, lr, t, fresh, n_threads):
        beta1, beta2 = hp["betas"]
        kern.lion_step(p, g, st["exp_avg"], lr, beta1, 1.0 - beta1, beta2, 1.0 - beta2,
                       1.0 - lr * hp["weight_decay"], hp["maximize"], n_threads)


# ---------------------------------------------------------------------------------------------
# Gradient clipping
# ---------------------------------------------------------------------------------------------

def _gradient_arrays(grads):
    """The gradients to clip in place: float32/float64 arrays, writeable, not overlapping."""
    arrays = _array_sequence(grads, "grads")
    for i, g in enumerate(arrays):
        if not isinstance(g, np.ndarray):
            raise TypeError(f"grads[{i}] must be a numpy array (it is clipped in place), got "
                            f"{type(g).__name__}")
        if g.dtype not in _validate.FLOATS:
            raise TypeError(f"grads[{i}] has dtype {g.dtype}; gradients are clipped in place "
                            "as float32 or float64 arrays")
        if not g.flags.writeable:
            raise ValueError(f"grads[{i}] is read-only; it is clipped in place")
        for j in range(i):
            if np.may_share_memory(g, arrays[j]):
                raise ValueError(f"grads[{j}] and grads[{i}] share memory; each would be "
                                 "counted and scaled twice")
    return arrays


def _norm_type(norm_type):
    if isinstance(norm_type, str) and norm_type.strip().lower() == "inf":
        return math.inf
    return _validate.real(norm_type, "norm_type", lo=0.0, lo_open=True, finite=False,
                          expected="a real number > 0 or 'inf'")


def _vector_norm(a, norm_type):
    """torch.linalg.vector_norm(a, norm_type) in a's dtype: ``max |a|`` for inf, else
    ``(sum |a|**p)**(1/p)`` (``sqrt(sum a*a)`` for 2) with numpy's pairwise sum."""
    if a.size == 0:
        return a.dtype.type(0)
    if norm_type == math.inf:
        return np.max(np.abs(a))
    if norm_type == 2:
        return np.sqrt(np.add.reduce(np.square(a), axis=None))
    if norm_type == 1:
        return np.add.reduce(np.abs(a), axis=None)
    p = a.dtype.type(norm_type)
    return np.add.reduce(np.abs(a) ** p, axis=None) ** (a.dtype.type(1) / p)


def clip_grad_norm(grads, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale gradients in place so that their total norm is at most about ``max_norm``, as
    torch.nn.utils.clip_grad_norm_; returns the total norm before clipping.

    The total norm is the ``norm_type``-norm of the arrays' own norms (as if all were one
    vector). With ``scale = max_norm / (total + 1e-6)`` computed as torch does
    (``(1 / (total + 1e-6)) * max_norm`` in the gradients' dtype), every gradient is
    multiplied by ``scale`` when ``scale < 1`` (also when it is NaN, as torch's clamp keeps a
    NaN: a NaN total norm makes every gradient NaN unless ``error_if_nonfinite``). Unlike torch,
    it takes the gradient arrays, not parameters with a ``.grad``.

    Parameters
    ----------
    grads : ndarray or sequence of ndarray
        float32 or float64 arrays, writeable, any layout, none sharing memory with another.
    max_norm : float
        The largest total norm kept, ``>= 0`` (``inf`` clips nothing).
    norm_type : float or "inf", default 2.0
        ``p > 0`` of the p-norm, or ``inf`` (``"inf"``) for the largest absolute value.
    error_if_nonfinite : bool, default False
        Raise ``ValueError`` (before changing anything) when the total norm is NaN or
        infinite; torch raises ``RuntimeError`` there.

    Returns
    -------
    numpy.floating
        The total norm, in the gradients' dtype (float64 if they mix float32 and float64;
        ``0.0`` for no gradients).

    Notes
    -----
    Against torch: for ``norm_type=inf`` the norm (a maximum, whatever the order) and so the
    clipped gradients are the same to the last bit. For a finite ``norm_type`` the norm is a
    sum, and its order differs (numpy's pairwise sum here, torch's vectorised reduction), so
    the total may differ from torch's in its last bits; the scale, and each clipped element,
    then differ by about as many ulps: up to a few in float64 (where the sums agree often
    exactly), more in float32 sums of many elements, where numpy's pairwise sum is the more
    accurate of the two. Gradients that are not clipped (``scale >= 1``) are untouched.
    Both rsft backends run this same numpy code: the result does not depend on the backend.

    Examples
    --------
    >>> import numpy as np, rsft
    >>> grads = [np.array([3.0, 0.0]), np.array([[4.0]])]
    >>> total = rsft.optim.clip_grad_norm(grads, max_norm=1.0)
    >>> float(total)
    5.0
    >>> np.round(grads[0], 6), np.round(grads[1], 6)
    (array([0.6, 0. ]), array([[0.8]]))
    """
    arrays = _gradient_arrays(grads)
    max_norm = _validate.real(max_norm, "max_norm", lo=0.0, finite=False)
    norm_type = _norm_type(norm_type)
    error_if_nonfinite = _validate.flag(error_if_nonfinite, "error_if_nonfinite")
    if not arrays:
        return np.float64(0.0)
    dtype = np.result_type(*arrays)
    total = _vector_norm(np.array([_vector_norm(g, norm_type) for g in arrays], dtype),
                         norm_type)
    if error_if_nonfinite and not np.isfinite(total):
        raise ValueError(f"the total norm of order {norm_type} of the gradients is {total}, "
                         "so they cannot be clipped; with error_if_nonfinite=False they are "
                         "scaled by that norm anyway")
    one = dtype.type(1)
    scale = (one / (total + dtype.type(1e-6))) * dtype.type(max_norm)
    if not scale >= one:
        with np.errstate(invalid="ignore"):     # inf * 0 is NaN, as in torch
            for g in arrays:
                np.multiply(g, g.dtype.type(scale), out=g)
    return total


def clip_grad_value(grads, clip_value):
    """Clip gradients in place to ``[-clip_value, clip_value]``, as
    torch.nn.utils.clip_grad_value_ (NaN stays NaN); the same bits as torch.

    Parameters
    ----------
    grads : ndarray or sequence of ndarray
        float32 or float64 arrays, writeable, any layout.
    clip_value : float
        The largest absolute value kept, ``>= 0`` (``inf`` clips nothing); cast to each
        array's dtype.

    Examples
    --------
    >>> import numpy as np, rsft
    >>> g = np.array([-3.0, 0.5, 2.0])
    >>> rsft.optim.clip_grad_value(g, 1.0)
    >>> g
    array([-1. ,  0.5,  1. ])
    """
    arrays = _gradient_arrays(grads)
    clip_value = _validate.real(clip_value, "clip_value", lo=0.0, finite=False)
    for g in arrays:
        bound = g.dtype.type(clip_value)
        np.clip(g, -bound, bound, out=g)
