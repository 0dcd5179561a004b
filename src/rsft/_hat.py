"""The piecewise-exponential hat of a log-concave density, built without derivatives.

Why chords work (Gilks 1992, derivative-free adaptive rejection sampling). Let ``h = log p`` be
concave and ``x_0 < ... < x_{k-1}`` points with ``y_j = h(x_j)``. The chord ``L_j`` through
``(x_j, y_j)`` and ``(x_{j+1}, y_{j+1})`` lies *below* ``h`` on ``[x_j, x_{j+1}]`` (concavity:
the graph is above every chord between the chord's points), and *above* ``h`` outside that
interval (were ``h(x) > L_j(x)`` for some ``x > x_{j+1}``, the chord from ``x_j`` to ``x`` would
pass above ``y_{j+1}``, contradicting concavity at ``x_{j+1}``; the same on the left). So on
``[x_j, x_{j+1}]`` the squeeze is ``L_j`` and the hat is ``min(L_{j-1}, L_{j+1})`` (the neighbours'
chords, extended), with one neighbour on the first and last interval; beyond the outer points
the hat is the outer chord extended, and there is no squeeze. ``exp`` of a linear function
integrates in closed form, so the hat is a sampler (``hat_sample``) and the squeeze/hat area
ratio is the fraction of proposals accepted without calling the target.

Concavity is verified, never assumed: the chord slopes must not increase (else
:class:`rsft.NotLogConcaveError` names the three points), and the sampler checks every point
where it evaluates the target against the hat and the squeeze.

Construction: one vectorised call at start points spread geometrically around a centre (the
``mode`` if given) towards both ends of the support, then rounds that split the intervals whose
hat-minus-squeeze area exceeds an equal share of the allowed ``(1 - efficiency) * hat area``
(one vectorised call per round), until ``squeeze area >= efficiency * hat area``. Points where
``log p = -inf`` bound the support (a log-concave density is positive on an interval).
"""

import math
from dataclasses import dataclass

import numpy as np

from ._program import PIECE_LEN, Piece
from .errors import NotLogConcaveError

#: construction budget: evaluated points (start points included) and refinement rounds
MAX_POINTS = 4096
MAX_ROUNDS = 60
#: a piece whose hat falls by less than this (in log) over its length is made flat (constant
#: at its higher end): still a hat, at most 1e-4 larger there, and sampled uniformly
FLAT_DROP = 1e-4
#: relative rounding allowed in the log-density values before slopes count as increasing
CONCAVITY_TOL = 1e-9
#: start points reach 2**-6 ... 2**40 from the centre on an infinite side, and within
#: 2**-52 of the distance to a finite end (plus the end itself)
_POWERS = 2.0 ** np.arange(-6, 41)
_HALVINGS = 1.0 - 2.0 ** -np.arange(1, 53)


@dataclass
class Hat:
    """A built hat: the piece table and guide of ``hat_sample`` and what was measured."""

    pieces: np.ndarray          # (n_pieces, PIECE_LEN), columns in rsft._program.Piece
    guide: np.ndarray           # int64, a power-of-two length: search starts per probability
    hat_area: float             # integral of the hat (in the target's own units)
    squeeze_area: float         # integral of the squeeze
    points: np.ndarray          # construction points where log p is finite
    n_evaluations: int          # logpdf evaluations spent on the construction


def start_points(lo, hi, mode):
    """Sorted distinct start points in ``[lo, hi]`` around ``mode`` (or a centre)."""
    if mode is not None:
        centre = mode
    elif math.isfinite(lo) and math.isfinite(hi):
        centre = 0.5 * lo + 0.5 * hi
    elif math.isfinite(lo):
        centre = lo + 1.0
    elif math.isfinite(hi):
        centre = hi - 1.0
    else:
        centre = 0.0
    left = (centre - (centre - lo) * _HALVINGS if math.isfinite(lo) else centre - _POWERS)
    right = (centre + (hi - centre) * _HALVINGS if math.isfinite(hi) else centre + _POWERS)
    pts = np.concatenate([left, right, [centre], [e for e in (lo, hi) if math.isfinite(e)]])
    return np.unique(pts[(pts >= lo) & (pts <= hi)])


