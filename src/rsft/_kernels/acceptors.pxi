# Reward-acceptor kernels (included by _core.pyx after sampler.pxi); twin of
# rsft._reference.acceptors (read its docstring for the conventions, the group order, the draw
# order and the decision rules both follow).
#
# Candidates come in group order: group g is r[starts[g]:starts[g + 1]]. Every acceptor runs
# one pass per group over its candidates (decision, counts, the bad-input count, the top-up),
# on blocks of GROUP_BLOCK groups without the GIL, checking for Ctrl-C between blocks; a block
# touches only its own groups' slices, so blocks are independent of each other (RSO's passes
# run over all open groups in turn, as its stream requires). Uniforms come from next_double
# (exactly Generator.random) in blocks drawn under the bit generator's lock. Uses get_bitgen,
# pcg64_inline and fill_uniform (bitgen.pxi) and, for StatisticalRS, the sampler's accept()
# (sampler.pxi: same squeezes, same log fallback as the reference).

from libc.float cimport DBL_MAX
from libc.math cimport INFINITY, exp, floor
from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport qsort

# The two flat loops every call runs over all candidates, compiled for AVX2 / AVX-512F as well
# (the runtime ISA dispatch of optim.pxi: target_clones, chosen at load time): baseline SSE2
# has no packed compare-and-narrow from doubles to bytes, so without it they run scalar. The
# clones differ only in vector width; comparisons and integer counts are exact.
cdef extern from *:
    """
    #ifdef RSFT_OPTIM_CLONES
    #define RSFT_ACCEPT_CLONED RSFT_CLONED
    #else
    #define RSFT_ACCEPT_CLONED
    #endif
    static void rsft_compare_range(double const *, unsigned char *, Py_ssize_t, double,
                                   int) RSFT_ACCEPT_CLONED;
    static Py_ssize_t rsft_count_range(double const *, unsigned char *, Py_ssize_t,
                                       Py_ssize_t *, Py_ssize_t *) RSFT_ACCEPT_CLONED;
    """

cdef enum:
    GROUP_BLOCK = 65536     # groups per nogil block; Ctrl-C is checked between blocks
    # uniforms per draw of fill_uniforms, and labels per stretch of group_order's scans:
    # Ctrl-C is checked between them
    UNIFORM_PIECE = 1 << 20
    SMALL_SORT = 24         # insertion sort up to this size, qsort above


# ---------------------------------------------------------------------------------------------
# Scalar helpers and small sorts
# ---------------------------------------------------------------------------------------------

cdef inline bint is_reward(double x) noexcept nogil:
    """Finite: a valid reward (-inf is a failed candidate; NaN and +inf are not rewards)."""
    return -INFINITY < x < INFINITY


cdef inline bint ranks_ahead(const double *r, const double *u, Py_ssize_t i,
                             Py_ssize_t j) noexcept nogil:
    """Candidate i ranks ahead of j under the key (r descending, u ascending, index)."""
    if r[i] != r[j]:
        return r[i] > r[j]
    if u[i] != u[j]:
        return u[i] < u[j]
    return i < j


cdef inline void heap_sift_down(const double *r, const double *u, Py_ssize_t *h,
                                Py_ssize_t size, Py_ssize_t pos) noexcept nogil:
    """Restore the heap below ``pos``; the root is the candidate ranked last of the heap."""
    cdef Py_ssize_t child, item = h[pos]
    while True:
        child = 2 * pos + 1
        if child >= size:
            break
        if child + 1 < size and ranks_ahead(r, u, h[child], h[child + 1]):
            child += 1
        if not ranks_ahead(r, u, item, h[child]):
            break
        h[pos] = h[child]
        pos = child
    h[pos] = item


cdef int compare_doubles(const void *a, const void *b) noexcept nogil:
    cdef double x = (<const double *>a)[0], y = (<const double *>b)[0]
    return (x > y) - (x < y)


