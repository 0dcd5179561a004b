"""Learning-rate schedules: small callables ``schedule(t) -> float`` accepted wherever an optimizer
takes ``lr``.

``t`` is the number of optimizer steps already taken (0 for the first step), so
``InverseTimeLR(0.1, k=0.5)`` gives the first step ``lr = 0.1`` and the second ``0.1 / 1.5``.
Every schedule is an immutable value object: it compares equal to another with the same
parameters and is stored as is in ``Optimizer.state_dict()``.
"""

import math
import numbers
from dataclasses import dataclass

from . import _validate

__all__ = ["LRSchedule", "ConstantLR", "StepLR", "CosineLR", "InverseTimeLR"]


def _rate(x, name):
    """A learning rate or decay rate: finite and >= 0."""
    return _validate.real(x, name, lo=0.0)


def _steps(x, name):
    """A number of steps: an integer >= 1."""
    return _validate.count(x, name, minimum=1)


def _fraction(x, name):
    """A factor in [0, 1]."""
    return _validate.real(x, name, lo=0.0, hi=1.0)


def _step_index(t):
    """The step count a schedule is evaluated at (an integer >= 0; anything else ValueError)."""
    if isinstance(t, bool) or not isinstance(t, numbers.Integral) or t < 0:
        raise ValueError(f"a schedule is evaluated at a step count t >= 0 (an integer), got {t!r}")
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
    ``k`` (the decay rate per step) finite and ``>= 0``."""

    lr: float
    k: float
    _checks = (("lr", _rate), ("k", _rate))

    def __call__(self, t):
        """Learning rate after ``t`` steps."""
        return self.lr / (1.0 + self.k * _step_index(t))
