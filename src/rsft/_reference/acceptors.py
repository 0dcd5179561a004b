"""Reference (numpy) reward-acceptor kernels; twin of ``_kernels/acceptors.pxi``.

Conventions shared by both backends (kernels do arithmetic only; :mod:`rsft.acceptors`
validates and reads the counts the kernels report):

* Candidates come **in group order**: ``r`` is a C-contiguous float64 1-D array whose groups
  are the contiguous slices ``r[starts[g]:starts[g + 1]]`` (``starts``: int64, ``n_groups +
  1`` entries, from 0 to ``r.size``). Within a group candidates keep their input order.
  Rectangular rewards are the special case "one group per row" (``starts = 0, n, 2n, ...``).
  :func:`group_order` gives the permutation from input order to group order.
* A reward is *valid* when it is finite; ``-inf`` is a failed candidate (and
  :func:`mark_duplicates` turns duplicates into ``-inf``), never accepted, ignored by every
  maximum and quantile. NaN and ``+inf`` are not rewards: the acceptor kernels return how
  many they met (the caller raises) and treat them as failed candidates meanwhile.
* Outputs: ``out`` (bool, the decision per candidate in group order), ``n_valid`` and
  ``n_accepted`` (int64 per group), ``is_short`` (bool per group: fewer valid candidates than
  ``k`` (:func:`topk_accept`, :func:`rso_accept`) or ``min_per_group``) and ``is_topped_up``
  (bool per group: the top-up accepted at least one candidate).
* Uniforms are ``Generator.random`` doubles. Per-candidate uniforms ``u`` are one block
  ``rng.random(r.size)`` **in group order** (for rectangular rewards: C order, as before);
  a kernel that draws them draws the whole block, for every call.

Decisions (identical on both backends: comparisons and IEEE arithmetic only, except the rare
``log`` of the shared acceptance test and RSO's ``exp``, where numpy's SIMD functions could
differ from the C library's by one ulp; equal on every machine tested):

* threshold: ``r >= tau`` (``r > tau`` when ``strict``; the caller passes ``strict`` for
  ``tau = -inf``, so ``-inf`` fails).
* top-k: a group's candidates are ranked by the key ``(r descending, u ascending, position
  ascending)``; the first ``k[g]`` are accepted unless invalid.
* quantile: over the ``m`` valid rewards of a group sorted ascending ``x[0] <= ... <=
  x[m-1]``, ``h = (m - 1) q``, ``i = floor(h)``, ``t = h - i``, ``a = x[i]``, ``b =
  x[min(i + 1, m - 1)]``; the quantile is ``b - (b - a)(1 - t)`` when ``t >= 0.5`` else
  ``a + (b - a) t`` (numpy.quantile's default "linear" method, bit for bit), except where
  ``b - a`` overflows to ``+inf`` (``a`` and ``b`` near ``-DBL_MAX`` and ``+DBL_MAX``, where
  numpy gives NaN or ``-inf``): then ``a (1 - t) + b t``; accept the valid ``r >= quantile``
  (every tie at the quantile is kept).
* statistical RS: ``g = (r - r_max[g]) / beta``, accept iff ``1 - u <= exp(g)`` by the
  sampler's acceptance test (two exact polynomial squeezes, then ``log``). With
  ``use_group_max`` the kernel first writes each group's maximum valid reward into
  ``r_max`` (0 for a group without one); otherwise a valid reward above ``r_max`` counts as
  bad input.
* RSO (Liu et al. 2023, Algorithm 1), all groups in lockstep, pass by pass: the pool of a
  group is its valid candidates; a group is *open* while it has accepted fewer than ``k``
  and its pool is not empty. Pass ``p`` draws one uniform per pooled candidate of every open
  group (group order, then position), i.e. ``rng.random(total pool size)``; in each open
  group ``r_max`` is the pool's maximum and candidate after candidate, ``u < exp((r -
  r_max) / beta)`` accepts it (it leaves the pool) until the group has ``k``; the draws of
  the candidates after that point are consumed and unused. The pool's maximum always passes
  (``exp(0) = 1 > u``), so each pass accepts in every open group and there are at most
  ``min(k, largest group)`` passes.
* top-up (every acceptor, ``min_per_group = mm > 0``): a group that accepted ``c < mm``
  also accepts its best ``mm - c`` valid candidates not yet accepted, ranked like top-k.
  The tie keys are the acceptor's own uniforms (top-k, statistical RS); threshold, quantile
  and RSO draw ``u = rng.random(r.size)`` for it, after their decisions, whenever ``mm >
  0`` (even if no group needs a top-up).
"""

import numpy as np

from .sampler import accept_test

__all__ = ["group_order", "mark_duplicates", "threshold_accept", "quantile_accept",
           "topk_accept", "statistical_rs_accept", "rso_accept"]