cdef void sort_doubles(double *x, Py_ssize_t n) noexcept nogil:
    """Ascending sort of finite doubles."""
    cdef Py_ssize_t i, j
    cdef double v
    if n > SMALL_SORT:
        qsort(x, n, sizeof(double), compare_doubles)
        return
    for i in range(1, n):
        v = x[i]
        j = i
        while j > 0 and x[j - 1] > v:
            x[j] = x[j - 1]
            j -= 1
        x[j] = v


cdef double select_kth(double *x, Py_ssize_t n, Py_ssize_t k) noexcept nogil:
    """The k-th smallest of n finite doubles (0-based), rearranging x so that x[:k] <= x[k]
    <= x[k+1:] (Hoare's selection, median-of-three pivots; the value does not depend on the
    rearrangement)."""
    cdef Py_ssize_t lo = 0, hi = n - 1, i, j, mid
    cdef double pivot, t
    while hi - lo > SMALL_SORT:
        mid = lo + (hi - lo) // 2
        # median of three at mid, with x[lo] <= x[mid] <= x[hi]
        if x[mid] < x[lo]:
            x[mid], x[lo] = x[lo], x[mid]
        if x[hi] < x[lo]:
            x[hi], x[lo] = x[lo], x[hi]
        if x[hi] < x[mid]:
            x[hi], x[mid] = x[mid], x[hi]
        pivot = x[mid]
        i = lo
        j = hi
        while i <= j:
            while x[i] < pivot:
                i += 1
            while x[j] > pivot:
                j -= 1
            if i <= j:
                t = x[i]
                x[i] = x[j]
                x[j] = t
                i += 1
                j -= 1
        # now x[lo:j+1] <= pivot <= x[i:hi+1], and x[j+1:i] == pivot
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            return x[k]
    sort_doubles(x + lo, hi - lo + 1)
    return x[k]


cdef struct KeyedPosition:
    int64_t key
    int64_t pos


cdef int compare_keyed(const void *a, const void *b) noexcept nogil:
    cdef const KeyedPosition *x = <const KeyedPosition *>a
    cdef const KeyedPosition *y = <const KeyedPosition *>b
    if x.key != y.key:
        return (x.key > y.key) - (x.key < y.key)
    return (x.pos > y.pos) - (x.pos < y.pos)


cdef void sort_keyed(KeyedPosition *x, Py_ssize_t n) noexcept nogil:
    """Sort by (key, position): a total order, so the result does not depend on the sort."""
    cdef Py_ssize_t i, j
    cdef KeyedPosition v
    if n > SMALL_SORT:
        qsort(x, n, sizeof(KeyedPosition), compare_keyed)
        return
    for i in range(1, n):
        v = x[i]
        j = i
        while j > 0 and compare_keyed(&x[j - 1], &v) > 0:
            x[j] = x[j - 1]
            j -= 1
        x[j] = v


# ---------------------------------------------------------------------------------------------
# Flat loops (cloned per ISA, see the top) and one group
# ---------------------------------------------------------------------------------------------

cdef void compare_range "rsft_compare_range"(const double *r, unsigned char *out, Py_ssize_t n,
                                             double tau, int strict) noexcept nogil:
    """``out = r > tau`` if ``strict`` else ``r >= tau``."""
    cdef Py_ssize_t i
    if strict:
        for i in range(n):
            out[i] = r[i] > tau
    else:
        for i in range(n):
            out[i] = r[i] >= tau


cdef Py_ssize_t count_range "rsft_count_range"(const double *r, unsigned char *out,
                                               Py_ssize_t n, Py_ssize_t *n_valid,
                                               Py_ssize_t *n_accepted) noexcept nogil:
    """Count the valid rewards and the accepted candidates; return the number of non-rewards
    (NaN, +inf). No acceptor accepts a failed candidate, and a non-reward makes the call
    raise, so ``out`` needs no masking. Two loops, each of one element width, so both
    vectorise: ``x <= DBL_MAX`` holds for the finite rewards and -inf alone (NaN compares
    false), and the accepted flags add up in 32-bit chunks (4 bytes per lane, not 8)."""
    cdef Py_ssize_t i, start = 0, stop, reward_or_failed = 0, failed = 0, accepted_count = 0
    cdef unsigned int chunk_accepted
    cdef double x
    for i in range(n):
        x = r[i]
        reward_or_failed += x <= DBL_MAX
        failed += x == -INFINITY
    while start < n:
        stop = min(n, start + (1 << 30))
        chunk_accepted = 0
        for i in range(start, stop):
            chunk_accepted += out[i]
        accepted_count += chunk_accepted
        start = stop
    n_valid[0] = reward_or_failed - failed
    n_accepted[0] = accepted_count
    return n - reward_or_failed


