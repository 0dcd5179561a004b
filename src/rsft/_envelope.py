"""Exact envelopes for built-in (target, proposal) pairs, and their log-ratio programs.

For one target component and a proposal, ``g(x) = log p(x) - log q(x)`` is packed into one
program row (:mod:`rsft._program`). ``sup g`` is found exactly: on each interval between the
support ends and the kinks of ``|x - m|`` terms, ``g`` is smooth and ``g'`` is a rational
function, so its stationary points are the real roots of one polynomial (the numerator of ``g'``
over the common denominator). The supremum is the largest of ``g`` at those roots, at the finite
interval ends and kinks, and the limits at infinite ends; a limit that diverges to ``+inf``
proves that no finite envelope exists. ``g`` is evaluated by the reference kernel's row
evaluation (:func:`rsft._reference.sampler.eval_row_on_support`), the formula the samplers
use. A margin of ``1e-10 * (1 + |sup|)`` covers rounding. For a mixture target
``p = sum_k w_k p_k`` the bound ``M = sum_k w_k M_k`` is used.

For a callable target, :func:`find_log_M` gives a numerical bound instead (a dense scan and a
local zoom): no proof, which is why the samplers' envelope watch stays on.
"""

import math

import numpy as np
from numpy.polynomial import polynomial as P

from . import _program
from ._program import Row
from ._reference.sampler import eval_row_on_support
from .errors import NoEnvelopeError

_MARGIN = 1e-10


def check_support(target, proposal):
    """Raise NoEnvelopeError if the proposal cannot reach all of the target's support."""
    tlo, thi = target.support
    qlo, qhi = proposal.support
    if tlo < qlo or thi > qhi:
        raise NoEnvelopeError(
            f"no finite envelope: the target {target!r} has support [{tlo}, {thi}] but the "
            f"proposal {proposal!r} only proposes in [{qlo}, {qhi}]; choose a proposal whose "
            "support contains the target's")


def _row_scale(row):
    """The length over which ``g`` of ``row`` varies (its narrowest quadratic or Student-t term),
    rounded to a power of two; 1 when it has neither.

    The stationary polynomial is written in ``z = (x - center) / h`` with this ``h``: in ``y``
    its coefficients hold ``1/s^2`` and ``1/s^4`` for a scale ``s``, which overflow (or
    underflow) for ``s`` far from 1 (``Normal(0, 1e-100)`` over ``StudentT(1, 0, 1e-100)``
    lost its roots and gave ``log M`` at ``x = 0`` instead of ``x = +-s``). A power of two keeps
    every substitution and normalisation below exact, so ordinary scales give the same bits as
    the plain polynomial in ``y``.
    """
    lengths = [1.0 / math.sqrt(2.0 * abs(row[Row.QUAD_COEF]))] if row[Row.QUAD_COEF] else []
    lengths += [1.0 / math.sqrt(row[kk]) for coef, _, kk in _program.TLOG_SLOTS if row[coef]]
    lengths = [h for h in lengths if 0.0 < h < math.inf]
    return math.ldexp(1.0, round(math.log2(min(lengths)))) if lengths else 1.0


def _stationary_poly(row, abs_signs, h):
    """The numerator of ``g'(x)`` over the common denominator, on an interval with fixed |.|
    signs, as a polynomial in ``z = (x - center) / h`` (``h`` a power of two, see
    :func:`_row_scale`), times a positive power of two: it has the sign and the roots of
    ``g'``."""
    powers = h ** np.arange(3)             # y = h z: coefficient k gains h**k (degree <= 2)
    parts = []
    for num, den in _program.derivative_parts(row, abs_signs):
        num, den = num * powers[:num.shape[0]], den * powers[:den.shape[0]]
        # num_i / den_i is unchanged by a common factor; 2**-e keeps den_i's largest
        # coefficient in [0.5, 1), so the products below neither overflow nor underflow
        e = math.frexp(float(np.max(np.abs(den))))[1]
        parts.append((np.ldexp(num, -e), np.ldexp(den, -e)))
    total = np.array([0.0])
    for i, (num, _) in enumerate(parts):
        term = num
        for j, (_, den) in enumerate(parts):
            if j != i:
                term = P.polymul(term, den)
        total = P.polyadd(total, term)
    return P.polytrim(total, tol=0.0)


