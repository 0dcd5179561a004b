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
* Uniforms are ``Generator.random`` doubles. Per-candidate uniforms ``u`` are one stream
  ``rng.random(r.size)`` **in group order** (for rectangular rewards: C order, as before);
  a kernel that draws them draws all ``r.size``, for every call (here block after block of
  groups, which gives the same numbers: see "Blocks" below).

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
# Blocks
# ---------------------------------------------------------------------------------------------
# Every kernel here works on blocks of whole groups (at most GROUP_BLOCK groups, and about
# BLOCK_CANDIDATES candidates unless one group alone is larger), a few short numpy calls per
# block, so that Python runs its signal handlers (Ctrl-C) between blocks: one numpy call over
# every candidate (a lexsort of 5e7 rewards takes minutes) cannot be interrupted. The compiled
# kernels check for signals between blocks of GROUP_BLOCK groups too. Blocks never change a
# result: every decision is made within a group, and uniforms drawn block after block are the
# numbers of one ``rng.random(r.size)`` (and leave the Generator in the same state).
# group_order's scans and sort run on pieces of PIECE labels for the same reason. 2**16
# candidates keep a block's lexsort near 25 ms (2**20 take about 1 s).

GROUP_BLOCK = 65536
BLOCK_CANDIDATES = 1 << 16
PIECE = 1 << 16


def _blocks(starts):
    """``(g, c, block_starts)`` of consecutive blocks of whole groups, in group order: the
    block's groups ``g`` and candidates ``c`` (slices) and its ``starts`` from 0."""
    n_groups = starts.size - 1
    g0 = 0
    while g0 < n_groups:
        g1 = int(np.searchsorted(starts, starts[g0] + BLOCK_CANDIDATES, "right")) - 1
        g1 = min(max(g1, g0 + 1), g0 + GROUP_BLOCK, n_groups)
        yield slice(g0, g1), slice(starts[g0], starts[g1]), starts[g0:g1 + 1] - starts[g0]
        g0 = g1


def _pieces(n):
    """``(lo, hi)`` of consecutive pieces of at most PIECE of ``n`` positions."""
    return [(lo, min(lo + PIECE, n)) for lo in range(0, n, PIECE)]


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
    if not all((labels[max(lo, 1):hi] >= labels[max(lo, 1) - 1:hi - 1]).all()
               for lo, hi in _pieces(n)):
        order = _stable_order(labels)
        sorted_labels = np.empty_like(labels)
        for lo, hi in _pieces(n):
            sorted_labels[lo:hi] = labels[order[lo:hi]]
        labels = sorted_labels
    first = np.concatenate([np.zeros(int(n > 0), np.int64)] + [
        np.flatnonzero(labels[max(lo, 1):hi] != labels[max(lo, 1) - 1:hi - 1]) + max(lo, 1)
        for lo, hi in _pieces(n)])
    starts = np.append(first, n).astype(np.int64)
    return order, starts, labels[first]


