"""Every fenced ```python block of README.md runs as written, and what its comments state holds.

The README is not in the installed wheel: it is read from the checkout, one level above this
tests directory. A block starts with ``# Runs on its own.`` (a fresh namespace) or ``# Runs
after the block above.`` (the namespace of the block before it).
"""
import re
from pathlib import Path

import numpy as np

import rsft

README = Path(__file__).parent.parent / "README.md"
ON_ITS_OWN = "# Runs on its own."
AFTER = "# Runs after the block above."


def _blocks():
    if not README.is_file():
        return []
    return re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"),
                      flags=re.S | re.M)


def test_readme_is_there_and_has_python_blocks():
    assert README.is_file(), f"{README} is missing: run the tests from a checkout"
    blocks = _blocks()
    assert len(blocks) >= 4
    for i, code in enumerate(blocks):
        first = code.splitlines()[0]
        assert first in (ON_ITS_OWN, AFTER), f"block {i} starts with {first!r}"
    assert blocks[0].startswith(ON_ITS_OWN)


# What the comments of the blocks state, checked on the namespace of the block that defines
# the name on the left.
def _tour(ns):
    stats, x = ns["stats"], ns["x"]
    assert round(stats.acceptance_rate, 4) == 0.2582 and stats.max_log_ratio <= 0
    assert abs(stats.acceptance_rate - 1 / (2 * np.exp(2 / 3))) < 0.005
    assert (round(float(x.mean()), 2), round(float(x.std()), 2)) == (1.98, 1.00)


def _pieces(ns):
    model, X, y = ns["model"], ns["X"], ns["y"]
    assert [p.shape for p in model.params] == [(1,), (1,)]
    assert model.params[0] is model.coef and model.params[1] is model.intercept
    sol = np.linalg.lstsq(np.c_[np.ones(len(y)), X], y, rcond=None)[0]
    got = np.array([model.intercept[0], model.coef[0]])
    assert np.abs(got - sol).max() < 1e-6
    assert tuple(got.round(3)) == (3.552, 1.929)
    assert rsft.MSE()(np.array([1.0, 2.0]), np.array([1.0, 0.0])) == 2.0
    assert not ns["mask"][ns["rewards"] == -np.inf].any()


def _loop(ns):
    h, target = ns["history"], ns["target"]
    assert len(h) == 15
    assert (round(float(h["expected_reward"][-1]), 3), round(target["expected_reward"], 3)) == (
        1.073, 1.075)
    assert (round(float(h["kl"][-1]), 3), round(target["kl"], 3)) == (0.730, 0.729)


def _filtering(ns):
    res, st = ns["res"], ns["st"]
    assert res.index.tolist() == [0, 1, 5, 6, 7, 11]
    assert st.label.tolist() == [4, 9, 17]
    assert st.n_valid.tolist() == [3, 3, 2] and st.n_duplicates.tolist() == [0, 1, 1]
    assert st.n_accepted.tolist() == [2, 2, 2] and not st.short.any()
    assert res.summary()["acceptance_rate"] == 0.75
    assert round(ns["baseline"].summary()["mean_reward_accepted"], 3) == 0.45
    assert round(res.summary()["mean_reward_accepted"], 3) == 0.667
    kept = ns["rising"].accept(ns["reward"], round=3, groups=ns["prompt_id"],
                               keys=ns["text_hash"])
    assert kept.group_stats.n_accepted.tolist() == [1, 1, 1]


def _backend(ns):
    assert rsft.get_backend() == "numpy"


def _blocked(ns):
    x = ns["x"]
    assert x.shape == (200_000,) and np.array_equal(x, ns["same"])
    assert np.array_equal(x[:50_000], ns["first_block"])


def _tour_callable(ns):
    log_M, at = ns["log_M"], ns["at"]
    exact = np.log(2) + 2 / 3 + 0.5 * np.log(2 * np.pi)
    assert (round(log_M, 5), round(at, 5)) == (2.27876, 2.66667)
    assert exact <= log_M <= exact + 1e-6 * (1 + exact) + 1e-12


def _log_concave(ns):
    lcs, st, g = ns["lcs"], ns["st"], ns["g"]
    assert lcs.efficiency >= 0.99 and g.efficiency >= 0.99
    assert st.n_evaluated / st.n_accepted < 0.02 and 100 <= lcs.n_pieces <= 200
    assert lcs.squeeze_area <= 2 * 0.9064024770554771 <= lcs.hat_area   # 2 Gamma(5/4)
    assert round(float(np.mean(ns["x"] ** 4)), 2) == 0.25
    assert round(float(ns["y"].mean()), 2) == 3.00


CHECKS = {"stats": _tour, "log_M": _tour_callable, "model": _pieces, "trainer": _loop,
          "q": _backend, "lcs": _log_concave, "first_block": _blocked, "baseline": _filtering}


def test_readme_python_blocks_run():
    blocks = _blocks()
    assert blocks, f"no ```python blocks found in {README}"
    default = rsft.get_backend()
    checked = set()
    ns = {}
    try:
        for i, code in enumerate(blocks):
            if code.startswith(ON_ITS_OWN):
                ns = {"__name__": f"readme_block_{i}"}
            exec(compile(code, f"{README}, python block {i}", "exec"), ns)
            for name, check in CHECKS.items():
                if name in ns and name not in checked:
                    check(ns)
                    checked.add(name)
    finally:
        rsft.set_backend(default)
    assert checked == set(CHECKS), f"no block defines {set(CHECKS) - checked}"