def _all_roots(poly):
    """Every complex root of ``poly`` (coefficients low to high, degree >= 1, nonzero leading
    coefficient).

    ``polyroots`` divides by the leading coefficient, which overflows when the coefficients
    span more than the double range (``Normal(-1e6, 1e-150)`` over ``StudentT(2, 0, 3)``:
    ``1e10`` next to ``1e-312``). Then the roots are found in ``w = z / 2**e``, with ``2**e``
    near the largest root's magnitude bound ``max_k |c_k / c_n|^(1 / (n - k))``: the monic
    polynomial in ``w`` has coefficients of at most about 1, computed from the exponents (no
    overflow), and ``z = 2**e w``. Roots far smaller than the largest lose their digits there;
    the caller's Newton polish on ``poly`` restores them.
    """
    cn = poly[-1]
    with np.errstate(all="ignore"):
        if np.all(np.isfinite(poly / cn)):
            return P.polyroots(poly)
    n = poly.shape[0] - 1
    mn, en = math.frexp(cn)
    bounds = [(math.frexp(c)[1] - en) / (n - k) for k, c in enumerate(poly[:-1]) if c != 0.0]
    e = round(max(bounds))
    monic = [math.ldexp(math.frexp(c)[0] / mn, math.frexp(c)[1] - en + e * (k - n))
             for k, c in enumerate(poly[:-1])] + [1.0]
    w = P.polyroots(np.array(monic))
    return np.ldexp(w.real, e) + 1j * np.ldexp(w.imag, e)


def _real_roots(poly, lo, hi):
    """Real roots of ``poly`` (coefficients low to high) in the open interval (lo, hi)."""
    if poly.shape[0] <= 1:
        return []
    roots = _all_roots(poly)
    dpoly = P.polyder(poly)
    out = []
    for r in roots:
        if abs(r.imag) > 1e-6 * (1.0 + abs(r.real)):
            continue
        y = r.real
        with np.errstate(all="ignore"):         # far roots: their values may overflow
            for _ in range(3):  # Newton polish
                d = P.polyval(y, dpoly)
                if d == 0.0 or not math.isfinite(d):
                    break
                y_new = y - P.polyval(y, poly) / d
                if not math.isfinite(y_new):
                    break
                y = y_new
        if lo < y < hi:
            out.append(y)
    return out


def _candidates(row):
    """Points where the supremum of ``g`` over the finite part of the support can lie."""
    lo, hi = row[Row.SUPPORT_LOW], row[Row.SUPPORT_HIGH]
    v = row[Row.CENTER]
    ends = [p for p in (lo, hi) if math.isfinite(p)]
    if row[Row.QUADRATIC_ONLY]:   # closed form: the clipped vertex, or the finite ends
        if row[Row.QUAD_COEF] < 0.0:
            return ends + [min(max(v - row[Row.LIN_COEF] / (2.0 * row[Row.QUAD_COEF]), lo), hi)]
        return ends or [v]        # (constant on the whole line when there is no end)
    cands = []
    h = _row_scale(row)
    points = [lo] + [k for k in _program.kinks(row) if lo < k < hi] + [hi]
    for a, b in zip(points[:-1], points[1:]):
        if math.isfinite(a) and math.isfinite(b):
            mid = 0.5 * a + 0.5 * b
        elif math.isfinite(a):
            mid = a + 1.0 + abs(a)
        elif math.isfinite(b):
            mid = b - 1.0 - abs(b)
        else:
            mid = v
        signs = [1.0 if mid > row[at] else -1.0 for _, at in _program.ABS_SLOTS]
        poly = _stationary_poly(row, signs, h)
        cands += [v + h * z for z in _real_roots(poly, (a - v) / h, (b - v) / h)]
        if poly.shape[0] == 1 and poly[0] == 0.0:   # g constant on (a, b)
            cands.append(mid)
        cands += [p for p in (a, b) if math.isfinite(p)]
    return cands


