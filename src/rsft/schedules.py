"""Learning-rate schedules: small callables ``schedule(t) -> float`` accepted wherever an optimizer
takes ``lr``.

``t`` is the number of optimizer steps already taken (0 for the first step), so
``InverseTimeLR(0.1, k=0.5)`` gives the first step ``lr = 0.1`` and the second ``0.1 / 1.5``.
Every schedule is an immutable value object: it compares equal to another with the same
parameters and is stored as is in ``Optimizer.state_dict()``.

Warmup composes: :class:`LinearWarmup` ramps up any ``lr`` (a float or a schedule), and
:class:`WarmupCosine` is the usual fine-tuning schedule, a linear warmup then a cosine decay.
"""

import math
import numbers
from dataclasses import dataclass

from . import _validate

__all__ = ["LRSchedule", "ConstantLR", "StepLR", "CosineLR", "InverseTimeLR",
           "LinearWarmup", "WarmupCosine"]


def _rate(x, name):
    """A learning rate or decay rate: finite and >= 0."""
    return _validate.real(x, name, lo=0.0)


def _steps(x, name):
    """A number of steps: an integer in [1, 2**62] (rsft's largest step count)."""
    return _validate.count(x, name, minimum=1, maximum=_validate.MAX_STEPS)


def _warmup_steps(x, name):
    """A number of warmup steps: an integer in [0, 2**62] (0: no warmup)."""
    return _validate.count(x, name, maximum=_validate.MAX_STEPS)


def _schedule(x, name):
    """A schedule, or a learning rate (finite, >= 0) made into a :class:`ConstantLR`."""
    x = _validate.rate_or_schedule(x, name)
    return x if callable(x) else ConstantLR(x)


def _fraction(x, name):
    """A factor in [0, 1]."""
    return _validate.real(x, name, lo=0.0, hi=1.0)


def _step_index(t):
    """The step count a schedule is evaluated at (an integer in [0, 2**62], rsft's largest step
    count; anything else ValueError)."""
    if (isinstance(t, bool) or not isinstance(t, numbers.Integral) or t < 0
            or t > _validate.MAX_STEPS):
        raise ValueError("a schedule is evaluated at a step count t in [0, 2**62] (an integer), "
                         f"got {t!r}")
    return int(t)


class LRSchedule:
    """Base class of the learning-rate schedules.

    Subclasses implement ``__call__(t) -> float``: the learning rate of the step taken after
    ``t`` completed steps. Any callable with that signature is accepted as ``lr`` too; its
    values are checked (finite, ``>= 0``) at every step.
    """

    __slots__ = ()
    #: ``(field, check)`` pairs: a schedule stores ``check(value, field)`` for each field
    _checks = ()

    def __post_init__(self):
        for name, check in self._checks:
            object.__setattr__(self, name, check(getattr(self, name), name))

    def __call__(self, t):  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True)
class ConstantLR(LRSchedule):
    """The same learning rate at every step: ``lr``.

    Parameters
    ----------
    lr : float
        Learning rate, finite and ``>= 0``.

    Examples
    --------
    >>> from rsft.schedules import ConstantLR
    >>> [ConstantLR(0.1)(t) for t in (0, 1, 1000)]
    [0.1, 0.1, 0.1]
    """

    lr: float
    _checks = (("lr", _rate),)

    def __call__(self, t):
        """Learning rate after ``t`` steps."""
        _step_index(t)
        return self.lr


