"""The argument checks of the public API, each written once.

Every function takes the value and the name the caller knows it by, returns the value in the
form the caller stores (a Python ``float``, an ``int``, a ``Generator``, a dtype, an array) and
raises ``TypeError`` for a value of the wrong kind or ``ValueError`` for one out of range, with
a message that names the argument. The public modules import this module and call
``_validate.real(...)``, ``_validate.count(...)`` and so on; they keep only the checks that
belong to one class alone.
"""

import math
import numbers

import numpy as np

from . import _backend

#: the floating dtypes the kernels take (native byte order)
FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _is_bool(x):
    return isinstance(x, (bool, np.bool_))


# ---------------------------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------------------------

def _condition(lo, hi, lo_open, hi_open, finite):
    """The range part of a message: ``"in [0, 1)"``, ``"finite and > 0"``, ``"finite"``."""
    if lo is not None and hi is not None:
        return f"in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    parts = ["finite"] if finite else []
    if lo is not None:
        parts.append(f"{'>' if lo_open else '>='} {lo:g}")
    if hi is not None:
        parts.append(f"{'<' if hi_open else '<='} {hi:g}")
    return " and ".join(parts)


def real(x, name, *, lo=None, hi=None, lo_open=False, hi_open=False, finite=True,
         scalar_arrays=False, expected="a real number"):
    """``x`` as a Python float: a real number, checked against a range.

    Parameters
    ----------
    x : object
        A Python or numpy integer or float (bool is refused); with ``scalar_arrays``, a 0-d
        integer or float array counts as its scalar. Anything else raises ``TypeError``:
        ``"{name} must be {expected}, got {type} {x!r}"``.
    name : str
        The argument's name in the messages.
    lo, hi : float, optional
        Bounds, closed unless ``lo_open`` / ``hi_open``.
    finite : bool, default True
        NaN and +-inf are refused. With False, only NaN is (``"{name} must not be NaN"``) and
        infinite values pass the bounds check like any other.
    expected : str, default "a real number"
        What the ``TypeError`` says ``x`` must be.

    A value outside the range raises ``ValueError``: ``"{name} must be finite and > 0, got
    nan"``, ``"{name} must be in [0, 1), got 1.0"``.
    """
    if scalar_arrays and isinstance(x, np.ndarray) and x.ndim == 0 and x.dtype.kind in "iuf":
        x = x.item()
    if _is_bool(x) or not isinstance(x, numbers.Real):
        raise TypeError(f"{name} must be {expected}, got {type(x).__name__} {x!r}")
    try:
        v = float(x)
    except OverflowError:           # an integer beyond the float64 range (e.g. 10**400)
        raise ValueError(f"{name} must be a real number in the float64 range (magnitude below "
                         f"1.8e308), got an integer of {len(str(abs(int(x))))} digits") from None
    if math.isnan(v) and not finite:
        raise ValueError(f"{name} must not be NaN")
    ok = ((math.isfinite(v) or not finite)
          and (lo is None or (v > lo if lo_open else v >= lo))
          and (hi is None or (v < hi if hi_open else v <= hi)))
    if not ok:
        raise ValueError(
            f"{name} must be {_condition(lo, hi, lo_open, hi_open, finite)}, got {v}")
    return v


def rate_or_schedule(x, name):
    """A learning rate (finite, ``>= 0``, as a float) or a schedule (any callable ``t ->
    float``, returned as is; its values are checked where they are used)."""
    if callable(x) and not isinstance(x, numbers.Real):
        return x
    return real(x, name, lo=0.0, expected="a real number or a schedule (a callable t -> float)")


#: the range of a distribution's scale: its square and the reciprocal of its square stay normal
#: float64 numbers, so every log-density term is finite (1e-150 ** 2 = 1e-300)
SCALE_RANGE = (1e-150, 1e150)


