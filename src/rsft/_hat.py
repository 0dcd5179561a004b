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

from ._program import Piece
from .errors import NotLogConcaveError

#: construction budget: evaluated points (start points included) and refinement rounds
MAX_POINTS = 4096
MAX_ROUNDS = 60
#: a piece whose hat falls by less than this (in log) over its length is made flat (constant
#: at its higher end): still a hat, at most 1e-4 larger there, and sampled uniformly; a
#: sloped piece's position is then an exponential modulo at most 1e4 decay lengths
FLAT_DROP = 1e-4
#: relative rounding allowed in the log-density values before slopes count as increasing
CONCAVITY_TOL = 1e-9
#: start points closer than this fraction of the room around them are one point (see
#: start_points)
NEAR_TWIN = 2.0 ** -20
#: start points, in units of the scale from the centre towards an infinite end: every 1/12 to 3
#: (a bump of about that scale, even one as flat-topped as exp(-x**4), then reaches efficiency
#: 0.99 in one round), then doubling from 4 to 2**40
_STEPS = np.concatenate([np.arange(1, 37) / 12.0, 2.0 ** np.arange(2, 41)])
#: towards a finite end: the same from the centre, and halving the distance to the end 52 times
_HALVINGS = 2.0 ** -np.arange(1, 53)
#: the start points of an unbounded support, as offsets from the centre in units of the scale
_BOTH_WAYS = np.concatenate([-_STEPS[::-1], [0.0], _STEPS])


@dataclass
class Hat:
    """A built hat: the piece table and guide of ``hat_sample`` and what was measured."""

    pieces: np.ndarray          # (n_pieces, PIECE_LEN), columns in rsft._program.Piece
    guide: np.ndarray           # int64, a power-of-two length: search starts per probability
    hat_area: float             # integral of the hat (in the target's own units; inf or 0
    squeeze_area: float         # integral of the squeeze   when exp(log p) over/underflows)
    efficiency: float           # squeeze_area / hat_area, from the areas scaled by the hat's top
    points: np.ndarray          # construction points where log p is finite
    n_evaluations: int          # logpdf evaluations spent on the construction


def start_points(lo, hi, centre=None, scale=None):
    """Sorted distinct start points in ``[lo, hi]`` around ``centre`` at about ``scale``.

    Defaults: the middle of a finite support, one unit inside a single finite end, or 0; the
    scale a quarter of a finite support, else 1."""
    if centre is None:
        if math.isfinite(lo) and math.isfinite(hi):
            centre = 0.5 * lo + 0.5 * hi
        elif math.isfinite(lo):
            centre = lo + 1.0
        elif math.isfinite(hi):
            centre = hi - 1.0
        else:
            centre = 0.0
    if scale is None:
        scale = 0.25 * (hi - lo) if math.isfinite(hi - lo) else 1.0
    pts = centre + scale * _BOTH_WAYS        # (centre + scale*(-s) is centre - scale*s exactly)
    ends = [end for end in (lo, hi) if math.isfinite(end)]
    if ends:
        pts = np.concatenate([pts, ends] + [end + (centre - end) * _HALVINGS for end in ends])
        pts.sort()
        pts = pts[(pts >= lo) & (pts <= hi)]
    # Keep a point only if it is more than NEAR_TWIN of the room around it (the scale, or its
    # distance to a finite end if smaller) from the previous one. The two series can land a few
    # ulps apart (centre - scale*9/12 beside end + (centre - end)/4): a chord that short is all
    # rounding of log p (its values differ by less than their own rounding), and extended as a
    # neighbour's hat it can cut under log p (Exponential(1e-5) had squeeze area > hat area).
    # Successive halvings towards an end are as far apart as the nearer one is from it: kept.
    room = np.full(pts.size, scale)
    with np.errstate(over="ignore"):    # ends 1e308 apart: an infinite room is no limit
        for end in ends:
            room = np.minimum(room, np.abs(pts - end))
    kept = pts[1:] - pts[:-1] > NEAR_TWIN * np.minimum(room[1:], room[:-1])
    return pts if kept.all() else pts[np.concatenate([[True], kept])]


