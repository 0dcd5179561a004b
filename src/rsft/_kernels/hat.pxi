# The piecewise-exponential hat (included by _core.pyx after sampler.pxi, whose acceptance test
# and chunk schedule it reuses): the sampling strategy ``piecewise_exp`` of LogConcaveSampler.
# Twin of rsft._reference.hat, which is the specification (the draw order, the position on a
# piece and the checks are in its docstring; the piece columns in rsft._program.Piece).
#
# Per chunk: the draws (under the Generator's lock), one pass that places every proposal and
# accepts it under the squeeze or queues it for the target (nogil), one call of the target on
# the queued points (with the GIL), one pass that decides the queued points, checks them
# against the hat and the squeeze and stores the acceptances in order (nogil).
from libc.math cimport floor
from libc.float cimport DBL_MAX
from libc.stdint cimport int64_t


cdef struct HatState:          # what a hat_sample call has seen so far
    Py_ssize_t n_acc
    Py_ssize_t n_exam
    Py_ssize_t n_eval           # target evaluations
    double max_excess           # largest relative excess over the evaluated points
    double x_max
    double logp_max
    Py_ssize_t piece_max
    int status


cdef inline Py_ssize_t choose_piece(const double *cum, Py_ssize_t n_pieces,
                                    const int64_t *guide, Py_ssize_t n_guide,
                                    double u) noexcept nogil:
    """The first piece whose cumulative probability exceeds ``u``. ``n_guide`` is a power of
    two, so ``u*n_guide`` is exact and ``guide[j]`` (the answer for ``u = j/n_guide``) is never
    past the answer for any ``u`` in its cell: the search only steps forward, a step or two."""
    cdef Py_ssize_t i = <Py_ssize_t>guide[<Py_ssize_t>(u * <double>n_guide)]
    while i < n_pieces - 1 and cum[i] <= u:
        i += 1
    return i


cdef Py_ssize_t place_and_squeeze(const double *pieces, const double *cum, Py_ssize_t n_pieces,
                                  const int64_t *guide, Py_ssize_t n_guide,
                                  const double *u_piece, const double *e, const double *u_acc,
                                  Py_ssize_t c, double *x, Py_ssize_t *piece_of,
                                  double *log_hat, unsigned char *accepted,
                                  double *queued) noexcept nogil:
    """Pass 1: place the chunk's proposals, accept those under the squeeze, copy the others to
    ``queued`` (in order); returns how many were queued."""
    cdef Py_ssize_t i, k, m = 0
    cdef const double *p
    cdef double offset, xi, step, length
    for i in range(c):
        k = choose_piece(cum, n_pieces, guide, n_guide, u_piece[i])
        p = pieces + k * PIECE_LEN
        length = p[PIECE_LENGTH]
        # sloped piece: an exponential with mean DECAY, modulo the length, has exactly the
        # hat's truncated exponential shape on the piece (the reference's docstring says why;
        # min(length, DBL_MAX) keeps 0*inf out of a tail). Flat piece (DECAY = 0): the piece's
        # share of u, stretched to its length. Both are computed, the other one is 0: no branch
        offset = e[i] * p[PIECE_DECAY]
        offset = offset - floor(offset / length) * min(length, DBL_MAX)
        offset = (u_piece[i] - p[PIECE_CUM_BEFORE]) * p[PIECE_SHARE_SCALE] + offset
        offset = min(max(offset, 0.0), length)
        xi = p[PIECE_ANCHOR] + p[PIECE_DIRECTION] * offset
        step = xi - p[PIECE_ANCHOR]
        x[i] = xi
        piece_of[i] = k
        log_hat[i] = p[PIECE_HAT_AT] + p[PIECE_HAT_SLOPE] * step
        accepted[i] = accept(p[PIECE_GAP_AT] + p[PIECE_GAP_SLOPE] * step, u_acc[i])
        if not accepted[i]:
            queued[m] = xi
            m += 1
    return m


