"""Reference (numpy) kernel of the piecewise-exponential hat: the specification of
``_kernels/hat.pxi`` (the sampling strategy ``piecewise_exp`` of ``LogConcaveSampler``).

The hat is a table of pieces (columns in :class:`rsft._program.Piece`, built by
:mod:`rsft._hat`). Random stream: proposals come in chunks whose lengths follow
:func:`rsft._reference.sampler.chunk_length`; per chunk of ``c`` proposals, first ``c``
``Generator.random`` uniforms (the piece and, on a flat piece, the position), then ``c``
``Generator.standard_exponential`` draws (the position on a sloped piece), then ``c``
``Generator.random`` uniforms (the acceptance test).

Per proposal, with ``u`` the first uniform, ``e`` the exponential and ``v = 1 - u3`` the third:

* the piece is the first one whose cumulative probability ``CUM`` exceeds ``u`` (the compiled
  core starts its search at a guide-table entry; the answer is the same);
* the position, measured from the piece's anchor (its highest end) in its direction: on a
  sloped piece ``t = e * DECAY`` taken modulo ``LENGTH``. Why that is exact: an exponential
  variable with mean ``DECAY`` taken modulo ``LENGTH`` has density proportional to
  ``exp(-t/DECAY)`` on ``[0, LENGTH)`` (sum the exponential density over ``t + j*LENGTH``,
  j = 0, 1, ...), which is the hat on the piece; no transcendental function (whose last bit
  may differ between numpy and the C library) places a sample. The modulo is
  ``t - floor(t / LENGTH) * min(LENGTH, DBL_MAX)`` clipped to ``[0, LENGTH]``: branch-free
  (the quotient is 0 for ``t < LENGTH`` and on an unbounded tail, ``LENGTH = inf``, where
  ``min`` keeps ``0 * inf`` from being NaN), cheaper than ``fmod`` (which divides bit by bit),
  and the clip catches a quotient rounded up to the next integer. A flat piece is one whose
  hat falls by less than 1e-4 (the hat is made constant there), so that the quotient, and the
  rounding it amplifies, stays below 1e4 times an exponential. On a flat piece
  (``DECAY = 0``) ``t = (u - CUM_BEFORE) * SHARE_SCALE``: the piece's share of ``u``, which
  is uniform on it, stretched to its length (this replaces the inversion ``log1p(u*expm1(-D))/(-D)``
  of a nearly flat exponential piece, which would need a transcendental function and loses
  accuracy as the fall ``D`` tends to 0);
  Both terms are computed for every piece and added (the other one is 0), so that no branch
  chooses between them;
* ``d = GAP_AT + GAP_SLOPE*(x - ANCHOR)``, the log of squeeze / hat at ``x``: accept without
  calling the target when ``v <= exp(d)`` (the acceptance test of
  :func:`rsft._reference.sampler.accept_test`);
* the others ("in-between" proposals) are passed to ``logp`` in one array per chunk (no call
  when there are none) and accepted when ``v <= exp(logp(x) - log hat(x))``.

Every evaluated point is checked against the hat and the squeeze: its excess is
``max(logp - log hat, log squeeze - logp) / (1 + |HAT_AT| + |log hat(x)|)`` (a relative
excess, so that rounding of large log-densities is not taken for a violation); a positive one
proves the target is not log-concave. The largest excess over the evaluated points is tracked
(the first point in chunk order where it occurs); with ``stop_on_violation`` a chunk whose
evaluated points hold an excess above ``violation_tol`` ends the call before its acceptances
are counted.
"""

import math

import numpy as np

from .._program import PIECE_LEN, Piece, Status
from .sampler import accept_test, chunk_length

DBL_MAX = float(np.finfo(np.float64).max)

__all__ = ["hat_check_concave", "hat_table", "hat_finish", "hat_sample"]