def _positive_part(xs, ys, lo, hi):
    """The points where ``log p`` is finite and the bracket ``(lo, hi)`` they lie in: a point
    with ``log p = -inf`` next to them bounds the support. ``-inf`` between finite points
    proves the density is not log-concave (its support would not be an interval)."""
    positive = ys > -np.inf
    n_positive = int(np.count_nonzero(positive))
    if n_positive == ys.size:
        return xs, ys, lo, hi
    if n_positive == 0:
        raise ValueError(
            f"the target's log-density is -inf at every one of the {xs.size} start points in "
            f"[{xs[0]:g}, {xs[-1]:g}]; give support=(low, high) around where it is positive, "
            "or mode=")
    i0 = int(positive.argmax())
    i1 = ys.size - 1 - int(positive[::-1].argmax())
    if i1 - i0 + 1 != n_positive:       # not one run of positive points
        j = i0 + int(positive[i0:].argmin())
        raise NotLogConcaveError(
            f"the target is not log-concave: log p(x) = -inf at x = {xs[j]!r} between points "
            f"where it is finite ({xs[i0]!r} and {xs[i1]!r}); a log-concave density is "
            "positive on an interval", xs[j], -math.inf, ys[i0], (xs[i0], xs[j], xs[i1]))
    lo = xs[i0 - 1] if i0 > 0 else lo
    hi = xs[i1 + 1] if i1 < xs.size - 1 else hi
    return xs[i0:i1 + 1], ys[i0:i1 + 1], lo, hi


def _not_concave(xs, ys, slopes, j):
    """The NotLogConcaveError of chord slopes that increase at the middle point ``j``."""
    chord = ys[j - 1] + (ys[j + 1] - ys[j - 1]) * ((xs[j] - xs[j - 1]) / (xs[j + 1] - xs[j - 1]))
    return NotLogConcaveError(
        f"the target is not log-concave: the chord slopes of log p increase at "
        f"x = {xs[j - 1]!r}, {xs[j]!r}, {xs[j + 1]!r} (from {slopes[j - 1]:.6g} to "
        f"{slopes[j]:.6g}): log p({xs[j]!r}) = {ys[j]:.10g} lies below the chord of its "
        f"neighbours ({chord:.10g})", xs[j], ys[j], chord, (xs[j - 1], xs[j], xs[j + 1]))


def _new_points(xs, table, region, cross, area, squeeze, allowed):
    """One refinement round: new points in every region whose hat-minus-squeeze area exceeds
    its equal share of ``allowed``: in an interval, at the crossing of the neighbours' chords
    (where hat and squeeze are furthest apart), kept within its middle half; beyond the outer
    points, one hat decay length ``DECAY`` further out (at most half way to a finite end)."""
    k = xs.size
    gaps = np.bincount(region, weights=area, minlength=k + 1)
    gaps[1:k] -= squeeze
    over = gaps > allowed / (k + 1)
    j = np.flatnonzero(over[1:k])
    a, b = xs[j], xs[j + 1]
    new = [a + np.clip((cross[j] - a) / (b - a), 0.25, 0.75) * (b - a)]
    for tail, piece, side in ((0, 0, -1.0), (k, -1, 1.0)):
        if over[tail] and region[piece] == tail:
            half, decay = 0.5 * table[piece, Piece.LENGTH], table[piece, Piece.DECAY]
            step = min(half, decay) if decay > 0.0 else half      # (a flat tail: half way)
            new.append([(xs[0] if side < 0 else xs[-1]) + side * step])
    return np.concatenate(new)


def _check_consistent(xs, ys, area, region, squeeze):
    """Refuse a hat whose area on an interval is below its squeeze's (``hat >= p >= squeeze``
    makes that impossible but for rounding): its chords are rounding noise there, as when the
    density is narrower than the float64 spacing, so the hat would not bound ``p``. Allowed:
    the relative rounding ``CONCAVITY_TOL * (1 + max |log p|)`` of the log-densities (as the
    concavity check allows), four times over."""
    k = xs.size
    hat = np.bincount(region, weights=area, minlength=k + 1)[1:k]
    tol = 4.0 * CONCAVITY_TOL * (1.0 + float(np.max(np.abs(ys))))
    bad = np.flatnonzero(~(squeeze <= hat * (1.0 + tol)))
    if bad.size:
        j = int(bad[0])
        a, b = float(xs[j]), float(xs[j + 1])
        raise ValueError(
            f"cannot build a valid hat: on [{a!r}, {b!r}] the squeeze (the chord of "
            f"log p) has more area ({squeeze[j]:.6g}) than the hat ({hat[j]:.6g}), which only "
            "rounding can cause: log p's values there differ by less than their rounding "
            "error, as for a density narrower than the float64 spacing near that x (about "
            "2.2e-16 * |x|); shift x so that the density sits near 0 (sample x - c, add c "
            "back), or rescale it")