def _positive_part(xs, ys, lo, hi):
    """The points where ``log p`` is finite and the bracket ``(lo, hi)`` they lie in: a point
    with ``log p = -inf`` next to them bounds the support. ``-inf`` between finite points
    proves the density is not log-concave (its support would not be an interval)."""
    finite = np.flatnonzero(ys > -np.inf)
    if finite.size == 0:
        raise ValueError(
            f"the target's log-density is -inf at every one of the {xs.size} start points in "
            f"[{xs[0]:g}, {xs[-1]:g}]; give support=(low, high) around where it is positive, "
            "or mode=")
    i0, i1 = int(finite[0]), int(finite[-1])
    holes = np.flatnonzero(ys[i0:i1 + 1] == -np.inf)
    if holes.size:
        j = i0 + int(holes[0])
        raise NotLogConcaveError(
            f"the target is not log-concave: log p(x) = -inf at x = {xs[j]!r} between points "
            f"where it is finite ({xs[i0]!r} and {xs[i1]!r}); a log-concave density is "
            "positive on an interval", xs[j], -math.inf, ys[i0], (xs[i0], xs[j], xs[i1]))
    lo = xs[i0 - 1] if i0 > 0 else lo
    hi = xs[i1 + 1] if i1 < xs.size - 1 else hi
    return xs[i0:i1 + 1], ys[i0:i1 + 1], lo, hi


def _check_concave(xs, ys, slopes):
    """Raise NotLogConcaveError where a chord slope increases beyond rounding."""
    widths = np.diff(xs)
    rise = slopes[1:] - slopes[:-1]
    y_scale = 1.0 + np.maximum(np.maximum(np.abs(ys[:-2]), np.abs(ys[1:-1])), np.abs(ys[2:]))
    tol = CONCAVITY_TOL * y_scale * (1.0 / widths[:-1] + 1.0 / widths[1:])
    bad = np.flatnonzero(rise > tol)
    if bad.size:
        j = int(bad[0]) + 1
        chord = ys[j - 1] + (ys[j + 1] - ys[j - 1]) * ((xs[j] - xs[j - 1])
                                                       / (xs[j + 1] - xs[j - 1]))
        raise NotLogConcaveError(
            f"the target is not log-concave: the chord slopes of log p increase at "
            f"x = {xs[j - 1]!r}, {xs[j]!r}, {xs[j + 1]!r} (from {slopes[j - 1]:.6g} to "
            f"{slopes[j]:.6g}): log p({xs[j]!r}) = {ys[j]:.10g} lies below the chord of its "
            f"neighbours ({chord:.10g})", xs[j], ys[j], chord, (xs[j - 1], xs[j], xs[j + 1]))


def _exp_segment_area(length, high, drop):
    """``int exp(line)`` over a segment of ``length`` whose line is ``high`` at its higher end
    and falls by ``drop >= 0`` along it: ``exp(high) * length * (1 - exp(-drop)) / drop``,
    with ``-expm1`` for the small drops and ``exp(high) * length`` for none. ``length = inf``
    (a tail falling at rate ``drop/length``) is handled by the caller."""
    with np.errstate(invalid="ignore", divide="ignore"):
        factor = np.where(drop > 0.0, -np.expm1(-drop) / drop, 1.0)
    return np.exp(high) * length * factor


@dataclass
class _Pieces:
    """Hat pieces in x order before packing: ends, the hat line through (ref_x, ref_y) with
    ``slope``, the squeeze line (``sq_*``; ``sq_y = -inf`` where there is none) and the region
    (0: left of the points, j + 1: interval j, k: right of the points)."""

    left: np.ndarray
    right: np.ndarray
    ref_x: np.ndarray
    ref_y: np.ndarray
    slope: np.ndarray
    sq_x: np.ndarray
    sq_y: np.ndarray
    sq_slope: np.ndarray
    region: np.ndarray