def _stable_order(labels):
    """The stable permutation sorting ``labels``: one argsort up to PIECE labels,
    above that the compiled group_order's LSD radix sort on 8-bit digits of ``label - min``
    (modulo 2**64; as many passes as the labels' span needs), piece by piece: each pass
    counts every piece's digits, then moves each piece's labels to their places."""
    n = labels.size
    pieces = _pieces(n)
    if len(pieces) <= 1:
        return np.argsort(labels, kind="stable")
    low = min(int(labels[lo:hi].min()) for lo, hi in pieces)
    span = max(int(labels[lo:hi].max()) for lo, hi in pieces) - low
    key = np.empty(n, np.uint64)
    order = np.empty(n, np.int64)
    for lo, hi in pieces:
        key[lo:hi] = labels[lo:hi].view(np.uint64) - np.uint64(low % 2**64)
        order[lo:hi] = np.arange(lo, hi)
    for shift in range(0, max(span.bit_length(), 1), 8):
        def digits(lo, hi):
            return ((key[lo:hi] >> np.uint64(shift)) & np.uint64(255)).astype(np.uint8)
        counts = np.array([np.bincount(digits(lo, hi), minlength=256) for lo, hi in pieces])
        in_piece = np.cumsum(counts, axis=1) - counts      # a digit's first place in its piece
        total = counts.sum(axis=0)
        # a piece's digit d goes after every smaller digit and after the earlier pieces' d
        place = (np.cumsum(total) - total) + (np.cumsum(counts, axis=0) - counts)
        next_key, next_order = np.empty_like(key), np.empty_like(order)
        for p, (lo, hi) in enumerate(pieces):
            d = digits(lo, hi)
            by_digit = np.argsort(d, kind="stable")
            d = d[by_digit]
            to = place[p][d] + (np.arange(hi - lo) - in_piece[p][d])
            next_key[to] = key[lo:hi][by_digit]
            next_order[to] = order[lo:hi][by_digit]
        key, order = next_key, next_order
    return order


def _group_ids(starts):
    """The group index of every candidate (group order)."""
    return np.repeat(np.arange(starts.size - 1), np.diff(starts))


def mark_duplicates(r, keys, starts, n_duplicates):
    """Within each group, a valid candidate whose key equals an earlier valid candidate's key
    becomes ``-inf`` in ``r`` (in place); ``n_duplicates[g]`` counts them."""
    for g, c, starts_b in _blocks(starts):
        r_b, keys_b = r[c], keys[c]
        gid = _group_ids(starts_b)
        valid = np.flatnonzero(np.isfinite(r_b))
        # stable: equal (group, key) stay in position order, so the first of a run is kept
        by_key = valid[np.lexsort((keys_b[valid], gid[valid]))]
        same = ((gid[by_key[1:]] == gid[by_key[:-1]])
                & (keys_b[by_key[1:]] == keys_b[by_key[:-1]]))
        dup = by_key[1:][same]
        r_b[dup] = -np.inf
        n_duplicates[g] = np.bincount(gid[dup], minlength=starts_b.size - 1)


def _count_bad(r):
    """Entries that are not rewards (NaN or ``+inf``)."""
    return int(np.count_nonzero(~(np.isfinite(r) | (r == -np.inf))))


def _finish(r, starts, u, min_per_group, out, n_valid, n_accepted, is_short, is_topped_up, need):
    """Counts, flags and the top-up of one block, shared by every acceptor; ``need``:
    per-group count under which a group is short (``k`` or 0). No acceptor accepts a failed
    candidate, and a non-reward makes the call raise, so ``out`` needs no masking. Returns
    the block's number of NaN / ``+inf`` rewards."""
    gid = _group_ids(starts)
    valid = np.isfinite(r)
    n_valid[...] = np.bincount(gid, weights=valid, minlength=starts.size - 1)
    n_accepted[...] = np.bincount(gid, weights=out, minlength=starts.size - 1)
    is_short[...] = n_valid < np.maximum(need, min_per_group)
    is_topped_up[...] = False
    missing = np.minimum(min_per_group, n_valid) - n_accepted
    if min_per_group > 0 and (missing > 0).any():
        eligible = valid & ~out
        ranked = np.lexsort((u, -np.where(eligible, r, -np.inf), gid))
        rank = np.arange(r.size) - starts[gid]
        take = ranked[rank < missing[gid]]
        take = take[eligible[take]]
        out[take] = True
        added = np.bincount(gid[take], minlength=starts.size - 1)
        n_accepted += added
        is_topped_up[...] = added > 0
    return _count_bad(r)


def _tie_keys(rng, n, min_per_group):
    return rng.random(n) if min_per_group > 0 else None


# ---------------------------------------------------------------------------------------------
# Acceptors (each loops over _blocks; the ``_b`` names are one block's slices)
# ---------------------------------------------------------------------------------------------