@dataclass(frozen=True)
class StepLR(LRSchedule):
    """Step decay: ``lr * gamma ** (t // step_size)``.

    Parameters
    ----------
    lr : float
        Initial learning rate, finite and ``>= 0``.
    step_size : int
        Number of steps between two decays, ``>= 1``.
    gamma : float, default 0.1
        Multiplicative factor of each decay, in ``[0, 1]``.

    Examples
    --------
    >>> from rsft.schedules import StepLR
    >>> [StepLR(1.0, step_size=2, gamma=0.5)(t) for t in range(6)]
    [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    """

    lr: float
    step_size: int
    gamma: float = 0.1
    _checks = (("lr", _rate), ("step_size", _steps), ("gamma", _fraction))

    def __call__(self, t):
        """Learning rate after ``t`` steps."""
        return self.lr * self.gamma ** (_step_index(t) // self.step_size)


@dataclass(frozen=True)
class CosineLR(LRSchedule):
    """Cosine annealing from ``lr`` to ``eta_min`` over ``t_max`` steps, then ``eta_min``.

    ``eta_min + (lr - eta_min) * (1 + cos(pi * t / t_max)) / 2`` for ``t <= t_max``
    (torch's ``CosineAnnealingLR`` closed form, without its restarts).

    Parameters
    ----------
    lr : float
        Initial learning rate, finite and ``>= 0``.
    t_max : int
        Length of the annealing, ``>= 1`` steps.
    eta_min : float, default 0
        Final learning rate, finite and ``>= 0``.

    Examples
    --------
    >>> from rsft.schedules import CosineLR
    >>> [round(CosineLR(1.0, t_max=4)(t), 6) for t in range(6)]
    [1.0, 0.853553, 0.5, 0.146447, 0.0, 0.0]
    """

    lr: float
    t_max: int
    eta_min: float = 0.0
    _checks = (("lr", _rate), ("t_max", _steps), ("eta_min", _rate))

    def __call__(self, t):
        """Learning rate after ``t`` steps."""
        t = _step_index(t)
        if t >= self.t_max:
            return self.eta_min
        c = 0.5 * (1.0 + math.cos(math.pi * t / self.t_max))
        return self.eta_min + (self.lr - self.eta_min) * c


@dataclass(frozen=True)
class InverseTimeLR(LRSchedule):
    """Inverse-time decay: ``lr / (1 + k * t)``, with ``lr`` (the initial learning rate) and
    ``k`` (the decay rate per step) finite and ``>= 0``.

    Examples
    --------
    >>> from rsft.schedules import InverseTimeLR
    >>> [InverseTimeLR(0.5, k=0.25)(t) for t in (0, 4, 12)]
    [0.5, 0.25, 0.125]
    """

    lr: float
    k: float
    _checks = (("lr", _rate), ("k", _rate))

    def __call__(self, t):
        """Learning rate after ``t`` steps."""
        return self.lr / (1.0 + self.k * _step_index(t))


@dataclass(frozen=True)
class LinearWarmup(LRSchedule):
    """A linear warmup in front of any learning rate: ``schedule(t) * ((t + 1) / warmup_steps)``
    for ``t < warmup_steps``, then ``schedule(t)``.

    The first step takes ``1 / warmup_steps`` of the rate and step ``warmup_steps - 1`` (the
    last of the warmup) all of it, as torch's
    ``LinearLR(start_factor=1/warmup_steps, total_iters=warmup_steps - 1)`` chained with the
    schedule. The schedule is not shifted: it is evaluated at the same ``t``.

    Parameters
    ----------
    schedule : float or callable
        The learning rate after the warmup: a float (finite, ``>= 0``; stored as a
        :class:`ConstantLR`) or a schedule ``t -> float``.
    warmup_steps : int
        Length of the warmup, ``>= 0`` (0: no warmup).

    Examples
    --------
    >>> from rsft.schedules import LinearWarmup, StepLR
    >>> [LinearWarmup(1.0, warmup_steps=4)(t) for t in range(6)]
    [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    >>> [LinearWarmup(StepLR(1.0, step_size=3, gamma=0.5), 2)(t) for t in range(5)]
    [0.5, 1.0, 1.0, 0.5, 0.5]
    """

    schedule: object
    warmup_steps: int
    _checks = (("schedule", _schedule), ("warmup_steps", _warmup_steps))

    def __call__(self, t):
        """Learning rate after ``t`` steps."""
        t = _step_index(t)
        rate = self.schedule(t)
        if t >= self.warmup_steps:
            return rate
        rate = _rate(rate, f"the warmed-up schedule's value (at t={t})")
        return rate * ((t + 1) / self.warmup_steps)     # the fraction first: no overflow


@dataclass(frozen=True)
class WarmupCosine(LRSchedule):
    """A linear warmup to ``lr`` over ``warmup_steps`` steps, then a cosine decay to
    ``eta_min`` at step ``total_steps``, then ``eta_min``: the usual fine-tuning schedule.

    ``lr * ((t + 1) / warmup_steps)`` for ``t < warmup_steps`` (as :class:`LinearWarmup`), then
    ``eta_min + (lr - eta_min) * (1 + cos(pi * (t - warmup_steps) / (total_steps -
    warmup_steps))) / 2`` up to ``t = total_steps`` (:class:`CosineLR` started at the end of
    the warmup), and ``eta_min`` after.

    Parameters
    ----------
    lr : float
        Peak learning rate, finite and ``>= 0``.
    warmup_steps : int
        Length of the warmup, ``>= 0``.
    total_steps : int
        Step at which the decay reaches ``eta_min``, ``> warmup_steps``.
    eta_min : float, default 0
        Final learning rate, finite and ``>= 0``.

    Examples
    --------
    >>> from rsft.schedules import WarmupCosine
    >>> s = WarmupCosine(1.0, warmup_steps=2, total_steps=6, eta_min=0.1)
    >>> [round(s(t), 6) for t in range(8)]
    [0.5, 1.0, 1.0, 0.868198, 0.55, 0.231802, 0.1, 0.1]
    """

    lr: float
    warmup_steps: int
    total_steps: int
    eta_min: float = 0.0
    _checks = (("lr", _rate), ("warmup_steps", _warmup_steps), ("total_steps", _steps),
               ("eta_min", _rate))

    def __post_init__(self):
        super().__post_init__()
        if self.total_steps <= self.warmup_steps:
            raise ValueError(f"total_steps must be > warmup_steps, got total_steps="
                             f"{self.total_steps} and warmup_steps={self.warmup_steps}")

    def __call__(self, t):
        """Learning rate after ``t`` steps."""
        t = _step_index(t)
        if t < self.warmup_steps:
            return self.lr * ((t + 1) / self.warmup_steps)
        if t >= self.total_steps:
            return self.eta_min
        c = 0.5 * (1.0 + math.cos(math.pi * (t - self.warmup_steps)
                                  / (self.total_steps - self.warmup_steps)))
        return self.eta_min + (self.lr - self.eta_min) * c