def _one_round(kernels, xs, ys, lo, hi, efficiency):
    """The hat on the positive points ``xs`` (at least 3) and, unless it reaches
    ``efficiency``, the next points to evaluate: ``(table, area, hat_total, squeeze_total,
    shift, new)`` with ``new`` None when done. ``kernels``: the backend's construction
    arithmetic (``hat_check_concave``, ``hat_table``; the same bits on both backends)."""
    slopes = (ys[1:] - ys[:-1]) / (xs[1:] - xs[:-1])
    bad = kernels.hat_check_concave(xs, ys, slopes, CONCAVITY_TOL)
    if bad:
        raise _not_concave(xs, ys, slopes, bad)
    for side, end, s, x in ((-1, lo, slopes[0], xs[0]), (1, hi, slopes[-1], xs[-1])):
        if math.isinf(end) and not s * side < 0.0:
            raise ValueError(
                f"the target's density does not decay as x -> {'+-'[side < 0]}inf: the chord "
                f"of log p beyond x = {x!r} has slope {s:.6g}, so it is not integrable there "
                "(or its mass lies beyond 2**40 from the start); give support=(low, high) or "
                "mode=")
    table, area, cross, region, squeeze, hat_total, squeeze_total, shift = kernels.hat_table(
        xs, ys, slopes, lo, hi, FLAT_DROP)
    if not math.isfinite(hat_total):
        raise ValueError("internal: the hat's area is not finite")
    _check_consistent(xs, ys, area, region, squeeze)
    new = None
    if squeeze_total < efficiency * hat_total:
        new = _new_points(xs, table, region, cross, area, squeeze,
                          (1.0 - efficiency) * hat_total)
    return table, area, hat_total, squeeze_total, shift, new


def build(kernels, logpdf, lo, hi, efficiency, centre=None, scale=None):
    """The hat of ``logpdf`` (a checked vectorised log-density: float64 in and out, no NaN or
    +inf) on ``[lo, hi]``, refined until ``squeeze area >= efficiency * hat area``; the start
    points are spread around ``centre`` at about ``scale`` (see :func:`start_points`).
    ``kernels``: the backend whose construction arithmetic builds the table (both give the
    same bits)."""
    xs_all = start_points(lo, hi, centre, scale)
    ys_all = logpdf(xs_all)
    for _ in range(MAX_ROUNDS):
        xs, ys, lo_in, hi_in = _positive_part(xs_all, ys_all, lo, hi)
        if xs.size >= 3:
            # infinities are expected here (unbounded tails, -inf squeezes, underflow)
            with np.errstate(divide="ignore", invalid="ignore", over="ignore",
                             under="ignore"):
                table, area, hat_total, squeeze_total, shift, new = _one_round(
                    kernels, xs, ys, lo_in, hi_in, efficiency)
            if new is None:
                pieces, guide = kernels.hat_finish(table, area)
                # the ratio from the scaled areas: the unscaled ones overflow (or underflow)
                # when log p is far from 0 (an unnormalised log-likelihood, a steep density)
                return Hat(pieces, guide, _unscaled(hat_total, shift),
                           _unscaled(squeeze_total, shift), squeeze_total / hat_total, xs,
                           xs_all.size)
        else:                           # too few positive points: halve towards the bracket
            ends = np.concatenate([[lo_in if math.isfinite(lo_in) else xs[0] - 1.0], xs,
                                   [hi_in if math.isfinite(hi_in) else xs[-1] + 1.0]])
            new = 0.5 * ends[:-1] + 0.5 * ends[1:]
        new = np.unique(new)
        at = np.searchsorted(xs_all, new)
        fresh = xs_all[np.minimum(at, xs_all.size - 1)] != new    # not evaluated yet
        new, at = new[fresh], at[fresh]
        if new.size == 0 or xs_all.size + new.size > MAX_POINTS:
            break
        xs_all, ys_all = _merged(xs_all, ys_all, at, new, logpdf(new))
    raise ValueError(
        f"could not build a hat with efficiency {efficiency} from {xs_all.size} logpdf "
        f"evaluations (at most {MAX_POINTS} points in {MAX_ROUNDS} rounds): the density may "
        "be too narrow or too far from the start points for its scale; give mode= (and a "
        "tighter support=), or ask for a lower efficiency")


def _merged(xs, ys, at, new_x, new_y):
    """``xs`` and ``ys`` with the sorted ``new_x``, ``new_y`` inserted before the positions
    ``at`` (as ``np.insert``, in a few calls)."""
    size = xs.size + new_x.size
    where_new = at + np.arange(new_x.size)
    old = np.ones(size, dtype=bool)
    old[where_new] = False
    merged_x, merged_y = np.empty(size), np.empty(size)
    merged_x[where_new], merged_y[where_new] = new_x, new_y
    merged_x[old], merged_y[old] = xs, ys
    return merged_x, merged_y


def _unscaled(area, shift):
    """``area * exp(shift)`` (an area computed under the scale ``exp(-shift)``), inf when it
    overflows."""
    log_area = math.log(area) + shift
    return math.exp(log_area) if log_area < 709.0 else math.inf
