"""Backend selection: ``"cython"`` (compiled, default when built) or ``"numpy"`` (reference).

The process default comes from ``RSFT_BACKEND`` at import, else ``"cython"`` when the extension
imports, else ``"numpy"`` with one warning. An ``RSFT_BACKEND`` that names no backend, or
``"cython"`` without the extension, gives a ``RuntimeWarning`` and the default instead of an
import error. ``set_backend`` changes the process default; every public object also takes
``backend=`` for one call site. The default is the only global state of rsft's own;
:func:`short_gil_waits` changes the interpreter's switch interval for the span of a call and
restores it.
"""

import contextlib
import importlib
import os
import sys
import warnings

from . import _reference

#: the variables that choose how OpenMP threads wait between parallel passes (libgomp's and
#: LLVM's); when one is set, rsft leaves the choice to it
_WAIT_POLICY_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")


def _import_core():
    """Import the extension; unless the environment chooses a wait policy, with
    ``OMP_WAIT_POLICY=passive`` set while the OpenMP runtime loads, then removed again.

    Between two parallel passes OpenMP threads spin by default (libgomp: up to ~300000 polls).
    When another process occupies a core, a spinning worker there uses up its share of that
    core and is descheduled when the next pass starts, and the pass waits for it: ``n_threads=2``
    was up to 46x slower than one thread. Passive workers sleep and, woken, run at once. The
    OpenMP runtime reads the variable once, when it is loaded, so the environment is restored
    right after (child processes do not inherit it). It only has an effect if this import loads
    the runtime; another library that shares the same runtime file later waits passively too.
    Returns ``(module or None, import error or None, the policy in effect as a string)``."""
    chosen = [f"{k}={os.environ[k]}" for k in _WAIT_POLICY_VARIABLES if os.environ.get(k)]
    previous = os.environ.get("OMP_WAIT_POLICY")   # None, or an empty value that chose nothing
    if not chosen:
        os.environ["OMP_WAIT_POLICY"] = "passive"
    try:
        # imported by name: ``from . import _core`` would report a missing extension as
        # "cannot import name '_core' from partially initialized module 'rsft' (... circular
        # import)"
        core, error = importlib.import_module("._core", __package__), None
    except ImportError as exc:  # pragma: no cover - exercised only without a build
        core, error = None, exc
    finally:
        if not chosen and previous is None:
            del os.environ["OMP_WAIT_POLICY"]
        elif not chosen:
            os.environ["OMP_WAIT_POLICY"] = previous
    policy = ("from the environment: " + ", ".join(chosen)) if chosen else (
        "OMP_WAIT_POLICY=passive (set by rsft while its OpenMP runtime loaded)")
    return core, error, policy


_core, _IMPORT_ERROR, OPENMP_WAIT_POLICY = _import_core()

BACKENDS = ("cython", "numpy")
_modules = {"numpy": _reference}
if _core is not None:
    _modules["cython"] = _core


def available_backends():
    """Names of the backends usable in this process, compiled first."""
    return tuple(b for b in BACKENDS if b in _modules)


def _not_built():
    """Why the ``"cython"`` backend is missing, for the messages."""
    return (f"rsft's compiled extension rsft._core is not built "
            f"({type(_IMPORT_ERROR).__name__}: {_IMPORT_ERROR})")


def _check_name(name):
    if not isinstance(name, str) or name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; valid backends are 'cython' and 'numpy'")
    if name not in _modules:
        raise ValueError(
            f"backend 'cython' is not available: {_not_built()}; rebuild rsft (pip install .) "
            "or use backend='numpy'")
    return name


def _initial():
    default = "cython" if _core is not None else "numpy"
    env = os.environ.get("RSFT_BACKEND")
    if env:
        try:
            return _check_name(env.strip().lower())
        except ValueError as exc:  # a bad environment must not make ``import rsft`` fail
            warnings.warn(f"RSFT_BACKEND={env!r} ignored: {exc}; using the default "
                          f"{default!r}", RuntimeWarning, stacklevel=3)
            return default
    if _core is None:
        warnings.warn(f"{_not_built()}; using the pure numpy backend, which gives the same "
                      "results more slowly", RuntimeWarning, stacklevel=3)
    return default


_default = _initial()


def set_backend(name):
    """Set the process-wide default backend (``"cython"`` or ``"numpy"``)."""
    global _default
    _default = _check_name(name)


def get_backend():
    """The process-wide default backend name."""
    return _default


def resolve(backend=None):
    """Backend name for a call: ``backend`` if given, else the process default."""
    return _default if backend is None else _check_name(backend)


def kernels(*names):
    """The kernel module of the first of ``names`` that is not None, else of the process default.

    ``kernels()`` is the default's, ``kernels(obj.backend)`` an object's (its own or the
    default), ``kernels(backend, obj.backend)`` one call's choice before the object's, and
    ``kernels("numpy")`` the reference's. The name used is checked (``ValueError`` if unknown).
    """
    for name in names:
        if name is not None:
            return _modules[_check_name(name)]
    return _modules[_default]


#: the interpreter's switch interval (seconds) while a compiled call that releases the GIL runs
#: inside :func:`short_gil_waits`
SHORT_SWITCH_INTERVAL = 1e-4


@contextlib.contextmanager
def short_gil_waits():
    """Lower the interpreter's switch interval to SHORT_SWITCH_INTERVAL for the ``with`` block.

    A compiled kernel releases the GIL for its pass; taking it back, the calling thread waits
    while another Python thread runs, and CPython makes that thread give the GIL up only after
    the waiter has waited a whole switch interval (5 ms by default). An optimizer step of a few
    milliseconds beside a busy Python thread then took 3.5x as long as alone. With 0.1 ms the
    wait is short, and the other thread loses only the short Python part of each call. The
    previous interval is restored on exit; a block entered while the interval is already that
    short (another thread inside one, or the user's own choice) leaves it alone."""
    previous = sys.getswitchinterval()
    if previous <= SHORT_SWITCH_INTERVAL:
        yield
        return
    sys.setswitchinterval(SHORT_SWITCH_INTERVAL)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)