def scale(x, name="scale"):
    """A distribution's scale (or rate) as a float in ``SCALE_RANGE``: ``TypeError`` for a
    non-real, ``ValueError`` naming the range outside it."""
    x = real(x, name, lo=0.0, lo_open=True)
    lo, hi = SCALE_RANGE
    if not lo <= x <= hi:
        raise ValueError(f"{name} must be in [{lo:g}, {hi:g}] (its square must stay a normal "
                         f"float64 number), got {x!r}")
    return x


def count(n, name="n", *, minimum=0, maximum=None):
    """``n`` as an int: a non-negative integer (Python or numpy; bool is refused), ``>= minimum``.

    ``TypeError`` ``"{name} must be a non-negative integer, got ..."`` for anything else;
    ``ValueError`` ``"{name} must be >= 0, got -1"`` for a negative value, then ``"{name} must
    be >= {minimum}, got ..."`` below a positive ``minimum``, and ``"{name} must be <=
    {maximum}, got ..."`` above a given ``maximum``.
    """
    if _is_bool(n) or not isinstance(n, numbers.Integral):
        raise TypeError(f"{name} must be a non-negative integer, got {type(n).__name__} {n!r}")
    n = int(n)
    if n < 0:
        raise ValueError(f"{name} must be >= 0, got {n}")
    if n < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {n}")
    if maximum is not None and n > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {n}")
    return n


def new_array(shape, dtype, what, fill=None):
    """``np.empty(shape, dtype)`` (or ``np.full`` with ``fill``) for a size the caller asked
    for, ``what`` naming it (e.g. ``"n = 10**30 samples"``): a size beyond what this machine can
    allocate is a ``MemoryError`` that says so, instead of numpy's "array is too big" or
    "Maximum allowed dimension exceeded" ValueError, which names no argument."""
    shape = tuple(int(d) for d in np.atleast_1d(np.asarray(shape, dtype=object)))
    n_bytes = math.prod(shape) * np.dtype(dtype).itemsize
    try:
        return np.empty(shape, dtype) if fill is None else np.full(shape, fill, dtype)
    except (ValueError, MemoryError):
        raise MemoryError(f"{what}: {n_bytes:.3g} bytes of {np.dtype(dtype).name}, more than "
                          "this machine can allocate") from None


#: the largest step count anywhere in rsft (an optimizer's counter, a state_dict's, a schedule's
#: parameters and arguments): a 64-bit counter with room to grow, and exact as a float64 ratio
MAX_STEPS = 2 ** 62

#: the largest ``n_threads`` accepted anywhere in rsft (a fixed limit, the same on every machine:
#: a typo such as ``n_threads=10**6`` is refused instead of asking the OS for that many threads)
MAX_THREADS = 256


def n_threads(n, name="n_threads"):
    """``n_threads`` as an int: an integer in ``[1, MAX_THREADS]`` (the one check of every
    ``n_threads`` in rsft). ``TypeError`` for a non-integer, ``ValueError`` out of range."""
    n = count(n, name, minimum=1)
    if n > MAX_THREADS:
        raise ValueError(f"{name} must be <= {MAX_THREADS}, got {n}")
    return n


def batch_size(b, name="batch_size"):
    """None (full batch) or a positive integer (as an int); anything else is a ``ValueError``."""
    if b is None:
        return None
    if _is_bool(b) or not isinstance(b, numbers.Integral) or b < 1:
        raise ValueError(f"{name} must be None or a positive integer, got {b!r}")
    return int(b)


def flag(x, name):
    """``x`` as a bool: only True or False (Python or numpy) pass; anything else ``TypeError``."""
    if not _is_bool(x):
        raise TypeError(f"{name} must be True or False, got {x!r}")
    return bool(x)


