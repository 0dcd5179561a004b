"""Exact envelopes for built-in (target, proposal) pairs and their log-ratio programs.

For one target component with log-density terms ``T`` and a proposal with terms ``Q``,
``g(x) = log p(x) - log q(x)`` is compiled into one program row (see :mod:`rsft._reference`).
``sup g`` is found exactly: on each interval between the support ends and the kinks of
``|x - m|`` terms, ``g`` is smooth and ``g'(x)`` is a rational function, so its stationary
points are the real roots of one polynomial (numerator of ``g'`` over the common
denominator). The supremum is the largest of ``g`` at those roots, at the finite interval ends
and kinks, and the limits at infinite ends; a limit that diverges to ``+inf`` proves that no
finite envelope exists. A margin of ``1e-10 * (1 + |sup|)`` covers rounding.

For a mixture target ``p = sum_k w_k p_k`` the bound ``M = sum_k w_k M_k`` is used.
"""

import math

import numpy as np
from numpy.polynomial import polynomial as P

from . import _reference as R
from .errors import NoEnvelopeError

_MARGIN = 1e-10


def _describe(dist):
    return repr(dist)


def check_support(target, proposal):
    """Raise NoEnvelopeError if the proposal cannot reach all of the target's support."""
    tlo, thi = target.support
    qlo, qhi = proposal.support
    if tlo < qlo or thi > qhi:
        raise NoEnvelopeError(
            f"no finite envelope: the target {_describe(target)} has support [{tlo}, {thi}] "
            f"but the proposal {_describe(proposal)} only proposes in [{qlo}, {qhi}]; choose "
            "a proposal whose support contains the target's")


def pack(terms):
    """Pack :class:`Terms` into one program row (float64 array of length PROG_LEN)."""
    if len(terms.abs) > 2 or len(terms.tlog) > 2:
        raise ValueError("internal: at most two |x-m| and two Student-t terms per program")
    row = [0.0] * R.PROG_LEN
    v = terms.center
    c0, c1, c2 = terms.const + terms.lin * v, terms.lin, 0.0
    for a, m in terms.quad:
        d = v - m
        c2 += a
        c1 += 2.0 * a * d
        c0 += a * d * d
    row[R.V], row[R.C0], row[R.C1], row[R.C2] = v, float(c0), float(c1), float(c2)
    for j, (a, m) in enumerate(terms.abs):
        row[R.CA1 + 2 * j], row[R.MA1 + 2 * j] = a, m
    for j, (c, m, k) in enumerate(terms.tlog):
        row[R.CT1 + 3 * j], row[R.MT1 + 3 * j], row[R.KT1 + 3 * j] = c, m, k
    row[R.CB1], row[R.CB2] = terms.cb1, terms.cb2
    row[R.LO], row[R.HI] = terms.lo, terms.hi
    return row


def pair_terms(target, proposal):
    """Terms of ``log p - log q`` for a single (non-mixture) target component."""
    t = target._terms()
    q = proposal._terms().negated()
    return type(t)(t.const + q.const, t.lin + q.lin, t.quad + q.quad, t.abs + q.abs,
                   t.tlog + q.tlog, t.cb1, t.cb2, t.lo, t.hi, t.center)


def _eval(row, x):
    """g(x) for one row at a scalar x (same formula as the kernels, in Python floats)."""
    if not (row[R.LO] <= x <= row[R.HI]):
        return -math.inf
    y = x - row[R.V]
    g = row[R.C0] + y * (row[R.C1] + y * row[R.C2])
    for j in range(2):
        if row[R.CA1 + 2 * j] != 0.0:
            g += row[R.CA1 + 2 * j] * abs(x - row[R.MA1 + 2 * j])
        if row[R.CT1 + 3 * j] != 0.0:
            d = x - row[R.MT1 + 3 * j]
            g += row[R.CT1 + 3 * j] * math.log1p(d * d * row[R.KT1 + 3 * j])
    for coef, arg in ((row[R.CB1], x), (row[R.CB2], 1.0 - x)):
        if coef != 0.0:
            if arg <= 0.0:
                g += -math.inf if coef > 0 else math.inf
            else:
                g += coef * math.log(arg)
    return g


