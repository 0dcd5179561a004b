"""rsft.schedules: values against closed forms, bad arguments, and a schedule inside an optimizer."""
import math

import numpy as np
import pytest

from rsft import optim as O
import rsft
from rsft.schedules import (ConstantLR, CosineLR, InverseTimeLR, LinearWarmup, StepLR,
                            WarmupCosine)


def test_schedule_values():
    assert [ConstantLR(0.3)(t) for t in (0, 5, 10 ** 9)] == [0.3, 0.3, 0.3]
    s = StepLR(1.0, step_size=3, gamma=0.5)
    assert [s(t) for t in range(7)] == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]
    c = CosineLR(1.0, t_max=4, eta_min=0.2)
    assert c(0) == 1.0 and c(4) == 0.2 and c(100) == 0.2
    assert c(2) == pytest.approx(0.6, rel=1e-15)
    assert c(1) == pytest.approx(0.2 + 0.8 * (1 + math.cos(math.pi / 4)) / 2, rel=1e-15)
    it = InverseTimeLR(0.5, k=0.25)
    assert [it(t) for t in (0, 4, 12)] == [0.5, 0.25, 0.125]
    assert StepLR(1.0, 2) == StepLR(1.0, 2)  # value objects


@pytest.mark.parametrize("bad", [
    lambda: ConstantLR(-1.0), lambda: ConstantLR(float("nan")), lambda: StepLR(1.0, 0),
    lambda: StepLR(1.0, 2, gamma=1.5), lambda: CosineLR(1.0, 0), lambda: InverseTimeLR(1.0, -1),
    lambda: CosineLR(1.0, 10, eta_min=-0.1),
    lambda: LinearWarmup(-0.1, 10), lambda: LinearWarmup(0.1, -1),
    lambda: WarmupCosine(-1.0, 10, 100), lambda: WarmupCosine(1.0, -1, 100),
    lambda: WarmupCosine(1.0, 10, 10), lambda: WarmupCosine(1.0, 0, 0),
    lambda: WarmupCosine(1.0, 10, 100, eta_min=float("nan")),
])
def test_schedule_bad_arguments(bad):
    with pytest.raises(ValueError):
        bad()


def test_schedule_bad_t_and_bad_callable():
    with pytest.raises(ValueError, match=r"t in \[0, 2\*\*62\]"):
        StepLR(1.0, 2)(-1)
    p = np.zeros(2)
    opt = O.SGD(p, lr=lambda t: float("nan") if t == 1 else 0.1)
    opt.step(np.ones(2))
    with pytest.raises(ValueError, match="lr=nan at t=1"):
        opt.step(np.ones(2))
    assert opt.n_steps == 1 and np.all(p == -0.1)  # the failed step changed nothing


def test_linear_warmup_closed_form():
    """t < W: schedule(t) * ((t + 1) / W); then schedule(t), evaluated at the same t."""
    w = LinearWarmup(0.2, warmup_steps=5)
    assert w.schedule == ConstantLR(0.2)     # a float is stored as a ConstantLR
    assert [w(t) for t in range(7)] == [0.2 * ((t + 1) / 5) for t in range(5)] + [0.2, 0.2]
    inner = CosineLR(1.0, t_max=10, eta_min=0.1)
    w = LinearWarmup(inner, 4)
    for t in range(15):
        expected = inner(t) * ((t + 1) / 4) if t < 4 else inner(t)
        assert w(t) == pytest.approx(expected, rel=1e-15)
    assert [LinearWarmup(0.3, 0)(t) for t in (0, 3)] == [0.3, 0.3]       # no warmup
    assert LinearWarmup(0.1, 3) == LinearWarmup(ConstantLR(0.1), 3)    # value objects


def test_linear_warmup_is_torch_linear_lr():
    """torch's LinearLR(start_factor=1/W, total_iters=W-1), closed form from its docs:
    factor(t) = start + (1 - start) * min(t, total_iters) / total_iters."""
    for warmup in (2, 3, 10):
        start = 1 / warmup
        w = LinearWarmup(0.5, warmup)
        for t in range(warmup + 3):
            factor = start + (1 - start) * min(t, warmup - 1) / (warmup - 1)
            assert w(t) == pytest.approx(0.5 * factor, rel=1e-14)


def test_linear_warmup_of_a_callable_and_its_checks():
    w = LinearWarmup(lambda t: 1.0 / (t + 1), 2)
    assert [w(t) for t in range(3)] == [0.5, 0.5, 1.0 / 3]
    with pytest.raises(ValueError, match=r"t in \[0, 2\*\*62\]"):
        w(-1)
    with pytest.raises(ValueError, match=r"warmed-up schedule's value \(at t=0\)"):
        LinearWarmup(lambda t: float("nan"), 2)(0)
    with pytest.raises(TypeError, match="schedule must be a real number or a schedule"):
        LinearWarmup("0.1", 2)


def test_warmup_cosine_closed_form():
    lr, warmup, total, eta_min = 0.3, 4, 20, 0.01
    s = WarmupCosine(lr, warmup, total, eta_min)
    for t in range(total + 5):
        if t < warmup:
            expected = lr * ((t + 1) / warmup)
        elif t <= total:
            progress = (t - warmup) / (total - warmup)
            expected = eta_min + (lr - eta_min) * (1 + math.cos(math.pi * progress)) / 2
        else:
            expected = eta_min
        assert s(t) == pytest.approx(expected, rel=1e-14, abs=1e-17), t
    assert s(warmup - 1) == s(warmup) == lr and s(total) == eta_min
    # no warmup: CosineLR; the warmup part is LinearWarmup's
    cos = CosineLR(lr, 16, eta_min)
    assert [WarmupCosine(lr, 0, 16, eta_min)(t) for t in range(20)] == [cos(t) for t in range(20)]
    assert [s(t) for t in range(warmup)] == [LinearWarmup(lr, warmup)(t) for t in range(warmup)]


def test_warmup_schedules_drive_an_optimizer(backend):
    """SGD with g = 1: p after n steps is minus the sum of the schedule's first n values."""
    for schedule in (LinearWarmup(CosineLR(0.5, 8), 3), WarmupCosine(0.5, 3, 8, 0.05)):
        p = np.zeros(1)
        opt = O.SGD(p, lr=schedule, backend=backend)
        for _ in range(10):
            opt.step(np.ones(1))
        assert p[0] == pytest.approx(-sum(schedule(t) for t in range(10)), rel=1e-14)
    assert rsft.LinearWarmup is LinearWarmup and rsft.WarmupCosine is WarmupCosine