def sup_row(row, target, proposal):
    """Exact supremum of the program row ``row`` over its support (NoEnvelopeError if none)."""
    best = -math.inf
    for side in (1.0, -1.0):
        end = row[Row.SUPPORT_HIGH] if side > 0 else row[Row.SUPPORT_LOW]
        res = _program.tail(row, side) if math.isinf(end) else None
        if res is None:
            continue
        if res[0] == "inf":
            raise NoEnvelopeError(
                f"no finite envelope: for target {target!r} and proposal {proposal!r}, log p(x) "
                f"- log q(x) grows without bound as x -> {'+' if side > 0 else '-'}inf (like "
                f"{res[1]}), so p(x)/q(x) is unbounded and no M satisfies p <= M q. Use a "
                "proposal with heavier tails (e.g. a wider Normal, a Laplace or a StudentT) "
                "centred near the target")
        best = max(best, res[1])
    for x in _candidates(row):      # points of the support, one at a time (scalars)
        g = float(eval_row_on_support(row, x))
        if g == math.inf:
            raise NoEnvelopeError(
                f"no finite envelope: for target {target!r} and proposal {proposal!r}, "
                f"p(x)/q(x) is infinite at x = {x} (the target density is unbounded there)")
        best = max(best, g)
    if not math.isfinite(best):
        raise NoEnvelopeError(
            f"internal: could not bound log p - log q for {target!r} / {proposal!r}")
    return best


def builtin_program(target, proposal, log_M=None):
    """Program rows for a built-in pair and the log envelope used.

    Returns ``(prog, log_M, exact_log_M)``: ``prog`` has ``log w_k - log_M`` folded in;
    ``exact_log_M`` is the computed envelope (with its rounding margin); when ``log_M`` is
    given, the pair is still analysed (``exact_log_M`` is None if it has no finite envelope).
    """
    rows, sups, logw = [], [], []
    neg_q = proposal._terms().negated()
    for comp, w in target._components():
        row = _program.pack(comp._terms().plus(neg_q))  # a list of Python floats
        rows.append(row)
        logw.append(math.log(w))
        if sups is not None:
            try:
                check_support(comp, proposal)
                sups.append(sup_row(row, comp, proposal))
            except NoEnvelopeError:
                if log_M is None:
                    raise
                sups = None             # a given log_M for a pair without an envelope
    exact = None
    if sups is not None:
        s = [a + b for a, b in zip(sups, logw)]
        m = max(s)
        exact = m + math.log(sum(math.exp(t - m) for t in s))
        exact += _MARGIN * (1.0 + abs(exact))
    if log_M is None:
        log_M = exact
    for row, lw in zip(rows, logw):
        row[Row.CONST] += lw - log_M
    if len(rows) == 1:
        _program.set_product_mode(rows[0])
    return np.array(rows, dtype=np.float64), log_M, exact


def proposal_program(proposal, log_M):
    """Program row ``-log q(x) - log M`` for a callable target."""
    q = proposal._terms().negated()
    q.const -= log_M
    return np.array([_program.pack(q)], dtype=np.float64)


#: find_log_M: the dense scan's points, the zoom's points per step and its steps
_SCAN_POINTS = 200_001
_ZOOM_POINTS = 401
_ZOOM_STEPS = 6
#: find_log_M's stated margin, relative: log_M = (largest value found) + 1e-6 * (1 + |it|)
FIND_MARGIN = 1e-6


def _scan_interval(proposal, bounds):
    """The finite interval scanned densely, and the points beyond it out to ``2**40`` scales
    (scanned geometrically, to see whether ``log p - log q`` still grows there). Beyond a
    finite end of the proposal's support (bounds not given) the points check that the target
    is zero there."""
    qlo, qhi = proposal.support
    lo, hi = bounds if bounds is not None else (qlo, qhi)
    centre, scale = proposal._centre_and_scale()
    inner_lo = lo if math.isfinite(lo) else centre - 60.0 * scale
    inner_hi = hi if math.isfinite(hi) else centre + 60.0 * scale
    inner_lo, inner_hi = max(inner_lo, lo), min(inner_hi, hi)
    far = scale * 2.0 ** np.arange(6, 41)
    outer = [centre - far[::-1] if math.isinf(lo) else np.empty(0),
             centre + far if math.isinf(hi) else np.empty(0)]
    near = scale * 2.0 ** np.arange(-20, 41)
    outside = [qlo - near[::-1] if bounds is None and math.isfinite(qlo) else np.empty(0),
               qhi + near if bounds is None and math.isfinite(qhi) else np.empty(0)]
    return inner_lo, inner_hi, outer, outside