def _hat_pieces(xs, ys, slopes, lo, hi):
    """The pieces of ``min(L_{j-1}, L_{j+1})`` on each interval, and of the outer chords."""
    k = xs.size
    j = np.arange(k - 1)
    widths = np.diff(xs)
    # on interval j the neighbours' chords cross at x_j + f*w_j: L_{j-1} (through x_j) is the
    # lower one left of there, L_{j+1} (through x_{j+1}) right of there
    s_left = np.concatenate([[np.nan], slopes[:-1]])     # s_{j-1}
    s_right = np.concatenate([slopes[1:], [np.nan]])     # s_{j+1}
    with np.errstate(invalid="ignore", divide="ignore"):
        den = s_left - s_right
        f = np.where(den > 0.0, np.clip((slopes - s_right) / den, 0.0, 1.0), 0.5)
    f[0], f[-1] = 0.0, 1.0              # the first and last intervals have one neighbour
    cross = xs[:-1] + f * widths
    cross = np.minimum(np.maximum(cross, xs[:-1]), xs[1:])
    # interleave piece A (x_j .. cross, line L_{j-1}) and piece B (cross .. x_{j+1}, L_{j+1})
    inner = [np.column_stack([a, b]).ravel() for a, b in (
        (xs[:-1], cross), (cross, xs[1:]), (xs[:-1], xs[1:]), (ys[:-1], ys[1:]),
        (np.nan_to_num(s_left), np.nan_to_num(s_right)), (xs[:-1], xs[:-1]),
        (ys[:-1], ys[:-1]), (slopes, slopes), (j + 1, j + 1))]
    parts = [[] for _ in range(9)]
    if lo < xs[0]:
        for col, v in zip(parts, (lo, xs[0], xs[0], ys[0], slopes[0], xs[0], -np.inf, 0.0, 0)):
            col.append(np.array([v], dtype=float))
    for col, v in zip(parts, inner):
        col.append(np.asarray(v, dtype=float))
    if hi > xs[-1]:
        for col, v in zip(parts, (xs[-1], hi, xs[-1], ys[-1], slopes[-1], xs[-1], -np.inf, 0.0,
                                  k)):
            col.append(np.array([v], dtype=float))
    cols = [np.concatenate(c) for c in parts]
    keep = cols[1] > cols[0]            # drop the empty pieces (a crossing at an end)
    cols = [c[keep] for c in cols]
    cols[-1] = cols[-1].astype(np.intp)
    return _Pieces(*cols)


def _pack(p):
    """The piece table of ``hat_sample`` (without the cumulative columns) and each piece's fall
    ``RATE * LENGTH`` of the log hat (0 for a flat piece, ``inf`` for an unbounded tail)."""
    m = p.left.size
    table = np.empty((m, PIECE_LEN))
    falling = p.slope <= 0.0            # anchor at the higher end: the left one if falling
    anchor = np.where(falling, p.left, p.right)
    length = p.right - p.left
    rate = np.abs(p.slope)
    with np.errstate(invalid="ignore"):
        drop = rate * length
    hat_at = p.ref_y + p.slope * (anchor - p.ref_x)
    flat = drop < FLAT_DROP             # (an unbounded tail has drop = inf)
    hat_slope = np.where(flat, 0.0, p.slope)
    has_squeeze = p.sq_y > -np.inf
    with np.errstate(invalid="ignore"):
        squeeze_at = p.sq_y + p.sq_slope * (anchor - p.sq_x)
    table[:, Piece.ANCHOR] = anchor
    table[:, Piece.DIRECTION] = np.where(falling, 1.0, -1.0)
    table[:, Piece.LENGTH] = length
    table[:, Piece.RATE] = np.where(flat, 0.0, rate)
    table[:, Piece.HAT_AT] = hat_at
    table[:, Piece.HAT_SLOPE] = hat_slope
    table[:, Piece.GAP_AT] = np.where(has_squeeze, squeeze_at - hat_at, -np.inf)
    table[:, Piece.GAP_SLOPE] = np.where(has_squeeze, p.sq_slope - hat_slope, 0.0)
    return table, np.where(flat, 0.0, drop)


def _hat_areas(table, drop, shift):
    """Each piece's hat area, scaled by ``exp(-shift)``."""
    length, high = table[:, Piece.LENGTH], table[:, Piece.HAT_AT] - shift
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        finite_area = _exp_segment_area(length, high, drop)
        tail_area = np.exp(high) / table[:, Piece.RATE]
    return np.where(np.isinf(length), tail_area, finite_area)


def _squeeze_areas(xs, ys, shift):
    lo_y, hi_y = np.minimum(ys[:-1], ys[1:]), np.maximum(ys[:-1], ys[1:])
    return _exp_segment_area(np.diff(xs), hi_y - shift, hi_y - lo_y)


def _guide(cum):
    """Search starts: ``guide[j]`` is the first piece with ``cum > j/G`` (G a power of two)."""
    size = 1 << max(int(cum.size - 1).bit_length(), 0)
    return np.minimum(np.searchsorted(cum, np.arange(size) / size, side="right"),
                      cum.size - 1).astype(np.int64)


