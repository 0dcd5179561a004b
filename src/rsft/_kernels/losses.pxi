# Loss kernels (included by _core.pyx); twin of rsft._reference.losses (read its docstring for
# the formulas, the conventions for empty arrays and the order of operations both follow).
#
# Arithmetic is done in double whatever the storage type; float32 inputs are widened on load
# and results rounded on store, exactly as the reference does with astype(float64).
#
# Totals are ordered by block, not by thread: the rows are cut into blocks of about
# LOSS_BLOCK_ELEMENTS elements (the layout depends only on the shape), each block's partial sum
# is accumulated in double in a fixed order, and the partial sums are added in block order. The
# blocks run on up to ``n_threads`` threads, so the value and the gradient are the same bits for
# every ``n_threads``. (The reference uses numpy's pairwise sum: totals agree to rounding.)
from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.math cimport exp, log, log1p, fabs
from libc.stdint cimport int64_t
from libc.stdlib cimport malloc, free


# ---------------------------------------------------------------------------------------------
# Scalar helpers
# ---------------------------------------------------------------------------------------------

cdef inline double bce_point(double z, double y, double *sig) noexcept nogil:
    """BCE with logits at one point: returns max(z, 0) - z*y + log1p(exp(-|z|)) and stores
    sigmoid(z) (1/(1+e) for z >= 0, e/(1+e) otherwise, e = exp(-|z|)) in sig[0]."""
    cdef double e = exp(-fabs(z))
    cdef double inv = 1.0 / (1.0 + e)
    cdef double zpos = z if z > 0.0 else 0.0
    sig[0] = inv if z >= 0.0 else e * inv
    return (zpos - z * y) + log1p(e)


cdef inline double row_shifted_exp(const floating *z, Py_ssize_t k, double *e,
                                   double *m_out) noexcept nogil:
    """e[j] = exp(z[j] - m) with m = max_j z[j]; returns sum_j e[j] (left to right)."""
    cdef Py_ssize_t j
    cdef double m = z[0], s = 0.0, v
    for j in range(1, k):
        v = z[j]
        if v > m:
            m = v
    for j in range(k):
        v = exp(<double>z[j] - m)
        e[j] = v
        s += v
    m_out[0] = m
    return s


cdef inline Py_ssize_t bisect_right(const double *c, Py_ssize_t n, double v) noexcept nogil:
    """Number of c[j] <= v for j < n (c non-decreasing)."""
    cdef Py_ssize_t lo = 0, hi = n, mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if v < c[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo


# ---------------------------------------------------------------------------------------------
# Array loops
# ---------------------------------------------------------------------------------------------

cdef inline double mse_point(const floating *p, const floating *t, Py_ssize_t e, bint weighted,
                             double w, double c, floating *lo, floating *go) noexcept nogil:
    """Element e: stores l = d*d (times w if weighted) in lo and c*d in go when given;
    returns l."""
    cdef double d = <double>p[e] - <double>t[e]
    cdef double l = d * d
    if weighted:
        l = w * l
    if lo != NULL:
        lo[e] = <floating>l
    if go != NULL:
        go[e] = <floating>(c * d)
    return l


cdef enum:
    MSE_LANES = 8     # partial sums of the unweighted MSE loop (vector lanes, a fixed order)


cdef inline double mse_lanes(const floating *p, const floating *t, double c, floating *go,
                             Py_ssize_t e, Py_ssize_t end, bint store) noexcept nogil:
    """Unweighted MSE over elements [e, end) without per-element losses (``store``: write the
    gradient to ``go``): the element arithmetic of mse_point, the squares summed into
    MSE_LANES partial sums (element e + j into lane j), added pairwise at the end. Each group of
    MSE_LANES elements is loaded, then summed, then stored, in loops of fixed length: straight-line
    code the compiler vectorises (a store cannot alias a later load). The order of the sum is
    fixed by the block."""
    cdef double acc[MSE_LANES]
    cdef double d[MSE_LANES]
    cdef Py_ssize_t j, m
    for j in range(MSE_LANES):
        acc[j] = 0.0
    while e < end:
        m = min(<Py_ssize_t>MSE_LANES, end - e)
        if m == MSE_LANES:
            for j in range(MSE_LANES):
                d[j] = <double>p[e + j] - <double>t[e + j]
            for j in range(MSE_LANES):
                acc[j] += d[j] * d[j]
            if store:
                for j in range(MSE_LANES):
                    go[e + j] = <floating>(c * d[j])
        else:
            for j in range(m):
                d[j] = <double>p[e + j] - <double>t[e + j]
                acc[j] += d[j] * d[j]
                if store:
                    go[e + j] = <floating>(c * d[j])
        e += m
    return (((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])))