cdef void topk_row(const double *r, const double *u, Py_ssize_t n, Py_ssize_t k,
                   Py_ssize_t *h, unsigned char *out) noexcept nogil:
    """Mark the k best of n candidates by heap selection, O(n log k); a failed candidate
    (r = -inf) among them stays unmarked, and k = 0 marks none."""
    cdef Py_ssize_t i, pos
    for i in range(n):
        out[i] = 0
    if k <= 0:
        return
    if k >= n:
        for i in range(n):
            out[i] = r[i] > -INFINITY
        return
    for i in range(k):
        h[i] = i
    # heapify: the root becomes the worst of the first k
    pos = k // 2
    while pos > 0:
        pos -= 1
        heap_sift_down(r, u, h, k, pos)
    for i in range(k, n):
        if ranks_ahead(r, u, i, h[0]):
            h[0] = i
            heap_sift_down(r, u, h, k, 0)
    for i in range(k):
        out[h[i]] = r[h[i]] > -INFINITY


cdef struct Groups:
    # the candidates in group order and the per-group outputs of one kernel call
    const double *r
    const int64_t *starts
    const double *u             # per-candidate uniforms (tie keys), or NULL
    Py_ssize_t min_per_group
    unsigned char *out
    int64_t *n_valid
    int64_t *n_accepted
    unsigned char *short_
    unsigned char *topped_up
    # scratch of the largest group's size
    double *keys
    unsigned char *marks
    Py_ssize_t *heap


cdef Py_ssize_t finish_group(Groups *G, Py_ssize_t g, Py_ssize_t need) noexcept nogil:
    """Counts, the short flag and the top-up of group g after its decisions (the reference's
    ``_finish``); returns the number of non-rewards (NaN, +inf) in the group."""
    cdef Py_ssize_t lo = G.starts[g], s = G.starts[g + 1] - lo, i, missing
    cdef const double *r = G.r + lo
    cdef unsigned char *out = G.out + lo
    cdef Py_ssize_t n_valid, n_accepted, n_bad, added = 0
    n_bad = count_range(r, out, s, &n_valid, &n_accepted)
    G.short_[g] = n_valid < max(need, G.min_per_group)
    G.topped_up[g] = 0
    missing = min(G.min_per_group, n_valid) - n_accepted
    if missing > 0:
        # the best valid candidates not yet accepted, ranked like top-k
        for i in range(s):
            G.keys[i] = r[i] if is_reward(r[i]) and not out[i] else -INFINITY
        topk_row(G.keys, G.u + lo, s, missing, G.heap, G.marks)
        for i in range(s):
            added += G.marks[i]
            out[i] |= G.marks[i]
        n_accepted += added
        G.topped_up[g] = added > 0
    G.n_valid[g] = n_valid
    G.n_accepted[g] = n_accepted
    return n_bad


cdef double group_quantile(const double *r, Py_ssize_t s, double q, double *x) noexcept nogil:
    """numpy.quantile's "linear" q-quantile of the group's valid rewards (+inf when it has
    none), bit for bit: the same index, the same two-sided interpolation (but where ``b - a``
    overflows, see the reference's module docstring)."""
    cdef Py_ssize_t i, m = 0, lo, hi
    cdef double h, t, a, b, d
    for i in range(s):
        if is_reward(r[i]):
            x[m] = r[i]
            m += 1
    if m == 0:
        return INFINITY
    h = <double>(m - 1) * q
    t = h - floor(h)
    lo = <Py_ssize_t>floor(h)
    a = select_kth(x, m, lo)
    b = a
    for i in range(lo + 1, m):      # the next order statistic: the least of the rest
        b = x[i] if i == lo + 1 or x[i] < b else b
    d = b - a
    if d == INFINITY:
        # b - a overflows (a < 0 < b, both near DBL_MAX): numpy's form gives NaN or -inf here;
        # the weighted mean cannot overflow and is exact at t = 0 and t = 1
        return a * (1.0 - t) + b * t
    # numpy interpolates from the nearer end (exact at t = 0 and t = 1)
    if t >= 0.5:
        return b - d * (1.0 - t)
    return a + d * t