# ---------------------------------------------------------------------------------------------
# Construction arithmetic (called by rsft._hat, which explains the hat). Plain Python floats and
# ``math`` (the C library's exp and expm1, as the compiled twin calls them) in the compiled
# twin's order of operations, so that both backends build the same hat to the bit; sums are
# sequential (not numpy's pairwise ones).
# ---------------------------------------------------------------------------------------------
def hat_check_concave(xs, ys, slopes, concavity_tol):
    """The first middle point ``j`` (1 <= j <= k-2) where the chord slope rises by more than
    ``concavity_tol * (1 + max |y| of the three points) * (1/w_{j-1} + 1/w_j)`` (rounding of
    the log-densities), else 0."""
    x, y, s = xs.tolist(), ys.tolist(), slopes.tolist()
    for j in range(1, len(x) - 1):
        a, b, c = abs(y[j - 1]), abs(y[j]), abs(y[j + 1])
        top = a if a > b else b
        top = top if top > c else c
        tol = concavity_tol * (1.0 + top) * (1.0 / (x[j] - x[j - 1]) + 1.0 / (x[j + 1] - x[j]))
        if s[j] - s[j - 1] > tol:
            return j
    return 0


def _exp(x):
    """``exp(x)`` as C's: ``inf`` where it overflows (``math.exp`` raises OverflowError). The
    hat's log values are at most ``shift``, but a squeeze built from chords that are all
    rounding (a density narrower than the float64 spacing) can lie above the hat; the caller
    then refuses the hat alike on both backends."""
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def _segment_area(length, high, drop):
    """``int exp(line)`` over a segment of ``length`` whose line is ``high`` at its higher end
    and falls by ``drop >= 0`` along it (``-expm1`` for small falls; 0 without it where
    ``exp(high)`` underflows, as it does for most far start points)."""
    top = _exp(high)
    if top == 0.0:
        return 0.0
    factor = -math.expm1(-drop) / drop if drop > 0.0 else 1.0
    return top * length * factor