cdef double mse_rows(const floating[:, ::1] pred, const floating[:, ::1] target,
                     const floating[::1] w, double grad_scale, floating[:, ::1] loss_out,
                     floating[:, ::1] grad_out, Py_ssize_t r0, Py_ssize_t r1) noexcept nogil:
    """Rows [r0, r1): the partial sum. Unweighted (or one column): one flat loop over the
    elements with four partial sums (breaks the add latency chain). Weighted with several
    columns: row by row."""
    cdef Py_ssize_t k = pred.shape[1], i, j, e = r0 * k, end = r1 * k
    cdef bint has_w = w.shape[0] != 0
    cdef floating *lo = &loss_out[0, 0] if loss_out.shape[0] != 0 else NULL
    cdef floating *go = &grad_out[0, 0] if grad_out.shape[0] != 0 else NULL
    cdef const floating *p = &pred[0, 0]
    cdef const floating *t = &target[0, 0]
    cdef double c = 2.0 * grad_scale, wi, s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
    if not has_w and lo == NULL:     # the common case: value and gradient of the mean or sum
        if go != NULL:
            return mse_lanes(p, t, c, go, e, end, True)
        return mse_lanes(p, t, c, go, e, end, False)
    if not has_w:
        while e + 4 <= end:
            s0 += mse_point(p, t, e, False, 1.0, c, lo, go)
            s1 += mse_point(p, t, e + 1, False, 1.0, c, lo, go)
            s2 += mse_point(p, t, e + 2, False, 1.0, c, lo, go)
            s3 += mse_point(p, t, e + 3, False, 1.0, c, lo, go)
            e += 4
        while e < end:
            s0 += mse_point(p, t, e, False, 1.0, c, lo, go)
            e += 1
    elif k == 1:
        while e + 4 <= end:
            wi = w[e]
            s0 += mse_point(p, t, e, True, wi, c * wi, lo, go)
            wi = w[e + 1]
            s1 += mse_point(p, t, e + 1, True, wi, c * wi, lo, go)
            wi = w[e + 2]
            s2 += mse_point(p, t, e + 2, True, wi, c * wi, lo, go)
            wi = w[e + 3]
            s3 += mse_point(p, t, e + 3, True, wi, c * wi, lo, go)
            e += 4
        while e < end:
            wi = w[e]
            s0 += mse_point(p, t, e, True, wi, c * wi, lo, go)
            e += 1
    else:
        for i in range(r0, r1):
            wi = w[i]
            for j in range(k):
                s0 += mse_point(p, t, i * k + j, True, wi, c * wi, lo, go)
    return (s0 + s1) + (s2 + s3)


cdef double bce_rows(const floating[:, ::1] pred, const floating[:, ::1] target,
                     const floating[::1] w, double grad_scale, floating[:, ::1] loss_out,
                     floating[:, ::1] grad_out, Py_ssize_t r0, Py_ssize_t r1) noexcept nogil:
    cdef Py_ssize_t k = pred.shape[1], i, j
    cdef bint has_w = w.shape[0] != 0
    cdef bint has_l = loss_out.shape[0] != 0
    cdef bint has_g = grad_out.shape[0] != 0
    cdef double ci = grad_scale, wi = 1.0, y, l, s, total = 0.0
    for i in range(r0, r1):
        if has_w:
            wi = w[i]
            ci = grad_scale * wi
        for j in range(k):
            y = target[i, j]
            l = bce_point(pred[i, j], y, &s)
            if has_w:
                l = wi * l
            total += l
            if has_l:
                loss_out[i, j] = <floating>l
            if has_g:
                grad_out[i, j] = <floating>(ci * (s - y))
    return total