# ---------------------------------------------------------------------------------------------
# Blocks of groups (no GIL)
# ---------------------------------------------------------------------------------------------

cdef Py_ssize_t threshold_block(Groups *G, Py_ssize_t g0, Py_ssize_t g1, double tau,
                                bint strict) noexcept nogil:
    cdef Py_ssize_t g, lo, n_bad = 0
    for g in range(g0, g1):     # group by group: finish_group reads the rewards from L1
        lo = G.starts[g]
        compare_range(G.r + lo, G.out + lo, G.starts[g + 1] - lo, tau, strict)
        n_bad += finish_group(G, g, 0)
    return n_bad


cdef Py_ssize_t quantile_block(Groups *G, Py_ssize_t g0, Py_ssize_t g1,
                               double q) noexcept nogil:
    cdef Py_ssize_t g, i, lo, hi, n_bad = 0
    cdef double level
    for g in range(g0, g1):
        lo = G.starts[g]
        hi = G.starts[g + 1]
        level = group_quantile(G.r + lo, hi - lo, q, G.keys)
        for i in range(lo, hi):
            G.out[i] = G.r[i] >= level
        n_bad += finish_group(G, g, 0)
    return n_bad


cdef Py_ssize_t topk_block(Groups *G, Py_ssize_t g0, Py_ssize_t g1,
                           const int64_t *k) noexcept nogil:
    cdef Py_ssize_t g, lo, n_bad = 0
    for g in range(g0, g1):
        lo = G.starts[g]
        topk_row(G.r + lo, G.u + lo, G.starts[g + 1] - lo, k[g], G.heap, G.out + lo)
        n_bad += finish_group(G, g, k[g])
    return n_bad


cdef Py_ssize_t statistical_rs_block(Groups *G, Py_ssize_t g0, Py_ssize_t g1, double *r_max,
                                     bint use_group_max, double beta) noexcept nogil:
    """Returns the non-rewards plus, with a given bound, the valid rewards above it."""
    cdef Py_ssize_t g, i, lo, hi, n_bad = 0
    cdef double top, bound
    for g in range(g0, g1):
        lo = G.starts[g]
        hi = G.starts[g + 1]
        if use_group_max:
            top = -INFINITY
            for i in range(lo, hi):
                if is_reward(G.r[i]) and G.r[i] > top:
                    top = G.r[i]
            # a group whose candidates all failed: any finite bound (0) rejects them all
            r_max[g] = top if top > -INFINITY else 0.0
        bound = r_max[g]
        for i in range(lo, hi):
            n_bad += (not use_group_max) and is_reward(G.r[i]) and G.r[i] > bound
            G.out[i] = accept((G.r[i] - bound) / beta, G.u[i])
        n_bad += finish_group(G, g, 0)
    return n_bad


# ---------------------------------------------------------------------------------------------
# Entry points (same names and signatures as rsft._reference.acceptors)
# ---------------------------------------------------------------------------------------------

cdef enum:
    RADIX_BITS = 8          # group_order's digit: 256 buckets (few write streams)
    RADIX_BUCKETS = 256