cdef void decide_queued(const double *pieces, const double *x, const Py_ssize_t *piece_of,
                        const double *log_hat, const double *u_acc, Py_ssize_t c,
                        const double *log_target, unsigned char *accepted,
                        HatState *state) noexcept nogil:
    """Pass 2a: the target's verdict on the queued proposals (in order) and their check against
    the hat and the squeeze (the largest relative excess, first occurrence)."""
    cdef Py_ssize_t i, j = 0
    cdef const double *p
    cdef double lp, above, below, gap, excess
    for i in range(c):
        if accepted[i]:
            continue
        p = pieces + piece_of[i] * PIECE_LEN
        lp = log_target[j]
        j += 1
        accepted[i] = accept(lp - log_hat[i], u_acc[i])
        above = lp - log_hat[i]
        if p[PIECE_GAP_AT] > -INFINITY:
            gap = p[PIECE_GAP_AT] + p[PIECE_GAP_SLOPE] * (x[i] - p[PIECE_ANCHOR])
            below = (log_hat[i] + gap) - lp
        else:
            below = -INFINITY
        excess = (above if above >= below else below) / (1.0 + fabs(p[PIECE_HAT_AT])
                                                         + fabs(log_hat[i]))
        if excess > state.max_excess:
            state.max_excess = excess
            state.x_max = x[i]
            state.logp_max = lp
            state.piece_max = piece_of[i]
    state.n_eval += j


cdef void store_accepted(const double *x, const unsigned char *accepted, Py_ssize_t c,
                         Py_ssize_t n, double *out, HatState *state) noexcept nogil:
    """Pass 2b: store the acceptances in order (branch-free), up to the n-th."""
    cdef Py_ssize_t i, n_acc = state.n_acc
    for i in range(c):
        out[n_acc] = x[i]
        n_acc += accepted[i]
        if n_acc == n:
            state.n_exam += i + 1
            break
    else:
        state.n_exam += c
    state.n_acc = n_acc


def hat_sample(rng, const double[:, ::1] pieces, const int64_t[::1] guide, logp, Py_ssize_t n,
               double prior_rate, Py_ssize_t max_proposals, bint stop_on_violation,
               double violation_tol, double[::1] out):
    """Sample ``out[:n]`` under the hat ``pieces`` (see ``rsft._reference.hat.hat_sample``)."""
    bit_generator = rng.bit_generator
    lock = bit_generator.lock
    cdef bitgen_t *bg = get_bitgen(bit_generator)
    cdef int fast = pcg64_inline(bit_generator)
    cdef Py_ssize_t n_pieces = pieces.shape[0], n_guide = guide.shape[0]
    cdef double[::1] cum = np.ascontiguousarray(pieces[:, PIECE_CUM])
    cdef double[::1] draws, x, log_hat, queued
    cdef const double[::1] log_target
    cdef Py_ssize_t[::1] piece_of
    cdef unsigned char[::1] accepted
    cdef Py_ssize_t c, m, capacity = 0, n_drawn = 0, n_dry = 0
    cdef HatState state
    state.n_acc = 0
    state.n_exam = 0
    state.n_eval = 0
    state.max_excess = -INFINITY
    state.x_max = NAN
    state.logp_max = NAN
    state.piece_max = -1
    state.status = STATUS_OK
    while state.n_acc < n:
        c = chunk_len(n - state.n_acc, state.n_exam, state.n_acc, prior_rate, n_dry,
                      max_proposals - n_drawn)
        if c <= 0:
            state.status = STATUS_BUDGET
            break
        if c > capacity:            # the chunk arrays, grown to the longest chunk
            capacity = c
            draws = np.empty(3 * c)
            x, log_hat, queued = np.empty(c), np.empty(c), np.empty(c)
            piece_of = np.empty(c, dtype=np.intp)
            accepted = np.empty(c, dtype=np.uint8)
        with lock, nogil:
            fill_uniform(bg, fast, &draws[0], c)
            random_standard_exponential_fill(bg, c, &draws[c])
            fill_uniform(bg, fast, &draws[2 * c], c)
        n_drawn += c
        with nogil:
            m = place_and_squeeze(&pieces[0, 0], &cum[0], n_pieces, &guide[0], n_guide,
                                  &draws[0], &draws[c], &draws[2 * c], c, &x[0],
                                  &piece_of[0], &log_hat[0], &accepted[0], &queued[0])
        if m > 0:
            log_target = logp(np.asarray(queued)[:m].copy())  # the callable may keep it
            with nogil:
                decide_queued(&pieces[0, 0], &x[0], &piece_of[0], &log_hat[0], &draws[2 * c],
                              c, &log_target[0], &accepted[0], &state)
            if stop_on_violation and state.max_excess > violation_tol:
                state.status = STATUS_VIOLATION
                break
        with nogil:
            store_accepted(&x[0], &accepted[0], c, n, &out[0], &state)
        PyErr_CheckSignals()
        if state.n_acc == 0:
            n_dry += 1
    return (state.n_exam, state.n_acc, state.n_eval, state.max_excess, state.x_max,
            state.logp_max, state.piece_max, state.status)