# ---------------------------------------------------------------------------------------------
# Grouping
# ---------------------------------------------------------------------------------------------

def group_order(labels):
    """``(order, starts, group_labels)`` of int64 ``labels`` (one group label per candidate).

    ``order`` is the stable permutation sorting the labels (input positions in group order),
    or None when the labels are already non-decreasing (the fast path: no permutation);
    ``starts`` the offsets of the groups in that order (``n_groups + 1`` entries) and
    ``group_labels`` each group's label, ascending.
    """
    n = labels.size
    order = None
    if n > 1 and not (labels[1:] >= labels[:-1]).all():
        order = np.argsort(labels, kind="stable")
        labels = labels[order]
    first = np.flatnonzero(np.r_[n > 0, labels[1:] != labels[:-1]])
    starts = np.append(first, n).astype(np.int64)
    return order, starts, labels[first]


def _group_ids(starts):
    """The group index of every candidate (group order)."""
    return np.repeat(np.arange(starts.size - 1), np.diff(starts))


def mark_duplicates(r, keys, starts, n_duplicates):
    """Within each group, a valid candidate whose key equals an earlier valid candidate's key
    becomes ``-inf`` in ``r`` (in place); ``n_duplicates[g]`` counts them."""
    gid = _group_ids(starts)
    valid = np.flatnonzero(np.isfinite(r))
    # stable: equal (group, key) stay in position order, so the first of a run is kept
    by_key = valid[np.lexsort((keys[valid], gid[valid]))]
    same = ((gid[by_key[1:]] == gid[by_key[:-1]]) & (keys[by_key[1:]] == keys[by_key[:-1]]))
    dup = by_key[1:][same]
    r[dup] = -np.inf
    n_duplicates[...] = np.bincount(gid[dup], minlength=starts.size - 1)


def _count_bad(r):
    """Entries that are not rewards (NaN or ``+inf``)."""
    return int(np.count_nonzero(~(np.isfinite(r) | (r == -np.inf))))


def _finish(r, starts, u, min_per_group, out, n_valid, n_accepted, is_short, is_topped_up, need):
    """Counts, flags and the top-up, shared by every acceptor; ``need``: per-group count
    under which a group is short (``k`` or 0). No acceptor accepts a failed candidate, and a
    non-reward makes the call raise, so ``out`` needs no masking."""
    gid = _group_ids(starts)
    valid = np.isfinite(r)
    n_valid[...] = np.bincount(gid, weights=valid, minlength=starts.size - 1)
    n_accepted[...] = np.bincount(gid, weights=out, minlength=starts.size - 1)
    is_short[...] = n_valid < np.maximum(need, min_per_group)
    is_topped_up[...] = False
    if min_per_group == 0:
        return
    missing = np.minimum(min_per_group, n_valid) - n_accepted
    if not (missing > 0).any():
        return
    eligible = valid & ~out
    ranked = np.lexsort((u, -np.where(eligible, r, -np.inf), gid))
    rank = np.arange(r.size) - starts[gid]
    take = ranked[rank < missing[gid]]
    take = take[eligible[take]]
    out[take] = True
    added = np.bincount(gid[take], minlength=starts.size - 1)
    n_accepted += added
    is_topped_up[...] = added > 0


def _tie_keys(rng, n, min_per_group):
    return rng.random(n) if min_per_group > 0 else None


# ---------------------------------------------------------------------------------------------
# Acceptors
# ---------------------------------------------------------------------------------------------

def threshold_accept(rng, r, starts, tau, strict, min_per_group, out, n_valid, n_accepted,
                     is_short, is_topped_up):
    """``out = r > tau`` if ``strict`` else ``r >= tau``; draws only the top-up's tie keys.
    Returns the number of NaN / ``+inf`` rewards."""
    with np.errstate(invalid="ignore"):
        if strict:
            np.greater(r, tau, out=out)
        else:
            np.greater_equal(r, tau, out=out)
    u = _tie_keys(rng, r.size, min_per_group)
    _finish(r, starts, u, min_per_group, out, n_valid, n_accepted, is_short, is_topped_up, 0)
    return _count_bad(r)