def _is_quadratic(row):
    return all(row[i] == 0.0 for i in (R.CA1, R.CA2, R.CT1, R.CT2, R.CB1, R.CB2))


def _stationary_poly(row, signs):
    """Numerator polynomial (in y = x - v) of g'(x) on an interval with fixed |.| signs."""
    v = row[R.V]
    lin = row[R.C1] + sum(row[R.CA1 + 2 * j] * s for j, s in enumerate(signs))
    parts_num = [np.array([lin, 2.0 * row[R.C2]])]    # numerators over their denominators
    parts_den = [np.array([1.0])]
    for j in range(2):
        c, m, k = row[R.CT1 + 3 * j], row[R.MT1 + 3 * j], row[R.KT1 + 3 * j]
        if c != 0.0:
            d0 = v - m
            parts_num.append(np.array([2.0 * k * c * d0, 2.0 * k * c]))
            parts_den.append(np.array([1.0 + k * d0 * d0, 2.0 * k * d0, k]))
    if row[R.CB1] != 0.0:          # cb1 / x
        parts_num.append(np.array([row[R.CB1]]))
        parts_den.append(np.array([v, 1.0]))
    if row[R.CB2] != 0.0:          # -cb2 / (1 - x)
        parts_num.append(np.array([-row[R.CB2]]))
        parts_den.append(np.array([1.0 - v, -1.0]))
    total = np.array([0.0])
    for i, num in enumerate(parts_num):
        term = num
        for j, den in enumerate(parts_den):
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


def _tail(row, side):
    """Behaviour of g as x -> side*inf: ('inf', description) or ('value', limit) or None."""
    c2 = row[R.C2]
    if c2 != 0.0:
        return ("inf", f"{c2:.6g}*x^2") if c2 > 0 else None
    lin = row[R.C1] + row[R.CA1] * side + row[R.CA2] * side
    if lin != 0.0:
        return ("inf", f"{lin:.6g}*x") if lin * side > 0 else None
    t = 2.0 * (row[R.CT1] + row[R.CT2])
    if t != 0.0:
        return ("inf", f"{t:.6g}*log|x|") if t > 0 else None
    v = row[R.V]
    limit = row[R.C0]
    for j in range(2):
        a, m = row[R.CA1 + 2 * j], row[R.MA1 + 2 * j]
        limit += a * side * (v - m)
        c, k = row[R.CT1 + 3 * j], row[R.KT1 + 3 * j]
        if c != 0.0:
            limit += c * math.log(k)
    return ("value", limit)