cdef void radix_pass(const uint64_t *key, const int64_t *pos, uint64_t *key_out,
                     int64_t *pos_out, Py_ssize_t n, int shift, int64_t *counts) noexcept nogil:
    """One stable counting pass of (key, position) pairs on the digit of ``key`` at
    ``shift``: reads sequentially, writes into RADIX_BUCKETS (256) sequential streams."""
    cdef Py_ssize_t i, d
    for d in range(RADIX_BUCKETS + 1):
        counts[d] = 0
    for i in range(n):
        counts[((key[i] >> shift) & (RADIX_BUCKETS - 1)) + 1] += 1
    for d in range(1, RADIX_BUCKETS + 1):
        counts[d] += counts[d - 1]
    for i in range(n):
        d = <Py_ssize_t>((key[i] >> shift) & (RADIX_BUCKETS - 1))
        key_out[counts[d]] = key[i]
        pos_out[counts[d]] = pos[i]
        counts[d] += 1


def group_order(const int64_t[::1] labels):
    """``(order, starts, group_labels)`` (see ``rsft._reference.group_order``): None for
    labels already in order, else a stable LSD radix sort on 8-bit digits (RADIX_BITS) of
    ``label - min`` modulo 2**64 (as many passes as the labels' span needs: 1 for a span
    below 256, 3 below 2**24, 8 for labels near both int64 extremes)."""
    cdef Py_ssize_t n = labels.shape[0], i, g, n_groups
    cdef uint64_t lo, span = 0
    cdef int shift
    cdef bint in_order = True
    cdef int64_t smallest
    for i in range(1, n):
        if labels[i] < labels[i - 1]:
            in_order = False
            break
        if i % UNIFORM_PIECE == 0:
            PyErr_CheckSignals()
    if in_order:
        return (None,) + runs(<const uint64_t *>&labels[0] if n else NULL, n, 0)
    keys_a, keys_b = np.empty(n, dtype=np.uint64), np.empty(n, dtype=np.uint64)
    order_a, order_b = np.arange(n, dtype=np.int64), np.empty(n, dtype=np.int64)
    cdef uint64_t[::1] key = keys_a, key_b = keys_b
    cdef int64_t[::1] pos = order_a, pos_b = order_b
    cdef uint64_t *key_src = &key[0]
    cdef uint64_t *key_dst = &key_b[0]
    cdef int64_t *pos_src = &pos[0]
    cdef int64_t *pos_dst = &pos_b[0]
    cdef int64_t[::1] counts = np.empty(RADIX_BUCKETS + 1, dtype=np.int64)
    smallest = labels[0]
    for i in range(n):
        smallest = min(smallest, labels[i])
    lo = <uint64_t>smallest
    for i in range(n):          # differences modulo 2**64: exact for any int64 labels
        key[i] = <uint64_t>labels[i] - lo
        span = max(span, key[i])
    shift = 0
    while shift < 64 and (span >> shift) != 0:
        PyErr_CheckSignals()        # between passes (a pass over 2e8 labels takes ~1 s)
        with nogil:
            radix_pass(key_src, pos_src, key_dst, pos_dst, n, shift, &counts[0])
        key_src, key_dst = key_dst, key_src
        pos_src, pos_dst = pos_dst, pos_src
        shift += RADIX_BITS
    order = order_a if pos_src == &pos[0] else order_b
    return (order,) + runs(key_src, n, lo)


cdef tuple runs(const uint64_t *key, Py_ssize_t n, uint64_t lo):
    """``(starts, group_labels)`` of the runs of equal sorted keys (label = key + lo, modulo
    2**64; labels in order are passed as their own bits with lo = 0)."""
    cdef Py_ssize_t i, g = 0, n_groups = 1 if n else 0
    for i in range(1, n):
        n_groups += key[i] != key[i - 1]
        if i % UNIFORM_PIECE == 0:
            PyErr_CheckSignals()
    starts = np.empty(n_groups + 1, dtype=np.int64)
    group_labels = np.empty(n_groups, dtype=np.int64)
    cdef int64_t[::1] st = starts, gl = group_labels
    for i in range(n):
        if i == 0 or key[i] != key[i - 1]:
            st[g] = i
            gl[g] = <int64_t>(key[i] + lo)
            g += 1
        if i % UNIFORM_PIECE == 0:
            PyErr_CheckSignals()
    st[n_groups] = n
    return starts, group_labels