def hat_table(xs, ys, slopes, lo, hi, flat_drop):
    """The pieces of the hat on the points ``xs`` (k >= 3, increasing) with log-densities
    ``ys`` and chord slopes ``slopes`` inside the bracket ``[lo, hi]`` (an infinite end only
    where the outer chord decays towards it).

    Piece order: the left tail (when ``lo < xs[0]``), then per interval j the part left of
    the neighbours' chords' crossing (under ``L_{j-1}``) and the part right of it (under
    ``L_{j+1}``), then the right tail (when ``hi > xs[-1]``); empty pieces are left out. A piece
    whose hat falls by less than ``flat_drop`` is flat (constant at its higher end).

    Returns ``(table, area, cross, region, squeeze, hat_total, squeeze_total, shift)``: the
    piece table without its cumulative columns, each piece's hat area and each interval's
    squeeze area scaled by ``exp(-shift)`` (``shift`` the hat's highest log value), where the
    chords cross in each interval, each piece's region (0 left tail, j + 1 interval j, k right
    tail) and the sequential sums of the areas."""
    x, y, s = xs.tolist(), ys.tolist(), slopes.tolist()
    k = len(x)
    rows = []       # (left, right, ref_x, ref_y, slope, has_squeeze, interval, region)
    if lo < x[0]:
        rows.append((lo, x[0], x[0], y[0], s[0], False, 0, 0))
    cross = []
    for j in range(k - 1):
        if j == 0:                       # one neighbour: L_1 over the whole interval
            f = 0.0
        elif j == k - 2:                 # one neighbour: L_{k-3}
            f = 1.0
        else:
            # L_{j-1} (through x_j) and L_{j+1} (through x_{j+1}) cross at x_j + f*w_j, with f
            # in [0, 1] for a concave log p (clipped for the rounding the check allows)
            den = s[j - 1] - s[j + 1]
            f = (s[j] - s[j + 1]) / den if den > 0.0 else 0.5
            f = f if f > 0.0 else 0.0
            f = f if f < 1.0 else 1.0
        c = x[j] + f * (x[j + 1] - x[j])
        c = c if c > x[j] else x[j]
        c = c if c < x[j + 1] else x[j + 1]
        cross.append(c)
        s_prev = s[j - 1] if j > 0 else 0.0
        s_next = s[j + 1] if j < k - 2 else 0.0
        if c > x[j]:
            rows.append((x[j], c, x[j], y[j], s_prev, True, j, j + 1))
        if x[j + 1] > c:
            rows.append((c, x[j + 1], x[j + 1], y[j + 1], s_next, True, j, j + 1))
    if hi > x[-1]:
        rows.append((x[-1], hi, x[-1], y[-1], s[-1], False, k - 2, k))
    table = [[0.0] * PIECE_LEN for _ in rows]
    drops = []
    shift = -math.inf
    for row, (left, right, ref_x, ref_y, slope, has_squeeze, j, _) in zip(table, rows):
        falling = slope <= 0.0           # anchored at its higher end
        anchor = left if falling else right
        length = right - left
        rate = abs(slope)
        drop = rate * length             # (inf on an unbounded tail)
        hat_at = ref_y + slope * (anchor - ref_x)
        flat = drop < flat_drop
        hat_slope = 0.0 if flat else slope
        row[Piece.ANCHOR] = anchor
        row[Piece.DIRECTION] = 1.0 if falling else -1.0
        row[Piece.LENGTH] = length
        row[Piece.DECAY] = 0.0 if flat else 1.0 / rate
        row[Piece.HAT_AT] = hat_at
        row[Piece.HAT_SLOPE] = hat_slope
        if has_squeeze:                  # the interval's own chord L_j
            row[Piece.GAP_AT] = (y[j] + s[j] * (anchor - x[j])) - hat_at
            row[Piece.GAP_SLOPE] = s[j] - hat_slope
        else:
            row[Piece.GAP_AT] = -math.inf
            row[Piece.GAP_SLOPE] = 0.0
        drops.append(0.0 if flat else drop)
        shift = hat_at if hat_at > shift else shift
    area = []
    hat_total = 0.0
    for row, drop in zip(table, drops):
        high = row[Piece.HAT_AT] - shift
        if row[Piece.LENGTH] == math.inf:
            a = _exp(high) * row[Piece.DECAY]
        else:
            a = _segment_area(row[Piece.LENGTH], high, drop)
        area.append(a)
        hat_total += a
    squeeze = []
    squeeze_total = 0.0
    for j in range(k - 1):
        low_y, high_y = (y[j], y[j + 1]) if y[j] < y[j + 1] else (y[j + 1], y[j])
        a = _segment_area(x[j + 1] - x[j], high_y - shift, high_y - low_y)
        squeeze.append(a)
        squeeze_total += a
    return (np.array(table).reshape(len(rows), PIECE_LEN), np.array(area), np.array(cross),
            np.array([r[7] for r in rows], dtype=np.int64), np.array(squeeze),
            float(hat_total), float(squeeze_total), float(shift))   # floats, as the twin's


def hat_finish(table, area):
    """The sampling table and guide of a built hat, in place in ``table`` (its first rows):
    pieces whose probability vanishes in the sequential cumulative sum of ``area`` are left
    out (they could never be chosen); then the columns ``CUM_BEFORE``, ``CUM`` (divided by the total: the last is 1.0 exactly) and
    ``SHARE_SCALE`` (``LENGTH / (CUM - CUM_BEFORE)`` on a flat piece, else 0). The guide has
    ``4 << bit_length(m - 1)`` entries (a power of two, at least 4 per piece): ``guide[i]`` is
    the first piece with ``CUM > i / len(guide)``, at most the last piece."""
    keep, cum, running = [], [], 0.0
    for i, a in enumerate(area.tolist()):
        if running + a > running:
            running += a
            keep.append(i)
            cum.append(running)
    m = len(cum)
    if m < table.shape[0]:
        table[:m] = table[keep]          # the kept rows moved up, in order
        table = table[:m]
    total = cum[-1]
    cum = [c / total for c in cum]
    before = 0.0
    for row, c in zip(table, cum):
        row[Piece.CUM_BEFORE] = before
        row[Piece.CUM] = c
        flat = row[Piece.DECAY] == 0.0 and c > before     # (c == before: never chosen)
        row[Piece.SHARE_SCALE] = row[Piece.LENGTH] / (c - before) if flat else 0.0
        before = c
    size = 4 << (m - 1).bit_length()
    guide = np.empty(size, dtype=np.int64)
    i = 0
    for g in range(size):
        u = g / size
        while i < m - 1 and cum[i] <= u:
            i += 1
        guide[g] = i
    return table, guide