def sup_row(row, target, proposal):
    """Exact supremum of the program row ``row`` over its support (NoEnvelopeError if none)."""
    lo, hi = row[R.LO], row[R.HI]
    v = row[R.V]
    best = -math.inf
    for side, end in ((1.0, hi), (-1.0, lo)):
        if math.isinf(end):
            res = _tail(row, side)
            if res is None:
                continue
            if res[0] == "inf":
                sgn = "+" if side > 0 else "-"
                raise NoEnvelopeError(
                    f"no finite envelope: for target {_describe(target)} and proposal "
                    f"{_describe(proposal)}, log p(x) - log q(x) grows without bound as x -> "
                    f"{sgn}inf (like {res[1]}), so p(x)/q(x) is unbounded and no M satisfies "
                    "p <= M q. Use a proposal with heavier tails (e.g. a wider Normal, a "
                    "Laplace or a StudentT) centred near the target")
            best = max(best, res[1])
    if _is_quadratic(row):   # closed form: the clipped vertex, or the finite ends
        cands = [p for p in (lo, hi) if math.isfinite(p)]
        if row[R.C2] < 0.0:
            cands.append(min(max(v - row[R.C1] / (2.0 * row[R.C2]), lo), hi))
        elif not cands:          # constant on the whole line
            cands.append(v)
        for x in cands:
            best = max(best, _eval(row, x))
        return best
    kinks = sorted({row[R.MA1 + 2 * j] for j in range(2) if row[R.CA1 + 2 * j] != 0.0})
    points = [lo] + [k for k in kinks if lo < k < hi] + [hi]
    for a, b in zip(points[:-1], points[1:]):
        if math.isfinite(a) and math.isfinite(b):
            mid = 0.5 * a + 0.5 * b
        elif math.isfinite(a):
            mid = a + 1.0 + abs(a)
        elif math.isfinite(b):
            mid = b - 1.0 - abs(b)
        else:
            mid = v
        signs = [1.0 if mid > row[R.MA1 + 2 * j] else -1.0 for j in range(2)]
        poly = _stationary_poly(row, signs)
        cands = [y + v for y in _real_roots(poly, a - v, b - v)]
        if poly.shape[0] == 1 and poly[0] == 0.0:   # g constant on (a, b)
            cands.append(mid)
        cands += [p for p in (a, b) if math.isfinite(p)]
        for x in cands:
            g = _eval(row, x)
            if g == math.inf:
                raise NoEnvelopeError(
                    f"no finite envelope: for target {_describe(target)} and proposal "
                    f"{_describe(proposal)}, p(x)/q(x) is infinite at x = {x} (the target "
                    "density is unbounded there)")
            best = max(best, g)
    if not math.isfinite(best):
        raise NoEnvelopeError(
            f"internal: could not bound log p - log q for {_describe(target)} / "
            f"{_describe(proposal)}")
    return best


def _components(target):
    from .distributions import Mixture
    if isinstance(target, Mixture):
        return [(c, w) for c, w in zip(target.components, target.weights) if w > 0]
    return [(target, 1.0)]


def builtin_program(target, proposal, log_M=None):
    """Program rows for a built-in pair and the log envelope used.

    Returns ``(prog, log_M, exact_log_M)``: ``prog`` has ``log w_k - log_M`` folded in;
    ``exact_log_M`` is the computed envelope (with its rounding margin), None when ``log_M``
    was given and the pair was not analysed.
    """
    rows, sups, logw = [], [], []
    for comp, w in _components(target):
        check_support(comp, proposal)
        row = pack(pair_terms(comp, proposal))  # a list of Python floats
        rows.append(row)
        logw.append(math.log(w))
        if log_M is None:
            sups.append(sup_row(row, comp, proposal))
    exact = None
    if log_M is None:
        s = [a + b for a, b in zip(sups, logw)]
        m = max(s)
        exact = m + math.log(sum(math.exp(t - m) for t in s))
        exact += _MARGIN * (1.0 + abs(exact))
        log_M = exact
    for row, lw in zip(rows, logw):
        row[R.C0] += lw - log_M
    if len(rows) == 1:
        _set_product_mode(rows[0])
    return np.array(rows, dtype=np.float64), log_M, exact


def _set_product_mode(row):
    """Use the transcendental-free product mode when the row is ``c0`` and integer Beta logs."""
    only_beta = (row[R.C1] == 0.0 and row[R.C2] == 0.0 and row[R.CA1] == 0.0
                 and row[R.CA2] == 0.0 and row[R.CT1] == 0.0 and row[R.CT2] == 0.0)
    ints = all(float(row[i]).is_integer() and 0.0 <= row[i] <= R.MAX_POW
               for i in (R.CB1, R.CB2))
    if only_beta and ints and row[R.C0] < 700.0:
        row[R.MODE] = 1.0
        row[R.E0] = math.exp(row[R.C0])


def proposal_program(proposal, log_M):
    """Program row ``-log q(x) - log M`` for a callable target."""
    q = proposal._terms().negated()
    q.const -= log_M
    return np.array([pack(q)], dtype=np.float64)