def mark_duplicates(double[::1] r, const int64_t[::1] keys, const int64_t[::1] starts,
                    int64_t[::1] n_duplicates):
    """Later valid candidates with an earlier valid candidate's key become -inf (see
    ``rsft._reference.mark_duplicates``)."""
    cdef Py_ssize_t n_groups = starts.shape[0] - 1, g, i, m, lo, hi
    cdef Py_ssize_t largest = 0
    for g in range(n_groups):
        largest = max(largest, starts[g + 1] - starts[g])
    scratch = np.empty((largest, 2), dtype=np.int64)
    cdef int64_t[:, ::1] sc = scratch
    cdef KeyedPosition *x = <KeyedPosition *>&sc[0, 0] if largest else NULL
    with nogil:
        for g in range(n_groups):
            lo = starts[g]
            hi = starts[g + 1]
            m = 0
            for i in range(lo, hi):
                if is_reward(r[i]):
                    x[m].key = keys[i]
                    x[m].pos = i
                    m += 1
            sort_keyed(x, m)
            n_duplicates[g] = 0
            for i in range(1, m):
                if x[i].key == x[i - 1].key:     # the first of a run has the lowest position
                    r[x[i].pos] = -INFINITY
                    n_duplicates[g] += 1


cdef int fill_uniforms(rng, double *u, Py_ssize_t n) except -1:
    """``u[:n] = rng.random(n)``, under the bit generator's lock, in pieces of UNIFORM_PIECE
    with a check for Ctrl-C between them (2e8 draws take about a second). The pieces draw the
    same stream as one call: each double is the next draw of the bit generator."""
    bit_generator = rng.bit_generator
    cdef bitgen_t *bg = get_bitgen(bit_generator)
    cdef int fast = pcg64_inline(bit_generator)
    cdef Py_ssize_t lo = 0, m
    while lo < n:
        m = min(<Py_ssize_t>UNIFORM_PIECE, n - lo)
        with bit_generator.lock, nogil:
            fill_uniform(bg, fast, u + lo, m)
        lo += m
        PyErr_CheckSignals()
    return 0


cdef class _GroupCall:
    """The outputs, uniforms and scratch of one acceptor call, wrapped as a ``Groups``."""
    cdef Groups G
    cdef Py_ssize_t n_groups
    cdef object arrays      # keeps every buffer the pointers refer to alive

    def __cinit__(self, const double[::1] r, const int64_t[::1] starts,
                  Py_ssize_t min_per_group, out, int64_t[::1] n_valid, int64_t[::1] n_accepted,
                  is_short, is_topped_up):
        cdef Py_ssize_t g, largest = 0
        cdef unsigned char[::1] o = out.view(np.uint8)
        cdef unsigned char[::1] sh = is_short.view(np.uint8)
        cdef unsigned char[::1] tu = is_topped_up.view(np.uint8)
        self.n_groups = starts.shape[0] - 1
        for g in range(self.n_groups):
            largest = max(largest, starts[g + 1] - starts[g])
        keys = np.empty(largest + 1)
        marks = np.empty(largest + 1, dtype=np.uint8)
        heap = np.empty(largest + 1, dtype=np.intp)
        self.arrays = [r, starts, out, n_valid, n_accepted, is_short, is_topped_up, keys,
                       marks, heap]
        cdef double[::1] kv = keys
        cdef unsigned char[::1] mv = marks
        cdef Py_ssize_t[::1] hv = heap
        self.G.r = &r[0] if r.shape[0] else NULL
        self.G.starts = &starts[0]
        self.G.u = NULL
        self.G.min_per_group = min_per_group
        self.G.out = &o[0] if o.shape[0] else NULL
        self.G.n_valid = &n_valid[0] if n_valid.shape[0] else NULL
        self.G.n_accepted = &n_accepted[0] if n_accepted.shape[0] else NULL
        self.G.short_ = &sh[0] if sh.shape[0] else NULL
        self.G.topped_up = &tu[0] if tu.shape[0] else NULL
        self.G.keys = &kv[0]
        self.G.marks = &mv[0]
        self.G.heap = &hv[0]

    cdef draw_uniforms(self, rng):
        """One ``Generator.random`` per candidate (group order): the tie keys and the
        per-candidate uniforms of top-k and statistical RS."""
        cdef Py_ssize_t n = self.G.starts[self.n_groups]
        u = np.empty(n + 1)
        self.arrays.append(u)
        cdef double[::1] uv = u
        self.G.u = &uv[0]
        fill_uniforms(rng, &uv[0], n)

    cdef Py_ssize_t finish_all(self, Py_ssize_t need) except -1:
        """finish_group on every group (RSO's counts and top-up after its passes)."""
        cdef Py_ssize_t g0, g, n_bad = 0
        for g0 in range(0, self.n_groups, GROUP_BLOCK):
            with nogil:
                for g in range(g0, min(g0 + GROUP_BLOCK, self.n_groups)):
                    n_bad += finish_group(&self.G, g, need)
            PyErr_CheckSignals()
        return n_bad


