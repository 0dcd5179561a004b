"""rsft._backend in fresh processes: a bad RSFT_BACKEND and a missing compiled extension give
a RuntimeWarning that says what is wrong, and `import rsft` still works."""
import os
import subprocess
import sys

import numpy as np
import pytest

import rsft

# Hides the compiled extension as a build without it would: importing rsft._core fails.
HIDE_CORE = """
import sys
class HideCore:
    def find_spec(self, name, path=None, target=None):
        if name == "rsft._core":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, HideCore())
"""
REPORT = """
import warnings
warnings.simplefilter("always")
import rsft
print(rsft.get_backend(), ",".join(rsft.available_backends()))
"""


def _run(code, backend_env=None):
    env = {k: v for k, v in os.environ.items() if k != "RSFT_BACKEND"}
    if backend_env is not None:
        env["RSFT_BACKEND"] = backend_env
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip(), p.stderr


@pytest.mark.parametrize("value", ["bogus", "CUDA", "0"])
def test_unknown_rsft_backend_warns_and_uses_the_default(value):
    out, err = _run(REPORT, value)
    default = rsft.available_backends()[0]
    assert out.split()[0] == default
    assert err.count("RuntimeWarning") == 1, err
    assert f"RSFT_BACKEND={value!r} ignored: unknown backend {value.lower()!r}" in err
    assert "valid backends are 'cython' and 'numpy'" in err
    assert f"using the default {default!r}" in err


def test_rsft_backend_names_are_case_and_space_insensitive():
    out, err = _run(REPORT, " NumPy ")
    assert out.split()[0] == "numpy" and "Warning" not in err


@pytest.mark.parametrize("how", ["import hook", "sys.modules"])
def test_without_the_extension_the_warning_says_it_is_not_built(how):
    hide = HIDE_CORE if how == "import hook" else "import sys; sys.modules['rsft._core'] = None"
    out, err = _run(hide + REPORT)
    assert out == "numpy numpy"
    assert err.count("RuntimeWarning") == 1, err
    assert "rsft's compiled extension rsft._core is not built (ModuleNotFoundError: " in err
    assert "using the pure numpy backend" in err
    assert "circular" not in err and "partially initialized" not in err


def test_without_the_extension_rsft_backend_cython_warns_and_uses_numpy():
    out, err = _run(HIDE_CORE + REPORT, "cython")
    assert out == "numpy numpy"
    assert err.count("RuntimeWarning") == 1, err
    assert "RSFT_BACKEND='cython' ignored: backend 'cython' is not available" in err
    assert "rsft._core is not built" in err and "using the default 'numpy'" in err
    assert "circular" not in err


def test_without_the_extension_asking_for_cython_is_a_clear_error():
    code = HIDE_CORE + """
import warnings
warnings.simplefilter("ignore")
import rsft
try:
    rsft.set_backend("cython")
except ValueError as e:
    print(e)
"""
    out, _ = _run(code)
    assert out.startswith("backend 'cython' is not available: rsft's compiled extension "
                          "rsft._core is not built (ModuleNotFoundError: ")
    assert out.endswith("rebuild rsft (pip install .) or use backend='numpy'")


WAIT_POLICY = """
import os
import rsft
from rsft import _backend
print(os.environ.get("OMP_WAIT_POLICY"), "|", _backend.OPENMP_WAIT_POLICY)
"""


@pytest.mark.parametrize("env, expected", [
    ({}, "None | OMP_WAIT_POLICY=passive (set by rsft"),
    ({"OMP_WAIT_POLICY": ""}, " | OMP_WAIT_POLICY=passive (set by rsft"),
    ({"OMP_WAIT_POLICY": "active"}, "active | from the environment: OMP_WAIT_POLICY=active"),
    ({"GOMP_SPINCOUNT": "1000"}, "None | from the environment: GOMP_SPINCOUNT=1000"),
], ids=["unset", "empty", "user-active", "user-spincount"])
def test_openmp_wait_policy_is_passive_unless_chosen_and_the_environment_is_restored(env,
                                                                                     expected):
    """rsft sets OMP_WAIT_POLICY=passive only while its OpenMP runtime loads, leaves the
    environment as it found it, and never overrides a policy the user chose."""
    base = {k: v for k, v in os.environ.items()
            if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")}
    out = subprocess.run([sys.executable, "-c", WAIT_POLICY], env={**base, **env},
                         capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.strip().startswith(expected.strip()), out


def test_short_gil_waits_lowers_the_switch_interval_and_restores_it():
    from rsft import _backend
    default = sys.getswitchinterval()
    try:
        sys.setswitchinterval(0.005)
        with _backend.short_gil_waits():
            assert sys.getswitchinterval() == pytest.approx(_backend.SHORT_SWITCH_INTERVAL)
            with _backend.short_gil_waits():     # nested (or another thread inside one)
                assert sys.getswitchinterval() == pytest.approx(_backend.SHORT_SWITCH_INTERVAL)
            assert sys.getswitchinterval() == pytest.approx(_backend.SHORT_SWITCH_INTERVAL)
        assert sys.getswitchinterval() == pytest.approx(0.005)
        with pytest.raises(KeyError):            # restored when the block raises, too
            with _backend.short_gil_waits():
                raise KeyError
        assert sys.getswitchinterval() == pytest.approx(0.005)
        sys.setswitchinterval(1e-5)              # the user's own shorter choice is kept
        with _backend.short_gil_waits():
            assert sys.getswitchinterval() == pytest.approx(1e-5)
        assert sys.getswitchinterval() == pytest.approx(1e-5)
    finally:
        sys.setswitchinterval(default)


@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_optimizer_kernels_run_with_short_gil_waits(backend, monkeypatch):
    """Every kernel call of a step runs inside short_gil_waits (the GIL comes back within
    0.1 ms beside a busy Python thread); the interval is the caller's again after the step."""
    from rsft import _backend
    seen = []

    class Recording:
        def __init__(self, kern):
            self.kern = kern

        def __getattr__(self, name):
            def call(*args):
                seen.append(sys.getswitchinterval())
                return getattr(self.kern, name)(*args)
            return call

    real = _backend.kernels
    monkeypatch.setattr(_backend, "kernels", lambda *names: Recording(real(*names)))
    default = sys.getswitchinterval()
    opt = rsft.Adam([np.zeros(3), np.zeros((2, 2))], lr=0.1, backend=backend)
    opt.step([np.ones(3), np.ones((2, 2))])
    assert seen == [pytest.approx(_backend.SHORT_SWITCH_INTERVAL)] * 2
    assert sys.getswitchinterval() == default