def quantile_accept(rng, r, starts, q, min_per_group, out, n_valid, n_accepted, is_short,
                    is_topped_up):
    """Accept the valid rewards at or above their group's ``q``-quantile (module docstring).
    Returns the number of NaN / ``+inf`` rewards."""
    gid = _group_ids(starts)
    valid = np.isfinite(r)
    n_val = np.bincount(gid, weights=valid, minlength=starts.size - 1).astype(np.int64)
    # ascending within each group, invalid (-inf; NaN read as -inf) first, valid last
    ascending = r[np.lexsort((np.where(valid, r, -np.inf), gid))]
    h = (n_val - 1) * q
    i = np.floor(h)
    t = h - i
    first_valid = starts[1:] - n_val
    has = n_val > 0
    lo = (first_valid + i.astype(np.int64))[has]
    hi = np.minimum(lo + 1, starts[1:][has] - 1)
    a, b, t = ascending[lo], ascending[hi], t[has]
    with np.errstate(all="ignore"):
        d = b - a
        quantile = np.where(t >= 0.5, b - d * (1 - t), a + d * t)
        quantile = np.where(d == np.inf, a * (1 - t) + b * t, quantile)
        level = np.full(starts.size - 1, np.inf)
        level[has] = quantile
        np.greater_equal(r, level[gid], out=out)
    u = _tie_keys(rng, r.size, min_per_group)
    _finish(r, starts, u, min_per_group, out, n_valid, n_accepted, is_short, is_topped_up, 0)
    return _count_bad(r)


def topk_accept(rng, r, starts, k, min_per_group, out, n_valid, n_accepted, is_short,
                is_topped_up):
    """Accept the ``k[g]`` best candidates of every group (ties by the uniforms). Draws
    ``u = rng.random(r.size)``. Returns the number of NaN / ``+inf`` rewards."""
    u = rng.random(r.size)
    gid = _group_ids(starts)
    key = np.where(np.isfinite(r), r, -np.inf)
    ranked = np.lexsort((u, -key, gid))
    rank = np.arange(r.size) - starts[gid]
    out[...] = False
    out[ranked[rank < k[gid]]] = True
    out &= r > -np.inf          # a failed candidate among the first k is not accepted
    _finish(r, starts, u, min_per_group, out, n_valid, n_accepted, is_short, is_topped_up, k)
    return _count_bad(r)


def statistical_rs_accept(rng, r, starts, r_max, use_group_max, beta, min_per_group, out,
                          n_valid, n_accepted, is_short, is_topped_up):
    """Accept with probability ``exp((r - r_max[g]) / beta)``. Draws ``u = rng.random(r.size)``.
    Returns the number of NaN / ``+inf`` rewards and valid rewards above ``r_max``."""
    u = rng.random(r.size)
    gid = _group_ids(starts)
    valid = np.isfinite(r)
    if use_group_max:
        r_max[...] = 0.0
        if r.size:
            with np.errstate(invalid="ignore"):
                top = np.maximum.reduceat(np.where(valid, r, -np.inf), starts[:-1]) if (
                    starts.size > 1) else np.empty(0)
            sizes = np.diff(starts)
            fill = (sizes > 0) & (top > -np.inf)
            r_max[fill] = top[fill]
        over = 0
    else:
        over = int(np.count_nonzero(valid & (r > r_max[gid])))
    with np.errstate(all="ignore"):  # -inf and overflow to -inf: probability 0
        g = (r - r_max[gid]) / beta
        out[...] = accept_test(g, u) if r.size else False
    _finish(r, starts, u, min_per_group, out, n_valid, n_accepted, is_short, is_topped_up, 0)
    return _count_bad(r) + over


def rso_accept(rng, r, starts, beta, k, min_per_group, out, n_valid, n_accepted, is_short,
               is_topped_up):
    """RSO's Algorithm 1 in every group, all groups pass by pass (module docstring). Draws
    per pass ``rng.random(pooled candidates of the open groups)``, then the top-up's tie
    keys. Returns the number of NaN / ``+inf`` rewards."""
    n_groups = starts.size - 1
    gid = _group_ids(starts)
    pooled = np.isfinite(r)
    accepted = np.zeros(n_groups, np.int64)
    out[...] = False
    while True:
        in_pool = np.bincount(gid[pooled], minlength=n_groups)
        open_group = (accepted < k) & (in_pool > 0)
        pool = np.flatnonzero(pooled & open_group[gid])
        if pool.size == 0:
            break
        u = rng.random(pool.size)
        pool_gid = gid[pool]
        first = np.flatnonzero(np.r_[True, pool_gid[1:] != pool_gid[:-1]])
        segment = np.cumsum(np.r_[True, pool_gid[1:] != pool_gid[:-1]]) - 1
        r_pool = r[pool]
        pool_max = np.maximum.reduceat(r_pool, first)
        with np.errstate(under="ignore", over="ignore"):
            hit = u < np.exp((r_pool - pool_max[segment]) / beta)
        # hits before this one in its group's pass: a hit is taken while the group is is_short
        hits_before = np.cumsum(hit) - hit
        hits_before = hits_before - hits_before[first][segment]
        take = hit & (accepted[pool_gid] + hits_before < k)
        out[pool[take]] = True
        pooled[pool[take]] = False
        accepted += np.bincount(pool_gid[take], minlength=n_groups)
    u = _tie_keys(rng, r.size, min_per_group)
    _finish(r, starts, u, min_per_group, out, n_valid, n_accepted, is_short, is_topped_up, k)
    return _count_bad(r)