def threshold_accept(rng, const double[::1] r, const int64_t[::1] starts, double tau,
                     bint strict, Py_ssize_t min_per_group, out, int64_t[::1] n_valid,
                     int64_t[::1] n_accepted, is_short, is_topped_up):
    """``r > tau`` if ``strict`` else ``r >= tau`` (see ``rsft._reference.threshold_accept``)."""
    cdef _GroupCall call = _GroupCall(r, starts, min_per_group, out, n_valid, n_accepted,
                                      is_short, is_topped_up)
    cdef Py_ssize_t g0, n_bad = 0
    if min_per_group > 0:
        call.draw_uniforms(rng)
    for g0 in range(0, call.n_groups, GROUP_BLOCK):
        with nogil:
            n_bad += threshold_block(&call.G, g0, min(g0 + GROUP_BLOCK, call.n_groups), tau,
                                     strict)
        PyErr_CheckSignals()
    return n_bad


def quantile_accept(rng, const double[::1] r, const int64_t[::1] starts, double q,
                    Py_ssize_t min_per_group, out, int64_t[::1] n_valid,
                    int64_t[::1] n_accepted, is_short, is_topped_up):
    """Valid rewards at or above their group's q-quantile (see
    ``rsft._reference.quantile_accept``)."""
    cdef _GroupCall call = _GroupCall(r, starts, min_per_group, out, n_valid, n_accepted,
                                      is_short, is_topped_up)
    cdef Py_ssize_t g0, n_bad = 0
    if min_per_group > 0:
        call.draw_uniforms(rng)
    for g0 in range(0, call.n_groups, GROUP_BLOCK):
        with nogil:
            n_bad += quantile_block(&call.G, g0, min(g0 + GROUP_BLOCK, call.n_groups), q)
        PyErr_CheckSignals()
    return n_bad


def topk_accept(rng, const double[::1] r, const int64_t[::1] starts, const int64_t[::1] k,
                Py_ssize_t min_per_group, out, int64_t[::1] n_valid, int64_t[::1] n_accepted,
                is_short, is_topped_up):
    """The ``k[g]`` best candidates of every group (see ``rsft._reference.topk_accept``)."""
    cdef _GroupCall call = _GroupCall(r, starts, min_per_group, out, n_valid, n_accepted,
                                      is_short, is_topped_up)
    cdef Py_ssize_t g0, n_bad = 0
    cdef const int64_t *k_of_group = &k[0] if k.shape[0] else NULL
    call.draw_uniforms(rng)
    for g0 in range(0, call.n_groups, GROUP_BLOCK):
        with nogil:
            n_bad += topk_block(&call.G, g0, min(g0 + GROUP_BLOCK, call.n_groups), k_of_group)
        PyErr_CheckSignals()
    return n_bad