# ---------------------------------------------------------------------------------------------
# Construction arithmetic (twin of the reference's hat_check_concave, hat_table, hat_finish,
# which say what each computes): the same operations in the same order, the C library's exp and
# expm1 as Python's math module calls them, so that both backends build the same hat to the bit.
# ---------------------------------------------------------------------------------------------
from libc.math cimport expm1


def hat_check_concave(const double[::1] xs, const double[::1] ys, const double[::1] slopes,
                      double concavity_tol):
    """See ``rsft._reference.hat.hat_check_concave``."""
    cdef Py_ssize_t j, k = xs.shape[0]
    cdef double a, b, c, top, tol
    for j in range(1, k - 1):
        a, b, c = fabs(ys[j - 1]), fabs(ys[j]), fabs(ys[j + 1])
        top = a if a > b else b
        top = top if top > c else c
        tol = concavity_tol * (1.0 + top) * (1.0 / (xs[j] - xs[j - 1])
                                             + 1.0 / (xs[j + 1] - xs[j]))
        if slopes[j] - slopes[j - 1] > tol:
            return j
    return 0


cdef inline double segment_area(double length, double high, double drop) noexcept nogil:
    cdef double top = exp(high), factor
    if top == 0.0:
        return 0.0
    factor = -expm1(-drop) / drop if drop > 0.0 else 1.0
    return top * length * factor


cdef inline Py_ssize_t add_row(double *rows, Py_ssize_t m, double left, double right,
                               double ref_x, double ref_y, double slope, double has_squeeze,
                               double interval, double region) noexcept nogil:
    cdef double *r = rows + 8 * m
    r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7] = (left, right, ref_x, ref_y, slope,
                                                      has_squeeze, interval, region)
    return m + 1


