"""Backend selection: ``"cython"`` (compiled, default when built) or ``"numpy"`` (reference).

The process default comes from ``RSFT_BACKEND`` at import, else ``"cython"`` when the extension
imports, else ``"numpy"`` with one warning. An ``RSFT_BACKEND`` that names no backend, or
``"cython"`` without the extension, gives a ``RuntimeWarning`` and the default instead of an
import error. ``set_backend`` changes the process default; every public object also takes
``backend=`` for one call site. The default is the only global state.
"""

import importlib
import os
import warnings

from . import _reference

try:
    # imported by name: ``from . import _core`` would report a missing extension as "cannot
    # import name '_core' from partially initialized module 'rsft' (... circular import)"
    _core = importlib.import_module("._core", __package__)
except ImportError as exc:  # pragma: no cover - exercised only without a build
    _core = None
    _IMPORT_ERROR = exc
else:
    _IMPORT_ERROR = None

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