def _new_points(xs, pieces, area, squeeze, allowed):
    """One refinement round: a new point in every region whose hat-minus-squeeze area exceeds
    its equal share of ``allowed``."""
    k = xs.size
    regions = np.bincount(pieces.region, weights=area, minlength=k + 1)
    gaps = regions.copy()
    gaps[1:k] -= squeeze
    share = allowed / (k + 1)
    new = []
    for r in np.flatnonzero(gaps > share):
        if 1 <= r <= k - 1:             # interval r - 1: at the hat's kink, kept off the ends
            a, b = xs[r - 1], xs[r]
            sel = pieces.region == r
            kink = pieces.right[sel][0] if sel.sum() > 1 else 0.5 * a + 0.5 * b
            f = min(max((kink - a) / (b - a), 0.25), 0.75)
            new.append(a + f * (b - a))
        else:                           # beyond the outer points: one hat scale further out
            sel = np.flatnonzero(pieces.region == r)[0]
            length = pieces.right[sel] - pieces.left[sel]
            rate = abs(pieces.slope[sel])
            step = min(0.5 * length, 1.0 / rate) if rate > 0.0 else 0.5 * length
            new.append(xs[0] - step if r == 0 else xs[-1] + step)
    return np.asarray(new)


def build(logpdf, lo, hi, mode, efficiency):
    """The hat of ``logpdf`` (a checked vectorised log-density: float64 in and out, no NaN or
    +inf) on ``[lo, hi]``, refined until ``squeeze area >= efficiency * hat area``."""
    xs_all = start_points(lo, hi, mode)
    ys_all = logpdf(xs_all)
    for _ in range(MAX_ROUNDS):
        xs, ys, lo_in, hi_in = _positive_part(xs_all, ys_all, lo, hi)
        if xs.size >= 3:
            slopes = np.diff(ys) / np.diff(xs)
            _check_concave(xs, ys, slopes)
            for side, end, s, x in ((-1, lo_in, slopes[0], xs[0]),
                                    (1, hi_in, slopes[-1], xs[-1])):
                if math.isinf(end) and not s * side < 0.0:
                    raise ValueError(
                        f"the target's density does not decay as x -> {'+-'[side < 0]}inf: "
                        f"the chord of log p beyond x = {x!r} has slope {s:.6g}, so it is not "
                        "integrable there (or its mass lies beyond 2**40 from the start); "
                        "give support=(low, high) or mode=")
            pieces = _hat_pieces(xs, ys, slopes, lo_in, hi_in)
            table, drop = _pack(pieces)
            shift = float(table[:, Piece.HAT_AT].max())    # the hat's highest point
            area = _hat_areas(table, drop, shift)
            squeeze = _squeeze_areas(xs, ys, shift)
            hat_total, squeeze_total = float(area.sum()), float(squeeze.sum())
            if not math.isfinite(hat_total):
                raise ValueError("internal: the hat's area is not finite")
            if squeeze_total >= efficiency * hat_total:
                return _finish(table, area, hat_total, squeeze_total, shift, xs,
                               xs_all.size)
            new = _new_points(xs, pieces, area, squeeze, (1.0 - efficiency) * hat_total)
        else:                           # too few positive points: halve towards the bracket
            ends = np.concatenate([[lo_in if math.isfinite(lo_in) else xs[0] - 1.0], xs,
                                   [hi_in if math.isfinite(hi_in) else xs[-1] + 1.0]])
            new = 0.5 * ends[:-1] + 0.5 * ends[1:]
        new = np.setdiff1d(new, xs_all)
        if new.size == 0 or xs_all.size + new.size > MAX_POINTS:
            break
        ys_new = logpdf(new)
        xs_all = np.concatenate([xs_all, new])
        order = np.argsort(xs_all, kind="stable")
        xs_all, ys_all = xs_all[order], np.concatenate([ys_all, ys_new])[order]
    raise ValueError(
        f"could not build a hat with efficiency {efficiency} from {xs_all.size} logpdf "
        f"evaluations (at most {MAX_POINTS} points in {MAX_ROUNDS} rounds): the density may "
        "be too narrow or too far from the start points for its scale; give mode= (and a "
        "tighter support=), or ask for a lower efficiency")


def _finish(table, area, hat_total, squeeze_total, shift, xs, n_evaluations):
    # a piece whose probability vanishes in the cumulative sum (below its rounding) could never
    # be chosen: dropped, so that every piece of the table has CUM > CUM_BEFORE
    cum = np.cumsum(area)
    keep = np.diff(cum, prepend=0.0) > 0.0
    table, area = table[keep], area[keep]
    cum = np.cumsum(area)
    cum = cum / cum[-1]                 # the last is 1.0 exactly
    table[:, Piece.CUM] = cum
    table[:, Piece.CUM_BEFORE] = np.concatenate([[0.0], cum[:-1]])
    with np.errstate(over="ignore"):
        hat_area, squeeze_area = np.exp(np.log([hat_total, squeeze_total]) + shift)
    return Hat(np.ascontiguousarray(table), _guide(cum), float(hat_area), float(squeeze_area),
               xs, n_evaluations)