def _grid(lo, hi, n):
    """``n`` evenly spaced points from ``lo`` to ``hi``: ``np.linspace``, except when ``hi - lo``
    overflows (e.g. bounds ``(-1e308, 1e308)``), where linspace gives NaN points; then the
    weighted means ``(1 - t) lo + t hi``, which cannot overflow."""
    if math.isfinite(hi - lo):
        return np.linspace(lo, hi, n)
    t = np.linspace(0.0, 1.0, n)
    return (1.0 - t) * lo + t * hi


def find_log_M(logp, proposal, bounds=None):
    """See :func:`rsft.find_log_M` (the public wrapper checks the arguments)."""
    def g(x):
        """``log p - log q`` at ``x`` and its rounding scale ``|log p| + |log q|``."""
        # the scan goes out to 2**40 scales, where densities overflow or underflow by design:
        # no RuntimeWarning for points the caller never asked about
        with np.errstate(all="ignore"):
            lp = logp(x)
            lq = proposal.logpdf(x)
            out = lp - lq
        bad = (lp > -np.inf) & (lq == -np.inf)
        if bad.any():
            x0 = float(x[int(np.argmax(bad))])
            raise NoEnvelopeError(
                f"no finite envelope: the target is positive at x = {x0!r}, where the proposal "
                f"{proposal!r} never proposes; choose a proposal whose support contains the "
                "target's")
        with np.errstate(invalid="ignore"):
            return np.where(lp == -np.inf, -np.inf, out), np.abs(lp) + np.abs(lq)

    lo, hi, outer, outside = _scan_interval(proposal, bounds)
    g(np.concatenate(outside))          # raises where the target is positive beyond q's support
    x = _grid(lo, hi, _SCAN_POINTS)
    values, _ = g(x)
    i = int(np.argmax(values))
    best, x_best = float(values[i]), float(x[i])
    if not math.isfinite(best):
        raise NoEnvelopeError(
            "no finite envelope found: log p - log q is " + (
                f"+inf at x = {x_best!r}" if best > 0 else "-inf at every scanned point") +
            f" in [{x[0]:g}, {x[-1]:g}]; check the target, the proposal and bounds=")
    # far out (geometric points beyond the dense scan), a value above the best one by more
    # than the rounding of log p and log q there means the ratio grows towards that end
    far = np.concatenate(outer)
    if far.size:
        far_values, rounding = g(far)
        above = far_values - best > 1e-9 * (1.0 + rounding)
        if above.any():
            j = int(np.argmax(above))
            raise NoEnvelopeError(
                f"no finite envelope found: log p - log q is larger at x = {far[j]!r} "
                f"({far_values[j]:.6g}) than anywhere in the densely scanned [{lo:g}, {hi:g}] "
                f"({best:.6g}), so p/q looks unbounded towards that end; use a proposal with "
                "heavier tails (or give bounds= if the maximum lies far out)")
    # zoom: rescan the interval between the best point's neighbours, a few times
    a, b = x[max(i - 1, 0)], x[min(i + 1, x.size - 1)]
    for _ in range(_ZOOM_STEPS):
        z = _grid(a, b, _ZOOM_POINTS)
        vz, _ = g(z)
        j = int(np.argmax(vz))
        if vz[j] > best:
            best, x_best = float(vz[j]), float(z[j])
        a, b = z[max(j - 1, 0)], z[min(j + 1, z.size - 1)]
    if best == math.inf:                # the zoom reached a point where p/q is infinite
        raise NoEnvelopeError(
            f"no finite envelope: log p - log q is +inf at x = {x_best!r} (the target density "
            "is unbounded there, or the proposal's is zero); no M satisfies p <= M q")
    return best + FIND_MARGIN * (1.0 + abs(best)), x_best