def threshold_accept(rng, r, starts, tau, strict, min_per_group, out, n_valid, n_accepted,
                     is_short, is_topped_up):
    """``out = r > tau`` if ``strict`` else ``r >= tau``; draws only the top-up's tie keys.
    Returns the number of NaN / ``+inf`` rewards."""
    n_bad = 0
    for g, c, starts_b in _blocks(starts):
        r_b, out_b = r[c], out[c]
        with np.errstate(invalid="ignore"):
            if strict:
                np.greater(r_b, tau, out=out_b)
            else:
                np.greater_equal(r_b, tau, out=out_b)
        u = _tie_keys(rng, r_b.size, min_per_group)
        n_bad += _finish(r_b, starts_b, u, min_per_group, out_b, n_valid[g], n_accepted[g],
                         is_short[g], is_topped_up[g], 0)
    return n_bad


def quantile_accept(rng, r, starts, q, min_per_group, out, n_valid, n_accepted, is_short,
                    is_topped_up):
    """Accept the valid rewards at or above their group's ``q``-quantile (module docstring).
    Returns the number of NaN / ``+inf`` rewards."""
    n_bad = 0
    for g, c, starts_b in _blocks(starts):
        r_b, out_b = r[c], out[c]
        gid = _group_ids(starts_b)
        valid = np.isfinite(r_b)
        n_val = np.bincount(gid, weights=valid, minlength=starts_b.size - 1).astype(np.int64)
        # ascending within each group, invalid (-inf; NaN read as -inf) first, valid last
        ascending = r_b[np.lexsort((np.where(valid, r_b, -np.inf), gid))]
        h = (n_val - 1) * q
        i = np.floor(h)
        t = h - i
        first_valid = starts_b[1:] - n_val
        has = n_val > 0
        lo = (first_valid + i.astype(np.int64))[has]
        hi = np.minimum(lo + 1, starts_b[1:][has] - 1)
        a, b, t = ascending[lo], ascending[hi], t[has]
        with np.errstate(all="ignore"):
            d = b - a
            quantile = np.where(t >= 0.5, b - d * (1 - t), a + d * t)
            quantile = np.where(d == np.inf, a * (1 - t) + b * t, quantile)
            level = np.full(starts_b.size - 1, np.inf)
            level[has] = quantile
            np.greater_equal(r_b, level[gid], out=out_b)
        u = _tie_keys(rng, r_b.size, min_per_group)
        n_bad += _finish(r_b, starts_b, u, min_per_group, out_b, n_valid[g], n_accepted[g],
                         is_short[g], is_topped_up[g], 0)
    return n_bad


def topk_accept(rng, r, starts, k, min_per_group, out, n_valid, n_accepted, is_short,
                is_topped_up):
    """Accept the ``k[g]`` best candidates of every group (ties by the uniforms). Draws
    ``u = rng.random(r.size)``. Returns the number of NaN / ``+inf`` rewards."""
    n_bad = 0
    for g, c, starts_b in _blocks(starts):
        r_b, out_b = r[c], out[c]
        u = rng.random(r_b.size)
        gid = _group_ids(starts_b)
        key = np.where(np.isfinite(r_b), r_b, -np.inf)
        ranked = np.lexsort((u, -key, gid))
        rank = np.arange(r_b.size) - starts_b[gid]
        out_b[...] = False
        out_b[ranked[rank < k[g][gid]]] = True
        out_b &= r_b > -np.inf          # a failed candidate among the first k is not accepted
        n_bad += _finish(r_b, starts_b, u, min_per_group, out_b, n_valid[g], n_accepted[g],
                         is_short[g], is_topped_up[g], k[g])
    return n_bad