cdef double xent_labels_rows(const floating[:, ::1] z, const int64_t[::1] labels,
                             const floating[::1] w, double grad_scale, floating[::1] loss_out,
                             floating[:, ::1] grad_out, Py_ssize_t r0, Py_ssize_t r1,
                             double *e) noexcept nogil:
    cdef Py_ssize_t k = z.shape[1], i, j, y
    cdef bint has_w = w.shape[0] != 0
    cdef bint has_l = loss_out.shape[0] != 0
    cdef bint has_g = grad_out.shape[0] != 0
    cdef double ci = grad_scale, wi, m, s, inv, l, total = 0.0
    for i in range(r0, r1):
        s = row_shifted_exp(&z[i, 0], k, e, &m)
        y = labels[i]
        l = log(s) - (<double>z[i, y] - m)
        if has_w:
            wi = w[i]
            l = wi * l
            ci = grad_scale * wi
        total += l
        if has_l:
            loss_out[i] = <floating>l
        if has_g:
            inv = 1.0 / s
            for j in range(k):
                grad_out[i, j] = <floating>(ci * (e[j] * inv))
            grad_out[i, y] = <floating>(ci * (e[y] * inv - 1.0))
    return total


cdef double xent_probs_rows(const floating[:, ::1] z, const floating[:, ::1] t,
                            const floating[::1] w, double grad_scale, floating[::1] loss_out,
                            floating[:, ::1] grad_out, Py_ssize_t r0, Py_ssize_t r1,
                            double *e) noexcept nogil:
    cdef Py_ssize_t k = z.shape[1], i, j
    cdef bint has_w = w.shape[0] != 0
    cdef bint has_l = loss_out.shape[0] != 0
    cdef bint has_g = grad_out.shape[0] != 0
    cdef double ci = grad_scale, wi, m, s, ls, inv, tsum, tj, l, total = 0.0
    for i in range(r0, r1):
        s = row_shifted_exp(&z[i, 0], k, e, &m)
        ls = log(s)
        l = 0.0
        tsum = 0.0
        for j in range(k):
            tj = t[i, j]
            tsum += tj
            l += tj * (ls - (<double>z[i, j] - m))
        if has_w:
            wi = w[i]
            l = wi * l
            ci = grad_scale * wi
        total += l
        if has_l:
            loss_out[i] = <floating>l
        if has_g:
            inv = 1.0 / s
            for j in range(k):
                grad_out[i, j] = <floating>(ci * ((e[j] * inv) * tsum - <double>t[i, j]))
    return total


# ---------------------------------------------------------------------------------------------
# Blocks: the one driver of every loss (block layout, threads, the ordered total)
# ---------------------------------------------------------------------------------------------

cdef enum:
    LOSS_BLOCK_ELEMENTS = 16384    # elements per block of rows (at least one row per block)

cdef enum LossKind:
    MSE_LOSS = 0
    BCE_LOSS = 1
    XENT_LABELS = 2
    XENT_PROBS = 3