def optimizer_owns(optimizer, params):
    """``ValueError`` unless an optimizer that lists its parameters (``optimizer.params``, as
    every rsft optimizer does) holds exactly the arrays ``params`` (the same objects), so that
    its steps move them; an optimizer without ``params`` is not checked."""
    mine = getattr(optimizer, "params", None)
    if mine is None:
        return
    if len(mine) != len(params) or any(a is not b for a, b in zip(mine, params)):
        raise ValueError("the optimizer must be built over the model's own parameter arrays "
                         "(optimizer = rsft.optim.Adam(model.params, ...)); its steps would "
                         "not move these parameters")


# ---------------------------------------------------------------------------------------------
# Randomness
# ---------------------------------------------------------------------------------------------

def generator(rng):
    """Return a ``numpy.random.Generator`` for ``rng``.

    Accepts what ``numpy.random.default_rng`` accepts: None (fresh OS entropy), a non-negative
    int seed or a sequence of them (a list, tuple or 1-D integer array, as ``SeedSequence``
    takes), a ``SeedSequence``, a ``BitGenerator`` or a ``Generator`` (returned as is, so its
    state advances). Anything else raises TypeError; a negative seed ValueError.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (np.random.SeedSequence, np.random.BitGenerator)):
        return np.random.default_rng(rng)
    if isinstance(rng, numbers.Integral) and not _is_bool(rng):
        if rng < 0:
            raise ValueError(f"rng seed must be non-negative, got {rng}")
        return np.random.default_rng(int(rng))
    if isinstance(rng, (list, tuple, np.ndarray)):
        seeds = np.asarray(rng)
        if seeds.ndim == 1 and seeds.size and (seeds.dtype.kind in "iu" or (
                seeds.dtype == object and all(isinstance(v, numbers.Integral)
                                              and not _is_bool(v) for v in seeds))):
            if any(int(v) < 0 for v in seeds):
                raise ValueError(f"rng seeds must be non-negative, got {list(rng)!r}")
            return np.random.default_rng([int(v) for v in seeds])
    raise TypeError(
        "rng must be None, an int seed or a non-empty 1-D sequence of them, a "
        "numpy.random.SeedSequence, a BitGenerator or a numpy.random.Generator; got "
        f"{type(rng).__name__}")


# ---------------------------------------------------------------------------------------------
# Arrays and dtypes
# ---------------------------------------------------------------------------------------------

def float_dtype(dtype, name="dtype"):
    """``dtype`` as a numpy dtype, float32 or float64; anything else ``TypeError``."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    # "is None" first: a dtype compares equal to None (numpy reads None as float64)
    if dt is None or dt not in FLOATS:
        raise TypeError(f"{name} must be float32 or float64, got {dtype!r}")
    return dt


def real_array(a, name, *, bool_ok=True):
    """``np.asarray(a)``, refused with ``TypeError`` unless it holds integers or floats (and
    booleans, unless ``bool_ok`` is False); a ragged nested list is a ``ValueError`` naming
    ``name``."""
    try:
        arr = np.asarray(a)
    except ValueError as exc:      # numpy: "... inhomogeneous shape after 1 dimensions ..."
        raise ValueError(f"{name} must be a rectangular array of real numbers (equal-length "
                         f"rows), got a ragged sequence ({exc})") from None
    if arr.dtype.kind not in ("buif" if bool_ok else "iuf"):
        kinds = "" if bool_ok else " (int or float)"
        raise TypeError(f"{name} must be real numbers{kinds}, got dtype {arr.dtype}")
    return arr


def cast_floats(arr, dtype, name, remedy):
    """``arr`` (from :func:`real_array`) as ``dtype``, refusing finite values that the cast
    would turn into infinities (a float64 ``1e39`` into float32) with a ``ValueError`` naming
    the first one and ``remedy``; infinities and NaN pass through for the caller's checks."""
    if arr.dtype != dtype and arr.dtype.kind == "f" and arr.size:
        finite_max = np.finfo(dtype).max
        if np.finfo(arr.dtype).max > finite_max:
            with np.errstate(invalid="ignore"):
                too_big = np.isfinite(arr) & (np.abs(arr) > finite_max)
            if too_big.any():
                i = tuple(int(k) for k in np.unravel_index(int(np.argmax(too_big)), arr.shape))
                raise ValueError(
                    f"{name}{list(i)} = {float(arr[i])!r} overflows {np.dtype(dtype).name} "
                    f"(largest finite value {finite_max:.4g}): {remedy}")
    return arr.astype(dtype, copy=False)