def hat_proposals(pieces, u_piece, e):
    """The proposals (and their piece indices) of the draws ``u_piece`` and ``e``."""
    last = pieces.shape[0] - 1
    k = np.minimum(np.searchsorted(pieces[:, Piece.CUM], u_piece, side="right"), last)
    p = pieces[k]
    length = p[:, Piece.LENGTH]
    t = e * p[:, Piece.DECAY]
    sloped = t - np.floor(t / length) * np.minimum(length, DBL_MAX)
    flat = (u_piece - p[:, Piece.CUM_BEFORE]) * p[:, Piece.SHARE_SCALE]
    offset = np.clip(flat + sloped, 0.0, length)
    return p[:, Piece.ANCHOR] + p[:, Piece.DIRECTION] * offset, k


def hat_sample(rng, pieces, guide, logp, n, prior_rate, max_proposals, stop_on_violation,
               violation_tol, out):
    """Sample ``out[:n]`` under the hat ``pieces`` (see the module docstring).

    ``guide`` is the compiled core's search start per ``1/len(guide)`` of probability (unused
    here: ``searchsorted`` gives the same piece). ``logp`` returns the target's float64
    log-densities of one array of points. Returns ``(n_proposed, n_accepted, n_evaluated,
    max_excess, x_at_max, logp_at_max, piece_at_max, status)``.
    """
    n_acc = n_exam = n_eval = n_drawn = n_dry = 0
    max_excess, x_max, logp_max, piece_max = -np.inf, np.nan, np.nan, -1
    status = Status.OK
    while n_acc < n:
        c = chunk_length(n - n_acc, n_exam, n_acc, prior_rate, n_dry, max_proposals - n_drawn)
        if c <= 0:
            status = Status.BUDGET
            break
        u_piece = rng.random(c)
        e = rng.standard_exponential(c)
        u_acc = rng.random(c)
        n_drawn += c
        x, k = hat_proposals(pieces, u_piece, e)
        p = pieces[k]
        step = x - p[:, Piece.ANCHOR]
        log_hat = p[:, Piece.HAT_AT] + p[:, Piece.HAT_SLOPE] * step
        gap = p[:, Piece.GAP_AT] + p[:, Piece.GAP_SLOPE] * step
        accepted = accept_test(gap, u_acc)
        ask = np.flatnonzero(~accepted)
        if ask.size:
            lp = logp(x[ask].copy())
            accepted[ask] = accept_test(lp - log_hat[ask], u_acc[ask])
            n_eval += ask.size
            above = lp - log_hat[ask]
            with np.errstate(invalid="ignore"):
                below = np.where(gap[ask] > -np.inf, (log_hat[ask] + gap[ask]) - lp, -np.inf)
            scale = 1.0 + np.abs(p[ask, Piece.HAT_AT]) + np.abs(log_hat[ask])
            excess = np.maximum(above, below) / scale
            j = int(np.argmax(excess))
            if excess[j] > max_excess:
                i = int(ask[j])
                max_excess, x_max, logp_max, piece_max = (float(excess[j]), float(x[i]),
                                                          float(lp[j]), int(k[i]))
            if stop_on_violation and max_excess > violation_tol:
                status = Status.VIOLATION
                break
        full = np.flatnonzero(np.cumsum(accepted) >= n - n_acc)
        end = int(full[0]) + 1 if full.size else c
        taken = x[:end][accepted[:end]]
        out[n_acc:n_acc + taken.shape[0]] = taken
        n_acc += taken.shape[0]
        n_exam += end
        if n_acc == 0:
            n_dry += 1
    return n_exam, n_acc, n_eval, max_excess, x_max, logp_max, piece_max, int(status)