def statistical_rs_accept(rng, r, starts, r_max, use_group_max, beta, min_per_group, out,
                          n_valid, n_accepted, is_short, is_topped_up):
    """Accept with probability ``exp((r - r_max[g]) / beta)``. Draws ``u = rng.random(r.size)``.
    Returns the number of NaN / ``+inf`` rewards and valid rewards above ``r_max``."""
    n_bad = 0
    for g, c, starts_b in _blocks(starts):
        r_b, out_b, r_max_b = r[c], out[c], r_max[g]
        u = rng.random(r_b.size)
        gid = _group_ids(starts_b)
        valid = np.isfinite(r_b)
        if use_group_max:
            r_max_b[...] = 0.0
            if r_b.size:
                with np.errstate(invalid="ignore"):
                    top = np.maximum.reduceat(np.where(valid, r_b, -np.inf), starts_b[:-1])
                fill = (np.diff(starts_b) > 0) & (top > -np.inf)
                r_max_b[fill] = top[fill]
        else:
            n_bad += int(np.count_nonzero(valid & (r_b > r_max_b[gid])))
        with np.errstate(all="ignore"):  # -inf and overflow to -inf: probability 0
            out_b[...] = accept_test((r_b - r_max_b[gid]) / beta, u) if r_b.size else False
        n_bad += _finish(r_b, starts_b, u, min_per_group, out_b, n_valid[g], n_accepted[g],
                         is_short[g], is_topped_up[g], 0)
    return n_bad


def rso_accept(rng, r, starts, beta, k, min_per_group, out, n_valid, n_accepted, is_short,
               is_topped_up):
    """RSO's Algorithm 1 in every group, all groups pass by pass (module docstring). Draws
    per pass ``rng.random(pooled candidates of the open groups)``, then the top-up's tie
    keys. Returns the number of NaN / ``+inf`` rewards."""
    pooled = np.empty(r.size, np.bool_)
    accepted = np.zeros(starts.size - 1, np.int64)
    blocks = list(_blocks(starts))
    for g, c, starts_b in blocks:
        np.isfinite(r[c], out=pooled[c])
        out[c] = False
    while blocks:
        # a pass, block after block (the stream is pass-major); a block without an open
        # group never gets one again
        blocks = [(g, c, starts_b) for g, c, starts_b in blocks
                  if _rso_pass(rng, r[c], starts_b, beta, k, pooled[c], accepted[g], out[c])]
    n_bad = 0
    for g, c, starts_b in _blocks(starts):
        u = _tie_keys(rng, c.stop - c.start, min_per_group)
        n_bad += _finish(r[c], starts_b, u, min_per_group, out[c], n_valid[g], n_accepted[g],
                         is_short[g], is_topped_up[g], k)
    return n_bad


def _rso_pass(rng, r, starts, beta, k, pooled, accepted, out):
    """One RSO pass over one block's open groups (updates ``pooled``, ``accepted`` and
    ``out`` in place); returns the number of uniforms drawn (0: no open group left)."""
    n_groups = starts.size - 1
    gid = _group_ids(starts)
    in_pool = np.bincount(gid[pooled], minlength=n_groups)
    open_group = (accepted < k) & (in_pool > 0)
    pool = np.flatnonzero(pooled & open_group[gid])
    if pool.size == 0:
        return 0
    u = rng.random(pool.size)
    pool_gid = gid[pool]
    first = np.flatnonzero(np.r_[True, pool_gid[1:] != pool_gid[:-1]])
    segment = np.cumsum(np.r_[True, pool_gid[1:] != pool_gid[:-1]]) - 1
    r_pool = r[pool]
    pool_max = np.maximum.reduceat(r_pool, first)
    with np.errstate(under="ignore", over="ignore"):
        hit = u < np.exp((r_pool - pool_max[segment]) / beta)
    # hits before this one in its group's pass: a hit is taken while the group is short
    hits_before = np.cumsum(hit) - hit
    hits_before = hits_before - hits_before[first][segment]
    take = hit & (accepted[pool_gid] + hits_before < k)
    out[pool[take]] = True
    pooled[pool[take]] = False
    accepted += np.bincount(pool_gid[take], minlength=n_groups)
    return pool.size
