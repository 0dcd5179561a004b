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

import numpy as np

from .._program import Piece, Status
from .sampler import accept_test, chunk_length

DBL_MAX = float(np.finfo(np.float64).max)

__all__ = ["hat_sample"]


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

