"""rsft.schedules: values against closed forms, bad arguments, and a schedule inside an optimizer."""
import math

import numpy as np
import pytest

from rsft import optim as O
from rsft.schedules import ConstantLR, CosineLR, InverseTimeLR, StepLR


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
])
def test_schedule_bad_arguments(bad):
    with pytest.raises(ValueError):
        bad()


def test_schedule_bad_t_and_bad_callable():
    with pytest.raises(ValueError, match="t >= 0"):
        StepLR(1.0, 2)(-1)
    p = np.zeros(2)
    opt = O.SGD(p, lr=lambda t: float("nan") if t == 1 else 0.1)
    opt.step(np.ones(2))
    with pytest.raises(ValueError, match="lr=nan at t=1"):
        opt.step(np.ones(2))
    assert opt.n_steps == 1 and np.all(p == -0.1)  # the failed step changed nothing