def interval(pair, name):
    """A ``(low, high)`` pair of reals (infinite ends allowed, NaN not) with ``low < high``, as
    two floats; ``TypeError`` for anything but a pair of reals."""
    try:
        lo, hi = pair
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a pair (low, high) of real numbers, got {pair!r}"
                        ) from None
    lo = real(lo, f"{name}[0]", finite=False)
    hi = real(hi, f"{name}[1]", finite=False)
    if not lo < hi:
        raise ValueError(f"{name} must have low < high (an interval with more than one "
                         f"point), got ({lo}, {hi})")
    return lo, hi


def logpdf_values(logpdf, x, *, inf_ok=False):
    """Call a user's vectorised ``logpdf`` on a read-only view of the float64 array ``x`` and
    check what it returns: real numbers (``TypeError`` otherwise) of ``x``'s shape, no NaN and,
    unless ``inf_ok``, no ``+inf`` (``ValueError``: log-densities are finite or ``-inf``).
    Returns a C-contiguous float64 array; an exception ``logpdf`` raises propagates unchanged."""
    xv = x.view()
    xv.flags.writeable = False
    r = np.asarray(logpdf(xv))
    if r.dtype.kind not in "iuf":
        raise TypeError(f"target logpdf must return real numbers; it returned dtype {r.dtype}")
    if r.shape != x.shape:
        raise ValueError(
            f"target logpdf must return an array of shape {x.shape} for an input of shape "
            f"{x.shape} (it is called on whole arrays of points); it returned shape {r.shape}")
    r = np.ascontiguousarray(r, dtype=np.float64)
    bad = np.isnan(r) if inf_ok else np.isnan(r) | (r == np.inf)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"target logpdf returned {r[i]} at x = {x[i]!r}; log-densities "
                         "must be finite or -inf")
    return r


def labels(x, shape, name):
    """``x`` as a C-contiguous int64 array of the given shape: integer labels or keys (e.g.
    ``groups=`` or ``keys=`` of the acceptors; anything ``numpy.asarray`` converts).

    ``TypeError`` unless the dtype is a (signed or unsigned) integer (bool and float are
    refused, even with integral values); ``ValueError`` for another shape, or for unsigned
    values beyond int64.
    """
    shape = (shape,) if isinstance(shape, numbers.Integral) else tuple(shape)
    a = np.asarray(x)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name} must be integers (int64 labels, one per candidate), got "
                        f"dtype {a.dtype}")
    if a.shape != shape:
        raise ValueError(f"{name} must have the rewards' shape {shape}, got shape {a.shape}")
    if a.dtype.kind == "u" and a.size and a.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{name} must fit in int64, got {int(a.max())}")
    return np.ascontiguousarray(a, dtype=np.int64)


def array_list(arrays, name):
    """A numpy array or an iterable of them, as a new list (the arrays themselves, not copies).

    Only the container is checked here; the caller checks the items.
    """
    if isinstance(arrays, np.ndarray):
        return [arrays]
    try:
        return list(arrays)
    except TypeError:
        raise TypeError(f"{name} must be a numpy array or a list of numpy arrays, got "
                        f"{type(arrays).__name__}") from None


# ---------------------------------------------------------------------------------------------
# Backends
# ---------------------------------------------------------------------------------------------

def backend(name):
    """A ``backend=`` argument: None (the process default, looked up at call time) or a valid
    backend name, returned unchanged; an unknown or unavailable name raises ``ValueError``."""
    if name is not None:
        _backend.resolve(name)
    return name