cdef inline double loss_rows(LossKind kind, const floating[:, ::1] a,
                             const floating[:, ::1] b, const int64_t[::1] labels,
                             const floating[::1] w, double grad_scale,
                             floating[::1] row_loss_out, floating[:, ::1] loss_out,
                             floating[:, ::1] grad_out, Py_ssize_t r0, Py_ssize_t r1,
                             double *e) noexcept nogil:
    """The partial sum of rows [r0, r1) of loss ``kind`` (``a``: predictions or logits; ``b``:
    targets or probabilities; ``e``: k doubles of scratch for the softmax losses)."""
    if kind == MSE_LOSS:
        return mse_rows(a, b, w, grad_scale, loss_out, grad_out, r0, r1)
    if kind == BCE_LOSS:
        return bce_rows(a, b, w, grad_scale, loss_out, grad_out, r0, r1)
    if kind == XENT_LABELS:
        return xent_labels_rows(a, labels, w, grad_scale, row_loss_out, grad_out, r0, r1, e)
    return xent_probs_rows(a, b, w, grad_scale, row_loss_out, grad_out, r0, r1, e)


cdef double blocked_loss(LossKind kind, const floating[:, ::1] a, const floating[:, ::1] b,
                         const int64_t[::1] labels, const floating[::1] w, double grad_scale,
                         floating[::1] row_loss_out, floating[:, ::1] loss_out,
                         floating[:, ::1] grad_out, int n_threads) except? -1.0:
    """Run loss ``kind`` block by block on up to ``n_threads`` threads; the total is the sum of
    the blocks' partial sums in block order (the same bits for every ``n_threads``)."""
    cdef Py_ssize_t n = a.shape[0], k = a.shape[1], blk, r0
    cdef Py_ssize_t rows = max(1, <Py_ssize_t>LOSS_BLOCK_ELEMENTS // max(k, 1))
    cdef Py_ssize_t n_blocks = (n + rows - 1) // rows
    cdef int n_teams = <int>max(1, min(<Py_ssize_t>n_threads, n_blocks))
    cdef double total = 0.0
    cdef double *partial = <double *>malloc(max(n_blocks, 1) * sizeof(double))
    cdef double *scratch = <double *>malloc(max(k, 1) * n_teams * sizeof(double))
    if partial == NULL or scratch == NULL:
        free(partial)
        free(scratch)
        raise MemoryError()
    try:
        if n_teams == 1:
            with nogil:
                for blk in range(n_blocks):
                    partial[blk] = loss_rows(kind, a, b, labels, w, grad_scale, row_loss_out,
                                             loss_out, grad_out, blk * rows,
                                             min(n, (blk + 1) * rows), scratch)
        else:
            for blk in prange(n_blocks, schedule="dynamic", chunksize=1, nogil=True,
                              num_threads=n_teams):
                r0 = blk * rows
                partial[blk] = loss_rows(kind, a, b, labels, w, grad_scale, row_loss_out,
                                         loss_out, grad_out, r0, min(n, r0 + rows),
                                         scratch + threadid() * max(k, 1))
        for blk in range(n_blocks):
            total += partial[blk]
    finally:
        free(partial)
        free(scratch)
    return total


#: stand-ins for the arguments a loss does not use (length 0, never read)
_NO_LABELS = np.empty(0, dtype=np.int64)
_NO_ROW_LOSSES = {"float32": np.empty(0, np.float32), "float64": np.empty(0, np.float64)}


# ---------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------

def mse_loss(const floating[:, ::1] pred, const floating[:, ::1] target,
             const floating[::1] weights, double grad_scale, floating[:, ::1] loss_out,
             floating[:, ::1] grad_out, int n_threads):
    """Weighted squared error, total and gradient in one pass (see the reference)."""
    cdef floating[::1] no_row_losses = _NO_ROW_LOSSES[
        "float32" if floating is float else "float64"]
    cdef const int64_t[::1] no_labels = _NO_LABELS
    return blocked_loss(MSE_LOSS, pred, target, no_labels, weights, grad_scale,
                        no_row_losses, loss_out, grad_out, n_threads)


def bce_with_logits_loss(const floating[:, ::1] pred, const floating[:, ::1] target,
                         const floating[::1] weights, double grad_scale,
                         floating[:, ::1] loss_out, floating[:, ::1] grad_out, int n_threads):
    """Weighted binary cross-entropy with logits, total and gradient in one pass."""
    cdef floating[::1] no_row_losses = _NO_ROW_LOSSES[
        "float32" if floating is float else "float64"]
    cdef const int64_t[::1] no_labels = _NO_LABELS
    return blocked_loss(BCE_LOSS, pred, target, no_labels, weights, grad_scale,
                        no_row_losses, loss_out, grad_out, n_threads)


def softmax_xent_labels(const floating[:, ::1] logits, const int64_t[::1] labels,
                        const floating[::1] weights, double grad_scale, floating[::1] loss_out,
                        floating[:, ::1] grad_out, int n_threads):
    """Softmax cross-entropy with integer labels, total and gradient in one pass."""
    return blocked_loss(XENT_LABELS, logits, logits, labels, weights, grad_scale, loss_out,
                        grad_out[:0], grad_out, n_threads)


def softmax_xent_probs(const floating[:, ::1] logits, const floating[:, ::1] targets,
                       const floating[::1] weights, double grad_scale, floating[::1] loss_out,
                       floating[:, ::1] grad_out, int n_threads):
    """Softmax cross-entropy with probability targets, total and gradient in one pass."""
    cdef const int64_t[::1] no_labels = _NO_LABELS
    return blocked_loss(XENT_PROBS, logits, targets, no_labels, weights, grad_scale,
                        loss_out, grad_out[:0], grad_out, n_threads)


def sigmoid(const floating[::1] z, floating[::1] out):
    """Logistic function, piecewise as in ``bce_point``."""
    cdef Py_ssize_t i, n = z.shape[0]
    cdef double s
    with nogil:
        for i in range(n):
            bce_point(z[i], 0.0, &s)
            out[i] = <floating>s


def softmax(const floating[:, ::1] logits, floating[:, ::1] out):
    """Row-wise softmax probabilities: e_j * (1/s), e_j = exp(z_j - max z), s = sum e_j."""
    cdef Py_ssize_t n = logits.shape[0], k = logits.shape[1], i, j
    cdef double m, inv
    cdef double *e = <double *>malloc(max(k, 1) * sizeof(double))
    if e == NULL:
        raise MemoryError()
    try:
        with nogil:
            for i in range(n):
                inv = 1.0 / row_shifted_exp(&logits[i, 0], k, e, &m)
                for j in range(k):
                    out[i, j] = <floating>(e[j] * inv)
    finally:
        free(e)


def log_softmax(const floating[:, ::1] logits, floating[:, ::1] out):
    """Row-wise log-softmax: (z_j - max z) - log(s)."""
    cdef Py_ssize_t n = logits.shape[0], k = logits.shape[1], i, j
    cdef double m, ls
    cdef double *e = <double *>malloc(max(k, 1) * sizeof(double))
    if e == NULL:
        raise MemoryError()
    try:
        with nogil:
            for i in range(n):
                ls = log(row_shifted_exp(&logits[i, 0], k, e, &m))
                for j in range(k):
                    out[i, j] = <floating>((<double>logits[i, j] - m) - ls)
    finally:
        free(e)


def categorical_inverse_cdf(const floating[:, ::1] probs, const double[:, ::1] u,
                            int64_t[:, ::1] out):
    """Inverse-CDF draws: out[i, r] = #{j < k-1 : c_ij <= u[i, r] * c_i,k-1}, with c_i the
    running (left-to-right, double) sum of row i of ``probs``."""
    cdef Py_ssize_t n = probs.shape[0], k = probs.shape[1], m = u.shape[1], i, j, r
    cdef double acc
    cdef double *c = <double *>malloc(max(k, 1) * sizeof(double))
    if c == NULL:
        raise MemoryError()
    try:
        with nogil:
            for i in range(n):
                acc = 0.0
                for j in range(k):
                    acc = acc + <double>probs[i, j]
                    c[j] = acc
                for r in range(m):
                    out[i, r] = bisect_right(c, k - 1, u[i, r] * acc)
    finally:
        free(c)