def statistical_rs_accept(rng, const double[::1] r, const int64_t[::1] starts,
                          double[::1] r_max, bint use_group_max, double beta,
                          Py_ssize_t min_per_group, out, int64_t[::1] n_valid,
                          int64_t[::1] n_accepted, is_short, is_topped_up):
    """Accept with probability ``exp((r - r_max[g]) / beta)`` (see
    ``rsft._reference.statistical_rs_accept``)."""
    cdef _GroupCall call = _GroupCall(r, starts, min_per_group, out, n_valid, n_accepted,
                                      is_short, is_topped_up)
    cdef Py_ssize_t g0, n_bad = 0
    call.draw_uniforms(rng)
    for g0 in range(0, call.n_groups, GROUP_BLOCK):
        with nogil:
            n_bad += statistical_rs_block(&call.G, g0, min(g0 + GROUP_BLOCK, call.n_groups),
                                          &r_max[0] if r_max.shape[0] else NULL,
                                          use_group_max, beta)
        PyErr_CheckSignals()
    return n_bad


def rso_accept(rng, const double[::1] r, const int64_t[::1] starts, double beta, int64_t k,
               Py_ssize_t min_per_group, out, int64_t[::1] n_valid, int64_t[::1] n_accepted,
               is_short, is_topped_up):
    """RSO's Algorithm 1 in every group, pass by pass (see ``rsft._reference.rso_accept``).

    The pool holds the positions of the candidates still in play, group after group; each
    pass draws one uniform per pooled candidate of the open groups, decides them in order and
    compacts the pool in place, dropping the accepted candidates and the closed groups."""
    cdef _GroupCall call = _GroupCall(r, starts, min_per_group, out, n_valid, n_accepted,
                                      is_short, is_topped_up)
    cdef Py_ssize_t n_groups = call.n_groups, n = starts[n_groups]
    cdef Py_ssize_t g, i, a, n_open = 0, n_pooled = 0, lo, hi, kept, c, j
    cdef int64_t accepted
    cdef double top
    cdef unsigned char[::1] o = out.view(np.uint8)
    pool_arr = np.empty(n + 1, dtype=np.int64)
    open_arr = np.empty((n_groups + 1, 3), dtype=np.int64)   # group, pool start, pool end
    u_arr = np.empty(n + 1)
    acc_arr = np.zeros(n_groups + 1, dtype=np.int64)
    cdef int64_t[::1] pool = pool_arr
    cdef int64_t[:, ::1] open_ = open_arr
    cdef double[::1] u = u_arr
    cdef int64_t[::1] n_acc = acc_arr
    with nogil:
        for i in range(n):
            o[i] = 0
        if k > 0:
            for g in range(n_groups):
                lo = n_pooled
                for i in range(starts[g], starts[g + 1]):
                    if is_reward(r[i]):
                        pool[n_pooled] = i
                        n_pooled += 1
                if n_pooled > lo:
                    open_[n_open, 0] = g
                    open_[n_open, 1] = lo
                    open_[n_open, 2] = n_pooled
                    n_open += 1
    while n_open > 0:
        fill_uniforms(rng, &u[0], n_pooled)
        with nogil:
            j = 0          # the next uniform
            kept = 0       # the compacted pool's length
            a = 0          # open groups so far
            for c in range(n_open):
                g = open_[c, 0]
                lo = open_[c, 1]
                hi = open_[c, 2]
                top = -INFINITY
                for i in range(lo, hi):
                    top = max(top, r[pool[i]])
                accepted = n_acc[g]
                open_[a, 1] = kept
                for i in range(lo, hi):
                    if accepted < k and u[j] < exp((r[pool[i]] - top) / beta):
                        o[pool[i]] = 1
                        accepted += 1
                    else:
                        pool[kept] = pool[i]
                        kept += 1
                    j += 1
                n_acc[g] = accepted
                if accepted < k and kept > open_[a, 1]:
                    open_[a, 0] = g
                    open_[a, 2] = kept
                    a += 1
                else:
                    kept = open_[a, 1]          # closed: its pool is dropped
            n_open = a
            n_pooled = kept
        PyErr_CheckSignals()
    if min_per_group > 0:
        call.draw_uniforms(rng)
    return call.finish_all(k)
