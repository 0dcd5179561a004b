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


def _stationary_poly(row, abs_signs):
    """Numerator polynomial (in y = x - center) of g'(x) on an interval with fixed |.| signs."""
    parts = _program.derivative_parts(row, abs_signs)
    total = np.array([0.0])
    for i, (num, _) in enumerate(parts):
        term = num
        for j, (_, den) in enumerate(parts):
            if j != i:
                term = P.polymul(term, den)
        total = P.polyadd(total, term)
    return P.polytrim(total, tol=0.0)


def _real_roots(poly, lo, hi):
    """Real roots of ``poly`` (coefficients low to high) in the open interval (lo, hi)."""
    if poly.shape[0] <= 1:
        return []
    roots = P.polyroots(poly)
    dpoly = P.polyder(poly)
    out = []
    for r in roots:
        if abs(r.imag) > 1e-6 * (1.0 + abs(r.real)):
            continue
        y = r.real
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
        poly = _stationary_poly(row, signs)
        cands += [y + v for y in _real_roots(poly, a - v, b - v)]
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


def find_log_M(logp, proposal, bounds=None):
    """See :func:`rsft.find_log_M` (the public wrapper checks the arguments)."""
    def g(x):
        """``log p - log q`` at ``x`` and its rounding scale ``|log p| + |log q|``."""
        with np.errstate(invalid="ignore"):
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
    x = np.linspace(lo, hi, _SCAN_POINTS)
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
        z = np.linspace(a, b, _ZOOM_POINTS)
        vz, _ = g(z)
        j = int(np.argmax(vz))
        if vz[j] > best:
            best, x_best = float(vz[j]), float(z[j])
        a, b = z[max(j - 1, 0)], z[min(j + 1, z.size - 1)]
    return best + FIND_MARGIN * (1.0 + abs(best)), x_best