def hat_table(const double[::1] xs, const double[::1] ys, const double[::1] slopes, double lo,
              double hi, double flat_drop):
    """See ``rsft._reference.hat.hat_table``."""
    cdef Py_ssize_t k = xs.shape[0], j, i, m = 0
    cdef double[:, ::1] rows = np.empty((2 * k, 8))   # the reference's row tuples
    cdef double[::1] cross = np.empty(k - 1)
    cdef double f, den, c, s_prev, s_next
    if lo < xs[0]:
        m = add_row(&rows[0, 0], m, lo, xs[0], xs[0], ys[0], slopes[0], 0.0, 0.0, 0.0)
    for j in range(k - 1):
        if j == 0:
            f = 0.0
        elif j == k - 2:
            f = 1.0
        else:
            den = slopes[j - 1] - slopes[j + 1]
            f = (slopes[j] - slopes[j + 1]) / den if den > 0.0 else 0.5
            f = f if f > 0.0 else 0.0
            f = f if f < 1.0 else 1.0
        c = xs[j] + f * (xs[j + 1] - xs[j])
        c = c if c > xs[j] else xs[j]
        c = c if c < xs[j + 1] else xs[j + 1]
        cross[j] = c
        s_prev = slopes[j - 1] if j > 0 else 0.0
        s_next = slopes[j + 1] if j < k - 2 else 0.0
        if c > xs[j]:
            m = add_row(&rows[0, 0], m, xs[j], c, xs[j], ys[j], s_prev, 1.0, j, j + 1)
        if xs[j + 1] > c:
            m = add_row(&rows[0, 0], m, c, xs[j + 1], xs[j + 1], ys[j + 1], s_next, 1.0, j,
                        j + 1)
    if hi > xs[k - 1]:
        m = add_row(&rows[0, 0], m, xs[k - 1], hi, xs[k - 1], ys[k - 1], slopes[k - 2], 0.0,
                    k - 2, k)
    table_arr = np.zeros((m, PIECE_LEN))
    area_arr, region_arr = np.empty(m), np.empty(m, dtype=np.int64)
    squeeze_arr = np.empty(k - 1)
    cdef double[:, ::1] table = table_arr
    cdef double[::1] area = area_arr, squeeze = squeeze_arr
    cdef int64_t[::1] region = region_arr
    cdef double *r
    cdef double *p
    cdef double left, right, ref_x, ref_y, slope, anchor, length, rate, drop, hat_at, hat_slope
    cdef double shift = -INFINITY, hat_total = 0.0, squeeze_total = 0.0, high, a, low_y, high_y
    cdef bint falling, flat
    for i in range(m):
        r = &rows[i, 0]
        p = &table[i, 0]
        left, right, ref_x, ref_y, slope = r[0], r[1], r[2], r[3], r[4]
        j = <Py_ssize_t>r[6]
        region[i] = <int64_t>r[7]
        falling = slope <= 0.0
        anchor = left if falling else right
        length = right - left
        rate = fabs(slope)
        drop = rate * length
        hat_at = ref_y + slope * (anchor - ref_x)
        flat = drop < flat_drop
        hat_slope = 0.0 if flat else slope
        p[PIECE_ANCHOR] = anchor
        p[PIECE_DIRECTION] = 1.0 if falling else -1.0
        p[PIECE_LENGTH] = length
        p[PIECE_DECAY] = 0.0 if flat else 1.0 / rate
        p[PIECE_HAT_AT] = hat_at
        p[PIECE_HAT_SLOPE] = hat_slope
        if r[5] != 0.0:
            p[PIECE_GAP_AT] = (ys[j] + slopes[j] * (anchor - xs[j])) - hat_at
            p[PIECE_GAP_SLOPE] = slopes[j] - hat_slope
        else:
            p[PIECE_GAP_AT] = -INFINITY
            p[PIECE_GAP_SLOPE] = 0.0
        area[i] = 0.0 if flat else drop      # (the fall, until the areas below)
        shift = hat_at if hat_at > shift else shift
    for i in range(m):
        p = &table[i, 0]
        high = p[PIECE_HAT_AT] - shift
        if p[PIECE_LENGTH] == INFINITY:
            a = exp(high) * p[PIECE_DECAY]
        else:
            a = segment_area(p[PIECE_LENGTH], high, area[i])
        area[i] = a
        hat_total += a
    for j in range(k - 1):
        if ys[j] < ys[j + 1]:
            low_y, high_y = ys[j], ys[j + 1]
        else:
            low_y, high_y = ys[j + 1], ys[j]
        a = segment_area(xs[j + 1] - xs[j], high_y - shift, high_y - low_y)
        squeeze[j] = a
        squeeze_total += a
    return (table_arr, area_arr, np.asarray(cross), region_arr, squeeze_arr, hat_total,
            squeeze_total, shift)


def hat_finish(table, const double[::1] area):
    """See ``rsft._reference.hat.hat_finish``."""
    cdef double[:, ::1] rows = table
    cdef Py_ssize_t n = area.shape[0], i, m = 0, g, size
    cdef double running = 0.0, total, before, c, u
    cum_arr = np.empty(n)
    cdef double[::1] cum = cum_arr
    for i in range(n):
        if running + area[i] > running:
            running += area[i]
            if m < i:                   # a vanished piece before: move this one up
                rows[m, :] = rows[i, :]
            cum[m] = running
            m += 1
    total = cum[m - 1]
    for i in range(m):
        cum[i] = cum[i] / total
    before = 0.0
    for i in range(m):
        c = cum[i]
        rows[i, PIECE_CUM_BEFORE] = before
        rows[i, PIECE_CUM] = c
        if rows[i, PIECE_DECAY] == 0.0 and c > before:
            rows[i, PIECE_SHARE_SCALE] = rows[i, PIECE_LENGTH] / (c - before)
        else:
            rows[i, PIECE_SHARE_SCALE] = 0.0
        before = c
    size = 4 << (<object>(m - 1)).bit_length()
    guide_arr = np.empty(size, dtype=np.int64)
    cdef int64_t[::1] guide = guide_arr
    i = 0
    for g in range(size):
        u = <double>g / <double>size
        while i < m - 1 and cum[i] <= u:
            i += 1
        guide[g] = i
    return (table[:m] if m < rows.shape[0] else table), guide_arr
